// Temporal coherence (window_size >= 1) for the assembler: an exact nearest-neighbour
// search over the 4-D link vectors [xs, ys, xt, yt] of a past frame (DLC keeps a
// scipy cKDTree per frame and queries each candidate pair's vector).
//
// Exactness: the squared distance of a point is computed as the brute force always did,
// acc = 0; acc += d0*d0; ... acc += d3*d3 (dimension order, no FMA: -ffp-contract=off),
// and the search returns the minimum of exactly these values.  A leaf (or subtree) is
// skipped only when a lower bound computed with the same operations on the distances to
// its bounding box is >= the best value found: floating-point subtraction, squaring and
// addition are monotone, so that bound never exceeds the computed value of any point
// inside the box, and the minimum is the brute force's to the last bit.
//
// Layout: a balanced k-d tree (median splits on the widest dimension) whose leaves of
// <= 64 points also form a flat table.  The assembler's queries come in products (every
// source detection of an edge with every target detection), so each joint's share of
// every leaf's bound is computed once per frame and a query only adds two of them per
// leaf (nearest_sq_terms); the tree itself serves LinkTree.query (cKDTree.query).  Points with a non-finite
// coordinate never win the brute force (their value is inf or NaN, and `acc < best`
// starts from inf), so they are left out of the tree; a query with a non-finite
// coordinate has no finite value either and returns inf.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mapose_asm {

class LinkTree4 {
  public:
    // vecs: n x 4 row-major link vectors, in link order (kept: cKDTree's `data`)
    explicit LinkTree4(std::vector<double> vecs) : data_(std::move(vecs)) { build(); }

    size_t size() const { return data_.size() / 4; }
    const std::vector<double>& data() const { return data_; }

    // Nearest stored vector: (squared distance, index of the first vector in link
    // order with that distance), or (inf, size()) when none is finite (cKDTree.query).
    std::pair<double, size_t> nearest(const double* v) const {
        double best = std::numeric_limits<double>::infinity();
        size_t arg = size();
        if (nodes_.empty() || !finite4(v)) return {best, arg};
        int stack[64];
        int top = 0;
        stack[top++] = 0;
        while (top) {
            const Node& nd = nodes_[size_t(stack[--top])];
            if (box_sq(nd, v) > best) continue;  // ties can still lower the index
            if (nd.left < 0) {
                for (int r = nd.lo; r < nd.hi; ++r) {
                    const double p[4] = {px_[0][size_t(r)], px_[1][size_t(r)], px_[2][size_t(r)], px_[3][size_t(r)]};
                    const double acc = dist_sq(v, p);
                    const size_t id = size_t(perm_[size_t(r)]);
                    if (acc < best || (acc == best && id < arg)) { best = acc; arg = id; }
                }
                continue;
            }
            const int a = nd.left, b = nd.left + 1;
            const bool left_first = v[nd.dim] <= nd.split;
            stack[top++] = left_first ? b : a;
            stack[top++] = left_first ? a : b;
        }
        return {best, arg};
    }

    // The leaves as a flat table: the batched queries below bound every leaf at once
    size_t n_leaves() const { return leaf_lo_.size(); }

    // Per-joint parts of the leaves' lower bounds (dist_sq's partial sums): as a source,
    // S[L] = (0 + e0^2) + e1^2 with e_c the distance of (x, y) to leaf L's box in
    // dimension c; as a target, T2[L] = e2^2 and T3[L] = e3^2.  The bound of the vector
    // [source, target] is then (S + T2) + T3, box_sq's value.
    void source_terms(double x, double y, double* S) const {
        const size_t nl = n_leaves();
        for (size_t l = 0; l < nl; ++l) {
            const double e0 = std::max(std::max(box_lo_[0][l] - x, x - box_hi_[0][l]), 0.0);
            const double e1 = std::max(std::max(box_lo_[1][l] - y, y - box_hi_[1][l]), 0.0);
            S[l] = (0.0 + e0 * e0) + e1 * e1;
        }
    }
    void target_terms(double x, double y, double* T2, double* T3) const {
        const size_t nl = n_leaves();
        for (size_t l = 0; l < nl; ++l) {
            const double e2 = std::max(std::max(box_lo_[2][l] - x, x - box_hi_[2][l]), 0.0);
            const double e3 = std::max(std::max(box_lo_[3][l] - y, y - box_hi_[3][l]), 0.0);
            T2[l] = e2 * e2;
            T3[l] = e3 * e3;
        }
    }

