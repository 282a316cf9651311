# cython: language_level=3
"""Stitcher inner loops that run per tracklet or per frame (compiled, no GIL).

``row_centroids``
    DLC's likelihood-weighted centroid of every row of a keypoint array in one pass
    (the stitcher computes it once per input buffer instead of once per tracklet).
``place_residuals``
    The residual placement of DLC's ``_finalize_tracks`` on a frame-occupancy table:
    which track each residual joins, in which order.

Float64 throughout: the centroids feed distances that are compared with DLC's
(``numpy`` float64) values bit for bit, so every sum is taken in NumPy's order.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport isnan, isinf, sqrt, INFINITY
from libc.stdint cimport int64_t
from libcpp.vector cimport vector

cnp.import_array()


cdef double _pairwise_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """NumPy's ``pairwise_sum`` for float64 (``numpy/_core/src/umath/loops_utils.h``):
    sequential below 8 terms, 8 interleaved partial sums up to 128, halves above."""
    cdef double res, r0, r1, r2, r3, r4, r5, r6, r7
    cdef Py_ssize_t i, n2
    if n < 8:
        res = 0.0
        for i in range(n):
            res = res + a[i]
        return res
    if n <= 128:
        r0 = a[0]; r1 = a[1]; r2 = a[2]; r3 = a[3]
        r4 = a[4]; r5 = a[5]; r6 = a[6]; r7 = a[7]
        i = 8
        while i < n - (n % 8):
            r0 = r0 + a[i]; r1 = r1 + a[i + 1]; r2 = r2 + a[i + 2]; r3 = r3 + a[i + 3]
            r4 = r4 + a[i + 4]; r5 = r5 + a[i + 5]; r6 = r6 + a[i + 6]; r7 = r7 + a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


def row_centroids(const double[:, :, :] data, double[:, ::1] out, unsigned char[::1] has_xy):
    """``out[i] = nansum(xy * (p + 1e-10)) / nansum(p + 1e-10)`` over body parts, per row.

    Summed in NumPy's order, so the bits are the same (signed zeros included): from
    +0.0, NaN terms as 0 (``nansum``); the (n, nb, 2) products along body parts one by
    one (the inner loop runs over x/y), the (n, nb, 1) weights by NumPy's pairwise
    summation (their body-part axis is the contiguous inner loop).  ``has_xy[i]``: whether
    row ``i`` has any x or y that is not NaN (rows without are dropped by the stitcher).
    """
    cdef Py_ssize_t n = data.shape[0], nb = data.shape[1], i, j
    cdef double like, px, py, sx, sy, sl
    cdef vector[double] buf = vector[double](3 * nb + 1)
    cdef double* bx = buf.data()
    cdef double* by = bx + nb
    cdef double* bl = by + nb
    with nogil:
        for i in range(n):
            has_xy[i] = 0
            for j in range(nb):
                if not (isnan(data[i, j, 0]) and isnan(data[i, j, 1])):
                    has_xy[i] = 1
                like = data[i, j, 2] + 1e-10
                px = data[i, j, 0] * like
                py = data[i, j, 1] * like
                bx[j] = 0.0 if isnan(px) else px
                by[j] = 0.0 if isnan(py) else py
                bl[j] = 0.0 if isnan(like) else like
            sl = 0.0 + _pairwise_sum(bl, nb)
            sx = 0.0
            sy = 0.0
            for j in range(nb):
                sx = sx + bx[j]
                sy = sy + by[j]
            out[i, 0] = sx / sl
            out[i, 1] = sy / sl


cdef inline bint _fits(const int64_t[:, ::1] src, Py_ssize_t k, const int64_t[::1] frames,
                       Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t f
    for f in range(a, b):
        if src[k, frames[f]] >= 0:
            return False
    return True


cdef inline double _dist(const double[:, ::1] cen, int64_t u, int64_t v) noexcept nogil:
    # numpy: sqrt(sum((cu - cv) ** 2)) over 2 coordinates: one addition, in this order
    cdef double dx = cen[u, 0] - cen[v, 0]
    cdef double dy = cen[u, 1] - cen[v, 1]
    return sqrt(dx * dx + dy * dy)


def place_residuals(int64_t[:, ::1] src, const double[:, ::1] cen, const int64_t[::1] frames,
                    const int64_t[::1] offsets, const int64_t[::1] first_row,
                    int64_t[::1] assign, int64_t[::1] order):
    """Assign residuals to tracks as DLC's ``_finalize_tracks`` does (see the gateway).

    ``src`` (tracks x frames) holds the ``cen`` row of the pose a track has at a frame,
    -1 where it has none, and is updated as residuals join.  Returns the number of
    residuals placed; ``order[:count]`` lists them in placement order and ``assign[r]``
    is residual ``r``'s track (-1: left out).
    """
    cdef Py_ssize_t n_tracks = src.shape[0], n_frames = src.shape[1]
    cdef Py_ssize_t n_res = assign.shape[0]
    cdef Py_ssize_t r, k, f, a, b, c, n_fit, fit, n_left, count = 0, n_cand, n_valid, first_valid
    cdef Py_ssize_t fl, fr, best
    cdef bint changed, any_nan
    cdef int64_t row0, row1
    cdef double d_left, d_right, cost, best_cost
    cdef vector[Py_ssize_t] left = vector[Py_ssize_t]()
    cdef vector[Py_ssize_t] cand = vector[Py_ssize_t]()
    cdef vector[double] costs = vector[double]()

    with nogil:
        for r in range(n_res):
            assign[r] = -1
            left.push_back(r)

        # 1) a residual that fits (shares no frame with) exactly one track joins it; sweeps
        # repeat until one changes nothing, each seeing the joins made before it
        changed = True
        while changed and left.size():
            changed = False
            n_left = 0
            for c in range(<Py_ssize_t>left.size()):
                r = left[c]
                a, b = offsets[r], offsets[r + 1]
                n_fit = 0
                fit = -1
                for k in range(n_tracks):
                    if _fits(src, k, frames, a, b):
                        n_fit += 1
                        fit = k
                if n_fit == 1:
                    _join(src, frames, a, b, first_row[r], fit)
                    assign[r] = fit
                    order[count] = r
                    count += 1
                    changed = True
                else:
                    left[n_left] = r
                    n_left += 1
            left.resize(n_left)

        # 2) the others, in order: the candidate track whose poses around the residual are
        # closest.  DLC uses the position in the candidate list as the track index when
        # several candidates qualify (a quirk kept for identical output).
        for c in range(<Py_ssize_t>left.size()):
            r = left[c]
            a, b = offsets[r], offsets[r + 1]
            cand.clear()
            for k in range(n_tracks):
                if _fits(src, k, frames, a, b):
                    cand.push_back(k)
            n_cand = cand.size()
            if n_cand == 0:
                continue
            costs.assign(n_cand, INFINITY)
            row0 = first_row[r]
            row1 = first_row[r] + (b - a) - 1
            for k in range(n_cand):
                fl = frames[a] - 1
                while fl >= 0 and src[cand[k], fl] < 0:
                    fl -= 1
                fr = frames[b - 1]  # free in a candidate: the search starts after it
                while fr < n_frames and src[cand[k], fr] < 0:
                    fr += 1
                if fl < 0 or fr >= n_frames:
                    continue
                d_left = _dist(cen, src[cand[k], fl], row0)
                d_right = _dist(cen, src[cand[k], fr], row1)
                if frames[a] - fl <= 3:
                    costs[k] = d_left
                elif fr - frames[b - 1] <= 3:
                    costs[k] = d_right
                else:
                    costs[k] = d_left + d_right
            n_valid = 0
            first_valid = -1
            for k in range(n_cand):
                if not isinf(costs[k]):
                    n_valid += 1
                    if first_valid < 0:
                        first_valid = k
            if n_valid == 0:
                continue
            if n_valid == 1:
                best = cand[first_valid]
            else:
                # numpy.argmin: the first NaN if there is one, else the first minimum
                best = -1
                for k in range(n_cand):
                    if isnan(costs[k]):
                        best = k
                        break
                if best < 0:
                    best = 0
                    best_cost = costs[0]
                    for k in range(1, n_cand):
                        if costs[k] < best_cost:
                            best_cost = costs[k]
                            best = k
            _join(src, frames, a, b, first_row[r], best)
            assign[r] = best
            order[count] = r
            count += 1
    return count


cdef inline void _join(int64_t[:, ::1] src, const int64_t[::1] frames, Py_ssize_t a, Py_ssize_t b,
                       int64_t row0, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t f
    for f in range(a, b):
        src[k, frames[f]] = row0 + (f - a)


def fill_columns(double[:, ::1] table_t, const double[:, :, :] data, const int64_t[::1] rows,
                 Py_ssize_t col0):
    """``table_t[col0 + 3 * b + c, rows[i]] = data[i, b, c]`` for c < 3 (x, y, likelihood).

    ``table_t`` is the transposed track table (one contiguous row per output column), so
    each column is written as one stream.  With a repeated row the last write wins, as
    with NumPy's fancy assignment.
    """
    cdef Py_ssize_t n = data.shape[0], nb = data.shape[1], i, b, c, j
    with nogil:
        for b in range(nb):
            for c in range(3):
                j = col0 + 3 * b + c
                for i in range(n):
                    table_t[j, rows[i]] = data[i, b, c]
