"""Frame-to-frame tracking of assembled animals into DLC's tracklet dict (``build_tracklets``).

Behaviour of DLC 3's ``pose_estimation_pytorch.apis.tracklets.build_tracklets``
(``dlc-tracking-spec.md`` §4.2), verified against DLC 3.0.2 on project A and on generated
inputs.  Where DLC crashes or depends on set ordering, mapose returns a defined result:

* ``ignore_bodyparts`` removes exactly the named multi-animal bodyparts from the tracker
  input (DLC derives the indices from an unordered set).
* ``track_method="skeleton"`` sizes the skeleton tracker with the bodyparts actually
  tracked (DLC uses ``len(joints)``, which crashes when unique bodyparts exist).
* A NaN box IoU counts as no overlap (DLC raises in SciPy).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mapose.kernels.lap import linear_sum_assignment
from mapose.kernels.tracking import box_corners, clean_assemblies
from mapose.tracking.sort import SORTBox, SORTEllipse, SORTSkeleton, fill_tracklets

__all__ = ["build_tracklets", "TrackingParams", "make_tracklet_header", "frame_key"]

_METHODS = ("ellipse", "box", "skeleton")


@dataclass(frozen=True)
class TrackingParams:
    """The ``inference_cfg.yaml`` values the trackers read, with DLC's fallbacks."""

    topktoretain: int
    pcutoff: float | None = 0.1
    boundingboxslack: float = 0
    iou_threshold: float | None = None
    max_age: int = 1
    min_hits: int = 1
    oks_threshold: float = 0.5

    @classmethod
    def from_inference_cfg(cls, cfg: Mapping) -> "TrackingParams":
        if not isinstance(cfg, Mapping):
            raise TypeError(f"inference_cfg must be a dict (inference_cfg.yaml); got {type(cfg).__name__}.")
        if "topktoretain" not in cfg:
            raise ValueError(
                "inference_cfg has no 'topktoretain' (the number of animals to keep per frame). "
                "Use the model's test/inference_cfg.yaml or add topktoretain: <n individuals>."
            )
        topk = cfg["topktoretain"]
        try:
            topk = int(topk)
        except (TypeError, ValueError):
            raise ValueError(f"inference_cfg['topktoretain'] must be a positive integer; got {topk!r}.") from None
        if topk < 1:
            raise ValueError(f"inference_cfg['topktoretain'] must be >= 1; got {topk}.")
        pcut = cfg.get("pcutoff")
        return cls(
            topktoretain=topk,
            pcutoff=None if pcut is None else float(pcut),
            boundingboxslack=float(cfg.get("boundingboxslack", 0) or 0),
            iou_threshold=None if cfg.get("iou_threshold") is None else float(cfg["iou_threshold"]),
            max_age=int(cfg.get("max_age", 1)),
            min_hits=int(cfg.get("min_hits", 1)),
            oks_threshold=float(cfg.get("oks_threshold", 0.5)),
        )

    def make_tracker(self, track_method: str, n_bodyparts: int):
        """The SORT tracker DLC builds for ``track_method``."""
        if track_method == "box":
            thr = 0.3 if self.iou_threshold is None else self.iou_threshold
            return SORTBox(self.max_age, self.min_hits, thr)
        if track_method == "skeleton":
            return SORTSkeleton(n_bodyparts, self.max_age, self.min_hits, self.oks_threshold)
        thr = 0.6 if self.iou_threshold is None else self.iou_threshold
        return SORTEllipse(self.max_age, self.min_hits, thr)


