# cython: language_level=3
"""Pairwise box IoU matrix, compiled.

IoU is computed in float64 and stored as float32, like DLC's SORT association matrix
(``np.zeros(..., dtype=np.float32)`` filled with float64 ``calc_iou`` values), so that the
threshold comparisons and assignment ties are identical.
"""
import numpy as np
cimport numpy as cnp
from _boxiou cimport iou_xyxy

cnp.import_array()


def iou_matrix(const double[:, ::1] boxes1, const double[:, ::1] boxes2):
    """IoU of every box in ``boxes1`` (n, >=4) with every box in ``boxes2`` (m, >=4)."""
    cdef Py_ssize_t n = boxes1.shape[0], m = boxes2.shape[0], i, j
    out = np.empty((n, m), dtype=np.float32)
    cdef float[:, ::1] o = out
    if n == 0 or m == 0:
        return out
    with nogil:
        for i in range(n):
            for j in range(m):
                o[i, j] = <float>iou_xyxy(&boxes1[i, 0], &boxes2[j, 0])
    return out
