// Calibrated assembly (DLC's Assembler after calibrate(): a KDE of the pairwise squared
// keypoint distances of labelled poses), run by the compiled per-frame assembler:
//   * link probabilities scale the affinities, links below min_affinity are dropped
//     (spec 2.3 step 7);
//   * assemblies grow only along links that lower their Mahalanobis distance, with
//     DLC's tabu list (_fill_assembly with safe_edge);
//   * superfluous assemblies are merged by the smallest Mahalanobis increase;
//   * non-maximum suppression ranks by -Mahalanobis distance;
//   * add_discarded attaches a joint to the first assembly whose distance it lowers.
// The functions are templates over the FrameAssembler (assembly_core.h) so that this
// header only needs its members at instantiation.
//
// Exactness: the link probability repeats DLC's scalar operations in the same types
// (the length in the coordinates' dtype with libm's pow, as NumPy scalars compute it;
// libm erf, which is what math.erf calls), so it is bit-identical.  The Mahalanobis
// distance v.M.v sums v.M in index order and (v.M)*v as NumPy's pairwise sum does; NumPy
// computes v @ M with BLAS (dgemv, FMA kernels), so the distance can differ in the last
// bits: only exact ties between two distances can then resolve differently.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace mapose_asm {

struct Calib {
    int d = 0;                         // n_multi * (n_multi - 1) / 2
    const double* mean = nullptr;      // (d,) kde.mean
    const double* var = nullptr;       // (d,) diagonal of kde.covariance
    const double* inv_cov = nullptr;   // (d, d) kde.inv_cov, row-major
    bool little = true;                // nan_policy == "little" (the fills' policy)
};

