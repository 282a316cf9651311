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
2. A super source feeds every node with positive excess and every node with negative
   excess drains into a super sink.
3. Primal-dual phases: Dijkstra on reduced costs (binary heap, lazy deletion) gives the
   shortest distances; potentials move by ``min(d(v), d(sink))``; then a Dinic blocking
   flow saturates *all* shortest paths at once on the zero-reduced-cost arcs.  On the
   stitching graphs (unit capacities, nearly bipartite) this needs few phases.

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
    cdef Py_ssize_t N = n + 2, S = n, T = n + 1
    cdef Py_ssize_t i, v, u, a, k, na
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

    # residual arcs: 2*i is edge i forward, 2*i+1 its reverse; then super arcs
    na = 2 * m
    for v in range(n):
        if excess[v] != 0:
            na += 2
    cdef vector[int64_t] to = vector[int64_t](na)
    cdef vector[int64_t] res = vector[int64_t](na)
    cdef vector[int64_t] acost = vector[int64_t](na)
    cdef vector[int64_t] deg = vector[int64_t](N + 1, 0)
    cdef vector[int64_t] src = vector[int64_t](na)
    for i in range(m):
        src[2 * i] = tail[i]; to[2 * i] = head[i]
        res[2 * i] = cap[i] - flow[i]; acost[2 * i] = cost[i]
        src[2 * i + 1] = head[i]; to[2 * i + 1] = tail[i]
        res[2 * i + 1] = flow[i]; acost[2 * i + 1] = -cost[i]
    a = 2 * m
    for v in range(n):
        if excess[v] > 0:
            src[a] = S; to[a] = v; res[a] = excess[v]; acost[a] = 0
            src[a + 1] = v; to[a + 1] = S; res[a + 1] = 0; acost[a + 1] = 0
            need += excess[v]
            a += 2
        elif excess[v] < 0:
            src[a] = v; to[a] = T; res[a] = -excess[v]; acost[a] = 0
            src[a + 1] = T; to[a + 1] = v; res[a + 1] = 0; acost[a + 1] = 0
            a += 2
    # CSR adjacency, arcs of a node kept in input order (deterministic results)
    for a in range(na):
        deg[src[a] + 1] += 1
    for v in range(N):
        deg[v + 1] += deg[v]
    cdef vector[int64_t] adj = vector[int64_t](na)
    cdef vector[int64_t] fill = vector[int64_t](N)
    for v in range(N):
        fill[v] = deg[v]
    for a in range(na):
        adj[fill[src[a]]] = a
        fill[src[a]] += 1

    cdef vector[int64_t] pot = vector[int64_t](N, 0)
    cdef vector[int64_t] dist = vector[int64_t](N)
    cdef vector[int64_t] level = vector[int64_t](N)
    cdef vector[int64_t] cur = vector[int64_t](N)
    cdef vector[int64_t] queue = vector[int64_t](N)
    cdef vector[int64_t] stack_arc = vector[int64_t](N)
    cdef vector[char] done = vector[char](N)
    cdef priority_queue[pair[int64_t, int64_t]] heap
    cdef pair[int64_t, int64_t] top
    cdef int64_t du, nd, dT, rc, qh, qt, depth, bott, pushed
    cdef bint advanced

    while routed < need:
        # --- Dijkstra on reduced costs -------------------------------------------
        for v in range(N):
            dist[v] = INF64
            done[v] = 0
        dist[S] = 0
        heap.push(pair[int64_t, int64_t](0, S))
        while not heap.empty():
            top = heap.top()
            heap.pop()
            u = top.second
            du = -top.first
            if done[u] or du != dist[u]:
                continue
            done[u] = 1
            if u == T:
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
                    dist[v] = nd
                    heap.push(pair[int64_t, int64_t](-nd, v))
        while not heap.empty():
            heap.pop()
        if not done[T]:
            break
        dT = dist[T]
        for v in range(N):
            pot[v] += dist[v] if dist[v] < dT else dT

        # --- Dinic blocking flows on the admissible (zero reduced cost) arcs --------
        while routed < need:
            for v in range(N):
                level[v] = -1
            level[S] = 0
            queue[0] = S
            qh = 0
            qt = 1
            while qh < qt:
                u = queue[qh]
                qh += 1
                for k in range(deg[u], deg[u + 1]):
                    a = adj[k]
                    v = to[a]
                    if res[a] > 0 and level[v] < 0 and acost[a] + pot[u] - pot[v] == 0:
                        level[v] = level[u] + 1
                        queue[qt] = v
                        qt += 1
            if level[T] < 0:
                break
            for v in range(N):
                cur[v] = deg[v]
            # iterative DFS: stack_arc[d] is the arc taken at depth d
            pushed = 1
            while pushed:
                pushed = 0
                depth = 0
                u = S
                while True:
                    if u == T:
                        bott = INF64
                        for k in range(depth):
                            if res[stack_arc[k]] < bott:
                                bott = res[stack_arc[k]]
                        if bott > need - routed:
                            bott = need - routed
                        for k in range(depth):
                            a = stack_arc[k]
                            res[a] -= bott
                            res[a ^ 1] += bott
                        routed += bott
                        pushed = 1
                        break
                    advanced = False
                    while cur[u] < deg[u + 1]:
                        a = adj[cur[u]]
                        v = to[a]
                        if (res[a] > 0 and level[v] == level[u] + 1
                                and acost[a] + pot[u] - pot[v] == 0):
                            stack_arc[depth] = a
                            depth += 1
                            u = v
                            advanced = True
                            break
                        cur[u] += 1
                    if not advanced:
                        if u == S:
                            break
                        level[u] = -1  # dead end: never enter again this phase
                        depth -= 1
                        u = src[stack_arc[depth]]
                        cur[u] += 1
                if routed >= need:
                    break

    for i in range(m):
        flow[i] = res[2 * i + 1]
        total += flow[i] * cost[i]
    out_routed[0] = routed
    out_total[0] = total
    return 0 if routed == need else 1


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
