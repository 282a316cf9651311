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

__all__ = ["build_tracklets", "TrackingParams", "make_tracklet_header", "frame_key",
           "TrackletBuilder", "CompactTracklets", "build_tracklets_compact"]

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


class TrackletBuilder:
    """DLC 3's ``build_tracklets`` as a stream: feed one frame's assemblies at a time.

    Holds only the trackers' state, never the input or the result: :meth:`track` returns
    what DLC's loop would store for the frame, and the caller keeps it wherever it wants
    (:func:`build_tracklets`: DLC's dict of dicts; :class:`CompactTracklets`: flat
    arrays).  Parameters and validation are those of :func:`build_tracklets`.
    """

    def __init__(self, track_method: str, inference_cfg: dict, joints: list[str], scorer: str,
                 num_frames: int, ignore_bodyparts: list[str] | None = None,
                 unique_bodyparts: list[str] | None = None, identity_only: bool = False):
        if track_method not in _METHODS:
            raise ValueError(
                f"track_method must be one of {list(_METHODS)}; got {track_method!r}."
            )
        try:
            num_frames = int(num_frames)
        except (TypeError, ValueError):
            raise ValueError(f"num_frames must be a positive integer; got {num_frames!r}.") from None
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1; got {num_frames}.")
        self.params = params = TrackingParams.from_inference_cfg(inference_cfg)
        self.track_method = track_method
        self.num_frames = num_frames
        joints = list(joints)
        self.joints = joints
        unique = list(unique_bodyparts) if unique_bodyparts else []
        self.unique = unique
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
        self.keep_inds = keep_inds
        self.header = make_tracklet_header(scorer, joints)
        self.n_multi = len(multi) if multi else None
        self.identity_only = bool(identity_only)
        self.tracker = None if (identity_only or params.topktoretain == 1) else \
            params.make_tracker(track_method, len(keep_inds))
        self.all_bodyparts = self.n_multi is not None and keep_inds.size == self.n_multi
        self.width = int(math.ceil(math.log10(num_frames)))  # frame_key's zero padding

    @property
    def single_animal(self) -> bool:
        """``topktoretain == 1``: DLC stores the first assembly under tracklet ``0``, int keys."""
        return self.params.topktoretain == 1

    def frame_key(self, i: int):
        """The key DLC files frame ``i`` under (``"frameNNN"``, or ``i`` itself for topk 1)."""
        return i if self.single_animal else "frame" + str(i).zfill(self.width)

    def track(self, i: int, value):
        """Track frame ``i``: ``(trackers, animals)`` to store, or None if nothing is stored.

        ``trackers`` is the SORT output (last two columns: tracker id, animal index; see
        :func:`mapose.tracking.sort.fill_tracklets`) and ``animals`` the cleaned float64
        assemblies it indexes.  With ``topktoretain == 1`` it is ``(None, first)`` where
        ``first`` is the first assembly with rows below ``pcutoff`` set to NaN.
        """
        animals = _as_animals(value, i, self.n_multi)
        if animals is None:
            return None
        pcutoff = self.params.pcutoff
        if self.single_animal:
            first = animals[0]
            if pcutoff is not None:
                first[first[:, 2] < pcutoff] = np.nan
            return None, first
        # compiled per-frame masking: padding / below-pcutoff keypoints -> NaN x, y;
        # animals without any x, y left are dropped
        visible = clean_assemblies(animals, pcutoff)
        if not len(visible):
            return None
        if len(visible) < len(animals):
            animals = animals[visible]
        if self.identity_only:
            mat = _soft_identity_matrix(animals, self.params.topktoretain)
            rows, cols = linear_sum_assignment(mat, maximize=True)
            trackers = np.c_[cols, rows]
        else:
            if self.track_method == "box":
                # the box tracker reads only the corners of calc_bboxes_from_keypoints
                xy = box_corners(animals, self.keep_inds, self.params.boundingboxslack)
            else:
                xy = (animals if self.all_bodyparts else animals[:, self.keep_inds])[..., :2]
            trackers = self.tracker.track(xy)
        return trackers, animals