// NumPy's pairwise summation of a contiguous float64 array (np.sum: 0.0 + this)
inline double np_pairwise_sum(const double* a, size_t n) {
    if (n < 8) {
        double res = -0.0;
        for (size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        size_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + size_t(j)];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

// Per-frame scratch of the calibrated paths (a member of the FrameAssembler)
struct CalibState {
    std::vector<double> v, dot, prod;
    std::vector<int> obs;
    std::vector<signed char> link_dtype;
    // DLC restores an assembly's `_idx` from a set.copy() when a safe fill rejects a
    // link; a copied CPython set can iterate in another order than the replayed
    // insertions, so the set is tracked for the assemblies that went through a safe fill
    std::vector<PySetEmu> idx_set;
    std::vector<char> idx_valid;
    std::vector<HeapItemT> stack, tabu;
    Asm snap;           // the safe fill's undo snapshot (buffers reused)
    PySetEmu snap_idx;
    std::vector<char> visited;
    std::vector<double> score;
    void begin_frame() { idx_valid.clear(); }
};

// CPython's set.copy(): make_new_set + set_merge into an empty set (one resize up front,
// then either the slots verbatim or a clean re-insertion in table order)
inline void py_set_copy(const PySetEmu& src, PySetEmu& dst) {
    dst.clear();
    if (src.used == 0) return;
    if (src.used * 5 >= dst.mask * 3) {
        size_t newsize = 8;
        while (newsize <= src.used * 2) newsize <<= 1;
        dst.table.assign(newsize, PySetEmu::Entry{0, -1});
        dst.mask = newsize - 1;
    }
    if (dst.mask == src.mask && src.fill == src.used) {
        dst.table = src.table;
    } else {
        for (const PySetEmu::Entry& e : src.table)
            if (e.key >= 0) PySetEmu::insert_clean(dst.table, dst.mask, e.key, e.hash);
    }
    dst.fill = dst.used = src.used;
}

// Assembler.calc_assembly_mahalanobis_dist(assembly, nan_policy=...) (distance only)
template <class FA>
double calib_mahalanobis(FA& fa, const Asm& a, bool little) {
    const Calib& C = *fa.P.calib;
    CalibState& S = fa.cal;
    const int n = fa.P.n_multi;
    const size_t d = size_t(C.d);
    S.v.resize(d);
    size_t k = 0, n_obs = 0;
    for (int i = 0; i < n; ++i) {
        const double xi = a.data[size_t(i) * 4], yi = a.data[size_t(i) * 4 + 1];
        for (int j = i + 1; j < n; ++j, ++k) {
            const double dx = xi - a.data[size_t(j) * 4], dy = yi - a.data[size_t(j) * 4 + 1];
            S.v[k] = (dx * dx + dy * dy) - C.mean[k];
            n_obs += !std::isnan(S.v[k]);
        }
    }
    if (a.n_visible == 0 || n_obs == 0) return std::numeric_limits<double>::infinity();
    S.obs.clear();
    if (little) {
        for (size_t q = 0; q < d; ++q)
            if (!std::isnan(S.v[q])) S.obs.push_back(int(q));
    } else {
        for (size_t q = 0; q < d; ++q) {
            if (std::isnan(S.v[q])) S.v[q] = 0.0;
            S.obs.push_back(int(q));
        }
    }
    const size_t m = S.obs.size();
    // dot_c = sum over r (in order) of v_r * M[r, c]: accumulated row by row, so every
    // dot_c sees the same sequence of additions as a per-column loop, on contiguous rows
    S.dot.assign(m, 0.0);
    S.prod.resize(m);
    double* dot = S.dot.data();
    if (m == d) {
        for (size_t r = 0; r < d; ++r) {
            const double vr = S.v[r];
            const double* row = C.inv_cov + r * d;
            for (size_t c = 0; c < d; ++c) dot[c] += vr * row[c];
        }
    } else {
        for (size_t r = 0; r < m; ++r) {
            const double vr = S.v[size_t(S.obs[r])];
            const double* row = C.inv_cov + size_t(S.obs[r]) * d;
            for (size_t c = 0; c < m; ++c) dot[c] += vr * row[size_t(S.obs[c])];
        }
    }
    for (size_t c = 0; c < m; ++c) S.prod[c] = dot[c] * S.v[size_t(S.obs[c])];
    const double q = 0.0 + np_pairwise_sum(S.prod.data(), m);
    const double factor = little ? double(C.d) / double(m) : 1.0;
    return factor * std::sqrt(q);
}

// round_to_half (assembly_core.h) without libm calls: the exponent from the bits, then
// a power-of-two scaling (exact) and the 2^52 trick for the round-half-even to integer
inline double half_round(double d) {
    const double a = std::fabs(d);
    if (!(a < 65520.0)) return round_to_half(d);  // inf, NaN, overflow
    uint64_t bits;
    std::memcpy(&bits, &a, sizeof bits);
    const int e = std::max(int((bits >> 52) & 0x7ff) - 1023, -14);  // subnormal halves: 2^-24 spacing
    const uint64_t qb = uint64_t(e - 10 + 1023) << 52, ib = uint64_t(1023 - (e - 10)) << 52;
    double q, iq;
    std::memcpy(&q, &qb, sizeof q);
    std::memcpy(&iq, &ib, sizeof iq);
    const double magic = 4503599627370496.0;  // 2^52
    volatile double t = a * iq + magic;  // volatile: the compiler must not fold (x + m) - m
    return std::copysign((t - magic) * q, d);
}

// Promoted dtype of two coordinates (0: float64, 1: float32, 2: float16)
inline int coord_dtype(const signed char* xdt, int j1, int j2) {
    if (xdt == nullptr) return 0;
    return std::min(int(xdt[j1]), int(xdt[j2]));
}

// libm's pow(x, 2), what NumPy scalars and Python floats call for `** 2`: not always the
// correctly rounded x * x, and GCC folds a constant exponent 2 into x * x, hence the
// volatile exponent
inline double libm_square(double x) {
    volatile double two = 2.0;
    return std::pow(x, double(two));
}
inline float libm_squaref(float x) {
    volatile float two = 2.0f;
    return std::pow(x, float(two));
}

// Link.length: sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2) on NumPy scalars of the coordinates'
// dtype (float16 arithmetic goes through float32 and rounds to half after each op)
inline double link_length(double x1, double y1, double x2, double y2, int dtype) {
    if (dtype == 1) {
        const float dx = float(x1) - float(x2), dy = float(y1) - float(y2);
        return std::sqrt(double(libm_squaref(dx) + libm_squaref(dy)));
    }
    if (dtype == 2) {
        // half ** 2 is powf on the float values: exact (22 bits), i.e. the product
        const double dx = half_round(double(float(x1) - float(x2)));
        const double dy = half_round(double(float(y1) - float(y2)));
        const double dx2 = half_round(double(float(dx) * float(dx)));
        const double dy2 = half_round(double(float(dy) * float(dy)));
        return std::sqrt(half_round(double(float(dx2) + float(dy2))));
    }
    return std::sqrt(libm_square(x1 - x2) + libm_square(y1 - y2));
}

// Assembler.calc_link_probability
template <class FA>
double calib_link_probability(FA& fa, const LinkOut& L) {
    const Calib& C = *fa.P.calib;
    int i = fa.jl(L.j1), j = fa.jl(L.j2);
    if (i < j) std::swap(i, j);
    const int n = fa.P.n_multi;
    const int k = n * j - j * (j + 1) / 2 + i - 1 - j;
    const double len = link_length(fa.jx(L.j1), fa.jy(L.j1), fa.jx(L.j2), fa.jy(L.j2),
                                   coord_dtype(fa.F->xdtype, L.j1, L.j2));
    const double z = (libm_square(len) - C.mean[k]) / C.var[k];
    return 2.0 * (1.0 - 0.5 * (1.0 + std::erf(std::fabs(z) / std::sqrt(2.0))));
}

// After extract_best_links: in reverse link order, affinity *= max(p, 0.001) in the
// costs' dtype (a Python float times a NumPy scalar keeps the scalar's dtype), and links
// now below min_affinity (compared in that dtype) are removed
template <class FA>
void calib_scale_links(FA& fa) {
    auto& links = fa.links;
    const Params& P = fa.P;
    CalibState& S = fa.cal;
    S.begin_frame();
    // each edge's links are contiguous and joint its two bodyparts: recover the dtype
    S.link_dtype.assign(links.size(), 0);
    size_t li = 0;
    for (int e = 0; e < P.n_edges && li < links.size(); ++e) {
        if (!fa.F->has_cost[e] || P.edge_s[e] < 0) continue;
        while (li < links.size() && fa.jl(links[li].j1) == P.edge_s[e] && fa.jl(links[li].j2) == P.edge_t[e])
            S.link_dtype[li++] = fa.F->dtype[e];
    }
    std::vector<char> keep(links.size(), 1);
    for (size_t q = links.size(); q-- > 0;) {
        const int dt = S.link_dtype[q];
        double p = calib_link_probability(fa, links[q]);
        p = 0.001 > p ? 0.001 : p;  // Python's max(p, 0.001)
        const double pr = dt == 2 ? half_round(p) : round_to_dtype(p, dt);
        const double prod = links[q].affinity * pr;
        links[q].affinity = dt == 2 ? half_round(prod) : round_to_dtype(prod, dt);
        if (links[q].affinity < P.min_aff[dt]) keep[q] = 0;
    }
    size_t w = 0;
    for (size_t q = 0; q < links.size(); ++q)
        if (keep[q]) links[w++] = links[q];
    links.resize(w);
}

// The `_idx` set of assembly ia as DLC holds it (tracked or replayed)
template <class FA>
PySetEmu& calib_idx_set(FA& fa, int ia) {
    CalibState& S = fa.cal;
    if (S.idx_set.size() <= size_t(ia)) S.idx_set.resize(size_t(ia) + 1);
    if (S.idx_valid.size() <= size_t(ia)) S.idx_valid.resize(size_t(ia) + 1, 0);
    if (!S.idx_valid[size_t(ia)]) {
        PySetEmu& s = S.idx_set[size_t(ia)];
        s.clear();
        const Asm& a = fa.pool[size_t(ia)];
        for (int j : a.joint_order)
            if (a.in_idx[size_t(j)]) s.add(j, j);
        S.idx_valid[size_t(ia)] = 1;
    }
    return S.idx_set[size_t(ia)];
}

// seed_order hook: the tracked set's iteration order, when there is one
template <class FA>
bool calib_seeds(FA& fa, int ia) {
    if (fa.P.calib == nullptr || size_t(ia) >= fa.cal.idx_valid.size() || !fa.cal.idx_valid[size_t(ia)]) return false;
    fa.seeds.clear();
    fa.cal.idx_set[size_t(ia)].for_each([&](int k) { fa.seeds.push_back(k); });
    return true;
}

// _fill_assembly with safe_edge=True
template <class FA>
void calib_fill_safe(FA& fa, int ia) {
    CalibState& S = fa.cal;
    const bool little = fa.P.calib->little;
    auto& links = fa.links;
    PySetEmu& idx = calib_idx_set(fa, ia);
    S.stack.clear();
    S.tabu.clear();
    S.visited.assign(links.size(), 0);
    long counter = 0;
    auto push = [&](int i) {
        const Asm& a = fa.pool[size_t(ia)];
        fa.for_each_lookup(i, [&](int other, int li) {
            if (a.in_idx[size_t(other)]) return;
            const int pid = fa.link_pair_id[size_t(li)];
            if (S.visited[size_t(pid)]) return;
            FA::heap_push(S.stack, HeapItemT{-links[size_t(li)].affinity, counter++, li});
            S.visited[size_t(pid)] = 1;
        });
    };
    fa.seeds.clear();
    fa.seed_order(ia);
    const std::vector<int> seeds = fa.seeds;
    for (int s : seeds) push(s);
    while (!S.stack.empty() && fa.pool[size_t(ia)].n_visible < fa.P.n_multi) {
        const HeapItemT best = FA::heap_pop(S.stack);
        Asm& a = fa.pool[size_t(ia)];
        const LinkOut& L = links[size_t(best.link)];
        int nw;
        if (a.in_idx[size_t(L.j1)]) nw = L.j2;
        else if (a.in_idx[size_t(L.j2)]) nw = L.j1;
        else continue;
        if (fa.assembled[size_t(nw)]) continue;
        const double d_old = calib_mahalanobis(fa, a, little);
        S.snap.data = a.data;  // assignments reuse the buffers' capacity
        S.snap.visible = a.visible;
        S.snap.n_visible = a.n_visible;
        S.snap.in_idx = a.in_idx;
        S.snap.aff = a.aff;
        S.snap.links = a.links;
        S.snap.joint_order = a.joint_order;
        py_set_copy(idx, S.snap_idx);
        const bool in1 = a.in_idx[size_t(L.j1)], in2 = a.in_idx[size_t(L.j2)];
        if (!fa.add_link(a, best.link)) continue;  // (an affinity-only add stays, as in DLC)
        if (!in1 && a.in_idx[size_t(L.j1)]) idx.add(L.j1, L.j1);
        if (!in2 && a.in_idx[size_t(L.j2)]) idx.add(L.j2, L.j2);
        const double d = calib_mahalanobis(fa, a, little);
        if (d < d_old) {
            push(nw);
            if (!S.tabu.empty()) {
                const HeapItemT t = FA::heap_pop(S.tabu);
                FA::heap_push(S.stack, HeapItemT{-links[size_t(t.link)].affinity, counter++, t.link});
            }
        } else {
            FA::heap_push(S.tabu, HeapItemT{d - d_old, counter++, best.link});
            a.data = S.snap.data;
            a.visible = S.snap.visible;
            a.n_visible = S.snap.n_visible;
            a.in_idx = S.snap.in_idx;
            a.aff = S.snap.aff;
            a.links = S.snap.links;
            a.joint_order = S.snap.joint_order;
            std::swap(idx, S.snap_idx);
        }
    }
}

// Too many assemblies, calibrated: merge the label-disjoint pair whose Mahalanobis
// distance grows least, while that is a decrease or the only pair
template <class FA>
void calib_merge(FA& fa, std::vector<int>& out) {
    std::vector<double> ds_old;
    for (int ia : out) ds_old.push_back(calib_mahalanobis(fa, fa.pool[size_t(ia)], true));
    struct Cand { size_t i, j; double delta, d; int merged; };
    std::vector<Cand> ds;
    std::vector<int> order;
    while (int(out.size()) > fa.P.max_n) {
        ds.clear();
        for (size_t i = 0; i < out.size(); ++i) {
            for (size_t j = i + 1; j < out.size(); ++j) {
                if (fa.shares_label(fa.pool[size_t(out[i])], fa.pool[size_t(out[j])])) continue;
                const int m = fa.merged(out[i], out[j]);
                const double d = calib_mahalanobis(fa, fa.pool[size_t(m)], true);
                const double mx = ds_old[j] > ds_old[i] ? ds_old[j] : ds_old[i];  // Python's max
                ds.push_back(Cand{i, j, d - mx, d, m});
            }
        }
        if (ds.empty()) break;
        order.resize(ds.size());
        for (size_t q = 0; q < ds.size(); ++q) order[q] = int(q);
        py_sort(order, [&](int p, int q) { return ds[size_t(p)].delta < ds[size_t(q)].delta; }, false);
        const Cand& c = ds[size_t(order[0])];
        if (!(c.delta < 0 || ds.size() == 1)) break;
        out[c.i] = c.merged;
        out.erase(out.begin() + long(c.j));
        ds_old[c.i] = c.d;
        ds_old.erase(ds_old.begin() + long(c.j));
    }
}

// NMS scores: -Mahalanobis distance (nan_policy "little") per pool index
template <class FA>
const std::vector<double>& calib_scores(FA& fa, const std::vector<int>& asms) {
    CalibState& S = fa.cal;
    if (S.score.size() < fa.pool_n) S.score.resize(fa.pool_n);
    for (int ia : asms) S.score[size_t(ia)] = -calib_mahalanobis(fa, fa.pool[size_t(ia)], true);
    return S.score;
}

// Assembly.remove_joint: the row becomes NaN (confidence included)
template <class FA>
void calib_remove_joint(FA& fa, Asm& a, int j) {
    const int lab = fa.jl(j);
    for (int c = 0; c < 4; ++c) a.data[size_t(lab) * 4 + size_t(c)] = std::numeric_limits<double>::quiet_NaN();
    a.visible[size_t(lab)] = 0;
    --a.n_visible;
    a.in_idx[size_t(j)] = 0;
}

// add_discarded, calibrated: joint j goes to the first assembly (in order) lacking its
// label whose Mahalanobis distance it lowers
template <class FA>
void calib_add_discarded(FA& fa, const std::vector<int>& asms, int j) {
    const int lab = fa.jl(j);
    for (int ia : asms) {
        Asm& a = fa.pool[size_t(ia)];
        if (lab < fa.P.n_multi && a.visible[size_t(lab)]) continue;
        const double d_old = calib_mahalanobis(fa, a, true);
        if (!fa.add_joint(a, j)) continue;
        const double d_new = calib_mahalanobis(fa, a, true);
        if (d_new >= d_old) calib_remove_joint(fa, a, j);
        else break;
    }
}

}  // namespace mapose_asm
