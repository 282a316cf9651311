"""Assembly gateway: DLC per-frame detections -> animals, in compiled code.

:class:`AssemblyParams` holds the tunables of DeepLabCut's ``Assembler``;
:func:`pack_frames` flattens a list of DLC frame dicts (``coordinates``, ``confidence``,
``costs``, optional ``identity``) into C++ buffers; :func:`run_packed` assembles them
without the GIL, on ``n_threads`` threads (results are identical to a serial run,
because frames are independent unless ``window_size >= 1``, which then runs in order);
:func:`pack_and_run` does both on one thread a few frames at a time (each chunk is
assembled while its costs are still in cache; the one-thread path of
:class:`mapose.Assembler`); :func:`assemble_frames` packs, runs and builds
:class:`~mapose.assembly.model.Assembly` objects (the slow, exact-API path;
:class:`mapose.Assembler` builds them lazily).

The NumPy/Python oracle with the same signature is :mod:`mapose.kernels.assembly_ref`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from mapose._cy import load
from mapose.assembly.model import Assembly, Joint, Link

_asm = load("assembly")

__all__ = [
    "AssemblyParams",
    "LinkTree",
    "pack_frames",
    "run_packed",
    "pack_and_run",
    "assemble_frames",
    "materialize",
    "default_threads",
    "calibration_arrays",
]

LinkTree = _asm.LinkTree


def default_threads() -> int:
    """All usable cores (respects CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class AssemblyParams:
    """Tunables of the assembler (DLC's ``Assembler`` constructor arguments).

    ``graph`` is the full list of ``(source, target)`` bodypart pairs; ``paf_inds``
    selects and orders the edges used (keys of each frame's ``costs``).  ``n_keypoints``
    counts all bodyparts, the unique ones (labels ``>= n_multibodyparts``) included.
    """

    max_n_individuals: int
    n_multibodyparts: int
    n_keypoints: int
    graph: tuple = ()
    paf_inds: tuple = ()
    greedy: bool = False
    pcutoff: float = 0.1
    min_affinity: float = 0.05
    min_n_links: int = 2
    max_overlap: float = 0.8
    identity_only: bool = False
    nan_policy: str = "little"
    force_fusion: bool = False
    add_discarded: bool = False
    window_size: int = 0
    method: str = "m1"
    gamma: float = 0.01
    edge_s: np.ndarray = field(init=False, repr=False, compare=False)
    edge_t: np.ndarray = field(init=False, repr=False, compare=False)
    dup_edges: bool = field(init=False, repr=False, compare=False)
    _min_aff: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("max_n_individuals", "n_multibodyparts", "n_keypoints", "min_n_links", "window_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int; got {value!r} ({type(value).__name__}).")
        if self.max_n_individuals < 1:
            raise ValueError(f"max_n_individuals must be >= 1; got {self.max_n_individuals}.")
        if not 1 <= self.n_multibodyparts <= self.n_keypoints:
            raise ValueError(
                f"n_multibodyparts must be between 1 and the number of bodyparts ({self.n_keypoints}); "
                f"got {self.n_multibodyparts}."
            )
        if self.window_size < 0:
            raise ValueError(f"window_size must be >= 0; got {self.window_size}.")
        for name in ("pcutoff", "min_affinity", "max_overlap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number; got {value!r}.")
        # the graph and paf_inds as int arrays (vectorised: the constructor is part of
        # every assemble() a user times); anything else is converted value by value
        edges = _int_array(self.graph)
        if edges is None or edges.ndim != 2 or (edges.size and edges.shape[1] != 2):
            graph = tuple(tuple(int(v) for v in edge) for edge in self.graph)
            for edge in graph:
                if len(edge) != 2:
                    raise ValueError(f"graph edges must be (source, target) pairs; got {edge!r}.")
            edges = np.asarray(graph, dtype=np.int64).reshape(-1, 2)
        else:
            edges = edges.reshape(-1, 2)
            graph = tuple(map(tuple, edges.tolist()))
        object.__setattr__(self, "graph", graph)
        inds = _int_array(self.paf_inds)
        if inds is None or inds.ndim != 1:
            inds = np.asarray([int(i) for i in self.paf_inds], dtype=np.int64)
        bad = np.flatnonzero((inds < 0) | (inds >= len(graph)))
        if bad.size:
            raise ValueError(
                f"paf_inds value {int(inds[bad[0]])} does not index the graph ({len(graph)} edges); paf_inds "
                "must index the full graph (DLC's PAFgraph)."
            )
        object.__setattr__(self, "paf_inds", tuple(inds.tolist()))
        a, b = edges[inds, 0], edges[inds, 1]
        # Only edges between two distinct multi-animal bodyparts can be linked (DLC
        # raises an IndexError on a link to a unique bodypart).
        ok = (a != b) & (a >= 0) & (a < self.n_multibodyparts) & (b >= 0) & (b < self.n_multibodyparts)
        object.__setattr__(self, "edge_s", np.where(ok, a, -1).astype(np.int32))
        object.__setattr__(self, "edge_t", np.where(ok, b, -1).astype(np.int32))
        # two slots joining the same two bodyparts can link the same two joints
        pair = np.minimum(a, b)[ok] * self.n_multibodyparts + np.maximum(a, b)[ok]
        object.__setattr__(self, "dup_edges", bool(np.unique(pair).size != pair.size))
        object.__setattr__(
            self, "_min_aff", tuple(float(np.asarray(self.min_affinity, dtype=dt)) for dt in (np.float64, np.float32, np.float16))
        )

    def min_affinity_by_dtype(self) -> list:
        """``min_affinity`` as float64/float32/float16 (comparisons happen in the costs' dtype)."""
        return list(self._min_aff)


def _int_array(values):
    """``values`` as an int64 array when it converts exactly (an int array, a list of
    ints or of int pairs), else None."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):  # ragged
        return None
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu" or arr.dtype == np.uint64:
        return None
    return arr.astype(np.int64, copy=False)


def pack_frames(frames, params: AssemblyParams, keys=None):
    """Flatten DLC frame dicts into the kernel's buffers (raises ValueError on bad frames)."""
    frames = list(frames)
    keys = list(range(len(frames))) if keys is None else list(keys)
    return _asm.pack(
        frames, keys, params.n_keypoints, list(params.paf_inds), params.edge_s, params.edge_t, params.method
    )


def calibration_arrays(kde, n_multibodyparts: int) -> tuple:
    """The KDE moments the calibrated kernel reads: ``(mean (d,), variances (d,), inv_cov (d, d))``.

    ``kde`` is what :meth:`mapose.Assembler.calibrate` stores (a ``scipy.stats.gaussian_kde``
    of the condensed squared distances, with ``mean`` set); d = n(n - 1) / 2 pairs.
    """
    try:
        mean = np.ascontiguousarray(kde.mean, dtype=np.float64).ravel()
        cov = np.asarray(kde.covariance, dtype=np.float64)
        inv_cov = np.ascontiguousarray(kde.inv_cov, dtype=np.float64)
    except AttributeError as exc:
        raise TypeError(
            f"kde must be a fitted scipy.stats.gaussian_kde with a `mean` attribute (Assembler.calibrate); "
            f"got {type(kde).__name__} ({exc})."
        ) from None
    d = n_multibodyparts * (n_multibodyparts - 1) // 2
    if mean.shape != (d,) or cov.shape != (d, d) or inv_cov.shape != (d, d):
        raise ValueError(
            f"the calibration has {mean.size} pairwise distances but n_multibodyparts={n_multibodyparts} "
            f"needs {d}; calibrate with the same project's labelled data."
        )
    return mean, np.ascontiguousarray(np.diag(cov)), inv_cov


def run_packed(packed, params: AssemblyParams, frame_index=None, n_threads: int | None = 1, trees=None,
               _window_brute=False, kde=None, calibration=None):
    """Assemble packed frames.

    Parameters
    ----------
    packed : Packed
        From :func:`pack_frames`.
    frame_index : array_like of int, shape (n_frames,), optional
        Positional index of each frame (DLC's ``ind_frame``; used by temporal coherence).
    n_threads : int or None
        Threads; None: all cores.  Ignored (one thread) when ``window_size >= 1``.
    trees : dict, optional
        frame index -> :class:`LinkTree` (or (n_links, 4) link vectors) of earlier frames
        (DLC's ``Assembler._trees``); updated in place with the trees of the last
        ``window_size`` frame indices of this call.
    _window_brute : bool
        Test hook: temporal weights by scanning every stored link vector (the oracle the
        trees' exact nearest-neighbour search is checked against).
    kde : scipy.stats.gaussian_kde, optional
        Calibration (:meth:`mapose.Assembler.calibrate`): DLC's calibrated assembly.
    calibration : tuple, optional
        ``calibration_arrays(kde, ...)`` computed once by the caller (instead of ``kde``).
    """
    n = packed.n_frames
    fi = np.arange(n, dtype=np.int64) if frame_index is None else np.ascontiguousarray(frame_index, dtype=np.int64)
    if n_threads is None:
        n_threads = default_threads()
    if calibration is None and kde is not None:
        calibration = calibration_arrays(kde, params.n_multibodyparts)
    return _asm.run(
        packed,
        n_keypoints=params.n_keypoints,
        window_size=params.window_size,
        frame_index=fi,
        n_threads=max(1, int(n_threads)),
        trees={} if trees is None else trees,
        _window_brute=bool(_window_brute),
        **_kernel_settings(params, calibration),
    )


def _kernel_settings(params: AssemblyParams, calibration) -> dict:
    """The keyword arguments ``run`` and ``pack_run`` share: assembly settings and calibration."""
    mean, var, inv_cov = (None, None, None) if calibration is None else calibration
    return dict(
        n_multi=params.n_multibodyparts,
        max_n=params.max_n_individuals,
        min_n_links=params.min_n_links,
        greedy=bool(params.greedy),
        identity_only=bool(params.identity_only),
        force_fusion=bool(params.force_fusion),
        add_discarded=bool(params.add_discarded),
        pcutoff=float(params.pcutoff),
        max_overlap=float(params.max_overlap),
        gamma=float(params.gamma),
        min_aff=params._min_aff,
        dup_edges=params.dup_edges,
        edge_s=params.edge_s,
        edge_t=params.edge_t,
        calib_mean=mean,
        calib_var=var,
        calib_inv_cov=inv_cov,
        calib_little=params.nan_policy == "little",
    )


def pack_and_run(frames, params: AssemblyParams, keys=None, chunk: int | None = None, kde=None,
                 calibration=None):
    """:func:`pack_frames` then :func:`run_packed` on one thread, a few frames at a time.

    Each chunk of frames is assembled right after it is packed, while its costs are
    still in cache, and its cost arrays are released then.  Only without temporal
    coherence (``window_size == 0``); results are identical to ``run_packed(pack_frames(...))``.

    Parameters
    ----------
    frames : sequence of dict
        DLC frame dicts.
    keys : sequence, optional
        Frame names, for error messages.
    chunk : int, optional
        Frames packed before they are assembled (default: about 256 cost matrices'
        worth, at least 4 frames: enough to keep them in cache, few GIL hand-overs).
    kde, calibration
        Calibrated assembly, as in :func:`run_packed`.

    Returns
    -------
    (Packed, Result)
        The packed joints (costs already released) and the per-frame results.
    """
    if params.window_size >= 1:
        raise ValueError(
            f"pack_and_run assembles frames independently; window_size={params.window_size} needs "
            "run_packed (frames in order, with the link trees of earlier frames)."
        )
    frames = list(frames)
    keys = list(range(len(frames))) if keys is None else list(keys)
    if chunk is None:
        chunk = max(4, 256 // max(1, len(params.paf_inds)))
    if calibration is None and kde is not None:
        calibration = calibration_arrays(kde, params.n_multibodyparts)
    return _asm.pack_run(
        frames,
        keys,
        params.n_keypoints,
        list(params.paf_inds),
        params.method,
        chunk=max(1, int(chunk)),
        **_kernel_settings(params, calibration),
    )


def _joint(pos, confidence, label, idx, group):
    # Joint is a frozen dataclass: its __init__ goes through object.__setattr__ per
    # field, which dominated the cost of building a frame's objects
    j = object.__new__(Joint)
    j.__dict__.update(pos=pos, confidence=confidence, label=label, idx=idx, group=group)
    return j


def _joints(packed, f):
    x, y, c, lab, grp = (a.tolist() for a in packed.joints(f))
    return [_joint((x[k], y[k]), c[k], lab[k], k, grp[k]) for k in range(len(x))]


def materialize(result, packed, f, joints=None):
    """DLC objects for frame ``f``: (list of Assembly or None, unique (n_unique, 3) or None)."""
    unique = result.unique(f)
    if not result.status_of(f):
        return None, unique
    data, affs, links, idxs = result.frame(f)
    joints = _joints(packed, f) if joints is None else joints
    out = []
    for q in range(len(affs)):
        ass = Assembly(result.n_multi)
        ass.data[:] = data[q]
        ass._affinity = float(affs[q])
        ass._links = [Link(joints[a], joints[b], w) for a, b, w in links[q]]
        for j in idxs[q]:
            ass._idx.add(j)
            ass._visible.add(joints[j].label)
        out.append(ass)
    return out, unique


def assemble_frames(frames, params: AssemblyParams, first_index: int = 0, kde=None, trees=None, n_threads=1):
    """Assemble frames and return DLC objects (same signature as the reference).

    Returns
    -------
    list of (list of Assembly or None, ndarray of shape (n_unique, 3) or None)
    """
    if n_threads == 1 and params.window_size < 1:
        packed, result = pack_and_run(frames, params, kde=kde)
    else:
        packed = pack_frames(frames, params)
        fi = np.arange(first_index, first_index + packed.n_frames, dtype=np.int64)
        result = run_packed(packed, params, fi, n_threads, trees, kde=kde)
    return [materialize(result, packed, f) for f in range(packed.n_frames)]
