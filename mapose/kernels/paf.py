"""PAF edge-cost gateway: part-affinity-field line integrals for candidate limbs.

:func:`compute_paf_costs` turns PAF maps and integer peak positions into DLC's per-frame
``costs`` dicts (``{edge: {"m1": affinity, "distance": length}}``) -- the input of
:class:`mapose.Assembler`.  ``variant="pytorch"`` reproduces DeepLabCut 3's
``PartAffinityFieldPredictor`` (float32); ``variant="tf"`` the TensorFlow-era
``predict_multianimal`` that wrote the classic ``_full.pickle`` costs.  The slow NumPy
oracle with the same signature is :mod:`mapose.kernels.paf_ref`.
"""
from __future__ import annotations

import numpy as np

from mapose._cy import load

_paf = load("paf")

__all__ = ["compute_paf_costs", "peaks_from_array"]


def peaks_from_array(peak_inds, n_images: int, n_bodyparts: int) -> list:
    """Split ``(N, 4)`` rows ``(image, bodypart, row, col)`` into per-image, per-bodypart arrays."""
    peak_inds = np.asarray(peak_inds, dtype=np.int64).reshape(-1, 4)
    out = []
    for i in range(n_images):
        rows = peak_inds[peak_inds[:, 0] == i]
        out.append([rows[rows[:, 1] == k, 2:] for k in range(n_bodyparts)])
    return out


def _check(pafs, layout):
    pafs = np.asarray(pafs)
    if pafs.dtype not in (np.float32, np.float64):
        if not np.issubdtype(pafs.dtype, np.number):
            raise TypeError(f"pafs must hold real numbers; got dtype {pafs.dtype}.")
        pafs = pafs.astype(np.float32)
    if pafs.ndim == 3:
        pafs = pafs[None]
    if pafs.ndim != 4:
        raise ValueError(
            f"pafs must have shape (batch, 2 * n_edges, height, width) (layout='nchw') or "
            f"(batch, height, width, 2 * n_edges) (layout='nhwc'); got {pafs.shape}."
        )
    if layout == "nhwc":
        pafs = pafs.transpose(0, 3, 1, 2)  # a view: the kernel reads any strides
    elif layout != "nchw":
        raise ValueError(f"layout must be 'nchw' (PyTorch) or 'nhwc' (TensorFlow); got {layout!r}.")
    return pafs


def compute_paf_costs(
    pafs,
    peaks,
    graph,
    paf_inds=None,
    *,
    layout: str = "nchw",
    variant: str = "pytorch",
    n_points: int = 10,
    n_decimals: int = 3,
):
    """Affinity and length of every candidate limb of every graph edge.

    Parameters
    ----------
    pafs : ndarray of shape (batch, 2 * n_edges, height, width) or (batch, height, width, 2 * n_edges)
        PAF maps (float32 stays float32); channel ``2k`` is the x- and ``2k + 1`` the
        y-component of graph edge ``k``.  A single image (3-D) is accepted.
    peaks : list or ndarray
        Per image, per bodypart, int arrays of shape (n_peaks, 2) holding ``(row, col)``
        on the PAF grid; or an (N, 4) array of ``(image, bodypart, row, col)`` rows
        (DLC's peak order).  Positions are clamped to the map.
    graph : sequence of (int, int)
        The full PAF graph (edge ``k`` joins bodyparts ``graph[k]``).
    paf_inds : sequence of int, optional
        Edges to score, in order (default: all).
    layout : {"nchw", "nhwc"}
    variant : {"pytorch", "tf"}
        DLC 3 (PyTorch, float32) or DLC 2 (TensorFlow/NumPy) arithmetic.  ``tf`` also
        emits empty ``(0, 0)`` entries for edges without peaks, as DLC 2 did.
    n_points : int, default 10
        Samples along each segment.
    n_decimals : int, default 3
        Rounding of affinities and lengths.

    Returns
    -------
    list of dict
        One ``{k: {"m1": float32 (n_s, n_t), "distance": float32 (n_s, n_t)}}`` per image,
        rows in the source bodypart's peak order, columns in the target's.
    """
    pafs = _check(pafs, layout)
    if variant not in ("pytorch", "tf"):
        raise ValueError(f"variant must be 'pytorch' (DLC 3) or 'tf' (DLC 2); got {variant!r}.")
    if int(n_points) < 2:
        raise ValueError(f"n_points must be >= 2; got {n_points}.")
    n_images, n_channels, h, w = pafs.shape
    graph = [tuple(int(v) for v in e) for e in graph]
    paf_inds = list(range(len(graph))) if paf_inds is None else [int(k) for k in paf_inds]
    for k in paf_inds:
        if not 0 <= k < len(graph):
            raise ValueError(f"paf_inds value {k} does not index the graph ({len(graph)} edges).")
        if 2 * k + 1 >= n_channels:
            raise ValueError(
                f"edge {k} needs PAF channels {2 * k} and {2 * k + 1} but pafs has {n_channels} channels."
            )
    n_bodyparts = 1 + max([max(e) for e in graph] + [-1])
    if isinstance(peaks, np.ndarray) and peaks.ndim == 2 and peaks.shape[1] == 4:
        peaks = peaks_from_array(peaks, n_images, n_bodyparts)
    if len(peaks) != n_images:
        raise ValueError(f"peaks must list {n_images} images (one per PAF map); got {len(peaks)}.")
    clamped = []
    for i, per_image in enumerate(peaks):
        cur = []
        for arr in per_image:
            a = np.asarray(arr, dtype=np.int64).reshape(-1, 2)
            cur.append(np.column_stack([np.clip(a[:, 0], 0, h - 1), np.clip(a[:, 1], 0, w - 1)]))
        clamped.append(cur)

    rows, slots = [], []
    for i, per_image in enumerate(clamped):
        for k in paf_inds:
            s, t = graph[k]
            ps = per_image[s] if s < len(per_image) else np.zeros((0, 2), np.int64)
            pt = per_image[t] if t < len(per_image) else np.zeros((0, 2), np.int64)
            slots.append((i, k, len(ps), len(pt)))
            if not len(ps) or not len(pt):
                continue
            a = np.repeat(ps, len(pt), axis=0)
            b = np.tile(pt, (len(ps), 1))
            block = np.empty((len(a), 7), dtype=np.int64)
            block[:, 0] = i
            block[:, 1] = 2 * k
            block[:, 2] = 2 * k + 1
            block[:, 3:5] = a
            block[:, 5:7] = b
            rows.append(block)
    pairs = np.ascontiguousarray(np.concatenate(rows)) if rows else np.zeros((0, 7), dtype=np.int64)
    m1 = np.empty(len(pairs), dtype=np.float32)
    dist = np.empty(len(pairs), dtype=np.float32)
    any_zero = bool(len(pairs)) and bool(np.any(pairs[:, 3:5] == pairs[:, 5:7]))
    _paf.edge_costs(pafs, pairs, m1, dist, int(n_points), int(n_decimals), variant == "tf", any_zero)

    out = [dict() for _ in range(n_images)]
    pos = 0
    for i, k, ns, nt in slots:
        n = ns * nt
        if n == 0:
            if variant == "tf":
                out[i][k] = {"m1": np.zeros((ns, nt), np.float32), "distance": np.zeros((ns, nt), np.float32)}
            continue
        out[i][k] = {"m1": m1[pos : pos + n].reshape(ns, nt), "distance": dist[pos : pos + n].reshape(ns, nt)}
        pos += n
    return out
