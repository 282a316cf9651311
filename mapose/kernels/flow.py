"""Minimum-cost flow gateway.

:func:`min_cost_flow` solves the problem networkx's ``capacity_scaling`` and
``network_simplex`` solve (DeepLabCut's stitcher calls ``capacity_scaling``), on integer
data, in compiled code without the GIL.  Graphs are given as edge arrays, so parallel
edges and arbitrary node counts need no dict-of-dicts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapose._cy import load

_flow = load("flow")


class InfeasibleFlowError(ValueError):
    """No flow satisfies every node's supply/demand within the edge capacities."""


@dataclass(frozen=True)
class FlowResult:
    """Solution of :func:`min_cost_flow`.

    Attributes
    ----------
    cost : int
        Total cost ``sum(flow * cost)``.
    flow : ndarray of shape (n_edges,), dtype int64
        Flow on each input edge, in input order.
    """

    cost: int
    flow: np.ndarray


def _int_array(x, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries (one per edge); got {arr.shape[0]}.")
    if arr.size and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite integers; got NaN or inf. "
                             "Give infinite capacities a large finite bound instead.")
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} must hold integers; got fractional values. "
                             "Scale and round them (DLC uses int(100 * weight)).")
    elif arr.size and arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array; got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=np.int64)


def min_cost_flow(supply, tail, head, capacity, cost) -> FlowResult:
    """Minimum-cost flow meeting every node's supply and demand.

    Parameters
    ----------
    supply : array_like of int, shape (n_nodes,)
        Net outflow wanted at each node: positive = source, negative = sink.  This is
        networkx's ``demand`` with the sign flipped; it must sum to 0.
    tail, head : array_like of int, shape (n_edges,)
        Edge endpoints, node indices in ``[0, n_nodes)``.  Parallel edges are allowed;
        self-loops are ignored (a negative self-loop would only be saturated, as networkx
        does, and contributes ``capacity * cost``).
    capacity : array_like of int, shape (n_edges,)
        Non-negative edge capacities.
    cost : array_like of int, shape (n_edges,)
        Cost per unit of flow; negative values are allowed.

    Returns
    -------
    FlowResult
        Optimal total cost and per-edge flows.

    Raises
    ------
    InfeasibleFlowError
        If no flow satisfies all supplies within the capacities.
    ValueError, TypeError
        On malformed input (shapes, negative capacities, out-of-range node indices).
    """
    supply = _int_array(supply, "supply")
    n = supply.shape[0]
    tail = _int_array(tail, "tail")
    m = tail.shape[0]
    head = _int_array(head, "head", m)
    capacity = _int_array(capacity, "capacity", m)
    cost = _int_array(cost, "cost", m)
    if int(supply.sum()) != 0:
        raise InfeasibleFlowError(f"supply must sum to 0; it sums to {int(supply.sum())}.")
    if m:
        lo = min(int(tail.min()), int(head.min()))
        hi = max(int(tail.max()), int(head.max()))
        if lo < 0 or hi >= n:
            raise ValueError(f"tail/head must be node indices in [0, {n}); got values in [{lo}, {hi}].")
        if int(capacity.min()) < 0:
            raise ValueError("capacity must be non-negative; got a negative capacity.")
    loops = tail == head
    loop_cost = 0
    if loops.any():
        # a self-loop moves nothing; networkx saturates negative ones, and so do we
        neg = loops & (cost < 0)
        loop_cost = int((capacity[neg] * cost[neg]).sum())
        keep = ~loops
        status, total, flow_kept, _ = _flow.min_cost_flow(
            supply, np.ascontiguousarray(tail[keep]), np.ascontiguousarray(head[keep]),
            np.ascontiguousarray(capacity[keep]), np.ascontiguousarray(cost[keep]))
        flow = np.where(neg, capacity, 0).astype(np.int64)
        flow[keep] = flow_kept
    else:
        status, total, flow, _ = _flow.min_cost_flow(supply, tail, head, capacity, cost)
    if status != 0:
        raise InfeasibleFlowError(
            "no flow satisfies every supply/demand within the edge capacities "
            "(networkx raises NetworkXUnfeasible here)."
        )
    return FlowResult(int(total) + loop_cost, flow)
