"""Slow, obviously-correct reference for the compiled assembler (tests only).

One frame at a time, with Python objects, statement by statement as the behaviour is
written in DeepLabCut's specification (``dlc-tracking-spec.md`` section 2.3 to 2.5).  It is
the oracle for :mod:`mapose.kernels.assembly` on random inputs and the readable statement
of what the kernel computes, including DLC's accidental-but-output-deciding quirks:

* a bodypart whose coordinates are empty or all exactly zero has no detections;
* ``_fill_assembly`` seeds its heap by iterating a Python ``set`` of joint indices;
* the discarded joints are a ``set`` of :class:`Joint` (hash order decides ties);
* affinity sums are float64; thresholds are compared in the cost array's dtype.

Where DLC crashes, the reference returns what mapose defines (documented inline).
"""
from __future__ import annotations

import heapq
import math
import itertools
from collections import defaultdict
from operator import itemgetter

import numpy as np

from mapose.assembly.model import Assembly, Joint, Link

__all__ = ["assemble_frames"]


def _as_dtype_threshold(value: float, dtype) -> float:
    """``array >= python_float`` compares in the array's dtype (NumPy 1 and 2 alike)."""
    if np.issubdtype(dtype, np.floating):
        return float(np.asarray(value, dtype=dtype))
    return float(value)


def flatten_detections(data_dict):
    coordinates = data_dict["coordinates"][0]
    confidence = data_dict["confidence"]
    ids = data_dict.get("identity", None)
    if ids is None:
        ids = [np.full(len(arr), -1, dtype=int) for arr in confidence]
    else:
        ids = [np.asarray(arr).argmax(axis=1) if len(arr) else np.zeros(0, int) for arr in ids]
    ind = 0
    for i, (coords, conf, id_) in enumerate(zip(coordinates, confidence, ids)):
        coords = np.asarray(coords)
        if not np.any(coords):
            continue
        for xy, p, g in zip(coords, np.asarray(conf), id_):
            yield Joint(tuple(xy), float(np.asarray(p).item()), i, ind, int(g))
            ind += 1


class _Moments:
    def __init__(self, kde):
        self.mean = np.asarray(kde.mean, dtype=float)
        self.covariance = np.asarray(kde.covariance, dtype=float)
        self.inv_cov = np.asarray(kde.inv_cov, dtype=float)
        self.d = kde.d