    // Smallest squared distance from v to a stored vector (inf when there is none),
    // from the leaf table: the leaf of smallest bound first, then every leaf whose bound
    // is below the best value so far (a skipped leaf's points are all >= its bound >=
    // the best: the minimum is exact).  S, T2, T3: the terms of v's source and target
    // (source_terms, target_terms); lb: scratch of n_leaves().
    double nearest_sq_terms(const double* v, const double* S, const double* T2, const double* T3, double* lb) const {
        double best = std::numeric_limits<double>::infinity();
        const size_t nl = n_leaves();
        if (nl == 0 || !finite4(v)) return best;
        size_t first = 0;
        double low = std::numeric_limits<double>::infinity();
        for (size_t l = 0; l < nl; ++l) {
            const double b = (S[l] + T2[l]) + T3[l];
            lb[l] = b;
            first = b < low ? l : first;
            low = b < low ? b : low;
        }
        best = leaf_min(leaf_lo_[first], leaf_hi_[first], v, best);
        for (size_t l = 0; l < nl; ++l)
            if (lb[l] < best) best = leaf_min(leaf_lo_[l], leaf_hi_[l], v, best);
        return best;
    }

    static double dist_sq(const double* v, const double* p) {
        double acc = 0.0;
        for (int c = 0; c < 4; ++c) {
            const double dd = v[c] - p[c];
            acc += dd * dd;
        }
        return acc;
    }

  private:
    struct Node {
        double lo_b[4], hi_b[4];  // bounding box of the node's points
        double split = 0.0;
        int lo = 0, hi = 0;       // points [lo, hi) of px_
        int left = -1;            // children left, left + 1; -1: leaf
        int dim = 0;
    };
    static constexpr int LEAF = 64;

    std::vector<double> data_;  // link order
    std::vector<double> px_[4]; // finite vectors, tree order, one array per coordinate
    std::vector<int> perm_;     // tree order -> link order
    std::vector<Node> nodes_;
    std::vector<int> leaf_lo_, leaf_hi_;  // leaf table: point ranges
    std::vector<double> box_lo_[4], box_hi_[4];  // and bounding boxes, per dimension

