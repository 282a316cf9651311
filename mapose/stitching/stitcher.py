"""Tracklet stitching as a minimum-cost flow, DeepLabCut-compatible and compiled.

:class:`TrackletStitcher` reproduces ``deeplabcut.refine_training_dataset.stitch.
TrackletStitcher`` (3.0.2): the same tracklet preparation (purification, splitting at
time discontinuities, residuals, residual pre-stitching), the same flow graph (source,
sink, one ``in``/``out`` node pair per tracklet, integer edge weights ``int(100 * w)``),
the same optimal tracks and the same output table.

What is different
-----------------
* The graph is kept as edge arrays and solved by the compiled solver of
  :mod:`mapose.kernels.flow`; edge weights are computed vectorised.  ``G`` (a networkx
  DiGraph laid out exactly as DLC's) is only built when someone reads it; edits to it are
  honoured by :meth:`stitch`.
* Per-frame work is compiled (:mod:`mapose.kernels.stitch_tracks`): every row's centroid
  once per input buffer (bit-identical to NumPy's), the residual placement of
  ``_finalize_tracks``, the track table; ``from_pickle`` reads all tracklets into one
  buffer (:func:`mapose.io.tracklets_pickle.read_tracklets_packed`), the paths are read
  from the flow arrays, and DLC's ``flow`` dict / ``_mapping`` are built only when read.
* :meth:`TrackletStitcher.from_arrays` takes flat per-detection arrays (no tracklet
  dict); the tracklets are views of them and :meth:`~TrackletStitcher.stitch` releases
  them once the tracks are built, so a whole video's keypoints are held once after
  stitching instead of ~2.5 times.
* Where DLC crashes or silently degrades (GitHub issues #1260, #1308, #1925/#3064, #2146,
  #2684) mapose warns with what happened and what to change, and returns the best
  feasible tracks: when the tracklets cannot all be covered by ``n_tracks`` disjoint
  tracks, the solver drops the fewest frames (those tracklets go back to the residuals,
  re-added where they fit) instead of DLC's heuristic fallback.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mapose.kernels.flow import min_cost_flow
from mapose.kernels.stitch_tracks import fill_columns, place_residuals, row_centroids
from mapose.stitching.tracklet import Tracklet, calc_iou

__all__ = ["TrackletStitcher", "StitchingWarning"]


class StitchingWarning(UserWarning):
    """Stitching degraded (fewer tracks, dropped tracklets...); the message says why."""


_FRAME_RE = re.compile(r"\d+")
# input tracklets with at least this many rows are prepared one by one (no concatenation)
_OWN_BLOCK_ROWS = 2048
_RUN_ROWS = 1 << 16  # rows of short tracklets prepared together


def _buffer(a):
    """The array that owns ``a``'s memory."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


@dataclass(frozen=True)
class _Graph:
    """Flow graph in array form.  Node 0 = source, 1 = sink, 2 + i = i-th ``in``,
    2 + n + i = i-th ``out`` (DLC's node insertion order)."""

    n: int
    tail: np.ndarray
    head: np.ndarray
    cap: np.ndarray
    weight: np.ndarray  # int64; links carry int(100 * w), structural edges 0
    is_link: np.ndarray  # bool


def _product_index(iterables, names):
    """``pd.MultiIndex.from_product(iterables, names=names)`` without its per-level
    factorisation: for lists of distinct strings the levels are the sorted values and the
    codes a plain cartesian pattern (``from_product`` costs milliseconds per call)."""
    import pandas as pd

    lists = [list(it) for it in iterables]
    if not all(lst and all(type(v) is str for v in lst) and len(set(lst)) == len(lst) for lst in lists):
        return pd.MultiIndex.from_product(lists, names=names)
    sizes = [len(lst) for lst in lists]
    total = int(np.prod(sizes))
    levels, codes = [], []
    inner = total
    for lst, size in zip(lists, sizes):
        uniq = sorted(lst)
        pos = np.array([uniq.index(v) for v in lst], dtype=np.int64)
        inner //= size
        outer = total // (inner * size)
        codes.append(np.tile(np.repeat(pos, inner), outer))
        levels.append(uniq)
    return pd.MultiIndex(levels=levels, codes=codes, names=names, verify_integrity=False)


