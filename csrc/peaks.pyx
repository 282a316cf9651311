# cython: language_level=3
"""Post-processing kernels of DLC's bottom-up predictors, on batches, without the GIL.

* ``find_peaks``: sigmoid -> Gaussian smoothing (zero padded, 'same') -> max-pool NMS with
  DLC's r x r window -> threshold -> location refinement.  Peaks come out in lexicographic
  (batch, bodypart, row, col) order, the candidate order every later step depends on.
* ``paf_costs``: DLC's 10-point PAF line integral between every pair of peaks of each
  graph edge (m1 affinity and length, both rounded to 3 decimals).
* ``heatmap_argmax``: the HeatmapPredictor (unique body parts): one arg-max per channel.

All maps stay float32.  The Gaussian smoothing accumulates in double and rounds once to
float32: DLC's conv2d rounds differently anyway, and a more exact sum keeps our values
within one float32 ulp of the true smoothed value (and of DLC's).
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport exp, expf, sqrtf, nearbyintf, floorf
from libc.stdint cimport int32_t, int64_t
from libcpp.vector cimport vector

cnp.import_array()


cdef inline float _sigmoid(float x) noexcept nogil:
    return 1.0 / (1.0 + expf(-x))


def gaussian_weights(int radius, double sigma):
    """1-D weights softmax(-d^2 / (2 sigma^2)), d = -radius..radius, float32."""
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-d * d / (2.0 * sigma * sigma))
    return (w / w.sum()).astype(np.float32)


cdef void _smooth(const float* src, double* tmp, float* dst, Py_ssize_t h, Py_ssize_t w,
                  const float* g, int r) noexcept nogil:
    """Separable 'same' correlation with zero padding (rows, then columns).

    The row pass stays in double: rounding it to float32 would round twice, and nearly
    equal neighbours (flat heatmaps) could then tie where the exact sum does not, which
    changes which pixels survive NMS.
    """
    cdef Py_ssize_t i, j, d, jj, ii
    cdef double acc
    for i in range(h):
        for j in range(w):
            acc = 0.0
            for d in range(-r, r + 1):
                jj = j + d
                if 0 <= jj < w:
                    acc += <double>g[d + r] * src[i * w + jj]
            tmp[i * w + j] = acc
    for i in range(h):
        for j in range(w):
            acc = 0.0
            for d in range(-r, r + 1):
                ii = i + d
                if 0 <= ii < h:
                    acc += <double>g[d + r] * tmp[ii * w + j]
            dst[i * w + j] = <float>acc


cdef void _rowmax(const float* src, float* dst, Py_ssize_t h, Py_ssize_t w,
                  int lo, int hi, bint along_rows) noexcept nogil:
    """Sliding max over [i-lo, i+hi] along one axis (padding acts as -inf)."""
    cdef Py_ssize_t i, j, k, a, b
    cdef float m
    if along_rows:
        for i in range(h):
            for j in range(w):
                a = j - lo
                b = j + hi
                if a < 0:
                    a = 0
                if b > w - 1:
                    b = w - 1
                m = src[i * w + a]
                for k in range(a + 1, b + 1):
                    if src[i * w + k] > m:
                        m = src[i * w + k]
                dst[i * w + j] = m
    else:
        for i in range(h):
            a = i - lo
            b = i + hi
            if a < 0:
                a = 0
            if b > h - 1:
                b = h - 1
            for j in range(w):
                m = src[a * w + j]
                for k in range(a + 1, b + 1):
                    if src[k * w + j] > m:
                        m = src[k * w + j]
                dst[i * w + j] = m


def find_peaks(const float[:, :, :, ::1] heatmap, const float[:, :, :, ::1] locref,
               bint has_locref, bint apply_sigmoid, int radius, const float[::1] weights,
               float threshold, float stride, float center_offset, float locref_std):
    """See :func:`mapose.kernels.peaks.find_peaks` (inputs validated there)."""
    cdef Py_ssize_t B = heatmap.shape[0], K = heatmap.shape[1]
    cdef Py_ssize_t h = heatmap.shape[2], w = heatmap.shape[3]
    cdef Py_ssize_t n = h * w, b, k, i, j, p
    # max_pool2d(kernel=r, padding=r//2): the window of pixel i is [i - r//2, i + r - 1 - r//2]
    # (for odd r, symmetric).  Even r would make DLC's pooled map one pixel larger and
    # crash; we keep the first h x w pooled values, i.e. this same window.
    cdef int lo = radius // 2
    cdef int hi = radius - 1 - lo
    cdef vector[float] buf_s = vector[float](max(n, 1))
    cdef vector[float] buf_t = vector[float](max(n, 1))
    cdef vector[double] buf_d = vector[double](max(n, 1))
    cdef vector[float] buf_m = vector[float](max(n, 1))
    cdef vector[float] buf_p = vector[float](max(n, 1))
    cdef vector[int32_t] out_r, out_c
    cdef vector[float] out_x, out_y, out_conf
    offsets = np.zeros(B * K + 1, dtype=np.int64)
    cdef int64_t[::1] off = offsets
    cdef float v, lx, ly
    cdef int r_ = radius
    cdef const float* src
    with nogil:
        for b in range(B):
            for k in range(K):
                src = &heatmap[b, k, 0, 0]
                if apply_sigmoid:
                    for p in range(n):
                        buf_s[p] = _sigmoid(src[p])
                else:
                    for p in range(n):
                        buf_s[p] = src[p]
                _smooth(&buf_s[0], &buf_d[0], &buf_m[0], h, w, &weights[0], r_)
                _rowmax(&buf_m[0], &buf_t[0], h, w, lo, hi, True)
                _rowmax(&buf_t[0], &buf_p[0], h, w, lo, hi, False)
                for i in range(h):
                    for j in range(w):
                        v = buf_m[i * w + j]
                        if v >= threshold and v == buf_p[i * w + j]:
                            out_r.push_back(<int32_t>i)
                            out_c.push_back(<int32_t>j)
                            if has_locref:
                                lx = locref[b, 2 * k, i, j] * locref_std
                                ly = locref[b, 2 * k + 1, i, j] * locref_std
                            else:
                                lx = 0
                                ly = 0
                            out_x.push_back((stride * j + center_offset) + lx)
                            out_y.push_back((stride * i + center_offset) + ly)
                            out_conf.push_back(v)
                off[b * K + k + 1] = <int64_t>out_r.size()
    cdef Py_ssize_t m = out_r.size()
    rows = np.empty(m, dtype=np.int32)
    cols = np.empty(m, dtype=np.int32)
    xy = np.empty((m, 2), dtype=np.float32)
    conf = np.empty(m, dtype=np.float32)
    cdef int32_t[::1] rr = rows
    cdef int32_t[::1] cc = cols
    cdef float[:, ::1] xyv = xy
    cdef float[::1] cf = conf
    with nogil:
        for p in range(m):
            rr[p] = out_r[p]
            cc[p] = out_c[p]
            xyv[p, 0] = out_x[p]
            xyv[p, 1] = out_y[p]
            cf[p] = out_conf[p]
    return offsets, rows, cols, xy, conf


cdef inline float _round3(float x) noexcept nogil:
    # torch.round(x, decimals=3) in float32: nearbyint(x * 1000) / 1000
    return nearbyintf(x * <float>1000.0) / <float>1000.0


def paf_costs(const float[:, :, :, ::1] paf, const int64_t[::1] offsets,
              const int32_t[::1] rows, const int32_t[::1] cols,
              const int64_t[:, ::1] graph, const int64_t[::1] edges, int n_points,
              const float[::1] lin):
    """See :func:`mapose.kernels.peaks.paf_costs` (inputs validated there).

    Returns ``index`` (n_entries, 5) int64 rows ``[image, edge, n_a, n_b, start]`` and the
    flat float32 ``m1`` / ``distance`` buffers the entries point into.
    """
    cdef Py_ssize_t B = paf.shape[0], h = paf.shape[2], w = paf.shape[3]
    cdef Py_ssize_t K = (offsets.shape[0] - 1) // B if B > 0 else 0
    cdef Py_ssize_t E = edges.shape[0], b, ei, e, a, c, i, j, m, q, total = 0, na, nb
    cdef vector[int64_t] idx
    for b in range(B):
        for ei in range(E):
            e = edges[ei]
            a = graph[e, 0]
            c = graph[e, 1]
            na = offsets[b * K + a + 1] - offsets[b * K + a]
            nb = offsets[b * K + c + 1] - offsets[b * K + c]
            if na > 0 and nb > 0:
                idx.push_back(b)
                idx.push_back(e)
                idx.push_back(na)
                idx.push_back(nb)
                idx.push_back(total)
                total += na * nb
    cdef Py_ssize_t n_entries = idx.size() // 5
    index = np.empty((n_entries, 5), dtype=np.int64)
    cdef int64_t[:, ::1] iv = index
    for q in range(n_entries):
        for m in range(5):
            iv[q, m] = idx[5 * q + m]
    m1 = np.empty(total, dtype=np.float32)
    dist = np.empty(total, dtype=np.float32)
    cdef float[::1] m1v = m1
    cdef float[::1] dv = dist
    cdef Py_ssize_t ia, ib, pos
    cdef float sr, sc, vr, vc, length, ix, iy, x0, y0, x1, y1, fr, fc
    cdef int32_t pr0, pc0, pr1, pc1
    cdef float eps = 1.1920928955078125e-07  # float32 machine epsilon, as DLC adds
    cdef const float* px
    cdef const float* py
    with nogil:
        for q in range(n_entries):
            b = idx[5 * q]
            e = idx[5 * q + 1]
            na = idx[5 * q + 2]
            nb = idx[5 * q + 3]
            pos = idx[5 * q + 4]
            ia = offsets[b * K + graph[e, 0]]
            ib = offsets[b * K + graph[e, 1]]
            px = &paf[b, 2 * e, 0, 0]
            py = &paf[b, 2 * e + 1, 0, 0]
            for i in range(na):
                sr = rows[ia + i]
                sc = cols[ia + i]
                for j in range(nb):
                    vr = rows[ib + j] - sr
                    vc = cols[ib + j] - sc
                    length = sqrtf(vr * vr + vc * vc) + eps
                    ix = 0
                    iy = 0
                    for m in range(n_points):
                        fr = sr + lin[m] * vr
                        fc = sc + lin[m] * vc
                        pr1 = <int32_t>fr  # truncation toward zero, like .to(int32)
                        pc1 = <int32_t>fc
                        if pr1 < 0:
                            pr1 = 0
                        elif pr1 > h - 1:
                            pr1 = h - 1
                        if pc1 < 0:
                            pc1 = 0
                        elif pc1 > w - 1:
                            pc1 = w - 1
                        x1 = px[pr1 * w + pc1]
                        y1 = py[pr1 * w + pc1]
                        if m > 0:
                            ix = ix + <float>(pc1 - pc0) * (x0 + x1)
                            iy = iy + <float>(pr1 - pr0) * (y0 + y1)
                        pr0 = pr1
                        pc0 = pc1
                        x0 = x1
                        y0 = y1
                    ix = ix / <float>2.0
                    iy = iy / <float>2.0
                    m1v[pos + i * nb + j] = _round3(sqrtf(ix * ix + iy * iy) / length)
                    dv[pos + i * nb + j] = _round3(length)
    return index, m1, dist


def heatmap_argmax(const float[:, :, :, ::1] heatmap, const float[:, :, :, ::1] locref,
                   bint has_locref, bint apply_sigmoid, bint clip_scores, float stride,
                   float center_offset, float locref_std):
    """See :func:`mapose.kernels.peaks.heatmap_argmax`."""
    cdef Py_ssize_t B = heatmap.shape[0], K = heatmap.shape[1]
    cdef Py_ssize_t h = heatmap.shape[2], w = heatmap.shape[3], b, k, i, j, bi, bj
    out = np.empty((B, K, 3), dtype=np.float32)
    cdef float[:, :, ::1] o = out
    cdef float best, v, lx, ly
    with nogil:
        for b in range(B):
            for k in range(K):
                bi = 0
                bj = 0
                best = heatmap[b, k, 0, 0]
                for i in range(h):
                    for j in range(w):
                        v = heatmap[b, k, i, j]
                        if v > best:  # first maximum in row-major order
                            best = v
                            bi = i
                            bj = j
                if apply_sigmoid:
                    best = _sigmoid(best)
                if clip_scores:
                    if best < 0:
                        best = 0
                    elif best > 1:
                        best = 1
                lx = 0
                ly = 0
                if has_locref:
                    lx = locref[b, 2 * k, bi, bj] * locref_std
                    ly = locref[b, 2 * k + 1, bi, bj] * locref_std
                o[b, k, 0] = (stride * bj + center_offset) + lx
                o[b, k, 1] = (stride * bi + center_offset) + ly
                o[b, k, 2] = best
    return out