def make_tracklet_header(scorer: str, joints: Sequence[str]):
    """``pd.MultiIndex`` (scorer, bodyparts, coords) over all joints, x/y/likelihood each."""
    import pandas as pd

    joints = list(joints)
    return pd.MultiIndex.from_product(
        [[scorer], joints, ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )


def frame_key(index: int, num_frames: int) -> str:
    """DLC's frame key: ``"frame" + str(index).zfill(ceil(log10(num_frames)))``."""
    width = int(math.ceil(math.log10(num_frames))) if num_frames > 0 else 0
    return "frame" + str(index).zfill(width)


def _soft_identity_matrix(animals: np.ndarray, n_ids: int) -> np.ndarray:
    """(n_animals, n_ids) soft identity of each animal.

    Per animal: the scores of its visible keypoints summed per predicted identity, then a
    softmax over the identities present (absent identities get 0), as DLC 3 does.
    Keypoints without an identity (-1) are ignored.
    """
    mat = np.zeros((len(animals), n_ids))
    for n, animal in enumerate(animals):
        ids = animal[:, 3]
        scores = animal[:, 2]
        ok = ~np.isnan(animal[:, 0]) & np.isfinite(ids) & np.isfinite(scores) & (ids >= 0)
        if not ok.any():
            continue
        groups = ids[ok].astype(int)
        uniq = np.unique(groups)
        sums = np.array([scores[ok][groups == g].sum() for g in uniq])
        e = np.exp(sums - sums.max())
        probs = e / e.sum()
        for g, p in zip(uniq, probs):
            if g < n_ids:
                mat[n, g] = p
    return mat


def _frame_items(assemblies_data):
    items = []
    for k, v in assemblies_data.items():
        if k == "single":
            continue
        if isinstance(k, str) or not isinstance(k, (int, np.integer)):
            raise ValueError(
                f"assemblies_data keys must be int frame indices (and 'single'); got {k!r}. "
                "Read the file with mapose.io.read_assemblies_pickle."
            )
        items.append((int(k), v))
    return items


def _as_animals(value, k, n_bpts_expected):
    arr = np.asarray(value) if not isinstance(value, (list, tuple)) else (
        np.stack([np.asarray(a, dtype=np.float64) for a in value]) if len(value) else np.empty((0, 0, 4))
    )
    if arr.size == 0:
        return None
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(
            f"assemblies_data[{k}] must have shape (n_animals, n_bodyparts, 4) with x, y, score, "
            f"identity; got shape {arr.shape}."
        )
    if n_bpts_expected is not None and arr.shape[1] != n_bpts_expected:
        raise ValueError(
            f"assemblies_data[{k}] has {arr.shape[1]} bodyparts per animal, but joints minus "
            f"unique_bodyparts lists {n_bpts_expected}. Pass the project's bodyparts as joints."
        )
    return np.array(arr, dtype=np.float64)  # a copy: the caller's arrays are never modified


def build_tracklets(
    assemblies_data: dict,
    track_method: str,
    inference_cfg: dict,
    joints: list[str],
    scorer: str,
    num_frames: int,
    ignore_bodyparts: list[str] | None = None,
    unique_bodyparts: list[str] | None = None,
    identity_only: bool = False,
    *,
    progress: str | None = None,
) -> dict:
    """Link per-frame assemblies into tracklets, as DLC 3's ``build_tracklets``.

    Parameters
    ----------
    assemblies_data : dict
        ``{frame index: ndarray (n_animals, n_bodyparts, 4)}`` (x, y, score, identity) and
        optionally ``"single": {frame index: ndarray (n_unique, 3)}`` — the content of an
        ``_assemblies.pickle``.  Not modified.
    track_method : {"ellipse", "box", "skeleton"}
    inference_cfg : dict
        ``inference_cfg.yaml``: ``topktoretain``, ``pcutoff``, ``boundingboxslack``,
        ``iou_threshold``, ``max_age``, ``min_hits``.
    joints : list of str
        All bodyparts, multi-animal first then unique (the header lists them all).
    scorer : str
    num_frames : int
        Number of video frames; sets the width of the ``"frameNNN"`` keys.
    ignore_bodyparts : list of str, optional
        Multi-animal bodyparts left out of the tracker input (still stored).
    unique_bodyparts : list of str, optional
        Unique bodyparts; when given, ``"single"`` is copied into the output.
    identity_only : bool, default False
        Assign assemblies to identities (optimal assignment on the soft identity) instead
        of tracking; tracklet ids are then the identities.
    progress : str, optional
        Show a progress bar over frames with this description (mapose addition).

    Returns
    -------
    dict
        ``"header"`` (pandas MultiIndex) first, then ``"single"`` (if unique bodyparts),
        then ``{numpy.int64 tracker id: {"frameNNN": ndarray (n_bodyparts, 4)}}`` in
        first-appearance order.  With ``topktoretain == 1``: ``{0: {int frame: first
        assembly with rows below pcutoff set to NaN}}``.
    """
    if track_method not in _METHODS:
        raise ValueError(
            f"track_method must be one of {list(_METHODS)}; got {track_method!r}."
        )
    if not isinstance(assemblies_data, Mapping):
        raise TypeError(f"assemblies_data must be a dict; got {type(assemblies_data).__name__}.")
    try:
        num_frames = int(num_frames)
    except (TypeError, ValueError):
        raise ValueError(f"num_frames must be a positive integer; got {num_frames!r}.") from None
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1; got {num_frames}.")
    params = TrackingParams.from_inference_cfg(inference_cfg)
    joints = list(joints)
    unique = list(unique_bodyparts) if unique_bodyparts else []
    multi = [j for j in joints if j not in set(unique)]
    ignore = set(ignore_bodyparts or [])
    unknown = ignore - set(multi)
    if unknown:
        raise ValueError(
            f"ignore_bodyparts {sorted(unknown)} are not multi-animal bodyparts of {multi}."
        )
    keep_inds = np.array([i for i, j in enumerate(multi) if j not in ignore], dtype=np.intp)
    if keep_inds.size == 0:
        raise ValueError("ignore_bodyparts leaves no bodypart to track; remove some from it.")

    tracklets: dict = {"header": make_tracklet_header(scorer, joints)}
    if unique_bodyparts:
        single = assemblies_data.get("single") or {}
        tracklets["single"] = {int(k): v for k, v in single.items()}
    pcutoff = params.pcutoff
    frames = _frame_items(assemblies_data)
    n_multi = len(multi) if multi else None

    if params.topktoretain == 1:
        tracklets[0] = {}
        for i, value in frames:
            animals = _as_animals(value, i, n_multi)
            if animals is None:
                continue
            first = animals[0]
            if pcutoff is not None:
                first[first[:, 2] < pcutoff] = np.nan
            tracklets[0][i] = first
        return tracklets

    tracker = None if identity_only else params.make_tracker(track_method, len(keep_inds))
    if progress is not None:
        from tqdm import tqdm

        frames = tqdm(frames, desc=str(progress), unit="frame")
    all_bodyparts = n_multi is not None and keep_inds.size == n_multi
    width = int(math.ceil(math.log10(num_frames)))  # frame_key's zero padding
    for i, value in frames:
        animals = _as_animals(value, i, n_multi)
        if animals is None:
            continue
        # compiled per-frame masking: padding / below-pcutoff keypoints -> NaN x, y;
        # animals without any x, y left are dropped
        visible = clean_assemblies(animals, pcutoff)
        if not len(visible):
            continue
        if len(visible) < len(animals):
            animals = animals[visible]
        if identity_only:
            mat = _soft_identity_matrix(animals, params.topktoretain)
            rows, cols = linear_sum_assignment(mat, maximize=True)
            trackers = np.c_[cols, rows]
        else:
            if track_method == "box":
                # the box tracker reads only the corners of calc_bboxes_from_keypoints
                xy = box_corners(animals, keep_inds, params.boundingboxslack)
            else:
                xy = (animals if all_bodyparts else animals[:, keep_inds])[..., :2]
            trackers = tracker.track(xy)
        fill_tracklets(tracklets, trackers, animals, "frame" + str(i).zfill(width))
    return tracklets
