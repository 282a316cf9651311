"""Linear sum assignment gateway.

:func:`linear_sum_assignment` is a drop-in for :func:`scipy.optimize.linear_sum_assignment`
(same results, including how equal-cost ties resolve) running in compiled code without
the GIL.
"""
from __future__ import annotations

import numpy as np

from mapose._cy import load

_lap = load("lap")


def linear_sum_assignment(cost_matrix, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Solve the rectangular linear sum assignment problem.

    Parameters
    ----------
    cost_matrix : array_like of shape (n_rows, n_cols)
        Finite costs; ``+inf`` marks a forbidden pair.  Any real dtype (computed in float64,
        as SciPy does, so that ties resolve identically).
    maximize : bool, default False
        Maximise the total instead of minimising it.

    Returns
    -------
    row_ind, col_ind : ndarray of shape (min(n_rows, n_cols),), dtype intp
        Optimal pairs, sorted by row index.

    Raises
    ------
    ValueError
        If ``cost_matrix`` is not 2-D, holds NaN / -inf, or no complete assignment exists.
    """
    cost = np.asarray(cost_matrix)
    if cost.ndim != 2:
        raise ValueError(
            f"cost_matrix must be 2-D (n_rows, n_cols); got shape {cost.shape}. "
            "Pass one matrix per call, or use linear_sum_assignment_batch."
        )
    if cost.dtype == bool:
        cost = cost.astype(np.float64)
    if not np.issubdtype(cost.dtype, np.number) or np.iscomplexobj(cost):
        raise ValueError(f"cost_matrix must hold real numbers; got dtype {cost.dtype}.")
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if maximize and np.any(cost == np.inf):
        # +inf is a forbidden pair only when minimising; when maximising it is -inf after
        # negation, which SciPy rejects too.
        raise ValueError("cost_matrix contains +inf entries, which are invalid with maximize=True.")
    return _lap.linear_sum_assignment(cost, bool(maximize))


def linear_sum_assignment_batch(cost_matrices, maximize: bool = False):
    """Solve a list of independent assignment problems (see :func:`linear_sum_assignment`)."""
    return [linear_sum_assignment(c, maximize) for c in cost_matrices]