class TrackletStitcher:
    """Stitch tracklets into ``n_tracks`` tracks (DLC's ``TrackletStitcher``).

    Parameters
    ----------
    tracklets : list of Tracklet
        Input tracklets (any order).
    n_tracks : int
        Number of animals (tracks) to reconstruct; ``>= 1``.
    min_length : int, default 10
        Pieces shorter than this become *residuals*, re-added after stitching; ``>= 3``.
    split_tracklets : bool, default True
        Split tracklets at every jump in frame index.
    prestitch_residuals : bool, default True
        Chain residuals into short tracklets before stitching.

    Raises
    ------
    ValueError
        If ``n_tracks < 1`` or ``min_length < 3``.
    OSError
        If no tracklet holds any finite keypoint ("Tracklets are empty").
    """

    def __init__(self, tracklets, n_tracks, min_length=10, split_tracklets=True, prestitch_residuals=True,
                 _blocks=None, _rows=None):
        if not isinstance(n_tracks, (int, np.integer)) or isinstance(n_tracks, bool) or n_tracks < 1:
            raise ValueError(f"n_tracks must be a positive integer (the number of animals); got {n_tracks!r}.")
        if min_length < 3:
            raise ValueError(
                f"min_length must be at least 3 frames; got {min_length!r}. Shorter pieces are "
                "handled as residuals anyway."
            )
        self.min_length = min_length
        self.filename = ""
        self.header = None
        self.single = None
        self.n_tracks = int(n_tracks)
        self._graph = None
        self._graph_nodes = None
        self._G_cache = None  # DLC's networkx graph, materialised lazily (see G)
        self.paths = None
        self.tracks = None
        self.flow = None

        self.tracklets = []
        self.residuals = []
        if _rows is not None:  # (inds, data, tid) rows grouped by tracklet (from_arrays)
            self._ingest_rows(*_rows, split_tracklets, presorted=False)
        elif _blocks is None:
            self._ingest([(t.inds, t.data) for t in tracklets], split_tracklets, presorted=True)
        else:  # (inds, data) pairs straight from a tracklet pickle (from_dict_of_dict)
            self._ingest(_blocks, split_tracklets, presorted=False)
        if not self.tracklets and not self.residuals:
            raise OSError(
                "Tracklets are empty: no tracklet holds a single finite keypoint. Check that "
                "the tracklet pickle comes from convert_detections2tracklets on this video and "
                "that pcutoff in inference_cfg.yaml is not above every detection's confidence."
            )
        if prestitch_residuals:
            self._prestitch_residuals(5)  # DLC hard-codes a 5-frame gap here
        if not self.tracklets:
            longest = max(len(t) for t in self.residuals)
            warnings.warn(
                f"No tracklet is at least min_length={min_length} frames long (the longest has "
                f"{longest}); DeepLabCut stops here with 'Tracklets are empty.'. Stitching the "
                f"{len(self.residuals)} short pieces instead. Pass min_length<={max(longest, 3)} "
                "to choose this explicitly, or track with a larger max_age / lower pcutoff.",
                StitchingWarning,
                stacklevel=2,
            )
            self.tracklets, self.residuals = self.residuals, []

        starts, ends = self._bounds(self.tracklets)
        order = np.argsort(starts, kind="stable")  # sorted(key=start): stable too
        self.tracklets = [self.tracklets[i] for i in order.tolist()]
        starts, ends = starts[order], ends[order]
        self._first_frame = int(starts.min())
        self._last_frame = int(ends.max())
        self._first_tracklets = self.tracklets[: self.n_tracks]
        self._last_tracklets = [self.tracklets[i] for i in np.argsort(ends, kind="stable")[-self.n_tracks:].tolist()]
        self._mapping_list = tuple(self.tracklets)  # node i of the graph <-> tracklet i
        self._mapping_memo = self._mapping_inv_memo = None
        self._lu_overlap = None

    @property
    def _mapping(self):
        """DLC's ``{tracklet: {"in": "<i>in", "out": "<i>out"}}`` (built when first read)."""
        if self._mapping_memo is None:
            self._mapping_memo = {t: {"in": f"{i}in", "out": f"{i}out"} for i, t in enumerate(self._mapping_list)}
        return self._mapping_memo

    @property
    def _mapping_inv(self):
        """DLC's ``{"<i>in" / "<i>out": tracklet}`` (built when first read)."""
        if self._mapping_inv_memo is None:
            self._mapping_inv_memo = {label: k for k, v in self._mapping.items() for label in v.values()}
        return self._mapping_inv_memo

    @staticmethod
    def _bounds(tracklets):
        """First and last frame of each tracklet, int64 arrays of shape (n,)."""
        n = len(tracklets)
        return (np.fromiter((t.inds[0] for t in tracklets), dtype=np.int64, count=n),
                np.fromiter((t.inds[-1] for t in tracklets), dtype=np.int64, count=n))

    @property
    def G(self):
        """DLC's networkx DiGraph of the flow problem (built on first access)."""
        if self._G_cache is None and self._graph is not None:
            self._G_cache = self._materialize_G()
        return self._G_cache

    @G.setter
    def G(self, value):
        self._G_cache = value

    def __repr__(self):
        return (f"TrackletStitcher with {len(self)} tracklets and {len(self.residuals)} residuals "
                f"over {self.n_frames} frames, {self.n_tracks} tracks")

    def __len__(self):
        return len(self.tracklets)

    @property
    def n_frames(self) -> int:
        return self._last_frame - self._first_frame + 1

    # -- construction from files ---------------------------------------------------------
    @classmethod
    def from_pickle(cls, pickle_file, n_tracks, min_length=10, split_tracklets=True, prestitch_residuals=True):
        """Build a stitcher from a ``*_el/_bx/_sk.pickle`` tracklet file."""
        from mapose.io.tracklets_pickle import read_tracklets_packed

        # tracklets come back as one FrameBlock each, not one ndarray per frame, and
        # usually all in one buffer, which is then prepared as is (no concatenation)
        tracklets, packed = read_tracklets_packed(pickle_file, what="tracklet (_el/_bx/_sk.pickle)")
        if not isinstance(tracklets, dict):
            raise ValueError(
                f"'{pickle_file}' does not hold a tracklet dict (got {type(tracklets).__name__}); "
                "pass the _el/_bx/_sk.pickle written by convert_detections2tracklets."
            )
        stitcher = None
        if packed is not None:
            stitcher = cls._from_packed(tracklets, packed, n_tracks, min_length, split_tracklets,
                                        prestitch_residuals)
        if stitcher is None:
            stitcher = cls.from_dict_of_dict(tracklets, n_tracks, min_length, split_tracklets, prestitch_residuals)
        stitcher.filename = os.fspath(pickle_file)
        return stitcher

    @classmethod
    def _from_packed(cls, tracklets, packed, n_tracks, min_length, split_tracklets, prestitch_residuals):
        """:meth:`from_dict_of_dict` on a dict whose tracklets are consecutive views of
        one ``(inds, data)`` buffer pair (:func:`~mapose.io.tracklets_pickle.read_tracklets_packed`):
        the buffer is prepared as the rows of :meth:`from_arrays` are.  None (nothing
        changed) when the dict is not laid out that way."""
        from mapose.io.tracklets_pickle import FrameBlock

        inds, data = packed
        if data.ndim == 2 and data.shape[1] % 3 == 0:  # flat (3 * n_bodyparts,) frames
            data = data.reshape((len(data), -1, 3))
        if data.ndim != 3 or data.shape[-1] not in (3, 4):
            return None
        lengths = []
        single = None
        for key, val in tracklets.items():
            if isinstance(key, str) and key == "header":
                continue
            if isinstance(key, str) and key == "single":
                single = val
            elif isinstance(val, FrameBlock) and val.inds.base is inds:
                lengths.append(len(val.inds))
            elif not (type(val) is dict and not val):  # only empty dicts are skipped
                return None
        if not lengths or sum(lengths) != len(inds):
            return None
        if single is not None:
            if isinstance(single, FrameBlock):
                s_inds, s_data = cls._parse_frame_block(single, "single")
            elif isinstance(single, dict) and single:
                s_inds, s_data = cls._parse_tracklet_dict(single, "single")
            elif isinstance(single, dict):
                s_inds = None
            else:
                return None
            single = None if s_inds is None else Tracklet(s_data, s_inds)
        header = tracklets.pop("header", None)
        tid = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        stitcher = cls(None, n_tracks, min_length, split_tracklets, prestitch_residuals, _rows=(inds, data, tid))
        stitcher.header = header
        stitcher.single = single
        return stitcher

    @classmethod
    def from_dict_of_dict(cls, dict_of_dict, n_tracks, min_length=10, split_tracklets=True, prestitch_residuals=True):
        """Build a stitcher from DLC's tracklet dict.

        ``"header"`` is popped from ``dict_of_dict`` (as DLC does); ``"single"`` (unique
        body parts) is kept aside and written as the ``single`` individual.
        """
        if not isinstance(dict_of_dict, dict):
            raise TypeError(f"dict_of_dict must be a dict of tracklets; got {type(dict_of_dict).__name__}.")
        header = dict_of_dict.pop("header", None)
        single = None
        tracklets = []
        from mapose.io.tracklets_pickle import FrameBlock

        for key, dict_ in dict_of_dict.items():
            if isinstance(dict_, FrameBlock):  # from read_tracklets_compact
                inds, data = cls._parse_frame_block(dict_, key)
            elif not isinstance(dict_, dict):
                raise ValueError(f"Tracklet {key!r} must be a dict {{frame: array}}; got {type(dict_).__name__}.")
            elif not dict_:
                continue  # DLC #2146: empty tracklets are skipped instead of crashing
            else:
                inds, data = cls._parse_tracklet_dict(dict_, key)
            if key == "single":
                single = Tracklet(data, inds)
            else:
                tracklets.append(cls._checked_block(inds, data))
        if not tracklets:
            raise OSError(
                "Tracklets are empty: the tracklet dict holds no animal tracklet "
                f"(keys: {sorted(map(str, dict_of_dict))[:5]}). Re-run convert_detections2tracklets; "
                "if detections exist, lower pcutoff or check the video."
            )
        stitcher = cls(None, n_tracks, min_length, split_tracklets, prestitch_residuals, _blocks=tracklets)
        stitcher.header = header
        stitcher.single = single
        return stitcher

    @classmethod
    def from_arrays(cls, tracklet_ids, frames, data, n_tracks, min_length=10, split_tracklets=True,
                    prestitch_residuals=True, *, header=None, single=None):
        """Build a stitcher from flat per-detection arrays (no tracklet dict, no copy).

        The arrays hold one row per tracklet × frame, as a tracker produces them or as
        :class:`mapose.tracking.tracklets.CompactTracklets` stores them.  The result equals
        ``from_dict_of_dict`` on ``{id: {frame: data[row]}}`` with the ids in order of
        first appearance in ``tracklet_ids`` and each tracklet's rows in array order (DLC's
        dict order).

        Parameters
        ----------
        tracklet_ids : array_like of int, shape (n,)
            Tracklet (tracker) id of each row.
        frames : array_like of int, shape (n,)
            Frame index of each row.
        data : array_like of float, shape (n, n_bodyparts, 3 or 4)
            ``x, y, likelihood`` (+ identity) per body part.  Taken as is, without a copy,
            when it is float64 and its rows are already grouped by tracklet (each id one
            contiguous run, frames ascending): the tracklets are then views of it and
            :meth:`stitch` releases them (see there), so a caller that drops its own
            reference holds the keypoints only once.
        n_tracks, min_length, split_tracklets, prestitch_residuals
            As in the constructor.
        header : pandas.MultiIndex, optional
            DLC's tracklet header (scorer / bodyparts level names), for :meth:`format_df`.
        single : Tracklet or dict, optional
            Unique body parts: a :class:`Tracklet` or DLC's ``{frame: (n_unique, 3)}`` dict.

        Raises
        ------
        ValueError
            If the shapes disagree, ``data`` is not (n, n_bodyparts, 3|4), or ids / frames
            are not integers.
        OSError
            If there is no row at all ("Tracklets are empty"), as ``from_dict_of_dict``.
        """
        ids = cls._int_rows(tracklet_ids, "tracklet_ids")
        inds = cls._int_rows(frames, "frames")
        data = np.asarray(data)
        if data.dtype.kind not in "fiub" or data.ndim != 3 or data.shape[-1] not in (3, 4):
            raise ValueError(
                f"data must be a numeric array of shape (n_rows, n_bodyparts, 3 or 4) (x, y, "
                f"likelihood[, identity]); got shape {data.shape}, dtype {data.dtype}."
            )
        if not (len(ids) == len(inds) == len(data)):
            raise ValueError(
                f"tracklet_ids, frames and data must have one entry per row; got {len(ids)}, "
                f"{len(inds)} and {len(data)} rows."
            )
        if not len(ids):
            raise OSError(
                "Tracklets are empty: from_arrays got no row. Check that tracking produced "
                "detections (pcutoff, assemblies)."
            )
        data = data.astype(np.float64, copy=False)  # DLC's tracklets are float64
        # tracklet rank = order of first appearance (DLC's dict order)
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        rank = np.empty(len(uniq), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
        tid = rank[inverse.ravel()]
        if tid.size > 1 and np.any(np.diff(tid) < 0):
            order = np.argsort(tid, kind="stable")  # group rows, keeping each tracklet's row order
            tid, inds, data = tid[order], inds[order], data[order]
        stitcher = cls(None, n_tracks, min_length, split_tracklets, prestitch_residuals,
                       _rows=(inds, data, tid))
        stitcher.header = header
        if isinstance(single, dict):
            single = {k: v for k, v in single.items()}
            if single:
                inds_s, data_s = cls._parse_tracklet_dict(single, "single")
                single = Tracklet(data_s, inds_s)
            else:
                single = None
        elif single is not None and not isinstance(single, Tracklet):
            raise TypeError(
                f"single must be a Tracklet or a {{frame: (n_unique, 3) array}} dict; got "
                f"{type(single).__name__}."
            )
        stitcher.single = single
        return stitcher

    @staticmethod
    def _int_rows(values, name):
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one entry per row); got shape {arr.shape}.")
        if arr.size and arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.array_equal(arr, np.round(arr)):
                return arr.astype(np.int64)
            raise ValueError(f"{name} must hold integers; got dtype {arr.dtype}.")
        return arr.astype(np.int64, copy=False)

    @staticmethod
    def _checked_block(inds, data):
        """``(inds, data)`` as the Tracklet constructor would accept them (its errors otherwise)."""
        if (isinstance(data, np.ndarray) and data.dtype == np.float64 and data.ndim == 3
                and data.shape[-1] in (3, 4) and isinstance(inds, np.ndarray) and inds.dtype == np.int64
                and inds.ndim == 1 and len(inds) == len(data)):
            return inds, data
        t = Tracklet(data, inds)
        return t.inds, t.data

    def _ingest(self, blocks, split_tracklets, presorted):
        """Purify, split and sort tracklets into ``tracklets`` / ``residuals`` (DLC's loop).

        Per input tracklet, in order: rows are stable-sorted by frame; frames whose x/y are
        all NaN are dropped (empty tracklets vanish); a tracklet that is not continuous
        (``end - start + 1 != len``) is cut before every frame step other than 1 when
        ``split_tracklets``; pieces of at least ``min_length`` frames are tracklets, the
        others residuals.  Done on all rows at once; each piece is a view.
        """
        blocks = [(i, d) for i, d in blocks if len(i)]
        if not blocks:
            return
        shapes = {d.shape[1:] for _, d in blocks}
        if len(shapes) > 1:  # body part / column counts differ: one tracklet at a time
            for inds, data in blocks:
                self._ingest([(inds, data)], split_tracklets, presorted)
            return
        if len(blocks) > 1 and any(len(i) >= _OWN_BLOCK_ROWS for i, _ in blocks):
            # long tracklets are taken as they are (their pieces are views, no copy), so
            # stitch() can free each input array as soon as its track is built; runs of
            # short ones are prepared together (vectorised), in the same order
            run, n_run = [], 0
            for blk in blocks:
                if len(blk[0]) >= _OWN_BLOCK_ROWS or n_run >= _RUN_ROWS:
                    if run:
                        self._ingest(run, split_tracklets, presorted)
                    run, n_run = [], 0
                if len(blk[0]) >= _OWN_BLOCK_ROWS:
                    self._ingest([blk], split_tracklets, presorted)
                else:
                    run.append(blk)
                    n_run += len(blk[0])
            if run:
                self._ingest(run, split_tracklets, presorted)
            return
        lengths = np.fromiter((len(i) for i, _ in blocks), dtype=np.int64, count=len(blocks))
        inds = np.concatenate([i for i, _ in blocks]).astype(np.int64, copy=False)
        data = np.concatenate([d for _, d in blocks]) if len(blocks) > 1 else blocks[0][1]
        tid = np.repeat(np.arange(len(blocks), dtype=np.int64), lengths)
        self._ingest_rows(inds, data, tid, split_tracklets, presorted)

    def _ingest_rows(self, inds, data, tid, split_tracklets, presorted):
        """:meth:`_ingest` on rows already in one array, grouped by tracklet (``tid``
        non-decreasing).  Pieces are views of ``data`` (no copy unless rows must be
        reordered or all-NaN rows dropped)."""
        if not presorted and inds.size > 1:
            step = np.diff(inds)
            if np.any((step <= 0) & (tid[1:] == tid[:-1])):
                order = np.lexsort((inds, tid))  # stable, as Tracklet's argsort
                inds, data, tid = inds[order], data[order], tid[order]
        # every row's centroid in one compiled pass (graph weights and residual placement
        # read them; a piece's centroid is a view, as DLC computes it: row by row), and
        # which rows have any x/y (the others are dropped: DLC's purification)
        cen, valid = row_centroids(data, return_has_xy=True)
        if not valid.all():
            inds, data, tid, cen = inds[valid], data[valid], tid[valid], cen[valid]
        if not inds.size:
            return
        new_t = np.flatnonzero(tid[1:] != tid[:-1]) + 1
        t_start = np.concatenate([[0], new_t])
        t_stop = np.concatenate([new_t, [inds.size]])
        cuts = [t_start]
        if split_tracklets:
            span = inds[t_stop - 1] - inds[t_start] + 1
            # rows of tracklets that are not continuous (only those are split, as in DLC)
            broken = np.repeat(span != t_stop - t_start, t_stop - t_start)
            jump = np.flatnonzero((np.diff(inds) != 1) & broken[1:] & (tid[1:] == tid[:-1])) + 1
            if jump.size:
                # DLC cuts where searchsorted finds the frame number: with a duplicated
                # frame, before its first occurrence
                first = np.ones(inds.size, dtype=bool)
                first[1:] = (inds[1:] != inds[:-1]) | (tid[1:] != tid[:-1])
                run_start = np.maximum.accumulate(np.where(first, np.arange(inds.size), 0))
                jump = run_start[jump]
            cuts.append(jump)
        starts = np.unique(np.concatenate(cuts))
        stops = np.concatenate([starts[1:], [inds.size]])
        min_length = self.min_length
        tracklets, residuals = self.tracklets, self.residuals
        for a, b in zip(starts.tolist(), stops.tolist()):
            piece = Tracklet._from_sorted(data[a:b], inds[a:b])
            piece._centroid = cen[a:b]
            (tracklets if b - a >= min_length else residuals).append(piece)

    @staticmethod
    def get_frame_ind(s) -> int:
        """Frame number of a tracklet key: ``int`` as is, ``"frame012"`` → 12."""
        if isinstance(s, (int, np.integer)):
            return int(s)
        m = _FRAME_RE.search(str(s))
        if m is None:
            raise ValueError(f"Cannot read a frame number from tracklet key {s!r}; expected e.g. 'frame012' or 12.")
        return int(m.group())

    @staticmethod
    def _ragged_rows(rows, key):
        shapes = {r.shape for r in rows}
        if len(shapes) == 1:
            return np.stack(rows)
        # skeleton tracker quirk: frames without a detection store the flat predicted
        # state [x0, y0, 1, x1, ...] next to (n, 4) arrays; pad those to the common shape
        full = max(shapes, key=lambda s: (len(s), s))
        if len(full) != 2:
            raise ValueError(f"Tracklet {key!r} mixes incompatible frame arrays {sorted(shapes)}.")
        data = np.full((len(rows), *full), np.nan)
        for i, r in enumerate(rows):
            if r.shape == full:
                data[i] = r
            elif r.ndim == 1 and r.size % 3 == 0 and r.size // 3 == full[0]:
                data[i, :, :3] = r.reshape(-1, 3)
            else:
                raise ValueError(f"Tracklet {key!r}: frame array of shape {r.shape} does not fit {full}.")
        return data

    @staticmethod
    def _parse_frame_block(block, key):
        data = block.data
        if data.ndim == 2:  # flat (3 * n_bodyparts,) rows
            if data.shape[1] % 3:
                raise ValueError(f"Tracklet {key!r}: flat rows must hold 3 values per body part; got {data.shape[1]}.")
            data = data.reshape((len(data), -1, 3))
        return block.inds, data

    @classmethod
    def _parse_tracklet_dict(cls, dict_, key):
        keys = list(dict_)
        first = keys[0]
        try:  # fast paths for DLC's "frame012" keys and int keys
            if isinstance(first, str) and first.startswith("frame"):
                inds = np.array([int(k[5:]) for k in keys], dtype=np.int64)
            else:
                inds = np.array([int(k) for k in keys], dtype=np.int64)
        except (ValueError, TypeError):
            inds = np.fromiter((cls.get_frame_ind(k) for k in keys), dtype=np.int64, count=len(keys))
        values = list(dict_.values())
        try:
            data = np.array(values, dtype=np.float64)  # one C-level copy when shapes agree
        except ValueError:
            data = None
        if data is None or data.dtype == object or data.ndim not in (2, 3):
            rows = [np.asarray(v, dtype=np.float64) for v in values]
            data = cls._ragged_rows(rows, key)
        if data.ndim == 2:
            if data.shape[1] % 3:
                raise ValueError(f"Tracklet {key!r}: flat rows must hold 3 values per body part; got {data.shape[1]}.")
            data = data.reshape((len(data), -1, 3))
        return inds, data

    # -- tracklet preparation ------------------------------------------------------------
    @staticmethod
    def purify_tracklet(tracklet):
        """Drop frames whose x/y are all NaN; None if nothing remains."""
        valid = ~np.isnan(tracklet.xy).all(axis=(1, 2))
        if not np.any(valid):
            return None
        if valid.all():
            return Tracklet(tracklet.data, tracklet.inds)
        return Tracklet(tracklet.data[valid], tracklet.inds[valid])

    @staticmethod
    def split_tracklet(tracklet, inds):
        """Split ``tracklet`` before each frame index in ``inds``."""
        idx = sorted(set(np.searchsorted(tracklet.inds, inds)))
        inds_new = np.split(tracklet.inds, idx)
        data_new = np.split(tracklet.data, idx)
        return [Tracklet(d, i) for d, i in zip(data_new, inds_new) if len(i)]

    def _prestitch_residuals(self, max_gap=5):
        """Chain residuals separated by 1..max_gap-1 frames into longer residuals.

        Per weakly connected component of the "may follow" DAG, the heaviest path
        (weights ``1 - IoU`` of the facing boxes) is summed into one residual.  Node, edge
        and tie-breaking order follow networkx's ``dag_longest_path`` as DLC calls it, so
        the same residuals are chained.
        """
        if len(self.residuals) < 2:
            return
        starts, ends = self._bounds(self.residuals)
        order = np.argsort(starts, kind="stable")
        residuals = [self.residuals[i] for i in order.tolist()]
        starts, ends = starts[order], ends[order]
        # DLC scans j = i+1, ... until a gap reaches max_gap and links gaps >= 1; starts are
        # sorted, so that is the range of j with ends[i] < starts[j] < ends[i] + max_gap
        after = np.arange(1, len(residuals) + 1)
        lo = np.maximum(np.searchsorted(starts, ends + 1), after)
        hi = np.maximum(np.searchsorted(starts, ends + max_gap), after)
        counts = np.clip(hi - lo, 0, None)
        li = np.repeat(np.arange(len(residuals)), counts)
        lj = np.repeat(lo, counts) + np.arange(li.size) - np.repeat(np.cumsum(counts) - counts, counts)
        weights = self._box_affinities(residuals, li, lj)
        nodes = {}  # insertion-ordered node set, as a DiGraph grows edge by edge
        succ = {}
        pred = {}
        for i, j, w in zip(li.tolist(), lj.tolist(), weights):
            for v in (i, j):
                if v not in nodes:
                    nodes[v] = None
                    succ[v] = {}
                    pred[v] = {}
            succ[i][j] = w
            pred[j][i] = w
        if not nodes:
            return
        seen = set()
        chains, to_remove = [], []
        for root in nodes:
            if root in seen:
                continue
            comp = {root}
            stack = [root]
            while stack:
                u = stack.pop()
                for v in (*succ[u], *pred[u]):
                    if v not in comp:
                        comp.add(v)
                        stack.append(v)
            seen |= comp
            path = self._dag_longest_path([v for v in nodes if v in comp], succ, pred)
            chains.append(self._concatenate_with_centroids([residuals[k] for k in path]))
            to_remove.extend(path)
        # DLC removes positions of the *sorted* residuals from the unsorted list (a quirk
        # kept for identical results; it only matters when residuals arrive unsorted)
        for k in sorted(to_remove, reverse=True):
            self.residuals.pop(k)
        self.residuals.extend(chains)

    @staticmethod
    def _concatenate_with_centroids(pieces):
        """``Tracklet.concatenate(pieces)``, with the pieces' centroid rows carried along
        (rows stably sorted by frame together), so the result needs no recomputation."""
        if len(pieces) == 1 or len({p.data.shape[1:] for p in pieces}) > 1 or any(
                p._centroid is None for p in pieces):
            return Tracklet.concatenate(pieces)
        inds = np.concatenate([p.inds for p in pieces])
        data = np.concatenate([p.data for p in pieces])
        cen = np.concatenate([p._centroid for p in pieces])
        if inds.size > 1 and np.any(np.diff(inds) <= 0):  # as the Tracklet constructor sorts
            order = np.argsort(inds, kind="stable")
            inds, data, cen = inds[order], data[order], cen[order]
        t = Tracklet._from_sorted(data, inds)
        t._centroid = cen
        return t

    @staticmethod
    def _box_affinities(residuals, li, lj):
        """``1 - calc_iou(residuals[i].calc_bbox(-1), residuals[j].calc_bbox(0))`` per pair,
        as Python floats, vectorised with the same operations (Python's ``max(a, b)``
        keeps ``a`` unless ``b > a``; ``nanmin`` is ``fmin.reduce``)."""
        if not li.size:
            return []
        if len({residuals[k].data.shape[1] for k in (*li.tolist(), *lj.tolist())}) > 1:
            return [1 - calc_iou(residuals[i].calc_bbox(-1), residuals[j].calc_bbox(0))
                    for i, j in zip(li.tolist(), lj.tolist())]
        a = np.stack([residuals[i].data[-1, :, :2] for i in li.tolist()])
        b = np.stack([residuals[j].data[0, :, :2] for j in lj.tolist()])
        b1 = np.concatenate([np.fmin.reduce(a, axis=1), np.fmax.reduce(a, axis=1)], axis=1)
        b2 = np.concatenate([np.fmin.reduce(b, axis=1), np.fmax.reduce(b, axis=1)], axis=1)

        def py_max(u, v):
            return np.where(v > u, v, u)

        def py_min(u, v):
            return np.where(v < u, v, u)

        with np.errstate(invalid="ignore", divide="ignore"):
            x1 = py_max(b1[:, 0], b2[:, 0])
            y1 = py_max(b1[:, 1], b2[:, 1])
            x2 = py_min(b1[:, 2], b2[:, 2])
            y2 = py_min(b1[:, 3], b2[:, 3])
            w = py_max(np.zeros_like(x1), x2 - x1)
            h = py_max(np.zeros_like(y1), y2 - y1)
            inter = w * h
            union = ((b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
                     + (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1]) - inter)
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        return (1 - iou).tolist()

    @staticmethod
    def _dag_longest_path(order, succ, pred):
        """networkx.dag_longest_path on the subgraph ``order`` (same tie-breaking)."""
        indeg = {v: len(pred[v]) for v in order}
        gen = [v for v in order if indeg[v] == 0]
        topo = []
        while gen:
            topo.extend(gen)
            nxt = []
            for u in gen:
                for v in succ[u]:
                    indeg[v] -= 1
                    if indeg[v] == 0:
                        nxt.append(v)
            gen = nxt
        dist = {}
        for v in topo:
            best = None
            for u, w in pred[v].items():
                cand = dist[u][0] + w
                if best is None or cand > best[0]:
                    best = (cand, u)
            if best is None:
                best = (0, v)
            dist[v] = best if best[0] >= 0 else (0, v)
        v = max(dist, key=lambda x: dist[x][0])
        path, u = [], None
        while u != v:
            path.append(v)
            u = v
            v = dist[v][1]
        return path[::-1]

    # -- graph ------------------------------------------------------------------------------
    @staticmethod
    def compute_max_gap(tracklets) -> int:
        """Largest, over tracklets in list order, of the smallest positive gap to a later-listed one.

        (DLC pairs each tracklet only with those after it in the list.)  A positive gap is
        either a later tracklet starting after this one ends, or one ending before it
        starts; sorted lists of the later tracklets' starts and ends give both by bisection.
        """
        import bisect

        if len(tracklets) > 1:
            starts, ends = TrackletStitcher._bounds(tracklets)
            if np.all(starts[1:] >= starts[:-1]):
                return TrackletStitcher._max_gap_sorted(starts, ends)
        best = 0
        later_starts, later_ends = [], []
        for t in reversed(tracklets):
            start, end = t.start, t.end
            gap = None
            k = bisect.bisect_right(later_starts, end)
            if k < len(later_starts):
                gap = later_starts[k] - end
            k = bisect.bisect_left(later_ends, start) - 1
            if k >= 0 and (gap is None or start - later_ends[k] < gap):
                gap = start - later_ends[k]
            if gap is not None and gap > best:
                best = gap
            bisect.insort(later_starts, start)
            bisect.insort(later_ends, end)
        return int(best)

    @staticmethod
    def _max_gap_sorted(starts, ends) -> int:
        """:meth:`compute_max_gap` of tracklets sorted by start, from their bounds: no
        later tracklet ends before this one starts, and the first start after this one's
        end is the nearest (it lies later in the list)."""
        k = np.searchsorted(starts, ends, side="right")
        ok = k < len(starts)
        return int((starts[k[ok]] - ends[ok]).max()) if ok.any() else 0

    @staticmethod
    def calculate_edge_weight(tracklet1, tracklet2):
        """DLC's default weight: centroid distance across the gap."""
        return tracklet1.distance_to(tracklet2)

    def build_graph(self, nodes=None, max_gap=None, weight_func=None):
        """Build the flow graph (see the module docstring).

        Parameters
        ----------
        nodes : list of Tracklet, optional
            Defaults to all tracklets.
        max_gap : int, optional
            Largest gap (frames) a link may bridge.  None or 0: ``int(1.5 *
            compute_max_gap)``, as DLC.
        weight_func : callable, optional
            ``f(t1, t2) -> float``; defaults to the centroid distance (computed vectorised).
        """
        if nodes is None:
            nodes = self.tracklets
        starts, ends = self._bounds(nodes)
        order = np.argsort(starts, kind="stable")
        nodes = [nodes[i] for i in order.tolist()]
        starts, ends = starts[order], ends[order]
        n = len(nodes)
        if not max_gap:
            max_gap = int(1.5 * self._max_gap_sorted(starts, ends))
            if max_gap == 0 and n > self.n_tracks:
                warnings.warn(
                    "No gap between tracklets was found to size max_gap (every tracklet "
                    "overlaps the others in time), so no tracklets can be linked (DLC #2684). "
                    "Stitching keeps the best non-overlapping tracklets; pass max_gap>0 or a "
                    "larger n_tracks if more animals are visible.",
                    StitchingWarning,
                    stacklevel=2,
                )
        # candidate links i -> j (i < j in start order) with 0 < start_j - end_i <= max_gap.
        # Starts are sorted, so DLC's scan (stop at the first gap > max_gap) is a
        # contiguous range of j per i.
        lo = np.maximum(np.searchsorted(starts, ends, side="right"), np.arange(1, n + 1))
        hi = np.searchsorted(starts, ends + max_gap, side="right") if np.isfinite(max_gap) else np.full(n, n)
        counts = np.clip(hi - lo, 0, None)
        li = np.repeat(np.arange(n, dtype=np.int64), counts)
        offsets = np.arange(li.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        lj = (np.repeat(lo, counts) + offsets).astype(np.int64)
        w = self._link_weights(nodes, li, lj, weight_func)

        # DLC's edge order: for each node in insertion order (source, sink, ins, outs)
        # its out-edges in insertion order.
        idx = np.arange(n, dtype=np.int64)
        tail = np.concatenate([np.zeros(n, np.int64), 2 + idx, np.zeros(0, np.int64)])
        head = np.concatenate([2 + idx, 2 + n + idx])
        struct_w = np.zeros(2 * n, np.int64)
        # out-edges of out_i: sink first, then links in j order
        out_tail = np.concatenate([2 + n + idx, 2 + n + li])
        out_head = np.concatenate([np.ones(n, np.int64), 2 + lj])
        out_w = np.concatenate([np.zeros(n, np.int64), w])
        out_link = np.concatenate([np.zeros(n, bool), np.ones(li.size, bool)])
        order = np.lexsort((np.concatenate([np.full(n, -1), lj]), out_tail))
        self._graph = _Graph(
            n=2 + 2 * n,
            tail=np.concatenate([tail, out_tail[order]]),
            head=np.concatenate([head, out_head[order]]),
            cap=np.ones(2 * n + out_tail.size, np.int64),
            weight=np.concatenate([struct_w, out_w[order]]),
            is_link=np.concatenate([np.zeros(2 * n, bool), out_link[order]]),
        )
        self._graph_nodes = nodes
        self._G_cache = None
        self.max_gap = max_gap

    def _link_weights(self, nodes, li, lj, weight_func):
        if li.size == 0:
            return np.zeros(0, np.int64)
        from mapose.stitching.api import identity_weighted_distance

        if weight_func is None or isinstance(weight_func, identity_weighted_distance):
            # distance_to on non-overlapping tracklets: end centroid -> start centroid
            end_c, start_c = self._endpoint_centroids(nodes)
            d = np.sqrt(np.sum((end_c[li] - start_c[lj]) ** 2, axis=1))
            if weight_func is not None:
                ids = np.array([t.identity for t in nodes], dtype=np.float64)
                d = np.where(ids[li] == ids[lj], 0.01, 1.0) * d
            vals = 100 * d
        else:
            vals = np.array([100 * float(weight_func(nodes[i], nodes[j])) for i, j in zip(li, lj)], dtype=np.float64)
        bad = ~np.isfinite(vals)
        if bad.any():
            # DLC raises on int(nan); an undefined score is as bad as the worst finite one
            worst = np.max(np.abs(vals[~bad])) if (~bad).any() else 0.0
            warnings.warn(
                f"{int(bad.sum())} of {vals.size} link weights are NaN/inf (tracklets without a "
                "finite centroid, or a weight_func returning NaN); they get the largest finite "
                "weight instead of crashing. Check the tracklets' likelihood columns.",
                StitchingWarning,
                stacklevel=3,
            )
            vals = np.where(bad, worst, vals)
        return np.trunc(vals).astype(np.int64)

    @staticmethod
    def _endpoint_centroids(nodes):
        """Centroids of every node's last and first pose, each of shape (n, 2) (the rows
        of ``t.centroid``, computed once per input buffer)."""
        cen = np.concatenate([t.centroid for t in nodes])
        stop = np.cumsum(np.fromiter(map(len, nodes), dtype=np.int64, count=len(nodes)))
        return cen[stop - 1], cen[np.concatenate([[0], stop[:-1]])]

    def _update_edge_weights(self, weight_func):
        if self._graph is None:
            raise ValueError("Build the graph first (call build_graph()).")
        g = self._graph
        nodes = self._graph_nodes
        n = len(nodes)
        links = np.flatnonzero(g.is_link)
        li = g.tail[links] - 2 - n
        lj = g.head[links] - 2
        w = g.weight.copy()
        w[links] = self._link_weights(nodes, li, lj, weight_func)
        self._graph = _Graph(g.n, g.tail, g.head, g.cap, w, g.is_link)
        self._G_cache = None

    def _node_names(self, n=None):
        n = len(self._graph_nodes) if n is None else n
        return ["source", "sink"] + [f"{i}in" for i in range(n)] + [f"{i}out" for i in range(n)]

    def _materialize_G(self):
        import networkx as nx

        g = self._graph
        names = self._node_names()
        n = len(self._graph_nodes)
        G = nx.DiGraph()
        G.add_node("source", demand=-self.n_tracks)
        G.add_node("sink", demand=self.n_tracks)
        G.add_nodes_from((f"{i}in", {"demand": 1}) for i in range(n))
        G.add_nodes_from((f"{i}out", {"demand": -1}) for i in range(n))
        for u, v, link, w in zip(g.tail.tolist(), g.head.tolist(), g.is_link.tolist(), g.weight.tolist()):
            if link:
                G.add_edge(names[u], names[v], weight=w, capacity=1)
            else:
                G.add_edge(names[u], names[v], capacity=1)
        return G

    @property
    def weights(self):
        """``{(out, in): weight}`` of the link edges."""
        if self._G_cache is not None:
            return {(u, v): w for u, v, w in self._G_cache.edges.data("weight") if w is not None}
        if self._graph is None:
            return None
        g = self._graph
        names = self._node_names()
        links = np.flatnonzero(g.is_link)
        return {(names[g.tail[k]], names[g.head[k]]): int(g.weight[k]) for k in links}

    # -- solve --------------------------------------------------------------------------
    def _arrays_from_G(self):
        """Array form of a (possibly user-edited) networkx graph."""
        G = self._G_cache
        names = list(G.nodes)
        index = {name: k for k, name in enumerate(names)}
        demand = np.array([G.nodes[v].get("demand", 0) for v in names], dtype=np.int64)
        edges = list(G.edges(data=True))
        tail = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
        head = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
        cap = np.array([min(e.get("capacity", 2**40), 2**40) for *_, e in edges], dtype=np.int64)
        w = np.array([e.get("weight") or 0 for *_, e in edges], dtype=np.int64)
        return names, -demand, tail, head, cap, w

    def stitch(self, add_back_residuals=True):
        """Solve the flow problem and assemble ``self.tracks``.

        Warns (:class:`StitchingWarning`) instead of failing when the tracklets cannot be
        covered by ``n_tracks`` disjoint tracks; see the class docstring.

        Memory: each track is concatenated once (after its residuals are known) and the
        tracklets it is made of are then rebound to views of its rows, so the input
        keypoint arrays are released and the stitcher holds the keypoints once, in
        ``tracks`` (plus own copies of the pieces no track took).  ``tracklets``,
        ``residuals``, ``paths``, ``format_df``, ``write_tracks`` and ``concatenate_data``
        are unchanged; a tracklet shares memory with its track afterwards (DLC: only a
        one-piece track is its tracklet), so in-place edits of one show in the other.
        """
        if self._graph is None:
            self.build_graph()
        edited = self._G_cache is not None
        if edited:
            names, supply, tail, head, cap, w = self._arrays_from_G()
        else:
            names = None  # DLC's layout: node k of _node_names(), built only when read
            g = self._graph
            n = len(self._graph_nodes)
            supply = np.empty(2 + 2 * n, dtype=np.int64)
            supply[:2] = self.n_tracks, -self.n_tracks
            supply[2:2 + n] = -1
            supply[2 + n:] = 1
            tail, head, cap, w = g.tail, g.head, g.cap, g.weight
        flow, skip = self._solve(names, supply, tail, head, cap, w)
        if skip:
            # a dropped tracklet's in->out edge may carry a unit through; it is not part of any track
            skip = np.fromiter(skip, dtype=np.int64)
            flow[np.isin(tail, skip) | np.isin(head, skip)] = 0
        if edited:
            self.flow = self._flow_dict(names, tail, head, flow)
            self.paths = self.reconstruct_paths()
        else:
            self.paths = self._paths_from_flow(tail, head, flow)
        n_found = sum(1 for p in self.paths if p)
        if n_found < self.n_tracks:
            warnings.warn(
                f"Only {n_found} of n_tracks={self.n_tracks} tracks could be reconstructed "
                f"(there are {len(self.tracklets)} tracklets); the remaining animals' columns are NaN. "
                "Lower n_tracks, or lower min_length so that more tracklets are kept.",
                StitchingWarning,
                stacklevel=2,
            )
        # each track is concatenated once, after the residuals joined it: no second
        # full copy of the keypoints next to the stitch-time tracks
        groups = [list(p) for p in self.paths if p]
        if add_back_residuals:
            members = self._finalize_tracks(groups)
        else:
            members = groups
            self._set_tracks(self._assemble_tracks(groups))
        self._release_inputs(members)

    def _solve(self, names, supply, tail, head, cap, w):
        """Min-cost flow on DLC's graph; on infeasibility, the best partial cover."""
        from mapose.kernels.flow import InfeasibleFlowError

        solve = min_cost_flow if names is not None else self._min_cost_flow_dlc_layout
        try:
            res = solve(supply, tail, head, cap, w)
            return res.flow, set()
        except InfeasibleFlowError:
            pass
        # Relaxation: each tracklet may be left out (out_i -> in_i at a cost per frame that
        # dominates every real weight) and each missing track costs more than any dropped
        # tracklet; the optimum keeps as many frames as possible, then the cheapest links.
        if names is None:
            names = self._node_names()
        index = {name: k for k, name in enumerate(names)}
        nodes = self._graph_nodes if self._graph_nodes is not None else self.tracklets
        lengths = np.array([len(t) for t in nodes], dtype=np.int64)
        big = int(np.abs(w).sum()) + 1
        drop_cost = big * lengths
        track_cost = big * (int(lengths.sum()) + 1)
        if track_cost * max(self.n_tracks, 1) > 2**61:
            raise ValueError("Edge weights are too large to solve the relaxed stitching problem; rescale weight_func.")
        n_t = len(nodes)
        src, snk = index["source"], index["sink"]
        ins = np.array([index[f"{i}in"] for i in range(n_t)], dtype=np.int64)
        outs = np.array([index[f"{i}out"] for i in range(n_t)], dtype=np.int64)
        tail2 = np.concatenate([tail, outs, [src]])
        head2 = np.concatenate([head, ins, [snk]])
        cap2 = np.concatenate([cap, np.ones(n_t, np.int64), [max(int(supply[src]), 0)]])
        w2 = np.concatenate([w, drop_cost, [track_cost]])
        # served in the plain node order: which of several equally good covers is kept
        # stays what it always was (the backwards order only changes ties)
        res = min_cost_flow(supply, tail2, head2, cap2, w2)
        m = tail.size
        dropped = np.flatnonzero(res.flow[m:m + n_t])
        missing = int(res.flow[-1])
        kept = n_t - dropped.size
        if dropped.size:
            lost = [nodes[i] for i in dropped]
            warnings.warn(
                f"The {n_t} tracklets cannot be covered by n_tracks={self.n_tracks} tracks that do "
                f"not overlap in time (max_gap={getattr(self, 'max_gap', None)}); DeepLabCut fails "
                f"or falls back to heuristics here (#1260). Kept the best {kept} tracklets and moved "
                f"{dropped.size} ({int(lengths[dropped].sum())} frames) to the residuals, which are "
                "re-added where they fit. If more animals are visible at once, increase n_tracks; "
                "if animals vanish for long, pass a larger max_gap.",
                StitchingWarning,
                stacklevel=3,
            )
            self.residuals.extend(lost)
        if missing:
            warnings.warn(
                f"Only {self.n_tracks - missing} of n_tracks={self.n_tracks} tracks can start at a "
                "tracklet (too few tracklets or source/sink edges).",
                StitchingWarning,
                stacklevel=3,
            )
        return res.flow[:m].copy(), set(outs[dropped].tolist()) | set(ins[dropped].tolist())

    @staticmethod
    def _min_cost_flow_dlc_layout(supply, tail, head, cap, w):
        """:func:`~mapose.kernels.flow.min_cost_flow` on DLC's node layout (source, sink,
        n ``in``, n ``out``), with the nodes renumbered so that the solver serves the
        tracklets' supplies from the last tracklet back to the first, then the source.

        The successive-shortest-path solver routes one supply node after the other, by
        node number.  In DLC's numbering the first out nodes grab the free, zero-cost sink
        edges and later tracklets must undo that along long paths; served from the end of
        the video backwards, each augmentation is short (7-8x fewer operations at 200-900
        tracklets).  The optimal cost is the same (only among equally cheap flows may the
        choice differ; none did on 286 DLC and generated workloads compared with the
        plain order); edges keep their order, so the flow comes back per input edge.
        """
        n = (len(supply) - 2) // 2
        rank = np.empty(len(supply), dtype=np.int64)
        # new order: out_{n-1} .. out_0, sink, in_{n-1} .. in_0, source
        rank[2 + n:] = np.arange(n - 1, -1, -1)
        rank[1] = n
        rank[2:2 + n] = np.arange(2 * n, n, -1)
        rank[0] = 2 * n + 1
        new_supply = np.empty_like(supply)
        new_supply[rank] = supply
        return min_cost_flow(new_supply, rank[tail], rank[head], cap, w)

    @staticmethod
    def _flow_dict(names, tail, head, flow):
        out = {name: {} for name in names}
        for u, v, f in zip(tail.tolist(), head.tolist(), flow.tolist()):
            out[names[u]][names[v]] = f
        return out

    @property
    def flow(self):
        """DLC's flow dict ``{node: {successor: units}}`` after :meth:`stitch` (as DLC
        leaves it: the units of each out-node edge a path used are taken off again by
        ``reconstruct_path``).  Built on first access."""
        if self._flow_cache is None and self._flow_arrays is not None:
            tail, head, flow, n = self._flow_arrays  # the graph solved (build_graph may run again)
            self._flow_cache = self._flow_dict(self._node_names(n), tail, head, np.asarray(flow))
        return self._flow_cache

    @flow.setter
    def flow(self, value):
        self._flow_cache = value
        self._flow_arrays = None

    def _paths_from_flow(self, tail, head, flow):
        """:meth:`reconstruct_paths` on the flow arrays of DLC's graph layout (edges
        grouped by tail node, in DLC's order); the flow dict is built later, if read."""
        n = len(self._graph_nodes)
        ptr = np.searchsorted(tail, np.arange(3 + 2 * n)).tolist()
        heads = head.tolist()
        units = flow.tolist()
        tracklets = self._mapping_list
        paths = []
        for e in range(ptr[0], ptr[1]):  # source edges, in order
            if units[e] != 1:
                continue
            v = heads[e]
            path = [tracklets[v - 2]]
            while True:
                # the in node's tracklet -> its out node -> the first edge carrying one unit
                u = v + n
                nxt = -1
                for k in range(ptr[u], ptr[u + 1]):
                    if units[k] == 1:
                        nxt = k
                        break
                if nxt < 0:
                    break
                units[nxt] -= 1
                v = heads[nxt]
                if v == 1:  # the sink
                    break
                path.append(tracklets[v - 2])
            paths.append(path)
        self._flow_arrays = (tail, head, units, n)
        self._flow_cache = None
        return paths

    def reconstruct_path(self, source):
        """Follow the flow from ``source`` (an ``in`` node) to the sink."""
        path = [source]
        node = source
        while True:
            node = self._mapping[self._mapping_inv[node]]["out"] if node.endswith("in") else node
            succ = self.flow.get(node, {})
            nxt = None
            for v, f in succ.items():
                if f == 1:
                    nxt = v
                    break
            if nxt is None or nxt == "sink":
                if nxt == "sink":
                    succ["sink"] -= 1
                break
            succ[nxt] -= 1
            path.append(nxt)
            node = nxt
        return [self._mapping_inv[n] for n in path]

    def reconstruct_paths(self):
        paths = []
        for node, f in self.flow["source"].items():
            if f == 1:
                paths.append(self.reconstruct_path(node))
        return paths

    # -- residuals ----------------------------------------------------------------------
    def _set_tracks(self, tracks):
        self.tracks = np.empty(len(tracks), dtype=object)
        self.tracks[:] = tracks

    def _finalize_tracks(self, groups=None):
        """Add the residuals back into the tracks (DLC's ``_finalize_tracks``).

        ``groups``: each track as its list of tracklets in time order (default: the
        current ``tracks``, one piece each).  Sets ``tracks`` and returns, per track, the
        pieces it is made of.
        """
        if groups is None:
            groups = [[t] for t in self.tracks]
        groups = [list(g) for g in groups]
        members = [list(g) for g in groups]
        # longest first; equal lengths in reverse list order (DLC reverses an ascending sort)
        residuals = sorted((t for t in self.residuals if len(t) > 1), key=len)[::-1]
        if not groups or not residuals:
            self._set_tracks(self._assemble_tracks(groups))
            return members
        placed = self._place_residuals(groups, residuals)
        if placed is not None:
            for r, k in placed:
                members[k].append(r)
            self._set_tracks(self._assemble_tracks(members))
            return members
        # occupancy of every track on the frame axis: "residual r fits track k" is then
        # one fancy-index instead of a set operation per pair
        lo = min(min(p.start for g in groups for p in g), min(r.start for r in residuals))
        hi = max(max(p.end for g in groups for p in g), max(r.end for r in residuals))
        occ = np.zeros((len(groups), hi - lo + 1), dtype=bool)

        # merged residuals wait in `pending` and each track is concatenated once at the
        # end: frames never collide, so the result is the one of DLC's repeated
        # `track + residual`.  Meanwhile the frame -> (piece, row) maps below answer "which
        # pose is the track's neighbour of this residual" without building the track.
        pending = [[] for _ in groups]
        pieces = []
        src_piece = np.full(occ.shape, -1, dtype=np.int64)
        src_row = np.zeros(occ.shape, dtype=np.int64)
        for k, g in enumerate(groups):
            for p in g:
                occ[k, p.inds - lo] = True
                src_piece[k, p.inds - lo] = len(pieces)
                src_row[k, p.inds - lo] = np.arange(len(p))
                pieces.append(p)
        # a repeated frame would make row lookups ambiguous: build tracks in that case
        exact_rows = not any(np.any(np.diff(t.inds) == 0) for t in (*pieces, *residuals))

        def merge(k, r):
            pending[k].append(r)
            members[k].append(r)
            occ[k, r.inds - lo] = True
            src_piece[k, r.inds - lo] = len(pieces)
            src_row[k, r.inds - lo] = np.arange(len(r))
            pieces.append(r)

        def track(k):
            if pending[k] or len(groups[k]) > 1:
                groups[k] = [Tracklet.concatenate([*groups[k], *pending[k]])]
                pending[k] = []
            return groups[k][0]

        def neighbours(k, r):
            """(left frame, its centroid, right frame, its centroid) of track k around r, or None."""
            if not exact_rows:
                t = track(k)
                li = int(np.searchsorted(t.inds, r.start)) - 1
                ri = int(np.searchsorted(t.inds, r.end))
                if li < 0 or ri >= len(t):
                    return None
                return t.inds[li], t.centroid_at(li), t.inds[ri], t.centroid_at(ri)
            left = np.flatnonzero(occ[k, : r.start - lo])
            right = np.flatnonzero(occ[k, r.end - lo:])  # r.end itself is free (candidate)
            if not left.size or not right.size:
                return None
            fl, fr = int(left[-1]), int(right[0]) + r.end - lo
            return (fl + lo, pieces[src_piece[k, fl]].centroid_at(int(src_row[k, fl])),
                    fr + lo, pieces[src_piece[k, fr]].centroid_at(int(src_row[k, fr])))
        # 1) residuals that fit (no shared frame) into exactly one track go there
        changed = True
        while changed and residuals:
            changed = False
            for r in list(residuals):
                fits = np.flatnonzero(~occ[:, r.inds - lo].any(axis=1))
                if fits.size == 1:
                    merge(int(fits[0]), r)
                    residuals.remove(r)
                    changed = True
        # 2) the rest: the candidate track whose frames around the residual are closest.
        # Tracks without a frame on both sides of the residual are not eligible.  DLC
        # indexes the *track list* with the position in the *candidate list* (a quirk kept
        # for identical output; it only matters when some track overlaps the residual).
        for r in residuals:
            cand_idx = np.flatnonzero(~occ[:, r.inds - lo].any(axis=1))
            if not cand_idx.size:
                continue
            costs = np.full(cand_idx.size, np.inf)
            for k, ti in enumerate(cand_idx.tolist()):
                found = neighbours(ti, r)
                if found is None:
                    continue
                f_left, c_left, f_right, c_right = found
                left_gap = r.start - f_left
                right_gap = f_right - r.end
                d_left = np.sqrt(np.sum((c_left - r.centroid_at(0)) ** 2))
                d_right = np.sqrt(np.sum((c_right - r.centroid_at(-1)) ** 2))
                if left_gap <= 3:
                    costs[k] = d_left
                elif right_gap <= 3:
                    costs[k] = d_right
                else:
                    costs[k] = d_left + d_right
            if np.all(np.isinf(costs)):
                continue
            valid = np.flatnonzero(~np.isinf(costs))
            # one eligible track: taken as such; several: the quirk above
            k = int(cand_idx[valid[0]]) if valid.size == 1 else int(np.argmin(costs))
            merge(k, r)
        self._set_tracks(self._build_tracks(members, track))
        return members

    def _place_residuals(self, groups, residuals):
        """Residual placement of :meth:`_finalize_tracks` by the compiled kernel
        (:func:`mapose.kernels.stitch_tracks.place_residuals`): ``[(residual, track)]`` in
        placement order, or None when a frame repeats inside a track or a piece (poses are
        then looked up on the concatenated tracks, by the loop below)."""
        pieces = [p for g in groups for p in g]
        every = pieces + residuals
        lengths = np.fromiter(map(len, every), dtype=np.int64, count=len(every))
        offsets = np.zeros(len(every) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        inds = np.concatenate([t.inds for t in every])
        step = np.diff(inds)
        step[offsets[1:-1] - 1] = 1  # across piece boundaries anything goes
        if np.any(step <= 0):  # repeated (or unsorted) frames inside a piece
            return None
        lo = int(inds.min())
        n_frames = int(inds.max()) - lo + 1
        n_piece_rows = int(offsets[len(pieces)])
        track_of_row = np.repeat(np.repeat(np.arange(len(groups)), [len(g) for g in groups]),
                                 lengths[:len(pieces)])
        cells = track_of_row * n_frames + (inds[:n_piece_rows] - lo)
        if n_piece_rows and np.bincount(cells).max() > 1:  # two pieces of a track share a frame
            return None
        src = np.full((len(groups), n_frames), -1, dtype=np.int64)
        src.ravel()[cells] = np.arange(n_piece_rows)
        cen = np.concatenate([t.centroid for t in every])
        res_offsets = offsets[len(pieces):]
        assign, order, _ = place_residuals(src, cen, inds[n_piece_rows:] - lo, res_offsets - res_offsets[0],
                                           res_offsets[:-1])
        return [(residuals[r], int(assign[r])) for r in order.tolist()]

    def _assemble_tracks(self, members):
        """One track per member list: its pieces concatenated once (rows sorted by frame,
        stably, as the Tracklet constructor sorts them), a one-piece track being the piece
        itself; the pieces are then rebound to views of their track (see
        :meth:`_bind_track`), track by track, so input buffers are freed early."""
        tracks = []
        for pieces in members:
            if len(pieces) == 1 or len({p.data.shape[1:] for p in pieces}) > 1:
                t = Tracklet.concatenate(pieces)
                self._bind_track(t, pieces)
                tracks.append(t)
                continue
            first = np.fromiter((p.inds[0] for p in pieces), dtype=np.int64, count=len(pieces))
            if np.any(np.diff(first) < 0):
                # residuals come after the path's pieces: put pieces in time order first,
                # so that disjoint pieces need no row sort (the rows are the same: frames
                # are unique then, and a stable sort of unique keys has one result)
                pieces = [pieces[i] for i in np.argsort(first, kind="stable").tolist()]
            inds = np.concatenate([p.inds for p in pieces])
            data = np.concatenate([p.data for p in pieces])
            cen = np.concatenate([p.centroid for p in pieces])
            step = np.diff(inds)
            lens = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
            if not np.any(step <= 0):  # pieces back to back: piece i is rows a[i]:b[i]
                b = np.cumsum(lens)
                self._bind_runs(pieces, data, inds, cen, b - lens, b, None)
                tracks.append(Tracklet._from_sorted(data, inds))
                tracks[-1]._centroid = cen
                continue
            # interleaved or repeated frames: rows in member order, stably sorted
            pieces = members[len(tracks)]
            lens = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
            inds = np.concatenate([p.inds for p in pieces])
            data = np.concatenate([p.data for p in pieces])
            cen = np.concatenate([p.centroid for p in pieces])
            order = np.argsort(inds, kind="stable")
            inds, data, cen = inds[order], data[order], cen[order]
            t = Tracklet._from_sorted(data, inds)
            t._centroid = cen
            # where each piece's own rows went: a piece is one run of the track iff its
            # first and last rows are len - 1 apart (the sort is stable: within a piece the
            # rows keep their order)
            where = np.empty_like(order)
            where[order] = np.arange(order.size)
            stop = np.cumsum(lens)
            a = where[stop - lens]
            run = where[stop - 1] - a == lens - 1
            self._bind_runs(pieces, data, inds, cen, a, a + lens, run)
            tracks.append(t)
        return tracks

    @staticmethod
    def _bind_runs(pieces, data, inds, cen, a, b, run):
        """Piece ``i`` becomes rows ``a[i]:b[i]`` of a track (``run[i]`` False: not one
        run of the track, e.g. another piece lies inside its gaps: own copies instead)."""
        run = [True] * len(pieces) if run is None else run.tolist()
        for p, ok, i, j in zip(pieces, run, a.tolist(), b.tolist()):
            if ok:
                p.data, p.inds, p._centroid = data[i:j], inds[i:j], cen[i:j]
            else:
                p.data, p.inds = p.data.copy(), p.inds.copy()
                if p._centroid is not None:
                    p._centroid = p._centroid.copy()

    def _build_tracks(self, members, make):
        """``[make(k) for k in range(len(members))]``, each track's pieces rebound to views
        of it right after it is built, so that input arrays whose pieces all went into
        the tracks built so far are freed before the next track is built."""
        tracks = []
        for k, pieces in enumerate(members):
            t = make(k)
            self._bind_track(t, pieces)
            tracks.append(t)
        return tracks

    @staticmethod
    def _own(t):
        """Give ``t`` its own arrays if it is a view of a larger buffer."""
        if _buffer(t.data).nbytes > t.data.nbytes:
            t.data = t.data.copy()
        if _buffer(t.inds).nbytes > t.inds.nbytes:
            t.inds = t.inds.copy()
        TrackletStitcher._own_centroid(t)

    @staticmethod
    def _own_centroid(t):
        """Give ``t`` its own centroid array if it is a view of a larger one (the
        per-row centroids of an input buffer)."""
        c = t._centroid
        if c is not None and _buffer(c).nbytes > c.nbytes:
            t._centroid = c.copy()

    def _bind_track(self, t, pieces):
        """Rebind ``pieces`` (the tracklets a track is made of) to views of track ``t``'s
        rows (bit-identical values, checked; a piece that is not one run of ``t`` gets
        its own copy)."""
        self._own(t)
        # with every frame once in the track, rows whose frames match are the piece's rows
        # (each piece went into the track whole); otherwise compare the values bit by bit
        unique = len(t) < 2 or bool(np.all(np.diff(t.inds) > 0))
        for p in pieces:
            if p is t:
                continue
            a = int(np.searchsorted(t.inds, p.start)) if len(p) else 0
            b = a + len(p)
            if (len(p) and b <= len(t) and p.data.shape[1:] == t.data.shape[1:]
                    and np.array_equal(t.inds[a:b], p.inds)
                    and (unique or np.array_equal(t.data[a:b].view(np.uint64), p.data.view(np.uint64)))):
                p.data, p.inds = t.data[a:b], t.inds[a:b]
                if t._centroid is not None:
                    p._centroid = t._centroid[a:b]
                else:
                    self._own_centroid(p)
            else:  # not one run of the track (interleaved frames): own copy
                p.data, p.inds = p.data.copy(), p.inds.copy()
                self._own_centroid(p)

    def _release_inputs(self, members):
        """Let go of the tracklets' input arrays once the tracks hold their rows.

        Every tracklet (and residual) that went into a track is a view of that track's
        rows by now (see :meth:`_bind_track`); every other one that is a view of a larger
        buffer gets a copy of its own rows.  The keypoint buffers that the tracklets were
        views of (:meth:`from_arrays`'s ``data``, the constructor's concatenation) are then
        referenced by nothing here and freed, so after :meth:`stitch` the keypoints are
        held once, by ``tracks``.  ``tracklets``, ``residuals``, ``paths`` and the graph keep
        the same objects and values; a tracklet now shares memory with its track (as a
        one-piece track always did), so editing one in place edits the other.
        """
        done = {id(p) for pieces in members for p in pieces} | {id(t) for t in self.tracks}
        for p in (*self.tracklets, *self.residuals):
            if id(p) not in done:
                done.add(id(p))
                self._own(p)

    # -- plots (matplotlib, imported lazily) -------------------------------------------
    def _axes(self, n_rows=1):
        from mapose._optional import require

        plt = require("matplotlib.pyplot", "plotting tracklets")
        fig, axes = plt.subplots(n_rows, 1, sharex=True, squeeze=False)
        return plt, fig, axes[:, 0]

    def plot_tracklets(self, colormap="Paired"):
        """Centroid x and y of every tracklet (and residual, dashed) against frame."""
        plt, fig, (ax_x, ax_y) = self._axes(2)
        colors = plt.get_cmap(colormap)(np.linspace(0, 1, max(len(self.tracklets), 1)))
        for t, c in zip(self.tracklets, colors):
            ax_x.plot(t.inds, t.centroid[:, 0], c=c, lw=2)
            ax_y.plot(t.inds, t.centroid[:, 1], c=c, lw=2)
        for t in self.residuals:
            ax_x.plot(t.inds, t.centroid[:, 0], c="k", ls="--")
            ax_y.plot(t.inds, t.centroid[:, 1], c="k", ls="--")
        ax_x.set_ylabel("x")
        ax_y.set_ylabel("y")
        ax_y.set_xlabel("frame")
        return fig

    def plot_paths(self, colormap="Set2"):
        """Centroid x of the tracklets, one colour per stitched path."""
        if self.paths is None:
            raise ValueError("No paths yet: call stitch() first.")
        plt, fig, (ax,) = self._axes(1)
        colors = plt.get_cmap(colormap)(np.linspace(0, 1, max(len(self.paths), 1)))
        for path, c in zip(self.paths, colors):
            for t in path:
                ax.plot(t.inds, t.centroid[:, 0], c=c, lw=2)
        ax.set_xlabel("frame")
        ax.set_ylabel("x")
        return fig

    def plot_tracks(self, colormap="viridis"):
        """Centroid x and y of the final tracks."""
        if self.tracks is None:
            raise ValueError("No tracks yet: call stitch() first.")
        plt, fig, (ax_x, ax_y) = self._axes(2)
        colors = plt.get_cmap(colormap)(np.linspace(0, 1, max(len(self.tracks), 1)))
        for t, c in zip(self.tracks, colors):
            ax_x.plot(t.inds, t.centroid[:, 0], c=c, lw=2)
            ax_y.plot(t.inds, t.centroid[:, 1], c=c, lw=2)
        ax_y.set_xlabel("frame")
        return fig

    def draw_graph(self, with_weights=False):
        """Draw the flow graph (networkx + matplotlib)."""
        import networkx as nx

        if self.G is None:
            raise ValueError("No graph yet: call build_graph() first.")
        plt, fig, (ax,) = self._axes(1)
        pos = nx.spring_layout(self.G, seed=0)
        nx.draw_networkx(self.G, pos, ax=ax, node_size=200, font_size=6)
        if with_weights:
            nx.draw_networkx_edge_labels(self.G, pos, edge_labels=self.weights, ax=ax, font_size=5)
        return fig

    # -- output -------------------------------------------------------------------------
    def concatenate_data(self):
        """Tracks laid out on frames ``[first, last]``: shape (n_frames, n_tracks * n_bodyparts * 3)."""
        data, first = self._track_table()
        self._first_frame_out = first
        return np.ascontiguousarray(data)

    def _track_table(self, origin=None):
        """:meth:`concatenate_data` from frame ``origin`` (default: the first track frame).

        Returns the table in Fortran order (each column contiguous, the layout of a
        DataFrame's block, so pandas takes it without a transposing copy) and its first frame.
        """
        if self.tracks is None:
            raise ValueError("No tracks yet: call build_graph() and stitch() first.")
        tracks = list(self.tracks)
        ids = [t.identity for t in tracks]
        if tracks and any(i != -1 for i in ids):
            order = sorted(range(len(tracks)), key=lambda k: (np.isnan(ids[k]), ids[k] if not np.isnan(ids[k]) else 0))
            tracks = [tracks[k] for k in order]
        n_bpts = self.tracklets[0].data.shape[1]
        first = min(t.start for t in tracks) if tracks else self._first_frame
        last = max(t.end for t in tracks) if tracks else self._last_frame
        if origin is not None:
            first = min(first, origin)
        n_rows, width = last - first + 1, n_bpts * 3
        table_t = np.full((self.n_tracks * width, n_rows), np.nan)
        table = table_t.T
        cells = table.reshape(n_rows, self.n_tracks, width)  # a view: columns stay contiguous
        for k, t in enumerate(tracks[: self.n_tracks]):
            if t.data.shape[1] == n_bpts:  # column by column, compiled (no pose copies)
                fill_columns(table_t, t.data, t.inds - first, k * width)
            else:
                cells[t.inds - first, k] = t.flat_data
        return table, first

    def format_df(self, animal_names=None):
        """Tracks as DLC's DataFrame (columns scorer/individuals/bodyparts/coords)."""
        import pandas as pd

        # rows from frame 0, as DLC's reindex(range(last + 1)) leaves them
        data, _ = self._track_table(origin=0)
        n_bpts = self.tracklets[0].data.shape[1]
        if not animal_names or len(animal_names) < self.n_tracks:
            animal_names = [f"ind{i}" for i in range(1, self.n_tracks + 1)]
        animal_names = list(animal_names)[: self.n_tracks]
        coords = ["x", "y", "likelihood"]
        n_unique = self.single.data.shape[1] if self.single is not None else 0
        if self.header is not None:
            scorer = self.header.get_level_values("scorer").unique().to_list()
            bpts = self.header.get_level_values("bodyparts").unique().to_list()
        else:
            scorer = ["scorer"]
            bpts = [f"bpt{i}" for i in range(1, n_bpts + 1)] + [f"bpt_unique{i}" for i in range(1, n_unique + 1)]
        columns = _product_index(
            [scorer, animal_names, bpts[:n_bpts], coords],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
        df = pd.DataFrame(data, columns=columns, index=pd.RangeIndex(len(data)), copy=False)
        if self.single is not None and n_unique:
            columns = _product_index(
                [scorer, ["single"], bpts[-n_unique:], coords],
                names=["scorer", "individuals", "bodyparts", "coords"],
            )
            df2 = pd.DataFrame(self.single.flat_data, columns=columns, index=self.single.inds)
            df = df.join(df2, how="outer")
        return df

    def write_tracks(self, output_name="", suffix="", animal_names=None, save_as_csv=False):
        """Write the tracks to ``output_name`` (default: the pickle name with ``.h5``)."""
        df = self.format_df(animal_names)
        if not output_name:
            if not self.filename:
                raise ValueError(
                    "output_name is required: this stitcher was not built from a pickle file, "
                    "so there is no default name. Pass output_name='tracks.h5'."
                )
            output_name = self.filename.replace(".pickle", f"_{suffix}.h5" if suffix else ".h5")
        from mapose.io.tracks_h5 import write_tracks_csv, write_tracks_h5

        output_name = os.fspath(output_name)
        write_tracks_h5(output_name, df, key="tracks", format="table")
        if save_as_csv:
            write_tracks_csv(output_name.replace(".h5", ".csv"), df)
        return Path(output_name)

    def mine(self, n_samples, random_state=None):
        """Mine ReID triplets (DLC's ``mine``); see :func:`mapose.reid.triplets.mine`."""
        from mapose.reid.triplets import mine

        return mine(self, n_samples, random_state=random_state)
