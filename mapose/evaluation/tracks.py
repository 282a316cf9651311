"""Tracking quality of a tracks ``.h5`` against ground truth.

:func:`evaluate_tracks` compares predicted tracks (a mapose or DeepLabCut
``<video><scorer>_<el|bx|sk>.h5``) with ground truth given either as another tracks file
(e.g. the ``_gt.h5`` written by ``mapose demo``) or as DeepLabCut labelled data
(``labeled-data/<video>/CollectedData_<scorer>.h5``, indexed by image path: the frame
number is read from the image name, ``img0042.png`` -> frame 42).

Metrics
-------
Multi-object tracking (CLEAR-MOT and identity metrics, computed by py-motmetrics): per
frame, the ground-truth animals with at least one visible key point are matched to the
predicted tracks with at least one key point (likelihood >= ``pcutoff``) by the Hungarian
algorithm on the *mean key-point distance* over the body parts both have, and a pair is
allowed only if that distance is at most ``max_dist`` pixels.  By default ``max_dist`` is
0.3 x the median ground-truth animal size (diagonal of the key points' bounding box), so
the criterion scales with the video.  Reported: MOTA, MOTP (mean matched distance, px),
IDF1, ID switches, fragmentations, false positives, misses, precision, recall, mostly
tracked / lost.

Key-point error: on the MOT matches, per-body-part and overall RMSE (pixels) over key points
visible in both.

OKS mAP / mAR: DeepLabCut's ``evaluate_assembly`` (identity-free pose detection quality):
per frame the predicted animals are matched to the ground-truth animals by the Hungarian
algorithm on the object key-point similarity (OKS, ``oks_sigma`` = 0.072, DLC's default),
predictions are ranked by their mean likelihood (unmatched ones count with OKS 0), and
precision is averaged over the OKS thresholds 0.50:0.05:0.95 at 101 recall points.  As in
DeepLabCut 3.0.2, animals with fewer than two key points are ignored and only frames with
ground truth count; ``benchmarks/compare_evaluation.py`` checks the numbers against DLC's
own ``evaluate_assembly``.

The unique-body-part pseudo-individual ``"single"`` is ignored (it is not tracked).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from mapose._optional import require

__all__ = ["evaluate_tracks", "load_keypoints_h5", "KeypointTable", "format_summary"]

_PREFERRED_KEYS = ("tracks", "df_with_missing", "keypoints", "df")
_FRAME_RE = re.compile(r"(\d+)\D*$")


@dataclasses.dataclass
class KeypointTable:
    """Key points of one video read from a DLC ``.h5``.

    Attributes
    ----------
    frames : ndarray of shape (n_rows,), int64
        Frame number of each row (sorted, unique).
    individuals : list of str
    bodyparts : list of str
    xy : ndarray of shape (n_rows, n_individuals, n_bodyparts, 2), float64
        NaN where a key point is absent.
    likelihood : ndarray of shape (n_rows, n_individuals, n_bodyparts), float64
        1.0 where the file has no likelihood column (labelled data), NaN where absent.
    """

    frames: np.ndarray
    individuals: list
    bodyparts: list
    xy: np.ndarray
    likelihood: np.ndarray


def _read_h5(path: Path, what: str):
    pd = require("pandas")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; pass the path of a DLC .h5 file.")
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = [k.lstrip("/") for k in store.keys()]
            key = next((k for k in _PREFERRED_KEYS if k in keys), keys[0] if keys else None)
            df = store[key] if key is not None else None
    except (OSError, TypeError, KeyError, RuntimeError) as exc:  # not HDF5 (tables raises RuntimeError subclasses)
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{what} {str(path)!r} is not a readable pandas HDF5 file ({reason}); expected a DLC tracks "
            f"'.h5' or a CollectedData_<scorer>.h5."
        ) from exc
    if df is None:
        raise ValueError(f"{what} {str(path)!r} holds no table; expected a DLC tracks or CollectedData .h5.")
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what} {str(path)!r} holds a {type(df).__name__}, not a DLC DataFrame.")
    return df


def _frame_numbers(index, what: str, path: Path) -> np.ndarray:
    pd = require("pandas")
    if pd.api.types.is_integer_dtype(getattr(index, "dtype", None)) and not isinstance(index, pd.MultiIndex):
        return np.asarray(index, dtype=np.int64)
    # labelled data: ('labeled-data', video, 'img042.png') or 'labeled-data/video/img042.png'
    names, videos = [], set()
    for entry in index:
        parts = list(entry) if isinstance(entry, tuple) else re.split(r"[\\/]", str(entry))
        names.append(str(parts[-1]))
        if len(parts) > 1:
            videos.add(str(parts[-2]))
    if len(videos) > 1:
        raise ValueError(
            f"{what} {str(path)!r} has labelled frames of several videos {sorted(videos)}; "
            f"evaluate one video at a time (use the CollectedData file of that video's folder)."
        )
    frames = []
    for name in names:
        m = _FRAME_RE.search(Path(name).stem)
        if m is None:
            raise ValueError(
                f"{what} {str(path)!r}: cannot read a frame number from the image name {name!r}; "
                f"expected names like 'img0042.png'."
            )
        frames.append(int(m.group(1)))
    return np.asarray(frames, dtype=np.int64)


def load_keypoints_h5(path, what: str = "file") -> KeypointTable:
    """Read a DLC tracks ``.h5`` or ``CollectedData_*.h5`` into arrays.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        Name of the argument, used in error messages.

    Returns
    -------
    KeypointTable
        Individuals in file order, the ``"single"`` unique-body-part individual excluded.
        Single-animal files (no ``individuals`` level) give one individual ``"individual0"``.
    """
    pd = require("pandas")
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, what)
    df = _read_h5(path, what)
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels not in (3, 4):
        raise ValueError(
            f"{what} {str(path)!r} has columns {list(cols[:3])}...; expected DLC's MultiIndex "
            f"(scorer, individuals, bodyparts, coords) or (scorer, bodyparts, coords)."
        )
    if cols.nlevels == 3:
        df = pd.concat({"individual0": df.droplevel(0, axis=1)}, axis=1)
    else:
        df = df.droplevel(0, axis=1)
    coords = set(df.columns.get_level_values(-1))
    if not {"x", "y"} <= coords:
        raise ValueError(f"{what} {str(path)!r} has coords {sorted(coords)}; expected at least 'x' and 'y'.")
    individuals = [i for i in dict.fromkeys(df.columns.get_level_values(0)) if i != "single"]
    bodyparts = list(dict.fromkeys(
        bp for ind, bp, _ in df.columns if ind != "single"
    ))
    if not individuals:
        raise ValueError(f"{what} {str(path)!r} has no multi-animal individuals (only 'single').")
    frames = _frame_numbers(df.index, what, path)
    n, ni, nb = len(df), len(individuals), len(bodyparts)
    xy = np.full((n, ni, nb, 2), np.nan)
    lik = np.full((n, ni, nb), np.nan)
    has_lik = "likelihood" in coords
    col_pos = {c: j for j, c in enumerate(df.columns)}
    values = df.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    for a, ind in enumerate(individuals):
        for b, bp in enumerate(bodyparts):
            jx, jy = col_pos.get((ind, bp, "x")), col_pos.get((ind, bp, "y"))
            if jx is None or jy is None:
                continue  # this individual has no such body part: stays NaN
            xy[:, a, b, 0] = values[:, jx]
            xy[:, a, b, 1] = values[:, jy]
            jl = col_pos.get((ind, bp, "likelihood"))
            lik[:, a, b] = values[:, jl] if (has_lik and jl is not None) else 1.0
    missing = np.isnan(xy).any(axis=-1)
    xy[missing] = np.nan
    lik[missing] = np.nan
    order = np.argsort(frames, kind="stable")
    frames = frames[order]
    if len(frames) and np.any(np.diff(frames) == 0):
        dup = int(frames[np.flatnonzero(np.diff(frames) == 0)[0]])
        raise ValueError(f"{what} {str(path)!r} lists frame {dup} twice; keep one row per frame.")
    return KeypointTable(frames, individuals, bodyparts, xy[order], lik[order])


def _load_npz(path: Path, what: str) -> KeypointTable:
    """Rendered ground truth: ``keypoints`` (F, N, K, 2), optional ``visible`` (F, N, K)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; pass the path of a ground-truth file.")
    try:
        with np.load(path, allow_pickle=False) as d:
            kp = np.array(d["keypoints"], dtype=np.float64)
            vis = np.array(d["visible"], dtype=bool) if "visible" in d else None
            bodyparts = [str(b) for b in d["bodyparts"]] if "bodyparts" in d else None
            individuals = [str(i) for i in d["individuals"]] if "individuals" in d else None
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"{what} {str(path)!r} is not a ground-truth .npz with a 'keypoints' array of shape "
            f"(n_frames, n_animals, n_bodyparts, 2) ({exc})."
        ) from exc
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise ValueError(f"{what} {str(path)!r}: 'keypoints' has shape {kp.shape}; expected (F, N, K, 2).")
    if vis is not None:
        if vis.shape != kp.shape[:-1]:
            raise ValueError(f"{what} {str(path)!r}: 'visible' has shape {vis.shape}; expected {kp.shape[:-1]}.")
        kp[~vis] = np.nan
    n_frames, n_animals, n_parts, _ = kp.shape
    bodyparts = bodyparts or [f"bpt{k + 1}" for k in range(n_parts)]
    individuals = individuals or [f"ind{i + 1}" for i in range(n_animals)]
    lik = np.where(np.isnan(kp).any(axis=-1), np.nan, 1.0)
    kp[np.isnan(kp).any(axis=-1)] = np.nan
    return KeypointTable(np.arange(n_frames, dtype=np.int64), individuals, bodyparts, kp, lik)


