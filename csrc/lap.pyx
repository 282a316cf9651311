# cython: language_level=3
"""Linear sum assignment (Hungarian / Jonker-Volgenant family), compiled.

Costs are solved in float64 on purpose: SciPy (which DeepLabCut uses) converts to
double, and tie-breaking on equal costs must match it for identical outputs.
"""
import numpy as np
cimport numpy as cnp
from lsap cimport lsap_solve

cnp.import_array()


def linear_sum_assignment(const double[:, ::1] cost, bint maximize=False):
    """Solve one assignment problem; cost is C-contiguous float64 (validated by the gateway)."""
    cdef long nr = cost.shape[0], nc = cost.shape[1]
    cdef long k = min(nr, nc)
    rows = np.empty(k, dtype=np.intp)
    cols = np.empty(k, dtype=np.intp)
    cdef long[::1] r = rows.view(np.int64) if k else np.empty(0, np.int64)
    cdef long[::1] c = cols.view(np.int64) if k else np.empty(0, np.int64)
    cdef int status = 0
    if k:
        with nogil:
            status = lsap_solve(nr, nc, &cost[0, 0], maximize, &r[0], &c[0])
    if status == -1:
        raise ValueError("cost matrix is infeasible")
    if status == -2:
        raise ValueError("cost matrix contains NaN or -inf entries")
    return rows, cols


def linear_sum_assignment_batch(list costs, bint maximize=False):
    """Solve many independent problems, releasing the GIL for each one."""
    return [linear_sum_assignment(c, maximize) for c in costs]