class FrameAssembler:
    """State and per-frame logic (DLC's ``Assembler`` minus the driver)."""

    def __init__(self, params, kde=None):
        self.p = params
        # scipy's gaussian_kde recomputes inv_cov on every access: read the moments once
        self.kde = None if kde is None else _Moments(kde)
        self.safe_edge = kde is not None
        self.trees: dict[int, np.ndarray] = {}

    # -- calibration ---------------------------------------------------------------------
    def calc_link_probability(self, link):
        i, j = link.j1.label, link.j2.label
        ind = _condensed_index(self.p.n_multibodyparts, i, j)
        mu, sigma = self.kde.mean[ind], self.kde.covariance[ind, ind]
        z = (link.length**2 - mu) / sigma
        return 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))

    def mahalanobis(self, assembly, nan_policy="little"):
        return mahalanobis(self.kde, assembly, nan_policy)

    # -- links ---------------------------------------------------------------------------
    def extract_best_links(self, bag, costs, trees):
        p = self.p
        links = []
        for ind in p.paf_inds:
            s, t = p.graph[ind]
            if s == t or not (0 <= s < p.n_multibodyparts and 0 <= t < p.n_multibodyparts):
                continue  # DLC raises IndexError linking a unique bodypart: mapose skips the edge
            dets_s = bag.get(s)
            dets_t = bag.get(t)
            if not dets_s or not dets_t or costs is None or ind not in costs:
                continue
            lengths = np.asarray(costs[ind]["distance"])
            if np.isinf(lengths).all():
                continue
            aff = np.array(costs[ind][p.method], copy=True)
            aff[~np.isfinite(aff)] = 0  # DLC: NaN -> 0; +-inf would crash SciPy (mapose: 0)
            if trees:
                vecs = np.array([[*ds.pos, *dt.pos] for ds in dets_s for dt in dets_t])
                ws = []
                for n, tree in enumerate(trees, start=1):
                    d = np.sqrt(((vecs[:, None, :] - tree[None]) ** 2).sum(axis=2)).min(axis=1)
                    ws.append(np.exp(-p.gamma * n * d))
                w = np.mean(ws, axis=0)
                aff *= w.reshape(aff.shape)
            min_aff = _as_dtype_threshold(p.min_affinity, aff.dtype)
            if p.greedy:
                conf = np.asarray([[ds.confidence * dt.confidence for dt in dets_t] for ds in dets_s])
                rows, cols = np.where((conf >= p.pcutoff**2) & (aff >= min_aff))
                cand = sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: aff[rc], reverse=True)
                used_s, used_t = set(), set()
                for row, col in cand:
                    if row in used_s or col in used_t:
                        continue
                    links.append(Link(dets_s[row], dets_t[col], aff[row, col]))
                    used_s.add(row)
                    used_t.add(col)
                    if len(used_s) == p.max_n_individuals:
                        break
            else:
                from scipy.optimize import linear_sum_assignment

                n = p.max_n_individuals
                inds_s = sorted(range(len(dets_s)), key=lambda x: dets_s[x].confidence, reverse=True)[:n]
                inds_t = sorted(range(len(dets_t)), key=lambda x: dets_t[x].confidence, reverse=True)[:n]
                keep_s = [i for i in inds_s if dets_s[i].confidence >= p.pcutoff]
                keep_t = [i for i in inds_t if dets_t[i].confidence >= p.pcutoff]
                sub = aff[np.ix_(keep_s, keep_t)]
                rows, cols = linear_sum_assignment(sub, maximize=True)
                for row, col in zip(rows, cols):
                    w = sub[row, col]
                    if w >= min_aff:
                        links.append(Link(dets_s[keep_s[row]], dets_t[keep_t[col]], w))
        return links

    # -- building ------------------------------------------------------------------------
    def fill_assembly(self, assembly, lookup, assembled, safe_edge, nan_policy):
        stack, visited, tabu = [], set(), []
        counter = itertools.count()

        def push(i):
            for j, link in lookup[i].items():
                if j in assembly._idx or link.idx in visited:
                    continue
                heapq.heappush(stack, (-link.affinity, next(counter), link))
                visited.add(link.idx)

        for idx in assembly._idx:  # Python set order decides ties: kept on purpose
            push(idx)
        while stack and len(assembly) < self.p.n_multibodyparts:
            _, _, best = heapq.heappop(stack)
            i, j = best.idx
            if i in assembly._idx:
                new_ind = j
            elif j in assembly._idx:
                new_ind = i
            else:
                continue
            if new_ind in assembled:
                continue
            if safe_edge:
                d_old = self.mahalanobis(assembly, nan_policy)
                if not assembly.add_link(best, store_dict=True):
                    assembly._dict = {}
                    continue
                d = self.mahalanobis(assembly, nan_policy)
                if d < d_old:
                    push(new_ind)
                    if tabu:
                        _, _, link = heapq.heappop(tabu)
                        heapq.heappush(stack, (-link.affinity, next(counter), link))
                else:
                    heapq.heappush(tabu, (d - d_old, next(counter), best))
                    assembly.__dict__.update(assembly._dict)
                assembly._dict = {}
            else:
                assembly.add_link(best)
                push(new_ind)

    def build_assemblies(self, links):
        p = self.p
        lookup = defaultdict(dict)
        for link in links:
            i, j = link.idx
            lookup[i][j] = link
            lookup[j][i] = link
        assemblies, assembled = [], set()

        for chain in _components([link.idx for link in links]):
            if len(chain) == p.n_multibodyparts:
                edges = {tuple(sorted(link.idx)) for link in links if link.idx[0] in chain}
                assembly = Assembly(p.n_multibodyparts)
                for link in links:
                    i, j = link.idx
                    if (i, j) in edges:  # (larger, smaller) never matches: DLC quirk
                        if assembly.add_link(link):
                            lookup[i].pop(j, None)
                            lookup[j].pop(i, None)
                assembled.update(assembly._idx)
                assemblies.append(assembly)
        if len(assemblies) == p.max_n_individuals:
            return assemblies, assembled

        for link in sorted(links, key=lambda x: x.affinity, reverse=True):
            if any(i in assembled for i in link.idx):
                continue
            assembly = Assembly(p.n_multibodyparts)
            assembly.add_link(link)
            self.fill_assembly(assembly, lookup, assembled, self.safe_edge, p.nan_policy)
            for lk in assembly._links:
                i, j = lk.idx
                lookup[i].pop(j, None)
                lookup[j].pop(i, None)
            assembled.update(assembly._idx)
            assemblies.append(assembly)

        n_extra = len(assemblies) - p.max_n_individuals
        if n_extra > 0:
            if self.safe_edge:
                ds_old = [self.mahalanobis(a) for a in assemblies]
                while len(assemblies) > p.max_n_individuals:
                    ds = []
                    for i, j in itertools.combinations(range(len(assemblies)), 2):
                        if assemblies[j] not in assemblies[i]:
                            temp = assemblies[i] + assemblies[j]
                            d = self.mahalanobis(temp)
                            ds.append((i, j, d - max(ds_old[i], ds_old[j]), d, temp))
                    if not ds:
                        break
                    min_ = sorted(ds, key=lambda x: x[2])
                    i, j, delta, d, new = min_[0]
                    if delta < 0 or len(min_) == 1:
                        assemblies[i] = new
                        assemblies.pop(j)
                        ds_old[i] = d
                        ds_old.pop(j)
                    else:
                        break
            elif p.force_fusion:
                assemblies = sorted(assemblies, key=len)
                for nrow in range(n_extra):
                    assembly = assemblies[nrow]
                    candidates = [a for a in assemblies[nrow:] if assembly not in a]
                    if not candidates:
                        continue
                    if len(candidates) == 1:
                        candidate = candidates[0]
                    else:
                        dists = [_nanmin_cdist(assembly.xy, c.xy) for c in candidates]
                        candidate = candidates[int(np.argmin(dists))]
                    ind = next(k for k, a in enumerate(assemblies) if a is candidate)
                    assemblies[ind] = assemblies[ind] + assembly
            else:
                store = {}
                for assembly in assemblies:
                    if len(assembly) != p.n_multibodyparts:
                        for i in assembly._idx:
                            store[i] = assembly
                used = {id(lk) for a in assemblies for lk in a._links}
                for link in [lk for lk in links if id(lk) not in used]:
                    i, j = link.idx
                    if i not in store or j not in store:
                        continue
                    if store[j] not in store[i]:
                        temp = store[i] + store[j]
                        old_j = store[j]
                        store[i].__dict__.update(temp.__dict__)
                        assemblies = [a for a in assemblies if a is not old_j]
                        for idx in old_j._idx:
                            store[idx] = store[i]

        for assembly in assemblies:
            if len(assembly) != p.n_multibodyparts:
                self.fill_assembly(assembly, lookup, assembled, False, "")
                assembled.update(assembly._idx)
        return assemblies, assembled

    # -- one frame -----------------------------------------------------------------------
    def assemble(self, data_dict, ind_frame):
        p = self.p
        joints = list(flatten_detections(data_dict))
        if not joints:
            return None, None
        bag = defaultdict(list)
        for joint in joints:
            bag[joint.label].append(joint)
        assembled = set()

        unique = None
        n_unique = p.n_keypoints - p.n_multibodyparts
        if n_unique > 0:
            unique = np.full((n_unique, 3), np.nan)
            for n, ind in enumerate(range(p.n_multibodyparts, p.n_keypoints)):
                dets = bag.get(ind)
                if not dets:
                    continue
                det = max(dets, key=lambda x: x.confidence)
                assembled.update(d.idx for d in dets)
                if det.confidence <= p.pcutoff and not p.add_discarded:
                    continue
                unique[n] = *det.pos, det.confidence
            if np.isnan(unique).all():
                unique = None

        if not any(i in bag for i in range(p.n_multibodyparts)):
            return None, unique

        if p.n_multibodyparts == 1:
            assemblies = []
            for joint in bag.get(0, []):
                if joint.confidence >= p.pcutoff:
                    ass = Assembly(1)
                    ass.add_joint(joint)
                    assemblies.append(ass)
            return assemblies, unique

        if p.max_n_individuals == 1:
            ass = Assembly(p.n_multibodyparts)
            for ind in range(p.n_multibodyparts):
                if bag.get(ind):
                    ass.add_joint(max(bag[ind], key=lambda x: x.confidence))
            return [ass], unique

        if p.identity_only:
            assemblies = []
            temp = sorted((j for j in joints if np.isfinite(j.confidence)), key=lambda x: x.group)
            for _, group in itertools.groupby(temp, lambda x: x.group):
                ass = Assembly(p.n_multibodyparts)
                for joint in sorted(group, key=lambda x: x.confidence, reverse=True):
                    if joint.confidence >= p.pcutoff and joint.label < p.n_multibodyparts:
                        ass.add_joint(joint)
                if len(ass):
                    assemblies.append(ass)
                    assembled.update(ass._idx)
        else:
            trees = [self.trees[ind_frame - j] for j in range(1, p.window_size + 1) if ind_frame - j in self.trees]
            links = self.extract_best_links(bag, data_dict.get("costs"), trees)
            if self.kde is not None:
                for link in links[::-1]:
                    # a Python float: NumPy keeps the affinity in the costs' dtype
                    prob = float(max(self.calc_link_probability(link), 0.001))
                    link.affinity = link.affinity * prob
                    if link.affinity < p.min_affinity:
                        links = [lk for lk in links if lk is not link]
            if p.window_size >= 1 and links:
                self.trees[ind_frame] = np.array([lk.to_vector() for lk in links], dtype=float)
            assemblies, assembled_ = self.build_assemblies(links)
            assembled.update(assembled_)

        discarded = set(j for j in joints if j.idx not in assembled and np.isfinite(j.confidence))
        for assembly in assemblies[::-1]:
            if 0 < assembly.n_links < p.min_n_links or not len(assembly):
                for link in assembly._links:
                    discarded.update((link.j1, link.j2))
                assemblies = [a for a in assemblies if a is not assembly]

        if 0 < p.max_overlap < 1:
            if self.kde is not None:
                scores = [-self.mahalanobis(a) for a in assemblies]
            else:
                scores = [a._affinity for a in assemblies]
            lst = list(zip(scores, assemblies))
            assemblies = []
            while lst:
                temp = max(lst, key=lambda x: x[0])
                assemblies.append(temp[1])
                lst = [x for x in lst if x is not temp]
                lst = [(s, a) for s, a in lst if temp[1].intersection_with(a) < p.max_overlap]

        if len(assemblies) > p.max_n_individuals:
            assemblies = sorted(assemblies, key=len, reverse=True)
            for assembly in assemblies[p.max_n_individuals:]:
                for link in assembly._links:
                    discarded.update((link.j1, link.j2))
            assemblies = assemblies[: p.max_n_individuals]

        if p.add_discarded and discarded:
            for joint in sorted(discarded, key=lambda x: x.confidence, reverse=True):
                if self.safe_edge:
                    for assembly in assemblies:
                        if joint.label in assembly._visible:
                            continue
                        d_old = self.mahalanobis(assembly)
                        assembly.add_joint(joint)
                        d_new = self.mahalanobis(assembly)
                        if d_new >= d_old:
                            assembly.remove_joint(joint)
                        else:
                            break
                else:
                    dists = []
                    for i, assembly in enumerate(assemblies):
                        if joint.label in assembly._visible:
                            continue
                        dists.append((i, _nanmin_cdist(assembly.xy, np.atleast_2d(joint.pos))))
                    if not dists:
                        continue
                    assemblies[min(dists, key=itemgetter(1))[0]].add_joint(joint)
        return assemblies, unique