# --------------------------------------------------------------------------- OKS mAP


def _oks(pred, true, sigma, margin=0.0):
    """DLC's ``calc_object_keypoint_similarity`` for (K, 2) arrays; NaN if < 2 visible GT."""
    vis = ~np.isnan(true).all(axis=1)
    if vis.sum() < 2:
        return np.nan
    t = true[vis]
    s2 = np.prod(np.ptp(t, axis=0) + np.spacing(1) + 2 * margin)
    if np.isclose(s2, 0):
        return np.nan
    denom = 2 * s2 * (2 * sigma) ** 2
    p = pred[vis]
    d2 = np.sum((p - t) ** 2, axis=1)
    d2[np.isnan(d2)] = np.inf
    return float(np.mean(np.exp(-d2 / denom)))


def _oks_matrix(pred, true, sigma, margin=0.0):
    """OKS of every prediction (P, K, 2) against every ground truth (G, K, 2): (P, G).

    Vectorised form of :func:`_oks` (same arithmetic, NaN for a ground truth with fewer
    than two visible key points).
    """
    vis = ~np.isnan(true).any(axis=-1)                          # (G, K)
    t = np.where(vis[..., None], true, np.nan)
    hi = np.where(vis[..., None], t, -np.inf).max(axis=1)
    lo = np.where(vis[..., None], t, np.inf).min(axis=1)
    with np.errstate(invalid="ignore"):
        s2 = np.prod(hi - lo + np.spacing(1) + 2 * margin, axis=-1)  # (G,)
    bad = (vis.sum(axis=1) < 2) | np.isclose(s2, 0) | ~np.isfinite(s2)
    denom = 2 * s2 * (2 * sigma) ** 2
    d2 = np.sum((pred[:, None] - true[None]) ** 2, axis=-1)     # (P, G, K)
    d2[np.isnan(d2)] = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.exp(-d2 / denom[None, :, None])
        oks = np.where(vis[None], e, 0.0).sum(axis=-1) / np.maximum(vis.sum(axis=1), 1)[None]
    oks[:, bad] = np.nan
    return oks


