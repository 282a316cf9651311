"""Slow, literal reference of DLC 3.0.2's Hankel (dynamic) tracklet scores.

Written from the definitions in ``dlc-tracking-spec.md`` §5.1/§8 and DLC's docstrings
(Dicle et al., 2013; Li et al., 2012), one step per line, with SciPy's ``hankel`` and
explicit loops; used to produce the reference numbers in ``test_stitch_dynamic.py``.
"""
import math

import numpy as np
from scipy.linalg import hankel


def centroid(data):
    out = np.empty((len(data), 2))
    for f in range(len(data)):
        num = np.zeros(2)
        den = 0.0
        for b in range(data.shape[1]):
            w = data[f, b, 2] + 1e-10
            if not np.isnan(w):
                den += w
                for c in range(2):
                    if not np.isnan(data[f, b, c] * w):
                        num[c] += data[f, b, c] * w
        out[f] = num / den
    return out


def hankelet(xy):
    n = len(xy)
    ncols = math.ceil(n * 2 / 3)
    nrows = n - ncols + 1
    mat = np.empty((2 * nrows, ncols))
    mat[0::2] = hankel(xy[:nrows, 0], xy[-ncols:, 0])
    mat[1::2] = hankel(xy[:nrows, 1], xy[-ncols:, 1])
    return mat


def estimate_rank(data, tol):
    mat = hankelet(centroid(data))
    s = np.linalg.svd(mat, compute_uv=False)[:10]
    eigen = [v * v for v in s]
    drops = [abs(eigen[k + 1] / eigen[0] - eigen[k] / eigen[0]) for k in range(len(eigen) - 1)]
    for k, d in enumerate(drops):
        if not d > tol:
            return k
    return 0  # argmin of an all-True mask


def joint(data1, inds1, data2, inds2):
    order = np.argsort(np.concatenate([inds1, inds2]), kind="stable")
    return np.concatenate([data1, data2])[order]


def dynamic_similarity(data1, inds1, data2, inds2, tol=0.01):
    jr = estimate_rank(joint(data1, inds1, data2, inds2), tol)
    return (estimate_rank(data1, tol) + estimate_rank(data2, tol)) / jr - 1


def dynamic_dissimilarity(data1, data2):
    h1 = hankelet(centroid(data1))
    h2 = hankelet(centroid(data2))
    h1 = h1 / np.sqrt(np.sum(h1 * h1))
    h2 = h2 / np.sqrt(np.sum(h2 * h2))
    m = min(h1.shape[0], h1.shape[1], h2.shape[0], h2.shape[1])
    g = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            g[i, j] = np.dot(h1[i], h1[j]) + np.dot(h2[i], h2[j])
    return 2 - np.sqrt(np.sum(g * g))