class CompactTracklets:
    """Tracklets as flat arrays (one row per tracklet × frame), filled frame by frame.

    The compact twin of DLC's ``{tracker id: {frame key: (n_bodyparts, 4) array}}``:
    per stored row the tracker id, the frame and the float64 keypoints.  About
    ``16 + 32 × n_bodyparts`` bytes per detection instead of a dict entry, a key string
    and an ndarray object (~300 bytes of Python objects each).  Rows that the skeleton
    tracker stores as a flat predicted state (``[x0, y0, 1, x1, ...]``) are kept as such
    in :attr:`flat_rows`.

    Parameters
    ----------
    n_bodyparts : int
        Keypoints per row.
    block : int, default 4096
        Rows per storage block (memory is allocated block by block).
    """

    def __init__(self, n_bodyparts: int, block: int = 4096):
        self.n_bodyparts = int(n_bodyparts)
        self.block = int(block)
        self._ids: list[np.ndarray] = []
        self._frames: list[np.ndarray] = []
        self._data: list[np.ndarray] = []
        self._fill = self.block  # rows used in the last block
        self.flat_rows: dict[int, np.ndarray] = {}
        self.n_rows = 0

    def _new_block(self):
        self._ids.append(np.empty(self.block, np.int64))
        self._frames.append(np.empty(self.block, np.int64))
        self._data.append(np.empty((self.block, self.n_bodyparts, 4), np.float64))
        self._fill = 0

    def add(self, tracker_id: int, frame: int, row) -> None:
        """Store one tracklet row (``(n_bodyparts, 4)``, or a 1-D flat skeleton state)."""
        if self._fill == self.block:
            self._new_block()
        k = self._fill
        self._ids[-1][k] = tracker_id
        self._frames[-1][k] = frame
        row = np.asarray(row)
        if row.ndim == 1:
            self.flat_rows[self.n_rows] = np.array(row, dtype=np.float64)
            self._data[-1][k] = np.nan
        else:
            self._data[-1][k] = row
        self._fill += 1
        self.n_rows += 1

    def fill(self, trackers, animals, frame: int) -> None:
        """:func:`mapose.tracking.sort.fill_tracklets` into this store."""
        trackers = np.asarray(trackers)
        if not trackers.size:
            return
        for content, (tracklet_id, pred_id) in zip(trackers, trackers[:, -2:].astype(np.int64)):
            if pred_id != -1:
                self.add(tracklet_id, frame, animals[pred_id])
            else:
                xy = np.asarray(content[:-2], dtype=np.float64).reshape(-1, 2)
                self.add(tracklet_id, frame, np.c_[xy, np.ones(len(xy))].ravel())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids (n,), frames (n,), data (n, n_bodyparts, 4))`` of every row, in fill order.

        The blocks are concatenated (one copy); see :meth:`consolidate` to do it in place.
        """
        self.consolidate()
        if not self._ids:
            return (np.empty(0, np.int64), np.empty(0, np.int64),
                    np.empty((0, self.n_bodyparts, 4)))
        return self._ids[0], self._frames[0], self._data[0]

    def consolidate(self) -> None:
        """Merge the blocks into one array each (drops the unused tail)."""
        if len(self._ids) == 1 and self._fill == len(self._ids[0]):
            return
        n_last = self._fill
        for name in ("_ids", "_frames", "_data"):
            blocks = getattr(self, name)
            if not blocks:
                setattr(self, name, [])
                continue
            sizes = [len(b) for b in blocks[:-1]] + [n_last]
            merged = np.empty((sum(sizes),) + blocks[0].shape[1:], blocks[0].dtype)
            pos = 0
            # each block is released as soon as it is copied, so the merge needs about one
            # block of extra memory instead of a second copy of everything
            for i, size in enumerate(sizes):
                merged[pos:pos + size] = blocks[i][:size]
                blocks[i] = None
                pos += size
            setattr(self, name, [merged])
        self._fill = self.n_rows if self._ids else self.block
        self.block = max(self.block, self.n_rows)

    def tracklet_order(self) -> list[int]:
        """Tracker ids in order of first appearance (DLC's dict order)."""
        ids, _, _ = self.arrays()
        uniq, first = np.unique(ids, return_index=True)
        return [int(u) for u in uniq[np.argsort(first, kind="stable")]]

    def groups(self):
        """Yield ``(tracker id, row indices)`` per tracklet in first-appearance order."""
        ids, _, _ = self.arrays()
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
        starts = np.r_[0, bounds]
        stops = np.r_[bounds, len(ids)]
        firsts = order[starts]  # stable sort: the first row of each id
        for g in np.argsort(firsts, kind="stable"):
            yield int(sorted_ids[starts[g]]), order[starts[g]:stops[g]]


def build_tracklets_compact(frames, builder: TrackletBuilder) -> CompactTracklets:
    """Run ``builder`` over ``(frame index, assemblies)`` pairs into a :class:`CompactTracklets`.

    ``frames`` may be any iterable (e.g. :func:`mapose.io.assemblies_pickle.iter_assemblies_pickle`
    without its ``"single"`` item), so neither the input nor the result is held as Python
    objects per frame.
    """
    n_bpts = len(builder.joints) - len(builder.unique) if builder.n_multi is None else builder.n_multi
    store = CompactTracklets(n_bpts)
    for i, value in frames:
        out = builder.track(int(i), value)
        if out is None:
            continue
        trackers, animals = out
        if trackers is None:  # topktoretain == 1
            store.add(0, int(i), animals)
        else:
            store.fill(trackers, animals, int(i))
    return store


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

    See Also
    --------
    TrackletBuilder, build_tracklets_compact : the same tracking, frame by frame, into
        flat arrays (memory for long videos).
    """
    builder = TrackletBuilder(track_method, inference_cfg, joints, scorer, num_frames,
                              ignore_bodyparts, unique_bodyparts, identity_only)
    if not isinstance(assemblies_data, Mapping):
        raise TypeError(f"assemblies_data must be a dict; got {type(assemblies_data).__name__}.")
    tracklets: dict = {"header": builder.header}
    if unique_bodyparts:
        single = assemblies_data.get("single") or {}
        tracklets["single"] = {int(k): v for k, v in single.items()}
    frames = _frame_items(assemblies_data)
    if builder.single_animal:
        tracklets[0] = {}
        for i, value in frames:
            out = builder.track(i, value)
            if out is not None:
                tracklets[0][i] = out[1]
        return tracklets
    if progress is not None:
        from tqdm import tqdm

        frames = tqdm(frames, desc=str(progress), unit="frame")
    for i, value in frames:
        out = builder.track(i, value)
        if out is not None:
            fill_tracklets(tracklets, out[0], out[1], builder.frame_key(i))
    return tracklets
