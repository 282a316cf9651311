"""Slow, obviously-correct NumPy/SciPy references for :mod:`mapose.kernels.peaks`.

Same signatures and results; used by the tests only.  The smoothing is the literal 2-D
correlation with ``outer(g, g)`` and the NMS is SciPy's maximum filter.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mapose.kernels.peaks import Peaks, _as_maps, _check_graph, torch_linspace


def _gauss(radius, sigma):
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-d * d / (2.0 * sigma * sigma))
    # DLC's weights are float32 (and so are the kernel's); the sums are exact-ish in float64
    return (w / w.sum()).astype(np.float32).astype(np.float64)


def find_peaks(heatmap, locref=None, *, stride, nms_radius=5, sigma=1.0, threshold=0.01,
               locref_std=7.2801, apply_sigmoid=True, center="floor") -> Peaks:
    hm = _as_maps("heatmap", heatmap).astype(np.float64)
    B, K, h, w = hm.shape
    stride = float(stride)
    off_c = math.floor(stride / 2) if center == "floor" else stride / 2
    g = _gauss(nms_radius, sigma)
    kernel = np.outer(g, g)
    offsets = [0]
    rows, cols, xy, conf = [], [], [], []
    for b in range(B):
        for k in range(K):
            s = 1.0 / (1.0 + np.exp(-hm[b, k])) if apply_sigmoid else hm[b, k]
            sm = ndimage.correlate(s, kernel, mode="constant", cval=0.0).astype(np.float32)
            pooled = ndimage.maximum_filter(sm, size=nms_radius, mode="constant", cval=-np.inf)
            rr, cc = np.nonzero((sm == pooled) & (sm >= threshold))
            for r, c in zip(rr, cc):
                lx = ly = 0.0
                if locref is not None:
                    lx = float(locref[b, 2 * k, r, c]) * locref_std
                    ly = float(locref[b, 2 * k + 1, r, c]) * locref_std
                rows.append(r)
                cols.append(c)
                xy.append((stride * c + off_c + lx, stride * r + off_c + ly))
                conf.append(sm[r, c])
            offsets.append(len(rows))
    return Peaks(np.array(offsets, np.int64), np.array(rows, np.int32), np.array(cols, np.int32),
                 np.array(xy, np.float32).reshape(-1, 2), np.array(conf, np.float32), B, K)


def paf_costs(paf, peaks: Peaks, graph, edges_to_keep=None, n_points=10) -> list[dict]:
    p = _as_maps("paf", paf)
    g, edges = _check_graph(graph, edges_to_keep, peaks.n_bodyparts)
    _, _, h, w = p.shape
    t = torch_linspace(n_points)
    out = []
    for b in range(peaks.n_images):
        costs = {}
        for e in edges.tolist():
            a, c = g[e]
            sa, sb = peaks.span(b, a), peaks.span(b, c)
            src = np.stack([peaks.rows[sa], peaks.cols[sa]], 1).astype(np.float32)
            dst = np.stack([peaks.rows[sb], peaks.cols[sb]], 1).astype(np.float32)
            if not len(src) or not len(dst):
                continue
            m1 = np.zeros((len(src), len(dst)), np.float32)
            dist = np.zeros_like(m1)
            for i, ps in enumerate(src):
                for j, pd in enumerate(dst):
                    v = pd - ps
                    length = np.float32(np.sqrt(np.float32(v @ v))) + np.float32(np.finfo(np.float32).eps)
                    pts = np.trunc(ps[None] + t[:, None] * v[None]).astype(np.int64)
                    pts[:, 0] = np.clip(pts[:, 0], 0, h - 1)
                    pts[:, 1] = np.clip(pts[:, 1], 0, w - 1)
                    X = p[b, 2 * e][pts[:, 0], pts[:, 1]].astype(np.float64)
                    Y = p[b, 2 * e + 1][pts[:, 0], pts[:, 1]].astype(np.float64)
                    ix = np.trapezoid(X, pts[:, 1].astype(np.float64))
                    iy = np.trapezoid(Y, pts[:, 0].astype(np.float64))
                    m1[i, j] = np.round(np.hypot(ix, iy) / length, 3)
                    dist[i, j] = np.round(length, 3)
            costs[e] = {"m1": m1, "distance": dist}
        out.append(costs)
    return out


def heatmap_argmax(heatmap, locref=None, *, stride, locref_std=7.2801, apply_sigmoid=False,
                   clip_scores=True) -> np.ndarray:
    hm = _as_maps("heatmap", heatmap)
    B, K, h, w = hm.shape
    out = np.zeros((B, K, 3), np.float32)
    for b in range(B):
        for k in range(K):
            flat = int(np.argmax(hm[b, k]))
            r, c = divmod(flat, w)
            score = float(hm[b, k, r, c])
            if apply_sigmoid:
                score = 1 / (1 + math.exp(-score))
            if clip_scores:
                score = min(max(score, 0.0), 1.0)
            lx = ly = 0.0
            if locref is not None:
                lx = float(locref[b, 2 * k, r, c]) * locref_std
                ly = float(locref[b, 2 * k + 1, r, c]) * locref_std
            out[b, k] = (stride * c + stride / 2 + lx, stride * r + stride / 2 + ly, score)
    return out
