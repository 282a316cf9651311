"""Reference for :mod:`mapose.kernels.flow`: networkx's network simplex (slow, trusted)."""
from __future__ import annotations

import networkx as nx
import numpy as np

from mapose.kernels.flow import FlowResult, InfeasibleFlowError


def min_cost_flow(supply, tail, head, capacity, cost) -> FlowResult:
    """Same contract as :func:`mapose.kernels.flow.min_cost_flow`, solved by networkx."""
    supply = np.asarray(supply, dtype=np.int64)
    G = nx.MultiDiGraph()
    for v, s in enumerate(supply):
        G.add_node(v, demand=-int(s))
    keys = []
    for u, v, c, w in zip(tail, head, capacity, cost):
        keys.append((int(u), int(v), G.add_edge(int(u), int(v), capacity=int(c), weight=int(w))))
    try:
        total, fd = nx.network_simplex(G)
    except nx.NetworkXUnfeasible as exc:
        raise InfeasibleFlowError(str(exc)) from exc
    flow = np.array([fd[u][v][k] for u, v, k in keys], dtype=np.int64)
    return FlowResult(int(total), flow)
