"""Linear sum assignment: mapose's compiled solver vs SciPy in the same run."""
import numpy as np
from scipy.optimize import linear_sum_assignment as scipy_lsa

from mapose.kernels.lap import linear_sum_assignment


class LinearSumAssignment:
    params = [[3, 10, 50], ["mapose", "scipy"]]
    param_names = ["n", "impl"]

    def setup(self, n, impl):
        self.cost = np.random.default_rng(0).random((n, n))
        self.fn = linear_sum_assignment if impl == "mapose" else scipy_lsa

    def time_solve(self, n, impl):
        self.fn(self.cost)