    static bool finite4(const double* v) {
        return std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) && std::isfinite(v[3]);
    }

    // the lower bound: per dimension the distance to the box (0 inside), summed in
    // dimension order from 0 as dist_sq sums
    static double box_sq(const Node& nd, const double* v) {
        double acc = 0.0;
        for (int c = 0; c < 4; ++c) {
            // |distance to the box| (0 inside), branch-free: lo - v is exactly -(v - lo)
            const double dd = std::max(std::max(nd.lo_b[c] - v[c], v[c] - nd.hi_b[c]), 0.0);
            acc += dd * dd;
        }
        return acc;
    }

    // min(best, squared distances of points [lo, hi)): dist_sq's operations, two points
    // at a time (min is exact: no rounding, and no NaN among finite points and queries)
    double leaf_min(int lo, int hi, const double* v, double best) const {
        int r = lo;
#if defined(__SSE2__)
        const __m128d v0 = _mm_set1_pd(v[0]), v1 = _mm_set1_pd(v[1]), v2 = _mm_set1_pd(v[2]), v3 = _mm_set1_pd(v[3]);
        __m128d b = _mm_set1_pd(best);
        for (; r + 2 <= hi; r += 2) {
            const size_t q = size_t(r);
            const __m128d d0 = _mm_sub_pd(v0, _mm_loadu_pd(&px_[0][q]));
            const __m128d d1 = _mm_sub_pd(v1, _mm_loadu_pd(&px_[1][q]));
            const __m128d d2 = _mm_sub_pd(v2, _mm_loadu_pd(&px_[2][q]));
            const __m128d d3 = _mm_sub_pd(v3, _mm_loadu_pd(&px_[3][q]));
            __m128d acc = _mm_add_pd(_mm_setzero_pd(), _mm_mul_pd(d0, d0));
            acc = _mm_add_pd(acc, _mm_mul_pd(d1, d1));
            acc = _mm_add_pd(acc, _mm_mul_pd(d2, d2));
            acc = _mm_add_pd(acc, _mm_mul_pd(d3, d3));
            b = _mm_min_pd(acc, b);  // acc < b ? acc : b, per lane
        }
        double lanes[2];
        _mm_storeu_pd(lanes, b);
        best = lanes[0] < lanes[1] ? lanes[0] : lanes[1];
#endif
        for (; r < hi; ++r) {
            const double p[4] = {px_[0][size_t(r)], px_[1][size_t(r)], px_[2][size_t(r)], px_[3][size_t(r)]};
            const double acc = dist_sq(v, p);
            if (acc < best) best = acc;
        }
        return best;
    }

    void build() {
        const size_t n = data_.size() / 4;
        for (size_t r = 0; r < n; ++r)
            if (finite4(&data_[r * 4])) perm_.push_back(int(r));
        if (perm_.empty()) return;
        // balanced: depth <= log2(n / LEAF) + 1, far below the query stack's 64 / 2
        nodes_.reserve(2 * (perm_.size() / LEAF + 1));
        nodes_.emplace_back();
        build_node(0, 0, int(perm_.size()));
        for (int c = 0; c < 4; ++c) {
            px_[c].resize(perm_.size());
            for (size_t r = 0; r < perm_.size(); ++r) px_[c][r] = data_[size_t(perm_[r]) * 4 + size_t(c)];
        }
        for (const Node& nd : nodes_) {
            if (nd.left >= 0) continue;
            leaf_lo_.push_back(nd.lo);
            leaf_hi_.push_back(nd.hi);
            for (int c = 0; c < 4; ++c) {
                box_lo_[c].push_back(nd.lo_b[c]);
                box_hi_[c].push_back(nd.hi_b[c]);
            }
        }
    }

    void build_node(size_t at, int lo, int hi) {
        Node nd;
        nd.lo = lo;
        nd.hi = hi;
        for (int c = 0; c < 4; ++c) {
            nd.lo_b[c] = std::numeric_limits<double>::infinity();
            nd.hi_b[c] = -std::numeric_limits<double>::infinity();
        }
        for (int r = lo; r < hi; ++r) {
            const double* p = &data_[size_t(perm_[size_t(r)]) * 4];
            for (int c = 0; c < 4; ++c) {
                nd.lo_b[c] = std::min(nd.lo_b[c], p[c]);
                nd.hi_b[c] = std::max(nd.hi_b[c], p[c]);
            }
        }
        if (hi - lo > LEAF) {
            int dim = 0;
            for (int c = 1; c < 4; ++c)
                if (nd.hi_b[c] - nd.lo_b[c] > nd.hi_b[dim] - nd.lo_b[dim]) dim = c;
            if (nd.hi_b[dim] > nd.lo_b[dim]) {  // all points equal: stays a leaf
                const int mid = lo + (hi - lo) / 2;
                std::nth_element(perm_.begin() + lo, perm_.begin() + mid, perm_.begin() + hi, [&](int p, int q) {
                    return data_[size_t(p) * 4 + size_t(dim)] < data_[size_t(q) * 4 + size_t(dim)];
                });
                nd.dim = dim;
                nd.split = data_[size_t(perm_[size_t(mid)]) * 4 + size_t(dim)];
                nd.left = int(nodes_.size());
                nodes_.emplace_back();
                nodes_.emplace_back();
                nodes_[at] = nd;
                build_node(size_t(nd.left), lo, mid);
                build_node(size_t(nd.left) + 1, mid, hi);
                return;
            }
        }
        nodes_[at] = nd;
    }
};

// Past frames' trees for one frame, nearest first (tree n = 1, 2, ...: position among
// the frames that have one, as DLC lists them)
struct Trees { std::vector<const LinkTree4*> list; };

// Per-frame scratch of the temporal weights: each joint's bound terms per tree,
// computed on first use (a joint is the source or target of many edges)
struct WindowScratch {
    std::vector<std::vector<double>> src, tgt2, tgt3;  // per tree: n_joints x n_leaves
    std::vector<std::vector<char>> has_src, has_tgt;   // per tree, per joint
    std::vector<double> lb;
    void begin_frame(size_t n_trees, size_t n_joints) {
        src.resize(n_trees); tgt2.resize(n_trees); tgt3.resize(n_trees);
        has_src.resize(n_trees); has_tgt.resize(n_trees);
        for (size_t n = 0; n < n_trees; ++n) {
            has_src[n].assign(n_joints, 0);
            has_tgt[n].assign(n_joints, 0);
        }
    }
};

