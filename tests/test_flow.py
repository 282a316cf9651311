"""Compiled min-cost flow against networkx (network simplex and capacity scaling)."""
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.kernels import flow, flow_ref


def _check_valid(supply, tail, head, cap, res):
    f = res.flow
    assert np.all(f >= 0) and np.all(f <= cap)
    net = np.zeros(len(supply), np.int64)
    np.add.at(net, tail, f)
    np.subtract.at(net, head, f)
    assert np.array_equal(net, supply)


@st.composite
def feasible_problems(draw):
    """Random multigraphs whose supplies come from a random flow, hence feasible."""
    n = draw(st.integers(1, 9))
    m = draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tail = rng.integers(0, n, m)
    head = rng.integers(0, n, m)
    if n > 1:  # no self-loops here; they have their own test
        same = tail == head
        head[same] = (head[same] + 1) % n
    cap = rng.integers(0, draw(st.sampled_from([1, 2, 5, 40])) + 1, m)
    low = draw(st.sampled_from([0, -3, -20]))
    cost = rng.integers(low, draw(st.sampled_from([1, 4, 100])) + 1, m)
    f = (rng.random(m) * (cap + 1)).astype(np.int64).clip(0, cap)
    if n == 1:
        tail = head = np.zeros(m, np.int64)
        f[:] = 0
    supply = np.zeros(n, np.int64)
    np.add.at(supply, tail, f)
    np.subtract.at(supply, head, f)
    return supply, tail, head, cap, cost


@pytest.mark.smoke
@settings(max_examples=300, deadline=None)
@given(problem=feasible_problems())
def test_optimal_cost_equals_network_simplex(problem):
    supply, tail, head, cap, cost = problem
    got = flow.min_cost_flow(supply, tail, head, cap, cost)
    want = flow_ref.min_cost_flow(supply, tail, head, cap, cost)
    assert got.cost == want.cost
    assert got.cost == int((got.flow * cost).sum())
    if (tail != head).all():
        _check_valid(supply, tail, head, cap, got)


@settings(max_examples=150, deadline=None)
@given(problem=feasible_problems())
def test_optimal_cost_equals_capacity_scaling(problem):
    supply, tail, head, cap, cost = problem
    G = nx.MultiDiGraph()
    for v, s in enumerate(supply):
        G.add_node(v, demand=-int(s))
    for u, v, c, w in zip(tail, head, cap, cost):
        G.add_edge(int(u), int(v), capacity=int(c), weight=int(w))
    want, _ = nx.capacity_scaling(G)
    assert flow.min_cost_flow(supply, tail, head, cap, cost).cost == want


@st.composite
def stitching_graphs(draw):
    """DLC's stitching graph on random interval tracklets: source/sink, in/out nodes."""
    n_t = draw(st.integers(1, 12))
    n_tracks = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    starts = np.sort(rng.integers(0, 40, n_t))
    ends = starts + rng.integers(0, 15, n_t)
    S, T = 0, 1
    supply = [n_tracks, -n_tracks]
    tail, head, cost = [], [], []
    for i in range(n_t):
        supply += [-1, 1]  # in node (demand +1), out node (demand -1)
        for u, v in ((2 + 2 * i, 3 + 2 * i), (S, 2 + 2 * i), (3 + 2 * i, T)):
            tail.append(u), head.append(v), cost.append(0)
    for i in range(n_t):
        for j in range(i + 1, n_t):
            gap = starts[j] - ends[i]
            if 0 < gap <= 10:
                tail.append(3 + 2 * i), head.append(2 + 2 * j)
                cost.append(int(rng.integers(-50 if draw(st.booleans()) else 0, 3000)))
    m = len(tail)
    return np.array(supply), np.array(tail), np.array(head), np.ones(m, np.int64), np.array(cost)


