"""Evaluation of assemblies: OKS, matching, mAP/mAR, outliers (DLC's inferenceutils API).

* :func:`calc_object_keypoint_similarity` -- COCO's OKS with the object scale taken from
  the ground truth's bounding box (``prod(ptp + eps + 2 margin)``), optional symmetric
  keypoint swaps (the best over every subset of swapped pairs);
* :func:`match_assemblies` -- predictions to ground truth, optimally (Hungarian on OKS)
  or greedily by prediction score;
* :func:`evaluate_assembly` -- COCO-style precision at 101 recall points and recall per
  OKS threshold; :func:`evaluate_assembly_greedy` re-matches per threshold exactly like
  pycocotools' ``COCOeval`` for keypoints (top-20 detections per image);
* :func:`find_outlier_assemblies` -- frames whose assemblies' area (or another property)
  falls outside nearest-rank percentiles.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from mapose.assembly.model import Assembly

__all__ = [
    "MatchedPrediction",
    "calc_object_keypoint_similarity",
    "match_assemblies",
    "evaluate_assembly",
    "evaluate_assembly_greedy",
    "find_outlier_assemblies",
    "parse_ground_truth_data_file",
]


@dataclass
class MatchedPrediction:
    """A prediction matched to a ground-truth assembly with its OKS."""

    prediction: Assembly
    score: float
    ground_truth: Assembly | None
    oks: float


def calc_object_keypoint_similarity(xy_pred, xy_true, sigma, margin=0, symmetric_kpts=None):
    """Object keypoint similarity of one prediction to one ground truth.

    Parameters
    ----------
    xy_pred, xy_true : ndarray of shape (n_bodyparts, 2)
        Keypoints; NaN marks a missing one.
    sigma : float or ndarray of shape (n_bodyparts,)
        Per-keypoint falloff.
    margin : float, default 0
        Added on each side of the ground truth's box when computing its scale.
    symmetric_kpts : list of (int, int), optional
        Keypoint pairs that may be swapped (e.g. left/right); the best OKS is returned.

    Returns
    -------
    float
        OKS in [0, 1]; NaN if the ground truth has fewer than two visible keypoints or
        a degenerate box.
    """
    xy_pred = np.asarray(xy_pred, dtype=float)
    xy_true = np.asarray(xy_true, dtype=float)
    if xy_pred.shape != xy_true.shape or xy_true.ndim != 2:
        raise ValueError(
            f"xy_pred and xy_true must both have shape (n_bodyparts, 2); got {xy_pred.shape} and {xy_true.shape}."
        )
    visible_gt = ~np.isnan(xy_true).all(axis=1)
    if visible_gt.sum() < 2:  # the scale needs two points
        return np.nan
    true = xy_true[visible_gt]
    scale_squared = np.prod(np.ptp(true, axis=0) + np.spacing(1) + 2 * margin)
    if np.isclose(scale_squared, 0):
        return np.nan
    sigma = np.asarray(sigma, dtype=float)
    if sigma.ndim:
        sigma = sigma[visible_gt]
    denom = 2 * scale_squared * (2 * sigma) ** 2
    candidates = [xy_pred]
    if symmetric_kpts:
        for n in range(1, len(symmetric_kpts) + 1):
            for pairs in itertools.combinations(symmetric_kpts, n):
                swapped = xy_pred.copy()
                for pair in pairs:
                    swapped[list(pair), :] = swapped[list(pair[::-1]), :]
                candidates.append(swapped)
    best = -np.inf
    for cand in candidates:
        pred = cand[visible_gt].copy()
        pred[np.isnan(pred)] = np.inf  # a missing prediction scores 0
        dist_squared = np.sum((pred - true) ** 2, axis=1)
        best = max(best, float(np.mean(np.exp(-dist_squared / denom))))
    return best


def _score(assembly) -> float:
    return assembly.affinity if assembly.n_links else assembly.confidence


def match_assemblies(
    predictions,
    ground_truth,
    sigma,
    margin=0,
    symmetric_kpts=None,
    greedy_matching=False,
    greedy_oks_threshold=0.0,
):
    """Match predicted to ground-truth assemblies of one image.

    Only assemblies with at least two keypoints take part.  Predictions are visited in
    descending score (mean link affinity, or mean confidence without links).

    Returns
    -------
    num_ground_truth : int
    matched : list of MatchedPrediction
        Optimal: the Hungarian pairs maximising the total OKS (NaN counts as 0).
        Greedy: each prediction takes its best-OKS ground truth unless that one is
        already taken or the OKS is below ``greedy_oks_threshold``.
    """
    predictions = [a for a in predictions if len(a) > 1]
    ground_truth = [a for a in ground_truth if len(a) > 1]
    num_gt = len(ground_truth)
    if not predictions:
        return num_gt, []
    scores = np.asarray([_score(a) for a in predictions], dtype=float)
    order = np.argsort(scores)[::-1]
    oks = np.array(
        [
            [calc_object_keypoint_similarity(predictions[i].xy, gt.xy, sigma, margin, symmetric_kpts) for gt in ground_truth]
            for i in order
        ],
        dtype=float,
    ).reshape(len(order), num_gt)
    # every prediction is reported, in descending score; unmatched ones with OKS 0
    gt_of = [None] * len(order)
    oks_of = [0.0] * len(order)
    if greedy_matching:
        taken = set()
        for r in range(len(order)):
            if not num_gt or np.isnan(oks[r]).all():
                continue
            j = int(np.nanargmax(oks[r]))
            if j in taken or oks[r, j] < greedy_oks_threshold:
                continue
            taken.add(j)
            gt_of[r], oks_of[r] = ground_truth[j], float(oks[r, j])
    elif num_gt:
        from mapose.kernels.lap import linear_sum_assignment

        mat = np.nan_to_num(oks, nan=0.0)
        rows, cols = linear_sum_assignment(mat, maximize=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            gt_of[r], oks_of[r] = ground_truth[c], float(mat[r, c])
    matched = [
        MatchedPrediction(predictions[i], float(scores[i]), gt_of[r], oks_of[r]) for r, i in enumerate(order)
    ]
    return num_gt, matched


def _precision_recall(oks_sorted, n_gt, thresholds):
    recall_points = np.linspace(0, 1, 101)
    precisions, recalls = [], []
    n = len(oks_sorted)
    for t in thresholds:
        tp = np.cumsum(oks_sorted >= t)
        fp = np.cumsum(oks_sorted < t)
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = tp / n_gt  # NaN without ground truth, as in DLC
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # non-increasing from the right
        inds = np.searchsorted(rc, recall_points, side="left")
        precision = np.zeros(len(recall_points))
        valid = inds < n
        precision[valid] = pr[inds[valid]]
        precisions.append(precision)
        recalls.append(rc[-1])
    return np.asarray(precisions), np.asarray(recalls)


def evaluate_assembly(
    ass_pred_dict,
    ass_true_dict,
    oks_sigma=0.072,
    oks_thresholds=None,
    margin=0,
    symmetric_kpts=None,
    greedy_matching=False,
    with_tqdm=True,
):
    """mAP / mAR of predicted assemblies against ground truth (COCO-style).

    Parameters
    ----------
    ass_pred_dict, ass_true_dict : dict
        ``{image: [Assembly, ...]}``; only images with ground truth count.
    oks_sigma : float, default 0.072
    oks_thresholds : array_like, optional
        Default ``np.linspace(0.5, 0.95, 10)``.
    greedy_matching : bool, default False
        Use :func:`evaluate_assembly_greedy` (pycocotools-equivalent).
    with_tqdm : bool
        Accepted for compatibility; no progress bar is shown.

    Returns
    -------
    dict
        ``precisions`` (n_thresholds, 101), ``recalls`` (n_thresholds,), ``mAP``, ``mAR``.
    """
    if oks_thresholds is None:
        oks_thresholds = np.linspace(0.5, 0.95, 10)
    if greedy_matching:
        return evaluate_assembly_greedy(ass_true_dict, ass_pred_dict, oks_sigma, oks_thresholds, margin, symmetric_kpts)
    matches, n_gt = [], 0
    for ind, ass_true in ass_true_dict.items():
        num, matched = match_assemblies(ass_pred_dict.get(ind, []), ass_true, oks_sigma, margin, symmetric_kpts)
        matches.extend(matched)
        n_gt += num
    if not matches:
        return {"precisions": np.array([]), "recalls": np.array([]), "mAP": 0.0, "mAR": 0.0}
    scores = np.asarray([m.score for m in matches])
    order = np.argsort(-scores, kind="mergesort")
    oks = np.asarray([m.oks for m in matches])[order]
    precisions, recalls = _precision_recall(oks, n_gt, oks_thresholds)
    return {"precisions": precisions, "recalls": recalls, "mAP": precisions.mean(), "mAR": recalls.mean()}


def evaluate_assembly_greedy(assemblies_gt, assemblies_pred, oks_sigma, oks_thresholds, margin=0, symmetric_kpts=None):
    """COCO-style keypoint evaluation with greedy matching redone at every OKS threshold.

    For each threshold, :func:`match_assemblies` runs with ``greedy_matching=True`` and
    ``greedy_oks_threshold`` = that threshold; matched predictions are true positives,
    the others false positives, ranked by score over all images (stable).

    Returns
    -------
    dict
        ``precisions`` (n_thresholds, 101), ``recalls`` (n_thresholds,), ``mAP``, ``mAR``.
    """
    thresholds = np.asarray(list(oks_thresholds), dtype=float)
    recall_points = np.linspace(0, 1, 101)
    precisions, recalls = [], []
    for t in thresholds:
        scores, tps, n_gt = [], [], 0
        for ind, gts in assemblies_gt.items():
            num, matched = match_assemblies(
                assemblies_pred.get(ind, []), gts, oks_sigma, margin, symmetric_kpts, True, t
            )
            n_gt += num
            for m in matched:
                scores.append(m.score)
                tps.append(m.ground_truth is not None)
        if not scores:  # no prediction anywhere (same at every threshold): DLC's zeros
            z = np.zeros(len(thresholds))
            return {"precisions": z, "recalls": z.copy(), "mAP": 0.0, "mAR": 0.0}
        order = np.argsort(-np.asarray(scores), kind="mergesort")
        tp = np.asarray(tps, dtype=bool)[order]
        tp_cum = np.cumsum(tp).astype(float)
        fp_cum = np.cumsum(~tp).astype(float)
        n = len(tp)
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = tp_cum / n_gt
        pr = tp_cum / (fp_cum + tp_cum + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        inds = np.searchsorted(rc, recall_points, side="left")
        q = np.zeros(len(recall_points))
        valid = inds < n
        q[valid] = pr[inds[valid]]
        precisions.append(q)
        recalls.append(rc[-1])
    precisions = np.asarray(precisions)
    recalls = np.asarray(recalls)
    return {"precisions": precisions, "recalls": recalls, "mAP": precisions.mean(), "mAR": recalls.mean()}


def find_outlier_assemblies(dict_of_assemblies, criterion="area", qs=(5, 95)):
    """Frames whose assemblies have ``criterion`` outside the ``qs`` percentiles.

    Parameters
    ----------
    dict_of_assemblies : dict
        ``{frame: [Assembly, ...]}``.
    criterion : str, default "area"
        An :class:`Assembly` attribute (``area``, ``confidence``, ``affinity``...).
    qs : (float, float)
        Lower and upper percentiles (nearest rank).

    Returns
    -------
    list
        Frame keys (each once).
    """
    if not hasattr(Assembly, criterion):
        raise ValueError(f"criterion {criterion!r} is not an Assembly attribute; use e.g. 'area', 'confidence'.")
    if len(qs) != 2:
        raise ValueError(f"qs must be two percentiles (low, high); got {qs!r}.")
    keys, values = [], []
    for frame, assemblies in dict_of_assemblies.items():
        for assembly in assemblies:
            keys.append(frame)
            values.append(getattr(assembly, criterion))
    if not values:
        return []
    values = np.asarray(values, dtype=float)
    lo, hi = np.percentile(values, qs, method="nearest")
    mask = (values < lo) | (values > hi)
    return list({keys[i] for i in np.flatnonzero(mask)})


def _parse_ground_truth_data(data):
    """``{frame: [Assembly]}`` from an array (n_frames, n_individuals, n_bodyparts, >=2)."""
    gt = {}
    for i, arr in enumerate(np.asarray(data, dtype=float)):
        temp = []
        for row in arr:
            if np.isnan(row[:, :2]).all():
                continue
            temp.append(Assembly.from_array(row.copy()))
        if temp:
            gt[i] = temp
    return gt


def parse_ground_truth_data_file(h5_file):
    """Ground-truth assemblies from a ``CollectedData_<scorer>.h5``."""
    import pandas as pd

    df = pd.read_hdf(h5_file)
    try:
        df = df.drop("single", axis=1, level="individuals")
    except KeyError:
        pass
    n_individuals = len(df.columns.get_level_values("individuals").unique())
    n_bodyparts = len(df.columns.get_level_values("bodyparts").unique())
    data = df.to_numpy(dtype=float).reshape((df.shape[0], n_individuals, n_bodyparts, -1))
    return _parse_ground_truth_data(data)
