"""NumPy reference for :func:`mapose.kernels.paf.compute_paf_costs` (tests only).

Written as DLC computes it: vectorised over all pairs of a batch, ``np.linspace`` with an
int32 dtype and ``np.trapezoid`` for the TensorFlow variant; float32 sample positions
``p + t * v`` for the PyTorch variant.
"""
from __future__ import annotations

import numpy as np

from mapose.kernels.paf import _check, peaks_from_array

__all__ = ["compute_paf_costs"]


def compute_paf_costs(pafs, peaks, graph, paf_inds=None, *, layout="nchw", variant="pytorch", n_points=10, n_decimals=3):
    pafs = _check(pafs, layout)
    n_images, _, h, w = pafs.shape
    graph = [tuple(int(v) for v in e) for e in graph]
    paf_inds = list(range(len(graph))) if paf_inds is None else [int(k) for k in paf_inds]
    if isinstance(peaks, np.ndarray) and peaks.ndim == 2 and peaks.shape[1] == 4:
        peaks = peaks_from_array(peaks, n_images, 1 + max(max(e) for e in graph))
    peaks = [
        [np.column_stack([np.clip(np.asarray(a).reshape(-1, 2)[:, 0], 0, h - 1), np.clip(np.asarray(a).reshape(-1, 2)[:, 1], 0, w - 1)]) for a in img]
        for img in peaks
    ]
    src, dst, img, edge, slots = [], [], [], [], []
    for i in range(n_images):
        for k in paf_inds:
            s, t = graph[k]
            ps, pt = peaks[i][s], peaks[i][t]
            slots.append((i, k, len(ps), len(pt)))
            for a in ps:
                for b in pt:
                    src.append(a)
                    dst.append(b)
                    img.append(i)
                    edge.append(k)
    out = [dict() for _ in range(n_images)]
    if src:
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        img = np.asarray(img)
        edge = np.asarray(edge)
        if variant == "tf":
            vecs = dst - src
            lengths = np.linalg.norm(vecs, axis=1).astype(np.float32)
            lengths += np.spacing(1, dtype=np.float32)
            xy = np.linspace(src, dst, n_points, axis=1, dtype=np.int32)
            yx = np.stack(
                [pafs[img[:, None], 2 * edge[:, None], xy[..., 0], xy[..., 1]], pafs[img[:, None], 2 * edge[:, None] + 1, xy[..., 0], xy[..., 1]]],
                axis=-1,
            ).astype(np.float32)
            integ = np.trapezoid(yx, xy[..., ::-1], axis=1)
            aff = np.linalg.norm(integ, axis=1) / lengths
            aff = np.round(aff, n_decimals).astype(np.float32)
            lengths = np.round(lengths, n_decimals)
        else:
            vecs = (dst - src).astype(np.float32)
            lengths = np.sqrt((vecs**2).sum(axis=1, dtype=np.float32)).astype(np.float32) + np.finfo(np.float32).eps
            t = np.arange(n_points, dtype=np.float32) * np.float32(1.0 / (n_points - 1))
            pts = (src[:, None, :].astype(np.float32) + t[None, :, None] * vecs[:, None, :]).astype(np.int32)
            pts[..., 0] = np.clip(pts[..., 0], 0, h - 1)
            pts[..., 1] = np.clip(pts[..., 1], 0, w - 1)
            x = pafs[img[:, None], 2 * edge[:, None], pts[..., 0], pts[..., 1]].astype(np.float32)
            y = pafs[img[:, None], 2 * edge[:, None] + 1, pts[..., 0], pts[..., 1]].astype(np.float32)
            ix = (np.diff(pts[..., 1], axis=1).astype(np.float32) * (x[:, 1:] + x[:, :-1])).sum(axis=1, dtype=np.float32) / np.float32(2)
            iy = (np.diff(pts[..., 0], axis=1).astype(np.float32) * (y[:, 1:] + y[:, :-1])).sum(axis=1, dtype=np.float32) / np.float32(2)
            aff = np.sqrt(ix * ix + iy * iy) / lengths
            scale = np.float32(10**n_decimals)
            aff = (np.rint(aff * scale) / scale).astype(np.float32)
            lengths = (np.rint(lengths * scale) / scale).astype(np.float32)
    pos = 0
    for i, k, ns, nt in slots:
        n = ns * nt
        if n == 0:
            if variant == "tf":
                out[i][k] = {"m1": np.zeros((ns, nt), np.float32), "distance": np.zeros((ns, nt), np.float32)}
            continue
        out[i][k] = {"m1": aff[pos : pos + n].reshape(ns, nt), "distance": lengths[pos : pos + n].astype(np.float32).reshape(ns, nt)}
        pos += n
    return out