@settings(max_examples=200, deadline=None)
@given(problem=stitching_graphs())
def test_stitching_graphs_same_feasibility_and_cost(problem):
    supply, tail, head, cap, cost = problem
    try:
        want = flow_ref.min_cost_flow(supply, tail, head, cap, cost)
    except flow.InfeasibleFlowError:
        with pytest.raises(flow.InfeasibleFlowError):
            flow.min_cost_flow(supply, tail, head, cap, cost)
        return
    got = flow.min_cost_flow(supply, tail, head, cap, cost)
    assert got.cost == want.cost
    _check_valid(supply, tail, head, cap, got)


@pytest.mark.smoke
def test_networkx_docstring_example():
    # nodes a, b, c, d: a sends 5, d receives 5
    res = flow.min_cost_flow([5, 0, 0, -5], [0, 0, 1, 2], [1, 2, 3, 3], [4, 10, 9, 5], [3, 6, 1, 2])
    assert res.cost == 24
    assert res.flow.tolist() == [4, 1, 4, 1]


def test_unique_optimum_is_found():
    # two disjoint routes, the cheaper must carry the unit
    res = flow.min_cost_flow([1, 0, 0, -1], [0, 0, 1, 2], [1, 2, 3, 3], [1, 1, 1, 1], [5, 1, 5, 2])
    assert res.flow.tolist() == [0, 1, 0, 1] and res.cost == 3


def test_negative_cycle_with_finite_capacity():
    # 0 -> 1 -> 0 with total cost -3 per unit, capacity 2: saturating it is optimal
    res = flow.min_cost_flow([0, 0], [0, 1], [1, 0], [2, 2], [-1, -2])
    assert res.cost == -6 and res.flow.tolist() == [2, 2]


def test_self_loops_follow_networkx():
    res = flow.min_cost_flow([1, -1], [0, 0, 1], [0, 1, 1], [3, 1, 2], [-2, 4, 7])
    assert res.cost == -6 + 4
    assert res.flow.tolist() == [3, 1, 0]


@pytest.mark.smoke
def test_infeasible_raises():
    with pytest.raises(flow.InfeasibleFlowError, match="no flow satisfies"):
        flow.min_cost_flow([2, -2], [0], [1], [1], [0])
    with pytest.raises(flow.InfeasibleFlowError, match="sum to 0"):
        flow.min_cost_flow([1, 0], [0], [1], [1], [0])


def test_empty_graphs():
    assert flow.min_cost_flow([], [], [], [], []).cost == 0
    res = flow.min_cost_flow([0, 0, 0], [], [], [], [])
    assert res.cost == 0 and res.flow.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(tail=[0, 1]), ValueError, "head must have 2 entries"),
        (dict(head=[5]), ValueError, r"node indices in \[0, 2\)"),
        (dict(capacity=[-1]), ValueError, "non-negative"),
        (dict(cost=[0.5]), ValueError, "integers"),
        (dict(cost=[np.nan]), ValueError, "finite"),
        (dict(cost=["a"]), TypeError, "integer array"),
        (dict(supply=[[1, -1]]), ValueError, "1-D"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, exc, match):
    args = dict(supply=[1, -1], tail=[0], head=[1], capacity=[1], cost=[0])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        flow.min_cost_flow(**args)


@pytest.mark.slow
def test_large_stitching_graph_matches_network_simplex():
    rng = np.random.default_rng(3)
    n_t, n_tracks = 400, 25
    starts = np.sort(rng.integers(0, 2000, n_t))
    ends = starts + rng.integers(0, 60, n_t)
    supply = [n_tracks, -n_tracks] + [-1, 1] * n_t
    tail, head = [], []
    for i in range(n_t):
        tail += [2 + 2 * i, 0, 3 + 2 * i]
        head += [3 + 2 * i, 2 + 2 * i, 1]
    cost = [0] * len(tail)
    for i in range(n_t):
        for j in range(i + 1, n_t):
            if 0 < starts[j] - ends[i] <= 200:
                tail.append(3 + 2 * i), head.append(2 + 2 * j), cost.append(int(rng.integers(0, 5000)))
    cap = np.ones(len(tail), np.int64)
    want = flow_ref.min_cost_flow(supply, tail, head, cap, cost)
    assert flow.min_cost_flow(supply, tail, head, cap, cost).cost == want.cost