def _components(edges):
    """Connected components in order of first node appearance (as networkx yields them)."""
    adj: dict = {}
    for i, j in edges:
        adj.setdefault(i, []).append(j)
        adj.setdefault(j, []).append(i)
    seen = set()
    for node in adj:
        if node in seen:
            continue
        comp, todo = {node}, [node]
        while todo:
            for m in adj[todo.pop()]:
                if m not in comp:
                    comp.add(m)
                    todo.append(m)
        seen |= comp
        yield comp


def _nanmin_cdist(a, b):
    d = np.sqrt(((np.asarray(a)[:, None, :] - np.asarray(b)[None]) ** 2).sum(axis=2))
    d = d[~np.isnan(d)]
    return d.min() if d.size else np.nan


def _condensed_index(n, i, j):
    if i == j:
        raise ValueError("i and j must differ")
    if i < j:
        i, j = j, i
    return n * j - j * (j + 1) // 2 + i - 1 - j


def mahalanobis(kde, assembly, nan_policy="little"):
    """DLC's ``calc_assembly_mahalanobis_dist`` (distance only)."""
    dists = assembly.calc_pairwise_distances() - kde.mean
    mask = np.isnan(dists)
    if not len(assembly) or mask.all():
        return np.inf
    if nan_policy == "little":
        inds = np.flatnonzero(~mask)
        dists = dists[inds]
        inv_cov = kde.inv_cov[np.ix_(inds, inds)]
        factor = kde.d / len(inds)
    else:
        dists = np.where(mask, 0, dists)
        inv_cov = kde.inv_cov
        factor = 1
    dot = dists @ inv_cov
    return factor * np.sqrt(np.sum(dot * dists, axis=-1))


def assemble_frames(frames, params, first_index=0, kde=None, trees=None):
    """Assemble frames one by one (see :func:`mapose.kernels.assembly.assemble_frames`).

    Returns
    -------
    list of (list of Assembly or None, ndarray of shape (n_unique, 3) or None)
    """
    fa = FrameAssembler(params, kde)
    if trees:
        fa.trees.update(trees)
    return [fa.assemble(f, first_index + k) for k, f in enumerate(frames)]