// DLC's temporal weights of one edge: w[a * nt + b] = sum over trees n of
// exp(-gamma * n * d_n(a, b)), d_n the nearest distance of [xs_a, ys_a, xt_b, yt_b] to
// tree n's vectors (the caller divides by the number of trees).  Only the pairs with
// need(a, b) are computed (the others are never read: 0).  brute: scan every stored
// vector instead of the tree (the test oracle; same values to the last bit).  ws must
// have had begin_frame(n_trees, n_joints) called for this frame.
template <class XF, class YF, class NeedF>
inline void window_weights(const Trees& trees, double gamma, bool brute, const std::vector<int>& ds,
                           const std::vector<int>& dt, XF jx, YF jy, NeedF need, WindowScratch& ws,
                           std::vector<double>& w) {
    const size_t ns = ds.size(), nt = dt.size();
    w.assign(ns * nt, 0.0);
    for (size_t n = 0; n < trees.list.size(); ++n) {
        const LinkTree4& tree = *trees.list[n];
        const double g = -gamma * double(n + 1);
        const double* tv = tree.data().data();
        const size_t m = tree.size(), nl = tree.n_leaves();
        if (!brute) {
            std::vector<double>&src = ws.src[n], &t2 = ws.tgt2[n], &t3 = ws.tgt3[n];
            const size_t nj = ws.has_src[n].size();
            if (src.size() < nj * nl) { src.resize(nj * nl); t2.resize(nj * nl); t3.resize(nj * nl); }
            for (size_t a = 0; a < ns; ++a) {
                const int j = ds[a];
                if (!ws.has_src[n][size_t(j)]) { tree.source_terms(jx(j), jy(j), &src[size_t(j) * nl]); ws.has_src[n][size_t(j)] = 1; }
            }
            for (size_t b = 0; b < nt; ++b) {
                const int j = dt[b];
                if (!ws.has_tgt[n][size_t(j)]) {
                    tree.target_terms(jx(j), jy(j), &t2[size_t(j) * nl], &t3[size_t(j) * nl]);
                    ws.has_tgt[n][size_t(j)] = 1;
                }
            }
            if (ws.lb.size() < nl) ws.lb.resize(nl);
        }
        for (size_t a = 0; a < ns; ++a) {
            for (size_t b = 0; b < nt; ++b) {
                if (!need(a, b)) continue;
                const double v[4] = {jx(ds[a]), jy(ds[a]), jx(dt[b]), jy(dt[b])};
                double best = std::numeric_limits<double>::infinity();
                if (brute) {
                    for (size_t r = 0; r < m; ++r) {
                        const double acc = LinkTree4::dist_sq(v, tv + r * 4);
                        if (acc < best) best = acc;
                    }
                } else {
                    best = tree.nearest_sq_terms(v, &ws.src[n][size_t(ds[a]) * nl], &ws.tgt2[n][size_t(dt[b]) * nl],
                                                 &ws.tgt3[n][size_t(dt[b]) * nl], ws.lb.data());
                }
                w[a * nt + b] += std::exp(g * std::sqrt(best));
            }
        }
    }
}

}  // namespace mapose_asm

namespace mapose_asm {

// Shared ownership: the tree of a frame is read by the next window_size frames, kept by
// the Python-side `_trees` dict between calls, never copied.
using TreePtr = std::shared_ptr<const LinkTree4>;
using TreeMap = std::map<int64_t, TreePtr>;

inline TreePtr make_tree(const double* vecs, size_t n_vectors) {
    return std::make_shared<const LinkTree4>(std::vector<double>(vecs, vecs + n_vectors * 4));
}
inline size_t tree_size(const TreePtr& t) { return t ? t->size() : 0; }
inline const double* tree_data(const TreePtr& t) { return t ? t->data().data() : nullptr; }
// cKDTree.query(x) for one vector: (distance, index), or (inf, size()) without a
// finite neighbour
inline double tree_query(const TreePtr& t, const double* v, long* index) {
    const std::pair<double, size_t> r = t->nearest(v);
    *index = long(r.second);
    return std::sqrt(r.first);
}

}  // namespace mapose_asm
