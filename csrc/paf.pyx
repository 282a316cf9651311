# cython: language_level=3
"""PAF line-integral scorer: affinity and length of candidate limbs (DLC's edge costs).

For a pair of peaks at integer heatmap positions p (source) and q (target), sample the
segment at ``n_points`` positions, truncate them to integers (toward zero; positions are
non-negative), clamp them to the map, read the PAF's x and y components there, integrate
each component with the trapezoid rule against the truncated column (x) / row (y)
coordinates, and return ``|integral| / (|q - p| + eps)``, rounded.

Two arithmetic variants, both DeepLabCut's:
* ``pytorch`` (DLC 3 PartAffinityFieldPredictor): float32 throughout, sample positions
  ``p + t * (q - p)`` with ``t = float32(i) * float32(1 / (n - 1))``;
* ``tf`` (DLC 2 ``predict_multianimal``, the classic ``_full.pickle`` costs): NumPy's
  ``linspace(p, q, n, dtype=int32)`` positions and float64 integrals.  NumPy computes
  ``start + i * step`` unless some pair in the batch has a zero step, in which case it
  computes ``start + (i / div) * delta`` for all: ``any_zero_step`` selects that branch.
"""
from libc.math cimport sqrt, sqrtf, nearbyint, nearbyintf, floor
from libc.stdint cimport int64_t

import numpy as np
cimport numpy as cnp

from _types cimport floating

cnp.import_array()

cdef extern from "float.h":
    float FLT_EPSILON


def edge_costs(const floating[:, :, :, :] paf, const int64_t[:, ::1] pairs,
               float[::1] m1_out, float[::1] dist_out, int n_points, int n_decimals,
               bint tf_variant, bint any_zero_step):
    """Score pairs; ``paf`` is (B, C, H, W) (any strides), ``pairs`` rows are
    ``(image, x_channel, y_channel, row_s, col_s, row_t, col_t)``."""
    cdef Py_ssize_t n = pairs.shape[0], p, m
    cdef long h = paf.shape[2], w = paf.shape[3]
    cdef long b, cx, cy, r0, c0, r1, c1, ri, ci, pr, pc
    cdef float vr, vc, lenf, tf32, step32 = 1.0 / (n_points - 1) if n_points > 1 else 0.0
    cdef float ix32, iy32, xv, yv, px, py, aff32, scale32 = 10.0 ** n_decimals
    cdef double dr, dc, ix, iy, lend, fi, scale = 10.0 ** n_decimals
    with nogil:
        for p in range(n):
            b = pairs[p, 0]
            cx = pairs[p, 1]
            cy = pairs[p, 2]
            r0 = pairs[p, 3]
            c0 = pairs[p, 4]
            r1 = pairs[p, 5]
            c1 = pairs[p, 6]
            if tf_variant:
                dr = r1 - r0
                dc = c1 - c0
                lend = <float>sqrt(dr * dr + dc * dc)
                lenf = <float>lend + FLT_EPSILON
                ix = 0.0
                iy = 0.0
                pr = r0
                pc = c0
                px = <float>paf[b, cx, r0, c0]
                py = <float>paf[b, cy, r0, c0]
                for m in range(1, n_points):
                    if m == n_points - 1:
                        ri = r1
                        ci = c1
                    elif any_zero_step:
                        fi = <double>m / (n_points - 1)
                        ri = <long>floor(fi * dr + r0)
                        ci = <long>floor(fi * dc + c0)
                    else:
                        ri = <long>floor(m * (dr / (n_points - 1)) + r0)
                        ci = <long>floor(m * (dc / (n_points - 1)) + c0)
                    ri = 0 if ri < 0 else (h - 1 if ri > h - 1 else ri)
                    ci = 0 if ci < 0 else (w - 1 if ci > w - 1 else ci)
                    xv = <float>paf[b, cx, ri, ci]
                    yv = <float>paf[b, cy, ri, ci]
                    # NumPy: float32 sums, int32 * float32 -> float64 products
                    ix += (ci - pc) * <double>(<float>(xv + px)) / 2.0
                    iy += (ri - pr) * <double>(<float>(yv + py)) / 2.0
                    pr = ri
                    pc = ci
                    px = xv
                    py = yv
                m1_out[p] = <float>(nearbyint(sqrt(ix * ix + iy * iy) / lenf * scale) / scale)
                dist_out[p] = nearbyintf(lenf * scale32) / scale32
            else:
                vr = <float>(r1 - r0)
                vc = <float>(c1 - c0)
                lenf = sqrtf(vr * vr + vc * vc) + FLT_EPSILON
                ix32 = 0.0
                iy32 = 0.0
                for m in range(n_points):
                    tf32 = <float>m * step32
                    ri = <long>(<float>r0 + tf32 * vr)
                    ci = <long>(<float>c0 + tf32 * vc)
                    ri = 0 if ri < 0 else (h - 1 if ri > h - 1 else ri)
                    ci = 0 if ci < 0 else (w - 1 if ci > w - 1 else ci)
                    xv = <float>paf[b, cx, ri, ci]
                    yv = <float>paf[b, cy, ri, ci]
                    if m:
                        ix32 = ix32 + <float>(ci - pc) * (xv + px)
                        iy32 = iy32 + <float>(ri - pr) * (yv + py)
                    pr = ri
                    pc = ci
                    px = xv
                    py = yv
                ix32 = ix32 / 2
                iy32 = iy32 / 2
                aff32 = sqrtf(ix32 * ix32 + iy32 * iy32) / lenf
                m1_out[p] = nearbyintf(aff32 * scale32) / scale32
                dist_out[p] = nearbyintf(lenf * scale32) / scale32
