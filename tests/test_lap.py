"""Compiled linear sum assignment against SciPy (the solver DLC uses)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mapose.kernels import lap, lap_ref

pytestmark = pytest.mark.smoke


def _same(a, b):
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@settings(max_examples=300, deadline=None)
@given(
    cost=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=8),
        # few distinct values force many ties, which must resolve as SciPy resolves them
        elements=st.sampled_from([0.0, 1.0, 2.0, 0.5, -3.0]),
    ),
    maximize=st.booleans(),
)
def test_matches_scipy_including_ties(cost, maximize):
    assert _same(lap.linear_sum_assignment(cost, maximize), lap_ref.linear_sum_assignment(cost, maximize))


@settings(max_examples=200, deadline=None)
@given(
    cost=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(-1e3, 1e3, width=32),
    ),
    maximize=st.booleans(),
)
def test_optimal_total_float32(cost, maximize):
    r, c = lap.linear_sum_assignment(cost, maximize)
    rr, cc = lap_ref.linear_sum_assignment(cost, maximize)
    np.testing.assert_allclose(cost[r, c].astype(float).sum(), cost[rr, cc].astype(float).sum(), rtol=1e-9, atol=1e-6)


def test_constant_shift_keeps_assignment():
    rng = np.random.default_rng(1)
    cost = rng.random((6, 9))
    a = lap.linear_sum_assignment(cost)
    b = lap.linear_sum_assignment(cost + 17.0)
    assert _same(a, b)


def test_forbidden_pairs_with_inf():
    cost = np.array([[np.inf, 1.0], [2.0, np.inf]])
    r, c = lap.linear_sum_assignment(cost)
    assert list(c) == [1, 0]


def test_infeasible_raises():
    with pytest.raises(ValueError, match="infeasible"):
        lap.linear_sum_assignment(np.array([[np.inf, np.inf], [1.0, 2.0]]))


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2, 2))])
def test_wrong_ndim_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="cost_matrix must be 2-D"):
        lap.linear_sum_assignment(bad)


def test_nan_is_a_clear_error():
    with pytest.raises(ValueError, match="NaN"):
        lap.linear_sum_assignment(np.array([[np.nan, 1.0], [1.0, 0.0]]))


def test_empty():
    r, c = lap.linear_sum_assignment(np.zeros((0, 4)))
    assert r.shape == c.shape == (0,)