def oks_map(pred_xy, pred_scores, true_xy, oks_sigma=0.072, oks_thresholds=None, margin=0.0):
    """DLC's ``evaluate_assembly`` (Hungarian matching) on dense arrays.

    Parameters
    ----------
    pred_xy : ndarray of shape (n_frames, n_pred, n_bodyparts, 2)
    pred_scores : ndarray of shape (n_frames, n_pred)
        Ranking score of each predicted animal (NaN for absent ones).
    true_xy : ndarray of shape (n_frames, n_true, n_bodyparts, 2)
    oks_sigma : float
    oks_thresholds : array-like, optional
        Defaults to ``linspace(0.5, 0.95, 10)``.

    Returns
    -------
    dict
        ``precisions`` (T, 101), ``recalls`` (T,), ``mAP``, ``mAR``.
    """
    from mapose.kernels.lap import linear_sum_assignment  # compiled, SciPy-identical (ties too)

    thresholds = np.linspace(0.5, 0.95, 10) if oks_thresholds is None else np.asarray(oks_thresholds, float)
    scores, oks_values = [], []
    num_gt = 0
    for f in range(true_xy.shape[0]):
        if np.isnan(true_xy[f]).all():
            continue  # only frames with ground truth count (DLC's ground-truth dict skips them)
        gts = [g for g in true_xy[f] if (~np.isnan(g).any(axis=1)).sum() > 1]
        num_gt += len(gts)
        keep = [(p, s) for p, s in zip(pred_xy[f], pred_scores[f]) if (~np.isnan(p).any(axis=1)).sum() > 1]
        if not keep:
            continue
        # DLC orders a frame's predictions by argsort(score)[::-1] (ties: later first) and
        # keeps every prediction; unmatched ones enter with OKS 0, i.e. as false positives
        order = np.argsort([s for _, s in keep])[::-1]
        keep = [keep[i] for i in order]
        frame_oks = np.zeros(len(keep))
        if gts:
            mat = _oks_matrix(np.stack([p for p, _ in keep]), np.stack(gts), oks_sigma, margin)
            mat = np.nan_to_num(mat, nan=0.0)
            rows, cols = linear_sum_assignment(mat, maximize=True)
            frame_oks[rows] = mat[rows, cols]
        scores.extend(s for _, s in keep)
        oks_values.extend(frame_oks)
    if not oks_values:
        return {"precisions": np.zeros((0, 101)), "recalls": np.zeros(0), "mAP": 0.0, "mAR": 0.0}
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    oks_sorted = np.asarray(oks_values)[order]
    rec_points = np.linspace(0, 1, 101)
    precisions = np.zeros((len(thresholds), 101))
    recalls = np.zeros(len(thresholds))
    for t, thr in enumerate(thresholds):
        tp = np.cumsum(oks_sorted >= thr)
        fp = np.cumsum(oks_sorted < thr)
        rc = tp / num_gt
        pr = tp / (tp + fp + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # non-increasing from the right
        idx = np.searchsorted(rc, rec_points, side="left")
        ok = idx < len(pr)
        precisions[t, ok] = pr[idx[ok]]
        recalls[t] = rc[-1]
    return {"precisions": precisions, "recalls": recalls,
            "mAP": float(precisions.mean()), "mAR": float(recalls.mean())}


# --------------------------------------------------------------------------- main entry


def _animal_size(xy):
    """Bounding-box diagonal of each (…, K, 2) pose over its visible key points."""
    hi = np.where(np.isnan(xy), -np.inf, xy).max(axis=-2)
    lo = np.where(np.isnan(xy), np.inf, xy).min(axis=-2)
    with np.errstate(invalid="ignore"):
        span = hi - lo  # -inf for a pose without visible key points
    size = np.hypot(span[..., 0], span[..., 1])
    size[~np.isfinite(span).all(axis=-1)] = np.nan
    return size


def evaluate_tracks(predicted_h5, ground_truth_h5, max_dist=None, pcutoff=0.0, oks_sigma=0.072,
                    oks_thresholds=None):
    """Compare predicted tracks with ground truth: MOTA, IDF1, ID switches, RMSE, OKS mAP.

    Parameters
    ----------
    predicted_h5 : str or os.PathLike
        Tracks written by ``stitch_tracklets`` / ``analyze_videos(auto_track=True)``
        (``<video><scorer>_el.h5``), by mapose or DeepLabCut.
    ground_truth_h5 : str or os.PathLike
        Ground truth: a tracks-format ``.h5`` (integer frame index), DLC labelled data
        ``CollectedData_<scorer>.h5`` of the same video (frame numbers from image names), or
        a rendered-ground-truth ``.npz`` (``keypoints`` (F, N, K, 2), optional ``visible``
        (F, N, K), ``bodyparts``, ``individuals``; written by ``mapose demo``).
        Only the ground-truth frames are evaluated.
    max_dist : float, optional
        Largest mean key-point distance (pixels) at which a track can match an animal.
        Default: 0.3 x the median ground-truth animal size.
    pcutoff : float
        Predicted key points with a lower likelihood are ignored.
    oks_sigma : float
        Key-point sigma of the OKS used for mAP (DLC's default 0.072).
    oks_thresholds : array-like, optional
        OKS thresholds of the mAP; default ``linspace(0.5, 0.95, 10)``.

    Returns
    -------
    dict
        ``mota``, ``motp`` (px), ``idf1``, ``id_switches``, ``fragmentations``,
        ``false_positives``, ``misses``, ``num_objects``, ``num_predictions``,
        ``num_frames``, ``precision``, ``recall``, ``mostly_tracked``, ``mostly_lost``,
        ``rmse`` (px, all body parts), ``rmse_per_bodypart`` (dict, px; NaN when never
        matched), ``n_keypoint_pairs``, ``oks_map``, ``oks_mar``, ``max_dist`` (the value
        used), ``bodyparts``, ``n_tracks``, ``n_individuals``.

    Raises
    ------
    FileNotFoundError
        A file does not exist.
    ValueError
        A file is not a DLC key-point table, or the two share no body part.
    """
    mm = require("motmetrics", "evaluate_tracks (MOTA, IDF1)")
    if max_dist is not None and not (np.isfinite(max_dist) and max_dist > 0):
        raise ValueError(f"max_dist must be a positive number of pixels or None; got {max_dist!r}.")
    if not (0.0 <= float(pcutoff) <= 1.0):
        raise ValueError(f"pcutoff must be within [0, 1]; got {pcutoff!r}.")
    if not oks_sigma > 0:
        raise ValueError(f"oks_sigma must be > 0; got {oks_sigma!r}.")
    pred = load_keypoints_h5(predicted_h5, "predicted_h5")
    gt = load_keypoints_h5(ground_truth_h5, "ground_truth_h5")
    bodyparts = [b for b in gt.bodyparts if b in pred.bodyparts]
    if not bodyparts:
        raise ValueError(
            f"predicted_h5 body parts {pred.bodyparts} and ground_truth_h5 body parts {gt.bodyparts} "
            f"have nothing in common; compare files of the same project."
        )
    gb = [gt.bodyparts.index(b) for b in bodyparts]
    pb = [pred.bodyparts.index(b) for b in bodyparts]
    true_xy = gt.xy[:, :, gb]  # (F, G, B, 2)
    # align predictions on the ground-truth frames; frames the tracks lack have no tracks
    pred_xy = np.full((len(gt.frames), len(pred.individuals), len(bodyparts), 2), np.nan)
    pred_lik = np.full(pred_xy.shape[:-1], np.nan)
    pos = np.searchsorted(pred.frames, gt.frames)
    pos_c = np.minimum(pos, max(len(pred.frames) - 1, 0))
    found = (pos < len(pred.frames)) & (pred.frames[pos_c] == gt.frames) if len(pred.frames) else np.zeros(len(gt.frames), bool)
    pred_xy[found] = pred.xy[pos_c[found]][:, :, pb]
    pred_lik[found] = pred.likelihood[pos_c[found]][:, :, pb]
    low = ~(pred_lik >= pcutoff)
    pred_xy[low] = np.nan

    sizes = _animal_size(true_xy)
    sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
    if max_dist is None:
        max_dist = 0.3 * float(np.median(sizes)) if sizes.size else 10.0

    acc = mm.MOTAccumulator(auto_id=True)
    sq_err = np.zeros(len(bodyparts))
    n_err = np.zeros(len(bodyparts), dtype=np.int64)
    gt_present = ~np.isnan(true_xy).all(axis=(-1, -2))   # (F, G)
    pr_present = ~np.isnan(pred_xy).all(axis=(-1, -2))   # (F, P)
    n_predictions = int(pr_present.sum())
    from mapose.kernels.lap import linear_sum_assignment  # compiled, SciPy-identical (ties too)

    for f in range(len(gt.frames)):
        g_idx = np.flatnonzero(gt_present[f])
        p_idx = np.flatnonzero(pr_present[f])
        if g_idx.size and p_idx.size:
            diff = true_xy[f, g_idx][:, None] - pred_xy[f, p_idx][None]   # (g, p, B, 2)
            d = np.hypot(diff[..., 0], diff[..., 1])                     # (g, p, B)
            with np.errstate(invalid="ignore"):
                cnt = np.sum(~np.isnan(d), axis=-1)
                dist = np.where(cnt > 0, np.nansum(d, axis=-1) / np.maximum(cnt, 1), np.nan)
            dist[dist > max_dist] = np.nan
        else:
            dist = np.empty((g_idx.size, p_idx.size))
        acc.update([int(i) for i in g_idx], [int(i) for i in p_idx], dist)
        if g_idx.size and p_idx.size and np.isfinite(dist).any():
            # key-point error on the same optimal matching the MOT metrics use
            cost = np.where(np.isfinite(dist), dist, 1e9)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if not np.isfinite(dist[r, c]):
                    continue
                e = d[r, c]
                ok = ~np.isnan(e)
                sq_err[ok] += e[ok] ** 2
                n_err[ok] += 1

    names = ["num_frames", "mota", "motp", "idf1", "num_switches", "num_fragmentations",
             "num_false_positives", "num_misses", "num_objects", "precision", "recall",
             "mostly_tracked", "mostly_lost"]
    summary = mm.metrics.create().compute(acc, metrics=names, name="video").iloc[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse_bp = np.sqrt(sq_err / n_err)
        rmse = float(np.sqrt(sq_err.sum() / n_err.sum())) if n_err.sum() else float("nan")
    # ranking score of a predicted animal: mean likelihood of its kept key points
    kept = ~np.isnan(pred_xy[..., 0])
    n_kept = kept.sum(axis=-1)
    pred_scores = np.where(n_kept > 0, np.where(kept, pred_lik, 0.0).sum(axis=-1) / np.maximum(n_kept, 1), 0.0)
    maps = oks_map(pred_xy, pred_scores, true_xy, oks_sigma, oks_thresholds)
    _f = float

    num_objects = int(summary["num_objects"])
    return {
        "mota": _f(summary["mota"]) if num_objects else float("nan"),
        "motp": _f(summary["motp"]),
        "idf1": _f(summary["idf1"]),
        "id_switches": int(summary["num_switches"]),
        "fragmentations": int(summary["num_fragmentations"]),
        "false_positives": int(summary["num_false_positives"]),
        "misses": int(summary["num_misses"]),
        "num_objects": num_objects,
        "num_predictions": n_predictions,
        "num_frames": int(len(gt.frames)),
        "precision": _f(summary["precision"]),
        "recall": _f(summary["recall"]),
        "mostly_tracked": int(summary["mostly_tracked"]),
        "mostly_lost": int(summary["mostly_lost"]),
        "rmse": rmse,
        "rmse_per_bodypart": {b: float(v) for b, v in zip(bodyparts, rmse_bp)},
        "n_keypoint_pairs": int(n_err.sum()),
        "oks_map": maps["mAP"],
        "oks_mar": maps["mAR"],
        "max_dist": float(max_dist),
        "bodyparts": bodyparts,
        "n_tracks": len(pred.individuals),
        "n_individuals": len(gt.individuals),
    }


def format_summary(result: dict) -> str:
    """A few human-readable lines for a result of :func:`evaluate_tracks`."""
    lines = [
        f"MOTA {result['mota']:.3f}   IDF1 {result['idf1']:.3f}   ID switches {result['id_switches']}   "
        f"fragmentations {result['fragmentations']}",
        f"false positives {result['false_positives']}   misses {result['misses']}   "
        f"objects {result['num_objects']}   frames {result['num_frames']}   "
        f"(match radius {result['max_dist']:.1f} px)",
        f"keypoint RMSE {result['rmse']:.2f} px   OKS mAP {result['oks_map']:.3f}   mAR {result['oks_mar']:.3f}",
        "RMSE per body part: " + ", ".join(f"{b} {v:.2f}" for b, v in result["rmse_per_bodypart"].items()),
    ]
    return "\n".join(lines)
