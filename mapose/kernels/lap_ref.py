"""Reference for :mod:`mapose.kernels.lap`: SciPy's solver, which DeepLabCut calls."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment as _scipy_lsa


def linear_sum_assignment(cost_matrix, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Same signature and results as :func:`mapose.kernels.lap.linear_sum_assignment`."""
    return _scipy_lsa(np.asarray(cost_matrix, dtype=np.float64), maximize=maximize)
