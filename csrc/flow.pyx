# cython: language_level=3
"""Minimum-cost flow (primal-dual successive shortest paths), compiled.

The problem is the one networkx's ``capacity_scaling`` / ``network_simplex`` solve:
integer node supplies (networkx's ``demand`` negated), integer edge capacities and
integer costs (negative costs allowed), parallel edges allowed.  Costs are int64 because
DeepLabCut truncates stitching weights to integers before solving (``int(100 * w)``), and
exact integer arithmetic makes the optimum (and therefore the chosen tracks) independent
of floating-point summation order.

Algorithm
---------
1. Every negative-cost edge is saturated up front; the node imbalances absorb it.  After
   that every residual arc has a non-negative cost, so zero potentials are valid.
2. Successive shortest paths from one excess node at a time (as networkx's
   ``capacity_scaling`` does at its last scale): Dijkstra on reduced costs (binary
   heap, lazy deletion) stops at the first settled deficit node, so a search only
   explores the neighbourhood of that node -- on stitching graphs a few tracklets --
   instead of the whole graph; potentials of the settled nodes move by
   ``d(v) - d(t)``; the path is augmented by its bottleneck.
3. If an excess node reaches no deficit node, no feasible flow exists (the set it
   reaches has surplus and no residual arc leaving it).

The total cost is optimal; when several flows are optimal the one returned is
deterministic (it depends only on the input order of edges), not networkx's.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t
from libcpp.vector cimport vector
from libcpp.queue cimport priority_queue
from libcpp.pair cimport pair

cnp.import_array()

cdef int64_t INF64 = 0x3FFFFFFFFFFFFFFF


cdef int _solve(Py_ssize_t n, Py_ssize_t m, const int64_t* supply, const int64_t* tail,
                const int64_t* head, const int64_t* cap, const int64_t* cost,
                int64_t* flow, int64_t* out_routed, int64_t* out_total) noexcept nogil:
    """Returns 0 when every supply is routed, 1 otherwise (see module docstring)."""
    cdef Py_ssize_t i, v, u, a, k, s, t
    cdef vector[int64_t] excess = vector[int64_t](n, 0)
    cdef int64_t need = 0, routed = 0, total = 0

    for v in range(n):
        excess[v] = supply[v]
    for i in range(m):
        flow[i] = 0
        if cost[i] < 0 and cap[i] > 0:
            flow[i] = cap[i]
            excess[tail[i]] -= cap[i]
            excess[head[i]] += cap[i]
    for v in range(n):
        if excess[v] > 0:
            need += excess[v]

    # residual arcs: 2*i is edge i forward, 2*i+1 its reverse
    cdef Py_ssize_t na = 2 * m
    cdef vector[int64_t] to = vector[int64_t](na)
    cdef vector[int64_t] src = vector[int64_t](na)
    cdef vector[int64_t] res = vector[int64_t](na)
    cdef vector[int64_t] acost = vector[int64_t](na)
    cdef vector[int64_t] deg = vector[int64_t](n + 1, 0)
    for i in range(m):
        src[2 * i] = tail[i]; to[2 * i] = head[i]
        res[2 * i] = cap[i] - flow[i]; acost[2 * i] = cost[i]
        src[2 * i + 1] = head[i]; to[2 * i + 1] = tail[i]
        res[2 * i + 1] = flow[i]; acost[2 * i + 1] = -cost[i]
    # CSR adjacency, arcs of a node kept in input order (deterministic results)
    for a in range(na):
        deg[src[a] + 1] += 1
    for v in range(n):
        deg[v + 1] += deg[v]
    cdef vector[int64_t] adj = vector[int64_t](na)
    cdef vector[int64_t] fill = vector[int64_t](n)
    for v in range(n):
        fill[v] = deg[v]
    for a in range(na):
        adj[fill[src[a]]] = a
        fill[src[a]] += 1

    cdef vector[int64_t] pot = vector[int64_t](n, 0)
    cdef vector[int64_t] dist = vector[int64_t](n, INF64)
    cdef vector[int64_t] pred = vector[int64_t](n, -1)
    cdef vector[char] done = vector[char](n, 0)
    cdef vector[int64_t] touched
    cdef priority_queue[pair[int64_t, int64_t]] heap
    cdef pair[int64_t, int64_t] top
    cdef int64_t du, nd, dT, bott
    cdef int status = 0

    s = 0
    while routed < need:
        while s < n and excess[s] <= 0:
            s += 1
        if s >= n:
            break
        # --- Dijkstra from s on reduced costs, stopped at the first deficit node ------
        for k in range(<Py_ssize_t>touched.size()):
            v = touched[k]
            dist[v] = INF64
            done[v] = 0
            pred[v] = -1
        touched.clear()
        dist[s] = 0
        touched.push_back(s)
        heap.push(pair[int64_t, int64_t](0, s))
        t = -1
        while not heap.empty():
            top = heap.top()
            heap.pop()
            u = top.second
            du = -top.first
            if done[u] or du != dist[u]:
                continue
            done[u] = 1
            if excess[u] < 0:
                t = u
                break
            for k in range(deg[u], deg[u + 1]):
                a = adj[k]
                if res[a] <= 0:
                    continue
                v = to[a]
                if done[v]:
                    continue
                nd = du + acost[a] + pot[u] - pot[v]
                if nd < dist[v]:
                    if dist[v] == INF64:
                        touched.push_back(v)
                    dist[v] = nd
                    pred[v] = a
                    heap.push(pair[int64_t, int64_t](-nd, v))
        while not heap.empty():
            heap.pop()
        if t < 0:
            # nothing reachable can absorb s's excess: no feasible flow (cut argument)
            status = 1
            break
        dT = dist[t]
        # pot += min(d, dT) - dT: only settled nodes move (the shift keeps reduced costs)
        for k in range(<Py_ssize_t>touched.size()):
            v = touched[k]
            if done[v]:
                pot[v] += dist[v] - dT
        bott = excess[s]
        if -excess[t] < bott:
            bott = -excess[t]
        v = t
        while v != s:
            a = pred[v]
            if res[a] < bott:
                bott = res[a]
            v = src[a]
        v = t
        while v != s:
            a = pred[v]
            res[a] -= bott
            res[a ^ 1] += bott
            v = src[a]
        excess[s] -= bott
        excess[t] += bott
        routed += bott

    for i in range(m):
        flow[i] = res[2 * i + 1]
        total += flow[i] * cost[i]
    out_routed[0] = routed
    out_total[0] = total
    return 0 if (routed == need and status == 0) else 1


def min_cost_flow(const int64_t[::1] supply, const int64_t[::1] tail,
                  const int64_t[::1] head, const int64_t[::1] capacity,
                  const int64_t[::1] cost):
    """Solve one problem; arrays validated by :mod:`mapose.kernels.flow`.

    Returns ``(status, total_cost, flow, routed)``; status 0 = all supplies routed.
    """
    cdef Py_ssize_t n = supply.shape[0], m = tail.shape[0]
    flow_arr = np.zeros(m, dtype=np.int64)
    cdef int64_t[::1] fl = flow_arr
    cdef int64_t routed = 0, total = 0
    cdef int status
    cdef int64_t dummy = 0
    cdef const int64_t* p_tail = &tail[0] if m else &dummy
    cdef const int64_t* p_head = &head[0] if m else &dummy
    cdef const int64_t* p_cap = &capacity[0] if m else &dummy
    cdef const int64_t* p_cost = &cost[0] if m else &dummy
    cdef int64_t* p_flow = &fl[0] if m else &dummy
    cdef const int64_t* p_sup = &supply[0] if n else &dummy
    with nogil:
        status = _solve(n, m, p_sup, p_tail, p_head, p_cap, p_cost, p_flow, &routed, &total)
    return status, total, flow_arr, routed
