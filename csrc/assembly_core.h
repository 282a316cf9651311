// Per-frame assembly of body-part detections into animals (DeepLabCut's Assembler),
// header-only C++ used by csrc/assembly.pyx.  Everything here runs without the GIL.
//
// Exactness notes (why the code looks the way it does):
// * DLC iterates Python sets (joint indices in _fill_assembly, Joint objects for the
//   discarded joints) and ties are then resolved by CPython's set order.  PySetEmu below
//   reproduces CPython 3.x's set table (open addressing, 9 linear probes, perturbation,
//   resize at 3/5 fill) and the hashes of ints / floats / tuples, so iteration order is
//   identical.
// * Python's sorted()/max()/heapq are emulated (py_sort, py_max_index, heap_*) with the
//   same comparison sequence, so even non-transitive NaN comparisons resolve as in DLC.
// * Affinity sums are float64 (DLC under its pinned NumPy 1); thresholds are compared in
//   the dtype of the cost array (a Python float is cast to the array's dtype).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <utility>
#include <thread>
#include <vector>

#include "lsap.h"
#include "assembly_window.h"

namespace mapose_asm {

static const double NaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------- CPython emulation --
static const uint64_t HASH_MOD = (uint64_t(1) << 61) - 1;

inline int64_t py_hash_int(int64_t v) {
    // CPython: hash(n) = n mod (2**61 - 1) with the sign kept, -1 -> -2
    uint64_t a = v < 0 ? uint64_t(-(v + 1)) + 1 : uint64_t(v);
    int64_t h = int64_t(a % HASH_MOD);
    if (v < 0) h = -h;
    if (h == -1) h = -2;
    return h;
}

inline int64_t py_hash_double(double v) {
    if (!std::isfinite(v)) {
        if (std::isinf(v)) return v > 0 ? 314159 : -314159;
        return 0;  // NaN hashes by object identity in CPython: any fixed value is as good
    }
    int e;
    double m = std::frexp(v, &e);
    int sign = 1;
    if (m < 0) { sign = -1; m = -m; }
    uint64_t x = 0, y;
    while (m) {
        x = ((x << 28) & HASH_MOD) | x >> (61 - 28);
        m *= 268435456.0;
        e -= 28;
        y = uint64_t(m);
        m -= double(y);
        x += y;
        if (x >= HASH_MOD) x -= HASH_MOD;
    }
    e = e >= 0 ? e % 61 : 61 - 1 - ((-1 - e) % 61);
    x = ((x << e) & HASH_MOD) | x >> (61 - e);
    x = x * uint64_t(int64_t(sign));
    if (x == uint64_t(-1)) x = uint64_t(-2);
    return int64_t(x);
}

struct TupleHash {
    uint64_t acc = 2870177450012600261ULL;
    int len = 0;
    void add(int64_t lane) {
        acc += uint64_t(lane) * 14029467366897019727ULL;
        acc = (acc << 31) | (acc >> 33);
        acc *= 11400714785074694791ULL;
        ++len;
    }
    int64_t value() const {
        uint64_t a = acc + (uint64_t(len) ^ (2870177450012600261ULL ^ 3527539ULL));
        if (a == uint64_t(-1)) return 1546275796;
        return int64_t(a);
    }
};

// CPython set of keys (int payloads) with given hashes: insertion, removal, iteration
// order and resizing as in Objects/setobject.c.
struct PySetEmu {
    struct Entry { int64_t hash; int key; };  // key -1: empty, -2: dummy
    std::vector<Entry> table;
    size_t mask = 7, fill = 0, used = 0;
    PySetEmu() { table.assign(8, Entry{0, -1}); }
    void clear() { table.assign(8, Entry{0, -1}); mask = 7; fill = used = 0; }
    static void insert_clean(std::vector<Entry>& t, size_t m, int key, int64_t hash) {
        size_t perturb = size_t(hash), i = size_t(hash) & m;
        while (true) {
            if (t[i].key == -1) { t[i] = Entry{hash, key}; return; }
            if (i + 9 <= m) {
                for (size_t j = 1; j <= 9; ++j)
                    if (t[i + j].key == -1) { t[i + j] = Entry{hash, key}; return; }
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & m;
        }
    }
    void resize(size_t minused) {
        size_t newsize = 8;
        while (newsize <= minused) newsize <<= 1;
        std::vector<Entry> nt(newsize, Entry{0, -1});
        for (const Entry& e : table)
            if (e.key >= 0) insert_clean(nt, newsize - 1, e.key, e.hash);
        table.swap(nt);
        mask = newsize - 1;
        fill = used;
    }
    // position of key or -1
    long find(int key, int64_t hash) const {
        size_t perturb = size_t(hash), i = size_t(hash) & mask;
        while (true) {
            size_t probes = (i + 9 <= mask) ? 9 : 0;
            size_t k = i;
            for (size_t n = 0; n <= probes; ++n, ++k) {
                const Entry& e = table[k];
                if (e.key == -1) return -1;
                if (e.key == key && e.hash == hash) return long(k);
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }
    bool contains(int key, int64_t hash) const { return find(key, hash) >= 0; }
    void add(int key, int64_t hash) {
        size_t perturb = size_t(hash), i = size_t(hash) & mask;
        long freeslot = -1;
        while (true) {
            size_t probes = (i + 9 <= mask) ? 9 : 0;
            size_t k = i;
            for (size_t n = 0; n <= probes; ++n, ++k) {
                Entry& e = table[k];
                if (e.key == -1) {
                    if (freeslot >= 0) {
                        table[size_t(freeslot)] = Entry{hash, key};
                        ++used;
                        return;
                    }
                    e = Entry{hash, key};
                    ++fill;
                    ++used;
                    if (fill * 5 >= mask * 3) resize(used > 50000 ? used * 2 : used * 4);
                    return;
                }
                if (e.key == key && e.hash == hash) return;
                if (e.key == -2 && freeslot < 0) freeslot = long(k);
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }
    void discard(int key, int64_t hash) {
        long k = find(key, hash);
        if (k < 0) return;
        table[size_t(k)] = Entry{-1, -2};
        --used;
    }
    template <class F> void for_each(F f) const {
        for (const Entry& e : table)
            if (e.key >= 0) f(e.key);
    }
};

// Python's list.sort (timsort) for short lists, exactly (count_run + binary insertion):
// with NaN keys the comparison is not a strict weak order and only the very same
// sequence of comparisons gives DLC's order.  Longer lists use a stable merge sort,
// identical whenever the keys are totally ordered.
template <class LT>
void py_sort(std::vector<int>& v, LT lt, bool reverse) {
    const size_t n = v.size();
    if (n < 2) return;
    if (reverse) std::reverse(v.begin(), v.end());
    if (n < 64) {
        size_t run = 2;
        bool desc = lt(v[1], v[0]);
        if (desc) {
            while (run < n && lt(v[run], v[run - 1])) ++run;
            std::reverse(v.begin(), v.begin() + long(run));
        } else {
            while (run < n && !lt(v[run], v[run - 1])) ++run;
        }
        for (size_t start = run; start < n; ++start) {
            int pivot = v[start];
            size_t l = 0, r = start;
            do {
                size_t p = l + ((r - l) >> 1);
                if (lt(pivot, v[p])) r = p; else l = p + 1;
            } while (l < r);
            for (size_t p = start; p > l; --p) v[p] = v[p - 1];
            v[l] = pivot;
        }
    } else {
        // bottom-up merge sort (stable) with a thread-local buffer: no allocation per call
        thread_local std::vector<int> buf;
        buf.resize(n);
        for (size_t width = 1; width < n; width *= 2) {
            for (size_t lo = 0; lo < n; lo += 2 * width) {
                size_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
                size_t a = lo, b = mid, k = lo;
                while (a < mid && b < hi) buf[k++] = lt(v[b], v[a]) ? v[b++] : v[a++];
                while (a < mid) buf[k++] = v[a++];
                while (b < hi) buf[k++] = v[b++];
            }
            v.swap(buf);
        }
    }
    if (reverse) std::reverse(v.begin(), v.end());
}

// ------------------------------------------------------------------------- dtypes --
// Round a double to the cost array's dtype (0: float64, 1: float32, 2: float16), as an
// in-place NumPy multiply into that array does.
inline double round_to_half(double d) {
    if (!std::isfinite(d)) return d;
    double a = std::fabs(d);
    if (a >= 65520.0) return std::copysign(std::numeric_limits<double>::infinity(), d);
    int e;
    std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
    // half: 11 significant bits for normals (e >= -13), fixed 2^-24 spacing below
    int exp_unit = std::max(e - 11, -24);
    double q = std::ldexp(1.0, exp_unit);
    double r = std::nearbyint(a / q) * q;  // round half to even (default FP mode)
    return std::copysign(r, d);
}

inline double round_to_dtype(double v, int dtype) {
    if (dtype == 1) return double(float(v));
    if (dtype == 2) return round_to_half(v);
    return v;
}

// ------------------------------------------------------------------------- inputs --
struct Params {
    int n_multi = 0, n_keypoints = 0, max_n = 1, min_n_links = 2, window_size = 0;
    bool greedy = false, identity_only = false, force_fusion = false, add_discarded = false;
    double pcutoff = 0.1, max_overlap = 0.8, gamma = 0.01;
    bool window_brute = false;  // test hook: temporal weights by brute force, not the trees
    const struct Calib* calib = nullptr;  // calibrated (assembly_calib.h) when set
    double min_aff[3] = {0.05, 0.05, 0.05};  // min_affinity cast to float64/float32/float16
    int n_edges = 0;
    bool dup_edges = true;  // false when no two edge slots join the same (s, t)
    const int* edge_s = nullptr;  // graph[paf_inds[k]][0]
    const int* edge_t = nullptr;
};

struct FrameIn {
    int n_joints = 0;
    const double *x = nullptr, *y = nullptr, *conf = nullptr;
    const int *label = nullptr, *group = nullptr;
    const signed char* xdtype = nullptr;    // per joint: its coordinates' dtype (link lengths)
    const signed char* has_cost = nullptr;  // per edge slot
    const signed char* dtype = nullptr;     // per edge slot
    // per edge slot: the caller's cost array (never copied), read with its strides
    const char* const* cost_ptr = nullptr;
    const int64_t* cost_s0 = nullptr;
    const int64_t* cost_s1 = nullptr;
};

struct LinkOut { int j1, j2; double affinity; };

struct AssemblyOut {
    std::vector<double> data;  // n_multi * 4
    double affinity = 0.0;     // sum (float64)
    std::vector<int> links;    // indices into FrameOut::links
    std::vector<int> joints;   // joint indices in insertion order
};

struct FrameOut {
    bool has_assemblies = false;  // False: DLC returned None (or an empty list)
    bool has_unique = false;
    std::vector<double> unique;  // n_unique * 3
    std::vector<LinkOut> links;
    std::vector<AssemblyOut> assemblies;
    std::vector<double> tree;  // link vectors (n_links * 4) when window_size >= 1
};

// ----------------------------------------------------------------------- assembly --
inline double half_to_double(uint16_t h);

struct HeapItemT { double key; long counter; int link; };

struct Asm {
    std::vector<double> data;
    std::vector<char> visible;
    int n_visible = 0;
    // DLC's `_idx` set is joint_order (insertion order); see seed_order
    std::vector<char> in_idx;
    double aff = 0.0;
    std::vector<int> links;
    std::vector<int> joint_order;
    bool alive = true;
    bool grown = false;  // started from a link and filled (build_assemblies' grow_from)
};

// Sorts keys (high 32 bits: sort key, low 32 bits: ascending input position) by their
// high half, stably: an LSD radix sort, byte by byte, skipping bytes every key shares.
// The comparisons of a comparison sort on these keys are coin flips (mispredicted
// branches cost more than the sort's instructions).  Equal to std::sort on the keys.
inline void radix_sort_keys(std::vector<uint64_t>& v, std::vector<uint64_t>& buf) {
    const size_t n = v.size();
    if (n < 2) return;
    uint32_t hist[4][256];
    std::memset(hist, 0, sizeof hist);
    for (const uint64_t k : v) {
        const uint32_t h = uint32_t(k >> 32);
        ++hist[0][h & 0xff]; ++hist[1][(h >> 8) & 0xff]; ++hist[2][(h >> 16) & 0xff]; ++hist[3][h >> 24];
    }
    if (buf.size() < n) buf.resize(n);
    uint64_t* src = v.data();
    uint64_t* dst = buf.data();
    for (int d = 0; d < 4; ++d) {
        uint32_t* hd = hist[d];
        const uint32_t first = uint32_t(src[0] >> (32 + 8 * d)) & 0xff;
        if (hd[first] == n) continue;  // every key has this byte
        uint32_t pos = 0;
        for (int b = 0; b < 256; ++b) { const uint32_t c = hd[b]; hd[b] = pos; pos += c; }
        for (size_t q = 0; q < n; ++q) {
            const uint64_t k = src[q];
            dst[hd[uint32_t(k >> (32 + 8 * d)) & 0xff]++] = k;
        }
        std::swap(src, dst);
    }
    if (src != v.data()) std::memcpy(v.data(), src, n * sizeof(uint64_t));
}

// Reads an R x C problem (row_of(a): row a's base; elem(row, b): entry b of it,
// non-finite mapped to 0 as DLC maps NaN) into the solver's view (the smaller side as
// rows: what SciPy's solver works on) with each view row's largest entry, second
// largest (equal to the largest on a tie) and first arg-max, branch-free (on real
// affinities these comparisons are coin flips).  Returns the smallest entry.
template <class RowF, class ElemF>
inline double read_view(mapose::LsapWorkspace& ws, size_t R, size_t C, const RowF& row_of, const ElemF& elem) {
    const bool transposed = R > C;
    const size_t VR = transposed ? C : R, VC = transposed ? R : C;
    double* view = ws.view_buffer(long(VR), long(VC));
    double* top = ws.view_top();
    double* sec = ws.view_sec();
    long* arg = ws.view_arg();
    const double INF = std::numeric_limits<double>::infinity();
    // store first, then the statistics over the (contiguous) view rows in registers,
    // two rows at a time: each row's running maximum is a dependency chain
    if (!transposed) {
        for (size_t a = 0; a < R; ++a) {
            const char* row = row_of(a);
            double* out = view + a * C;
            for (size_t b = 0; b < C; ++b) {
                const double v = elem(row, b);
                out[b] = std::isfinite(v) ? v : 0.0;
            }
        }
    } else {
        for (size_t a = 0; a < R; ++a) {
            const char* row = row_of(a);
            for (size_t b = 0; b < C; ++b) {
                const double v = elem(row, b);
                view[b * R + a] = std::isfinite(v) ? v : 0.0;
            }
        }
    }
    double gmin0 = INF, gmin1 = INF;
    size_t i = 0;
    for (; i + 1 < VR; i += 2) {
        const double* in0 = view + i * VC;
        const double* in1 = in0 + VC;
        double t0 = -INF, s0 = -INF, t1 = -INF, s1 = -INF;
        long g0 = 0, g1 = 0;
        for (size_t j = 0; j < VC; ++j) {
            const double v0 = in0[j], v1 = in1[j];
            gmin0 = std::min(gmin0, v0);
            gmin1 = std::min(gmin1, v1);
            g0 = v0 > t0 ? long(j) : g0;
            g1 = v1 > t1 ? long(j) : g1;
            s0 = std::max(s0, std::min(t0, v0));
            s1 = std::max(s1, std::min(t1, v1));
            t0 = std::max(t0, v0);
            t1 = std::max(t1, v1);
        }
        top[i] = t0; sec[i] = s0; arg[i] = g0;
        top[i + 1] = t1; sec[i + 1] = s1; arg[i + 1] = g1;
    }
    if (i < VR) {
        const double* in0 = view + i * VC;
        double t0 = -INF, s0 = -INF;
        long g0 = 0;
        for (size_t j = 0; j < VC; ++j) {
            const double v0 = in0[j];
            gmin0 = std::min(gmin0, v0);
            g0 = v0 > t0 ? long(j) : g0;
            s0 = std::max(s0, std::min(t0, v0));
            t0 = std::max(t0, v0);
        }
        top[i] = t0; sec[i] = s0; arg[i] = g0;
    }
    const double gmin = std::min(gmin0, gmin1);
    return gmin;
}

// The assembler's assignment for one edge from a dense row-major (nr, nc) float64
// matrix, through read_view and solve_max_view (test hook).
inline int solve_dense_view(mapose::LsapWorkspace& ws, long nr, long nc, const double* cost, long* rows, long* cols) {
    const size_t R = size_t(nr), C = size_t(nc);
    const double gmin = read_view(ws, R, C, [&](size_t a) { return reinterpret_cast<const char*>(cost + a * C); },
                                  [&](const char* row, size_t b) { return reinterpret_cast<const double*>(row)[b]; });
    const size_t VR = std::min(R, C);
    double gmax = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < VR; ++i) gmax = std::max(gmax, ws.view_top()[i]);
    return ws.solve_max_view(long(VR), long(std::max(R, C)), R > C, gmin, gmax, rows, cols);
}

}  // namespace mapose_asm

#include "assembly_calib.h"

namespace mapose_asm {

class FrameAssembler {
  public:
    const Params& P;
    const FrameIn* F = nullptr;
    int nj = 0;
    std::vector<LinkOut> links;
    std::vector<int> link_pair_id;
    std::vector<Asm> pool;
    // lookup[i]: (other joint, link) in insertion order
    std::vector<std::vector<std::pair<int, int>>> lookup;
    std::vector<char> assembled;
    std::vector<std::vector<int>> bag;

    explicit FrameAssembler(const Params& p) : P(p) {}

    // links.push_back(LinkOut{j1, j2, v}) without the temporary: built on the stack with
    // two narrow stores and copied with one wide load, it stalled on store forwarding
    void push_link(int j1, int j2, double v) {
        links.emplace_back();
        LinkOut& L = links.back();
        L.j1 = j1;
        L.j2 = j2;
        L.affinity = v;
    }

    double jx(int j) const { return F->x[j]; }
    double jy(int j) const { return F->y[j]; }
    double jc(int j) const { return F->conf[j]; }
    int jl(int j) const { return F->label[j]; }

    int new_asm() {
        // Asm objects are recycled across frames: their buffers keep their capacity
        if (pool_n == pool.size()) pool.emplace_back();
        Asm& a = pool[pool_n];
        a.data.assign(size_t(P.n_multi) * 4, NaN);
        for (int r = 0; r < P.n_multi; ++r) a.data[size_t(r) * 4 + 2] = 0.0;
        a.visible.assign(size_t(P.n_multi), 0);
        a.n_visible = 0;
        a.in_idx.assign(size_t(nj), 0);
        a.aff = 0.0;
        a.links.clear();
        a.joint_order.clear();
        a.alive = true;
        a.grown = false;
        return int(pool_n++);
    }

    bool add_joint(Asm& a, int j) {
        int lab = jl(j);
        if (lab < 0 || lab >= P.n_multi || a.visible[size_t(lab)]) return false;
        double* row = &a.data[size_t(lab) * 4];
        row[0] = jx(j); row[1] = jy(j); row[2] = jc(j); row[3] = double(F->group[j]);
        a.visible[size_t(lab)] = 1;
        ++a.n_visible;
        a.in_idx[size_t(j)] = 1;
        a.joint_order.push_back(j);
        return true;
    }

    // always inlined: with the calibrated fill as a second caller GCC stopped inlining it
    // into the uncalibrated fills (2-3% more instructions per frame)
#if defined(__GNUC__)
    __attribute__((always_inline))
#endif
    bool add_link(Asm& a, int li) {
        const LinkOut& L = links[size_t(li)];
        if (a.in_idx[size_t(L.j1)] && a.in_idx[size_t(L.j2)]) {
            a.aff += L.affinity;
            a.links.push_back(li);
            return false;
        }
        int l1 = jl(L.j1), l2 = jl(L.j2);
        if (a.visible[size_t(l1)] && a.visible[size_t(l2)]) return false;
        add_joint(a, L.j1);
        add_joint(a, L.j2);
        a.aff += L.affinity;
        a.links.push_back(li);
        return true;
    }

    // "b in a": the two share a visible bodypart
    bool shares_label(const Asm& a, const Asm& b) const {
        for (int r = 0; r < P.n_multi; ++r)
            if (a.visible[size_t(r)] && b.visible[size_t(r)]) return true;
        return false;
    }

    int merged(int ia, int ib) {  // Assembly.__add__: links of a then links of b
        int c = new_asm();
        std::vector<int> ls = pool[size_t(ia)].links;
        ls.insert(ls.end(), pool[size_t(ib)].links.begin(), pool[size_t(ib)].links.end());
        for (int li : ls) add_link(pool[size_t(c)], li);
        return c;
    }

    // ---- links ----
    // scratch buffers reused across edges and frames (allocation dominated otherwise)
    mapose::LsapWorkspace lsap;
    std::vector<double> aff, sub, w;
    std::vector<char> win_need;  // window weights: pairs that linking reads
    WindowScratch win;           // window weights: per-joint bound terms of this frame
    CalibState cal;              // calibrated paths' scratch (assembly_calib.h)
    bool safe_fill = false;      // calibrated first growing pass: DLC's safe_edge fill
    std::vector<int> inds_s, cand, best_of, row_col;
    std::vector<double> col_top;
    std::vector<char> col_unique;
    std::vector<long> rows, cols;
    std::vector<char> used_s, used_t, visited;
    std::vector<int> seeds;
    std::vector<HeapItemT> heap;
    std::vector<int> order;
    bool nan_aff = false;  // any NaN link affinity in this frame
    // per-frame scratch kept across frames (allocation otherwise dominates small frames)
    std::vector<int> ws_parent, ws_nodes, ws_size, ws_comp;
    std::vector<char> ws_seen, ws_done;
    PySetEmu ws_discarded;
    size_t pool_n = 0;

    // Candidates of a bodypart for optimal linking: its detections sorted by confidence
    // (descending, stable), the first max_n of them, those >= pcutoff.  The same for
    // every edge, so computed once per bodypart and frame.
    std::vector<std::vector<int>> keep_cache;
    std::vector<char> keep_done;
    const std::vector<int>& keep_of(int label) {
        if (!keep_done[size_t(label)]) {
            const std::vector<int>& d = bag[size_t(label)];
            if (keep_sorted(label, d)) return keep_cache[size_t(label)];
            inds_s.resize(d.size());
            for (size_t q = 0; q < d.size(); ++q) inds_s[q] = int(q);
            py_sort(inds_s, [&](int p, int q) { return jc(d[size_t(p)]) < jc(d[size_t(q)]); }, true);
            if (int(inds_s.size()) > P.max_n) inds_s.resize(size_t(P.max_n));
            std::vector<int>& keep = keep_cache[size_t(label)];
            keep.clear();
            for (int q : inds_s)
                if (jc(d[size_t(q)]) >= P.pcutoff) keep.push_back(q);
            keep_done[size_t(label)] = 1;
        }
        return keep_cache[size_t(label)];
    }

    // keep_of without NaN confidences: those >= pcutoff are then a prefix of the sorted
    // detections, so sorting just them (stable insertion sort, descending) and keeping
    // the first max_n gives the same list without Python's sort emulation.  False when
    // a confidence is NaN (py_sort's comparison sequence decides then).
    std::vector<double> keep_conf;
    bool keep_sorted(int label, const std::vector<int>& d) {
        std::vector<int>& keep = keep_cache[size_t(label)];
        keep.clear();
        keep_conf.clear();
        for (size_t q = 0; q < d.size(); ++q) {
            const double c = jc(d[q]);
            if (std::isnan(c)) return false;
            if (!(c >= P.pcutoff)) continue;
            // shift the lower-confidence entries up (equal ones stay first: stable)
            size_t p = keep.size();
            keep.push_back(int(q));
            keep_conf.push_back(c);
            while (p > 0 && keep_conf[p - 1] < c) {
                keep[p] = keep[p - 1];
                keep_conf[p] = keep_conf[p - 1];
                --p;
            }
            keep[p] = int(q);
            keep_conf[p] = c;
        }
        if (int(keep.size()) > P.max_n) keep.resize(size_t(std::max(P.max_n, 0)));
        keep_done[size_t(label)] = 1;
        return true;
    }

    // Optimal linking of one edge on `sub` (candidates' affinities, R x C)
    void link_optimal(const std::vector<int>& ds, const std::vector<int>& dt, const std::vector<int>& keep_s,
                      const std::vector<int>& keep_t, double thr, bool try_dominant = true) {
        const size_t R = keep_s.size(), C = keep_t.size(), K = std::min(R, C);
        if (rows.size() < K) { rows.resize(K); cols.resize(K); }
        if (lsap.solve_max_unique_first(long(R), long(C), sub.data(), rows.data(), cols.data(), try_dominant) != 0) return;
        for (size_t q = 0; q < K; ++q) {
            double v = sub[size_t(rows[q]) * C + size_t(cols[q])];
            if (v >= thr) push_link(ds[size_t(keep_s[size_t(rows[q])])], dt[size_t(keep_t[size_t(cols[q])])], v);
        }
    }

    void extract_best_links(const Trees& trees) {
        if (!trees.list.empty()) win.begin_frame(trees.list.size(), size_t(nj));
#if defined(__GNUC__)
        // the loop below prefetches two edges ahead: the first two here
        for (int k = 0; k < std::min(P.n_edges, 2); ++k)
            if (F->has_cost[k]) __builtin_prefetch(F->cost_ptr[k]);
#endif
        if (keep_cache.size() < bag.size()) keep_cache.resize(bag.size());
        keep_done.assign(bag.size(), 0);
        for (int k = 0; k < P.n_edges; ++k) {
#if defined(__GNUC__)
            // the next edge's cost array is its own small allocation, somewhere on the
            // heap: start loading it while this edge is solved
            if (k + 2 < P.n_edges && F->has_cost[k + 2] && P.edge_s[k + 2] >= 0 && P.edge_s[k + 2] < int(bag.size())) {
                const char* nb = F->cost_ptr[k + 2];
                const int64_t n_bytes = std::min<int64_t>(int64_t(bag[size_t(P.edge_s[k + 2])].size()) * F->cost_s0[k + 2], 1024);
                for (int64_t off = 0; off < n_bytes; off += 64) __builtin_prefetch(nb + off);
            }
#endif
            const int s = P.edge_s[k], t = P.edge_t[k];
            if (s < 0 || t < 0 || s >= int(bag.size()) || t >= int(bag.size())) continue;
            const std::vector<int>& ds = bag[size_t(s)];
            const std::vector<int>& dt = bag[size_t(t)];
            if (ds.empty() || dt.empty() || !F->has_cost[k]) continue;
            const size_t ns = ds.size(), nt = dt.size();
            const int dtype = F->dtype[k];
            const char* base = F->cost_ptr[k];
            const int64_t s0 = F->cost_s0[k], s1 = F->cost_s1[k];
            // DLC sets NaN to 0; +-inf would make SciPy raise: mapose uses 0 too
            auto cost_at = [&](size_t a, size_t b) -> double {
                const char* q = base + int64_t(a) * s0 + int64_t(b) * s1;
                double v = dtype == 1 ? double(*reinterpret_cast<const float*>(q))
                         : dtype == 2 ? half_to_double(*reinterpret_cast<const uint16_t*>(q))
                                      : *reinterpret_cast<const double*>(q);
                return std::isfinite(v) ? v : 0.0;
            };
            if (!P.greedy && trees.list.empty()) {
                // optimal linking only looks at the candidates' submatrix: read just that
                const std::vector<int>& keep_s = keep_of(s);
                const std::vector<int>& keep_t = keep_of(t);
                const size_t R = keep_s.size(), C = keep_t.size();
                if (!R || !C) continue;
                // The candidates' submatrix straight into the solver's view with its row
                // statistics (read_view), so the solver neither re-reads nor transposes
                // it.  One loop per dtype (a per-element dtype switch cost as much as
                // the solve).
                const bool transposed = R > C;
                const size_t VR = transposed ? C : R, VC = transposed ? R : C;
                double gmin = 0.0;
                auto row_of = [&](size_t a) { return base + int64_t(keep_s[a]) * s0; };
                if (dtype == 1)
                    gmin = read_view(lsap, R, C, row_of, [&](const char* row, size_t b) {
                        return double(*reinterpret_cast<const float*>(row + int64_t(keep_t[b]) * s1)); });
                else if (dtype == 2)
                    gmin = read_view(lsap, R, C, row_of, [&](const char* row, size_t b) {
                        return half_to_double(*reinterpret_cast<const uint16_t*>(row + int64_t(keep_t[b]) * s1)); });
                else
                    gmin = read_view(lsap, R, C, row_of, [&](const char* row, size_t b) {
                        return *reinterpret_cast<const double*>(row + int64_t(keep_t[b]) * s1); });
                const double* view = lsap.view_data();
                const double* top = lsap.view_top();
                const double thr = P.min_aff[dtype];
                {
                    // each view row's strict maximum in a distinct column: that
                    // assignment beats every other one (the usual case without false
                    // positives); pairs straight to links, in SciPy's row order
                    const double* sec = lsap.view_sec();
                    const long* arg = lsap.view_arg();
                    bool dom = VC <= 64;
                    uint64_t used = 0;
                    for (size_t i = 0; i < VR; ++i) {
                        const uint64_t bit = uint64_t(1) << (arg[i] & 63);
                        dom = dom && top[i] > sec[i] && !(used & bit);
                        used |= bit;
                    }
                    if (dom) {
                        if (!transposed) {
                            for (size_t a = 0; a < R; ++a) {
                                const double v = view[a * C + size_t(arg[a])];
                                if (v >= thr) push_link(ds[size_t(keep_s[a])], dt[size_t(keep_t[size_t(arg[a])])], v);
                            }
                        } else {  // view rows are the original columns
                            if (row_col.size() < R) row_col.resize(R);
                            for (size_t a = 0; a < R; ++a) row_col[a] = -1;
                            for (size_t b = 0; b < C; ++b) row_col[size_t(arg[b])] = int(b);
                            for (size_t a = 0; a < R; ++a) {
                                if (row_col[a] < 0) continue;
                                const double v = view[size_t(row_col[a]) * R + a];
                                if (v >= thr) push_link(ds[size_t(keep_s[a])], dt[size_t(keep_t[size_t(row_col[a])])], v);
                            }
                        }
                        continue;
                    }
                }
                double gmax = -std::numeric_limits<double>::infinity();
                for (size_t i = 0; i < VR; ++i) gmax = std::max(gmax, top[i]);
                const size_t K = VR;
                if (rows.size() < K) { rows.resize(K); cols.resize(K); }
                if (lsap.solve_max_view(long(VR), long(VC), transposed, gmin, gmax, rows.data(), cols.data(), false) != 0) continue;
                for (size_t q = 0; q < K; ++q) {
                    const size_t r = size_t(rows[q]), c = size_t(cols[q]);
                    const double v = transposed ? view[c * R + r] : view[r * C + c];
                    if (v >= thr) push_link(ds[size_t(keep_s[r])], dt[size_t(keep_t[c])], v);
                }
                continue;
            }
            aff.resize(ns * nt);
            for (size_t a = 0; a < ns; ++a)
                for (size_t b = 0; b < nt; ++b) aff[a * nt + b] = cost_at(a, b);
            if (!trees.list.empty()) {
                // only the pairs linking can read: optimal linking reads the candidates'
                // submatrix, greedy the pairs with conf_s * conf_t >= pcutoff**2
                std::vector<char>& need = win_need;
                if (!P.greedy) {
                    need.assign(ns + nt, 0);
                    for (int q : keep_of(s)) need[size_t(q)] = 1;
                    for (int q : keep_of(t)) need[ns + size_t(q)] = 1;
                }
                const double pc2 = P.pcutoff * P.pcutoff;
                window_weights(trees, P.gamma, P.window_brute, ds, dt, [&](int j) { return jx(j); }, [&](int j) { return jy(j); },
                               [&](size_t a, size_t b) { return P.greedy ? jc(ds[a]) * jc(dt[b]) >= pc2 : need[a] && need[ns + b]; },
                               win, w);
                const double cnt = double(trees.list.size());
                for (size_t q = 0; q < ns * nt; ++q) aff[q] = round_to_dtype(aff[q] * (w[q] / cnt), dtype);
            }
            const double thr = P.min_aff[dtype];
            if (P.greedy) {
                const double pc2 = P.pcutoff * P.pcutoff;
                cand.clear();
                for (size_t a = 0; a < ns; ++a)
                    for (size_t b = 0; b < nt; ++b)
                        if (jc(ds[a]) * jc(dt[b]) >= pc2 && aff[a * nt + b] >= thr) cand.push_back(int(a * nt + b));
                py_sort(cand, [&](int p, int q) { return aff[size_t(p)] < aff[size_t(q)]; }, true);
                used_s.assign(ns, 0);
                used_t.assign(nt, 0);
                int n_used = 0;
                for (int q : cand) {
                    size_t a = size_t(q) / nt, b = size_t(q) % nt;
                    if (used_s[a] || used_t[b]) continue;
                    push_link(ds[a], dt[b], aff[size_t(q)]);
                    used_s[a] = 1;
                    used_t[b] = 1;
                    if (++n_used == P.max_n) break;
                }
            } else {
                const std::vector<int>& keep_s = keep_of(s);
                const std::vector<int>& keep_t = keep_of(t);
                const size_t R = keep_s.size(), C = keep_t.size();
                if (!R || !C) continue;
                sub.resize(R * C);
                for (size_t a = 0; a < R; ++a)
                    for (size_t b = 0; b < C; ++b) sub[a * C + b] = aff[size_t(keep_s[a]) * nt + size_t(keep_t[b])];
                link_optimal(ds, dt, keep_s, keep_t, thr);
            }
        }
    }

    // ---- heapq emulation: entries (-affinity, counter, link) ----
    using HeapItem = HeapItemT;
    static bool hlt(const HeapItem& a, const HeapItem& b) {
        if (a.key == b.key) return a.counter < b.counter;
        return a.key < b.key;
    }
    static void heap_siftdown(std::vector<HeapItem>& h, size_t start, size_t pos) {
        HeapItem item = h[pos];
        while (pos > start) {
            size_t parent = (pos - 1) >> 1;
            if (hlt(item, h[parent])) { h[pos] = h[parent]; pos = parent; continue; }
            break;
        }
        h[pos] = item;
    }
    static void heap_push(std::vector<HeapItem>& h, HeapItem it) {
        h.push_back(it);
        heap_siftdown(h, 0, h.size() - 1);
    }
    static HeapItem heap_pop(std::vector<HeapItem>& h) {
        HeapItem last = h.back();
        h.pop_back();
        if (h.empty()) return last;
        HeapItem ret = h[0];
        h[0] = last;
        // heapq._siftup
        size_t end = h.size(), pos = 0, start = 0;
        HeapItem item = h[pos];
        size_t child = 2 * pos + 1;
        while (child < end) {
            size_t right = child + 1;
            if (right < end && !hlt(h[child], h[right])) child = right;
            h[pos] = h[child];
            pos = child;
            child = 2 * pos + 1;
        }
        h[pos] = item;
        heap_siftdown(h, start, pos);
        return ret;
    }

    // DLC seeds _fill_assembly by iterating the assembly's `_idx` set.  Joints are only
    // ever added to it, so the CPython set is rebuilt here by replaying the insertions
    // (same sequence, same table) instead of being kept up to date on every add.
    PySetEmu ws_idx;
    void seed_order(int ia) {
        if (calib_seeds(*this, ia)) return;
        seeds.clear();
        ws_idx.clear();
        for (int j : pool[size_t(ia)].joint_order) ws_idx.add(j, j);
        ws_idx.for_each([&](int k) { seeds.push_back(k); });
    }

    // Link keys as one integer when every affinity is a NaN-free float32 value (the
    // usual case: DLC's costs are float32/float16): order-preserving bits of
    // -affinity, then a tie-breaking counter.  Keys are totally ordered as heapq
    // orders (affinity, counter), so the fill can merge sorted streams instead of
    // keeping a heap; other inputs (duplicate edges, float64 or NaN affinities) take
    // the heap below.
    bool key32 = false;
    static uint64_t key_of(double affinity, uint32_t counter) {
        float f = float(-affinity);
        if (f == 0.0f) f = 0.0f;  // -0.0 ties with +0.0, as in Python
        uint32_t b;
        std::memcpy(&b, &f, sizeof b);
        b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
        return (uint64_t(b) << 32) | counter;
    }

    // _fill_assembly as a merge of sorted streams (flat adjacency, float32 keys).
    // heapq pops the pushed links by (affinity desc, push counter); push(i) pushes the
    // entries of lookup[i] in order.  A member m's entry (m, o) is pushed at m's push iff
    // o was not yet a member then (o joined later, or never): the link is pushed from
    // whichever end joined first.  So the queue is the merge of one stream per member,
    // in push order: its adjacency by (affinity desc, position), entries to earlier
    // members dropped; across streams ties go to the earlier stream (all its pushes came
    // first).  popped/assembled are fixed during a fill.  push(nw) of a joint that
    // add_link rejected (its label taken) only pushes links whose pops are no-ops (they
    // end in that joint, which can never join), so it is left out.  finish_lookup lays
    // the adjacency out in that order (links by_key), so no queue is kept at all.
    std::vector<int> join_no;        // per joint: 0 for the seeds, 1, 2, ... in joining order
    std::vector<int> st_joint, st_cur, st_pos;
    // heads of the streams not yet exhausted, (order bits << 32) | stream, in no
    // particular order (st_pos: a stream's place here): most streams run dry soon (a
    // late member's links to earlier members were pushed from their end), so the
    // smallest head is searched among the few live ones
    std::vector<uint64_t> st_head;

    void fill_assembly_merge(int ia) {
        Asm& a = pool[size_t(ia)];
        st_joint.clear(); st_cur.clear(); st_pos.clear(); st_head.clear();
        if (join_no.size() < size_t(nj)) join_no.resize(size_t(nj));
        // first valid entry of stream s from its cursor on; an exhausted stream leaves
        // st_head (the last head takes its place)
        auto settle = [&](size_t s) {
            const int m = st_joint[s], hi = adj_off[size_t(m) + 1], jm = join_no[size_t(m)];
            int c = st_cur[s];
            for (; c < hi; ++c) {
                const int o = adj_other[size_t(c)];
                if (popped[size_t(adj_link[size_t(c)])] || assembled[size_t(o)]) continue;
                if (a.in_idx[size_t(o)] && join_no[size_t(o)] <= jm) continue;
                break;
            }
            st_cur[s] = c;
            const size_t p = size_t(st_pos[s]);
            if (c < hi) {
                st_head[p] = uint64_t(link_key[size_t(adj_link[size_t(c)])]) << 32 | uint64_t(s);
            } else {
                const uint64_t last = st_head.back();
                st_head[p] = last;
                st_pos[size_t(uint32_t(last))] = int(p);
                st_head.pop_back();
            }
        };
        auto open = [&](int m) {
            st_joint.push_back(m);
            st_cur.push_back(adj_off[size_t(m)]);
            const size_t sn = st_joint.size() - 1;
            st_pos.push_back(int(st_head.size()));
            st_head.push_back(uint64_t(sn));  // its own index, read if settle drops it
            settle(sn);
        };
        seeds.clear();
        seed_order(ia);
        for (int m : seeds) join_no[size_t(m)] = 0;
        for (int m : seeds) open(m);
        int n_joined = 0;
        while (a.n_visible < P.n_multi) {
            if (st_head.empty()) break;
            uint64_t best = ~uint64_t(0);
            for (uint64_t h : st_head) best = h < best ? h : best;
            const size_t s = size_t(uint32_t(best));
            const int li = adj_link[size_t(st_cur[s])];
            ++st_cur[s];
            settle(s);
            const LinkOut& L = links[size_t(li)];
            int nw;
            if (a.in_idx[size_t(L.j1)]) nw = L.j2;
            else if (a.in_idx[size_t(L.j2)]) nw = L.j1;
            else continue;
            if (assembled[size_t(nw)]) continue;
            const bool was_member = a.in_idx[size_t(nw)];
            add_link(a, li);
            if (!was_member && a.in_idx[size_t(nw)]) {
                join_no[size_t(nw)] = ++n_joined;
                open(nw);
            }
        }
    }

    void fill_assembly(int ia) {
        if (safe_fill) { calib_fill_safe(*this, ia); return; }
        if (key32 && csr) { fill_assembly_merge(ia); return; }
        std::vector<HeapItem>& stack = heap;
        stack.clear();
        visited.assign(links.size(), 0);
        long counter = 0;
        // Links to a joint of another assembly are popped and skipped without effect
        // (`assembled` does not change during a fill), so they need not be pushed; the
        // pop order of the others is unchanged as long as affinities are totally
        // ordered (no NaN), since push counters keep their relative order.
        const bool prune = !nan_aff;
        auto push = [&](int i) {
            Asm& a = pool[size_t(ia)];
            for_each_lookup(i, [&](int other, int li) {
                if (a.in_idx[size_t(other)]) return;
                if (prune && assembled[size_t(other)]) return;
                int pid = link_pair_id[size_t(li)];
                if (visited[size_t(pid)]) return;
                heap_push(stack, HeapItem{-links[size_t(li)].affinity, counter++, li});
                visited[size_t(pid)] = 1;
            });
        };
        seeds.clear();
        seed_order(ia);
        for (size_t q = 0; q < seeds.size(); ++q) push(seeds[q]);
        while (!stack.empty() && pool[size_t(ia)].n_visible < P.n_multi) {
            HeapItem best = heap_pop(stack);
            Asm& a = pool[size_t(ia)];
            const LinkOut& L = links[size_t(best.link)];
            int nw;
            if (a.in_idx[size_t(L.j1)]) nw = L.j2;
            else if (a.in_idx[size_t(L.j2)]) nw = L.j1;
            else continue;
            if (assembled[size_t(nw)]) continue;
            const bool was_member = a.in_idx[size_t(nw)];
            add_link(a, best.link);
            // a link closing a cycle adds no joint: pushing its end again is a no-op
            if (!was_member) push(nw);
        }
    }

    // Without duplicate edges a joint pair has at most one link, so DLC's lookup
    // dicts (joint -> {other joint: link}) become one flat adjacency in link order,
    // and popping a pair from both dicts just flags its link.
    bool csr = false;
    std::vector<int> adj_off, adj_pos, adj_other, adj_link;
    // by_key (float32 keys, flat adjacency): links sorted once by (affinity desc, index)
    // as link_key << 32 | index; order bits of -affinity per link
    bool by_key = false;
    std::vector<uint64_t> link_order, radix_buf;
    std::vector<uint32_t> link_key;
    std::vector<char> popped;

    // DLC's lookup before any pop (the flat adjacency is built by finish_lookup, only
    // once it is needed: frames whose animals are all complete never read it)
    void begin_lookup() {
        const size_t nl = links.size();
        csr = !P.dup_edges;
        if (csr) {
            popped.assign(nl, 0);
            return;
        }
        if (!csr) {
            if (lookup.size() < size_t(nj)) lookup.resize(size_t(nj));
            for (int q = 0; q < nj; ++q) lookup[size_t(q)].clear();
            for (size_t li = 0; li < nl; ++li) {
                lookup_set(links[li].j1, links[li].j2, int(li));
                lookup_set(links[li].j2, links[li].j1, int(li));
            }
            return;
        }
    }

    void finish_lookup() {
        if (!csr) return;
        const size_t nl = links.size();
        adj_off.assign(size_t(nj) + 1, 0);
        for (const LinkOut& L : links) { ++adj_off[size_t(L.j1) + 1]; ++adj_off[size_t(L.j2) + 1]; }
        for (int q = 0; q < nj; ++q) adj_off[size_t(q) + 1] += adj_off[size_t(q)];
        adj_pos.assign(adj_off.begin(), adj_off.end() - 1);
        adj_other.resize(2 * nl);
        adj_link.resize(2 * nl);
        for (size_t r = 0; r < nl; ++r) {
            const size_t li = by_key ? size_t(uint32_t(link_order[r])) : r;
            const LinkOut& L = links[li];
            int p = adj_pos[size_t(L.j1)]++;
            adj_other[size_t(p)] = L.j2; adj_link[size_t(p)] = int(li);
            p = adj_pos[size_t(L.j2)]++;
            adj_other[size_t(p)] = L.j1; adj_link[size_t(p)] = int(li);
        }
    }

    // fn(other joint, link) for each entry of lookup[i], in order
    template <class Fn> void for_each_lookup(int i, Fn fn) const {
        if (csr) {
            for (int q = adj_off[size_t(i)], e = adj_off[size_t(i) + 1]; q < e; ++q) {
                const int li = adj_link[size_t(q)];
                if (!popped[size_t(li)]) fn(adj_other[size_t(q)], li);
            }
        } else {
            for (const auto& e : lookup[size_t(i)]) fn(e.first, e.second);
        }
    }

    // lookup[j1].pop(j2); lookup[j2].pop(j1)
    void lookup_pop_link(int li) {
        if (csr) { popped[size_t(li)] = 1; return; }
        lookup_pop(links[size_t(li)].j1, links[size_t(li)].j2);
        lookup_pop(links[size_t(li)].j2, links[size_t(li)].j1);
    }

    void lookup_pop(int i, int j) {
        auto& v = lookup[size_t(i)];
        for (size_t q = 0; q < v.size(); ++q)
            if (v[q].first == j) { v.erase(v.begin() + long(q)); return; }
    }

    void lookup_set(int i, int j, int li) {
        auto& v = lookup[size_t(i)];
        if (P.dup_edges) {  // only then can two links join the same two joints
            for (auto& e : v)
                if (e.first == j) { e.second = li; return; }
        }
        v.emplace_back(j, li);
    }

    static double nanmin_dist(const Asm& a, double px, double py, int n_rows) {
        double best = NaN;
        for (int r = 0; r < n_rows; ++r) {
            double dx = a.data[size_t(r) * 4] - px, dy = a.data[size_t(r) * 4 + 1] - py;
            double d = std::sqrt(dx * dx + dy * dy);
            if (std::isnan(d)) continue;
            if (std::isnan(best) || d < best) best = d;
        }
        return best;
    }

    double nanmin_cdist(const Asm& a, const Asm& b) const {
        double best = NaN;
        for (int r = 0; r < P.n_multi; ++r) {
            double d = nanmin_dist(b, a.data[size_t(r) * 4], a.data[size_t(r) * 4 + 1], P.n_multi);
            if (std::isnan(d)) continue;
            if (std::isnan(best) || d < best) best = d;
        }
        return best;
    }

    std::vector<int> ws_out, ws_asms;
    std::vector<double> ws_ext;  // assembly lists, capacity kept across frames
    std::vector<int>& build_assemblies() {
        const size_t nl = links.size();
        nan_aff = false;
        key32 = links.size() < (size_t(1) << 31);
        for (const LinkOut& L : links) {
            nan_aff = nan_aff || std::isnan(L.affinity);
            key32 = key32 && double(float(L.affinity)) == L.affinity;
        }
        key32 = key32 && !nan_aff && P.calib == nullptr;  // calibrated fills need the heap
        begin_lookup();
        by_key = key32 && csr;
        std::vector<int>& out = ws_out;
        out.clear();
        // connected components, in order of first node appearance
        std::vector<int>& parent = ws_parent;
        parent.resize(size_t(nj));
        for (int q = 0; q < nj; ++q) parent[size_t(q)] = q;
        auto find = [&](int q) {
            while (parent[size_t(q)] != q) { parent[size_t(q)] = parent[size_t(parent[size_t(q)])]; q = parent[size_t(q)]; }
            return q;
        };
        std::vector<int>& node_order = ws_nodes;
        node_order.clear();
        std::vector<char>& seen = ws_seen;
        seen.assign(size_t(nj), 0);
        for (const LinkOut& L : links) {
            for (int q : {L.j1, L.j2})
                if (!seen[size_t(q)]) { seen[size_t(q)] = 1; node_order.push_back(q); }
            int a = find(L.j1), b = find(L.j2);
            if (a != b) parent[size_t(a)] = b;
        }
        // flatten: parent[q] is now q's root for every joint
        for (int q : node_order) parent[size_t(q)] = find(q);
        std::vector<int>& comp_size = ws_size;
        comp_size.assign(size_t(nj), 0);
        for (int q : node_order) ++comp_size[size_t(parent[size_t(q)])];
        std::vector<char>& comp_done = ws_done;
        comp_done.assign(size_t(nj), 0);
        // complete components become assemblies, in order of first node appearance
        std::vector<int>& comp_asm = ws_comp;
        comp_asm.assign(size_t(nj), -1);
        bool any_complete = false;
        for (int q : node_order) {
            const int root = parent[size_t(q)];
            if (comp_done[size_t(root)]) continue;
            comp_done[size_t(root)] = 1;
            if (comp_size[size_t(root)] != P.n_multi) continue;
            comp_asm[size_t(root)] = new_asm();
            out.push_back(comp_asm[size_t(root)]);
            any_complete = true;
        }
        if (any_complete) {
            // DLC walks all links once per component; each link can only join the
            // assembly of its own component and components share no joint, so one walk
            // over the links gives every assembly the same sequence of add_link calls
            for (size_t li = 0; li < nl; ++li) {
                const LinkOut& L = links[li];
                if (L.j1 >= L.j2) continue;  // (larger, smaller) idx never matches: DLC quirk
                const int ia = comp_asm[size_t(parent[size_t(L.j1)])];
                if (ia >= 0 && add_link(pool[size_t(ia)], int(li))) lookup_pop_link(int(li));
            }
            for (int ia : out)
                for (int j : pool[size_t(ia)].joint_order) assembled[size_t(j)] = 1;
        }
        if (int(out.size()) == P.max_n) return out;
        if (by_key) {
            // one sort serves both the order links are grown from and the fills' streams
            if (link_key.size() < nl) link_key.resize(nl);
            link_order.resize(nl);
            for (size_t li = 0; li < nl; ++li) {
                link_key[li] = uint32_t(key_of(links[li].affinity, 0) >> 32);
                link_order[li] = uint64_t(link_key[li]) << 32 | uint64_t(li);
            }
            radix_sort_keys(link_order, radix_buf);
        }
        finish_lookup();
        safe_fill = P.calib != nullptr;  // DLC's safe_edge: set by calibrate()

        // Links are taken in descending affinity (stable); one that touches an
        // assembled joint is skipped, and `assembled` only grows.
        auto grow_from = [&](int li) {
            int ia = new_asm();
            pool[size_t(ia)].grown = true;
            add_link(pool[size_t(ia)], li);
            fill_assembly(ia);
            for (int lk : pool[size_t(ia)].links) lookup_pop_link(lk);
            for (int j : pool[size_t(ia)].joint_order)
                if (pool[size_t(ia)].in_idx[size_t(j)]) assembled[size_t(j)] = 1;
            out.push_back(ia);
        };
        if (nan_aff) {
            // NaN keys: only Python's exact comparison sequence gives DLC's order
            order.resize(nl);
            for (size_t q = 0; q < nl; ++q) order[q] = int(q);
            py_sort(order, [&](int p, int q) { return links[size_t(p)].affinity < links[size_t(q)].affinity; }, true);
            for (int li : order) {
                const LinkOut& L = links[size_t(li)];
                if (assembled[size_t(L.j1)] || assembled[size_t(L.j2)]) continue;
                grow_from(li);
            }
        } else if (by_key) {
            // the next link taken is the first, in (affinity desc, index) order, not
            // touching an assembled joint; `assembled` only grows, so one pass suffices
            for (const uint64_t k : link_order) {
                const int li = int(uint32_t(k));
                const LinkOut& L = links[size_t(li)];
                if (assembled[size_t(L.j1)] || assembled[size_t(L.j2)]) continue;
                grow_from(li);
            }
        } else {
            // Totally ordered keys: the next link taken is the largest-affinity one
            // (lowest index among ties) not touching an assembled joint, so a selection
            // over the shrinking set of eligible links replaces sorting all of them.
            order.clear();
            for (size_t q = 0; q < nl; ++q)
                if (!assembled[size_t(links[q].j1)] && !assembled[size_t(links[q].j2)]) order.push_back(int(q));
            while (!order.empty()) {
                size_t n_keep = 0, best_pos = 0;
                int best = -1;
                double best_aff = 0.0;
                for (size_t q = 0; q < order.size(); ++q) {
                    const int li = order[q];
                    const LinkOut& L = links[size_t(li)];
                    if (assembled[size_t(L.j1)] || assembled[size_t(L.j2)]) continue;
                    if (best < 0 || L.affinity > best_aff) { best = li; best_aff = L.affinity; best_pos = n_keep; }
                    order[n_keep++] = li;
                }
                if (best < 0) break;
                order.resize(n_keep);
                order.erase(order.begin() + long(best_pos));
                grow_from(best);
            }
        }

        safe_fill = false;  // the second pass below fills without edge safety
        const int n_extra = int(out.size()) - P.max_n;
        if (n_extra > 0) {
            if (P.calib) {
                calib_merge(*this, out);
            } else if (P.force_fusion) {
                py_sort(out, [&](int p, int q) { return pool[size_t(p)].n_visible < pool[size_t(q)].n_visible; }, false);
                for (int nrow = 0; nrow < n_extra; ++nrow) {
                    int a = out[size_t(nrow)];
                    std::vector<int> cands;
                    for (size_t q = size_t(nrow); q < out.size(); ++q)
                        if (!shares_label(pool[size_t(out[q])], pool[size_t(a)])) cands.push_back(out[q]);
                    if (cands.empty()) continue;
                    int cand = cands[0];
                    if (cands.size() > 1) {
                        // np.argmin: first minimum, or the first NaN if any
                        size_t best = 0;
                        double bv = nanmin_cdist(pool[size_t(a)], pool[size_t(cands[0])]);
                        for (size_t q = 1; q < cands.size() && !std::isnan(bv); ++q) {
                            double d = nanmin_cdist(pool[size_t(a)], pool[size_t(cands[q])]);
                            if (std::isnan(d) || d < bv) { best = q; bv = d; }
                        }
                        cand = cands[best];
                    }
                    for (size_t q = 0; q < out.size(); ++q)
                        if (out[q] == cand) { out[q] = merged(cand, a); break; }
                }
            } else {
                std::vector<int> store(size_t(nj), -1);
                for (int ia : out)
                    if (pool[size_t(ia)].n_visible != P.n_multi)
                        for (int j : pool[size_t(ia)].joint_order)
                            if (pool[size_t(ia)].in_idx[size_t(j)]) store[size_t(j)] = ia;
                std::vector<char> used(nl, 0);
                for (int ia : out)
                    for (int lk : pool[size_t(ia)].links) used[size_t(lk)] = 1;
                for (size_t li = 0; li < nl; ++li) {
                    if (used[li]) continue;
                    int si = store[size_t(links[li].j1)], sj = store[size_t(links[li].j2)];
                    if (si < 0 || sj < 0) continue;
                    if (shares_label(pool[size_t(si)], pool[size_t(sj)])) continue;
                    int m = merged(si, sj);
                    // store[i].__dict__.update(temp.__dict__): object si takes m's state
                    Asm tmp = std::move(pool[size_t(m)]);
                    pool[size_t(si)] = std::move(tmp);
                    pool[size_t(m)].alive = false;
                    out.erase(std::remove(out.begin(), out.end(), sj), out.end());
                    for (int j : pool[size_t(sj)].joint_order)
                        if (pool[size_t(sj)].in_idx[size_t(j)]) store[size_t(j)] = si;
                }
            }
        }
        // An assembly grown above by the merge fill, with no merging since, comes out
        // of a second fill unchanged: that fill pops the same links again (those of
        // its members not yet taken by an assembly), and each is rejected again (its
        // other joint now assembled elsewhere, or its bodypart already visible, and
        // visibility only grows), while the links it added are popped from the
        // lookup.  So only the complete components' assemblies (never filled) are.
        const bool refill_grown = n_extra > 0 || !by_key || P.calib != nullptr;
        for (int ia : out) {
            if (pool[size_t(ia)].n_visible != P.n_multi && (refill_grown || !pool[size_t(ia)].grown)) {
                fill_assembly(ia);
                for (int j : pool[size_t(ia)].joint_order)
                    if (pool[size_t(ia)].in_idx[size_t(j)]) assembled[size_t(j)] = 1;
            }
        }
        return out;
    }

    // Assembly.intersection_with
    // Bounding box (x min, y min, x max, y max; NaN-skipping) of an assembly's joints
    void extent(const Asm& s, double* e) const {
        e[0] = e[1] = e[2] = e[3] = NaN;
        for (int r = 0; r < P.n_multi; ++r) {
            for (int c = 0; c < 2; ++c) {
                double v = s.data[size_t(r) * 4 + size_t(c)];
                if (std::isnan(v)) continue;
                if (std::isnan(e[c]) || v < e[c]) e[c] = v;
                if (std::isnan(e[c + 2]) || v > e[c + 2]) e[c + 2] = v;
            }
        }
    }

    // e1, e2: the extents of a and b (computed once per assembly by the caller)
    double intersection(const Asm& a, const Asm& b, const double* e1, const double* e2) const {
        auto pymax = [](double p, double q) { return q > p ? q : p; };
        auto pymin = [](double p, double q) { return q < p ? q : p; };
        double x1 = pymax(e1[0], e2[0]), y1 = pymax(e1[1], e2[1]);
        double x2 = pymin(e1[2], e2[2]), y2 = pymin(e1[3], e2[3]);
        if (x2 < x1 || y2 < y1) return 0.0;
        // joints inside the box, without branches (whether one is inside is a coin
        // flip); a NaN coordinate fails every comparison, so missing joints count 0
        auto count = [&](const Asm& s) {
            int n = 0;
            for (int r = 0; r < P.n_multi; ++r) {
                const double x = s.data[size_t(r) * 4], y = s.data[size_t(r) * 4 + 1];
                n += int(x >= x1) & int(y >= y1) & int(x <= x2) & int(y <= y2);
            }
            return n;
        };
        if (!a.n_visible || !b.n_visible) return 0.0;
        double f1 = double(count(a)) / a.n_visible, f2 = double(count(b)) / b.n_visible;
        return f2 < f1 ? f2 : f1;
    }

    int64_t joint_hash(int j) const {
        TupleHash pos;
        pos.add(py_hash_double(jx(j)));
        pos.add(py_hash_double(jy(j)));
        TupleHash h;
        h.add(pos.value());
        h.add(py_hash_double(jc(j)));
        h.add(py_hash_int(jl(j)));
        h.add(py_hash_int(j));
        h.add(py_hash_int(F->group[j]));
        return h.value();
    }

    void emit(FrameOut& out, const std::vector<int>& asms) {
        out.has_assemblies = true;
        out.links = links;
        out.assemblies.reserve(asms.size());
        for (int ia : asms) {
            Asm& a = pool[size_t(ia)];
            AssemblyOut o;
            o.data = a.data;
            o.affinity = a.aff;
            o.links = a.links;
            o.joints.reserve(a.joint_order.size());
            for (int j : a.joint_order)
                if (a.in_idx[size_t(j)]) o.joints.push_back(j);
            out.assemblies.push_back(std::move(o));
        }
    }

    // One frame.  `F` must stay valid during the call.
    void run(const FrameIn& frame, const Trees& trees, FrameOut& out) {
        F = &frame;
        nj = frame.n_joints;
        out = FrameOut();
        links.clear();
        pool_n = 0;
        if (nj == 0) return;
        if (bag.size() < size_t(std::max(P.n_keypoints, 1))) bag.resize(size_t(std::max(P.n_keypoints, 1)));
        for (auto& b : bag) b.clear();
        for (int j = 0; j < nj; ++j)
            if (jl(j) >= 0 && jl(j) < P.n_keypoints) bag[size_t(jl(j))].push_back(j);
        assembled.assign(size_t(nj), 0);

        const int n_unique = P.n_keypoints - P.n_multi;
        if (n_unique > 0) {
            out.unique.assign(size_t(n_unique) * 3, NaN);
            bool any = false;
            for (int n = 0; n < n_unique; ++n) {
                const std::vector<int>& dets = bag[size_t(P.n_multi + n)];
                if (dets.empty()) continue;
                int det = dets[0];
                for (size_t q = 1; q < dets.size(); ++q)
                    if (jc(dets[q]) > jc(det)) det = dets[q];
                for (int d : dets) assembled[size_t(d)] = 1;
                if (jc(det) <= P.pcutoff && !P.add_discarded) continue;
                double* row = &out.unique[size_t(n) * 3];
                row[0] = jx(det); row[1] = jy(det); row[2] = jc(det);
                any = any || !std::isnan(row[0]) || !std::isnan(row[1]) || !std::isnan(row[2]);
            }
            out.has_unique = any;
            if (!any) out.unique.clear();
        }
        bool any_multi = false;
        for (int l = 0; l < P.n_multi; ++l) any_multi = any_multi || !bag[size_t(l)].empty();
        if (!any_multi) return;

        std::vector<int>& asms = ws_asms;
        asms.clear();
        if (P.n_multi == 1) {
            for (int j : bag[0]) {
                if (jc(j) >= P.pcutoff) {
                    int ia = new_asm();
                    add_joint(pool[size_t(ia)], j);
                    asms.push_back(ia);
                }
            }
            emit(out, asms);
            return;
        }
        if (P.max_n == 1) {
            int ia = new_asm();
            for (int l = 0; l < P.n_multi; ++l) {
                const std::vector<int>& dets = bag[size_t(l)];
                if (dets.empty()) continue;
                int det = dets[0];
                for (size_t q = 1; q < dets.size(); ++q)
                    if (jc(dets[q]) > jc(det)) det = dets[q];
                add_joint(pool[size_t(ia)], det);
            }
            asms.push_back(ia);
            emit(out, asms);
            return;
        }

        if (P.identity_only) {
            std::vector<int> temp;
            for (int j = 0; j < nj; ++j)
                if (std::isfinite(jc(j))) temp.push_back(j);
            py_sort(temp, [&](int p, int q) { return F->group[p] < F->group[q]; }, false);
            size_t q = 0;
            while (q < temp.size()) {
                size_t e = q;
                while (e < temp.size() && F->group[temp[e]] == F->group[temp[q]]) ++e;
                std::vector<int> grp(temp.begin() + long(q), temp.begin() + long(e));
                py_sort(grp, [&](int p, int r) { return jc(p) < jc(r); }, true);
                int ia = new_asm();
                for (int j : grp)
                    if (jc(j) >= P.pcutoff && jl(j) < P.n_multi) add_joint(pool[size_t(ia)], j);
                if (pool[size_t(ia)].n_visible) {
                    asms.push_back(ia);
                    for (int j : pool[size_t(ia)].joint_order) assembled[size_t(j)] = 1;
                }
                q = e;
            }
        } else {
            extract_best_links(trees);
            if (P.calib) calib_scale_links(*this);
            // _fill_assembly's `visited` holds idx tuples: links joining the same (i, j)
            // share one entry
            link_pair_id.resize(links.size());
            for (size_t a = 0; a < links.size(); ++a) link_pair_id[a] = int(a);
            if (P.dup_edges) {
                std::vector<int> ord(links.size());
                for (size_t a = 0; a < links.size(); ++a) ord[a] = int(a);
                std::sort(ord.begin(), ord.end(), [&](int p, int q) {
                    const LinkOut &A = links[size_t(p)], &Bq = links[size_t(q)];
                    if (A.j1 != Bq.j1) return A.j1 < Bq.j1;
                    if (A.j2 != Bq.j2) return A.j2 < Bq.j2;
                    return p < q;
                });
                for (size_t a = 0; a < ord.size(); ++a) {
                    const LinkOut& L = links[size_t(ord[a])];
                    bool same = a > 0 && links[size_t(ord[a - 1])].j1 == L.j1 && links[size_t(ord[a - 1])].j2 == L.j2;
                    link_pair_id[size_t(ord[a])] = same ? link_pair_id[size_t(ord[a - 1])] : ord[a];
                }
            }
            if (P.window_size >= 1 && !links.empty()) {
                out.tree.reserve(links.size() * 4);
                for (const LinkOut& L : links) {
                    out.tree.push_back(jx(L.j1)); out.tree.push_back(jy(L.j1));
                    out.tree.push_back(jx(L.j2)); out.tree.push_back(jy(L.j2));
                }
            }
            asms.swap(build_assemblies());
        }

        // Validity
        // DLC's `discarded` set only matters with add_discarded: skip its hashing otherwise
        PySetEmu& discarded = ws_discarded;
        discarded.clear();
        if (P.add_discarded)
            for (int j = 0; j < nj; ++j)
                if (!assembled[size_t(j)] && std::isfinite(jc(j))) discarded.add(j, joint_hash(j));
        auto discard_links = [&](int ia) {
            if (!P.add_discarded) return;
            for (int lk : pool[size_t(ia)].links) {
                discarded.add(links[size_t(lk)].j1, joint_hash(links[size_t(lk)].j1));
                discarded.add(links[size_t(lk)].j2, joint_hash(links[size_t(lk)].j2));
            }
        };
        for (long q = long(asms.size()) - 1; q >= 0; --q) {
            const Asm& a = pool[size_t(asms[size_t(q)])];
            int nlk = int(a.links.size());
            if ((0 < nlk && nlk < P.min_n_links) || a.n_visible == 0) {
                discard_links(asms[size_t(q)]);
                asms.erase(asms.begin() + q);
            }
        }
        // Non-maximum pose suppression, in descending summed affinity
        if (0 < P.max_overlap && P.max_overlap < 1) {
            // the joints do not change during suppression: one extent per assembly
            std::vector<double>& ext = ws_ext;
            if (ext.size() < pool_n * 4) ext.resize(pool_n * 4);
            for (int ia : asms) extent(pool[size_t(ia)], &ext[size_t(ia) * 4]);
            std::vector<int> lst = asms, kept;
            const std::vector<double>* cal_score = P.calib ? &calib_scores(*this, asms) : nullptr;
            auto score = [&](int ia) { return cal_score ? (*cal_score)[size_t(ia)] : pool[size_t(ia)].aff; };
            while (!lst.empty()) {
                size_t bi = 0;
                for (size_t q = 1; q < lst.size(); ++q)
                    if (score(lst[q]) > score(lst[bi])) bi = q;
                int best = lst[bi];
                kept.push_back(best);
                lst.erase(lst.begin() + long(bi));
                std::vector<int> rest;
                for (int ia : lst)
                    if (intersection(pool[size_t(best)], pool[size_t(ia)], &ext[size_t(best) * 4], &ext[size_t(ia) * 4]) < P.max_overlap) rest.push_back(ia);
                lst.swap(rest);
            }
            asms.swap(kept);
        }
        if (int(asms.size()) > P.max_n) {
            py_sort(asms, [&](int p, int q) { return pool[size_t(p)].n_visible < pool[size_t(q)].n_visible; }, true);
            for (size_t q = size_t(P.max_n); q < asms.size(); ++q) discard_links(asms[q]);
            asms.resize(size_t(P.max_n));
        }
        if (P.add_discarded && discarded.used) {
            std::vector<int> order;
            discarded.for_each([&](int j) { order.push_back(j); });
            py_sort(order, [&](int p, int q) { return jc(p) < jc(q); }, true);
            for (int j : order) {
                if (P.calib) { calib_add_discarded(*this, asms, j); continue; }
                int best = -1;
                double bd = NaN;
                for (size_t q = 0; q < asms.size(); ++q) {
                    const Asm& a = pool[size_t(asms[q])];
                    if (jl(j) < P.n_multi && a.visible[size_t(jl(j))]) continue;
                    double d = nanmin_dist(a, jx(j), jy(j), P.n_multi);
                    if (best < 0 || d < bd) { best = int(q); bd = d; }
                }
                if (best >= 0) add_joint(pool[size_t(asms[size_t(best)])], j);
            }
        }
        emit(out, asms);
    }
};

}  // namespace mapose_asm

namespace mapose_asm {

inline double half_to_double(uint16_t h) {
    const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 0) v = std::ldexp(double(man), -24);
    else if (exp == 31) v = man ? NaN : std::numeric_limits<double>::infinity();
    else v = std::ldexp(double(man | 0x400), exp - 25);
    return sign ? -v : v;
}

// Detections and costs of many frames, flattened (filled by the Cython packer).
struct Batch {
    int n_edges = 0;
    std::vector<int64_t> joint_off{0};
    std::vector<double> x, y, conf;
    std::vector<int> label, group;
    std::vector<signed char> xdtype;           // per joint (0: float64, 1: float32, 2: float16)
    std::vector<signed char> has_cost, dtype;  // n_frames * n_edges
    std::vector<const char*> cost_ptr;
    std::vector<int64_t> cost_s0, cost_s1;
    size_t n_frames() const { return joint_off.size() - 1; }
    FrameIn frame(size_t f) const {
        FrameIn in;
        const int64_t o = joint_off[f];
        in.n_joints = int(joint_off[f + 1] - o);
        in.x = x.data() + o; in.y = y.data() + o; in.conf = conf.data() + o;
        in.label = label.data() + o; in.group = group.data() + o;
        in.xdtype = xdtype.size() == x.size() ? xdtype.data() + o : nullptr;
        const size_t e = f * size_t(n_edges);
        in.has_cost = has_cost.data() + e; in.dtype = dtype.data() + e;
        in.cost_ptr = cost_ptr.data() + e; in.cost_s0 = cost_s0.data() + e; in.cost_s1 = cost_s1.data() + e;
        return in;
    }
};

// Frames [lo, hi) of `B` on the calling thread, without temporal coherence, into
// outs[lo, hi): the caller packs and assembles a few frames at a time (pack_run), with
// one FrameAssembler kept across calls (its buffers keep their capacity).
inline void run_frames(FrameAssembler& fa, const Batch& B, size_t lo, size_t hi, std::vector<FrameOut>& outs) {
    const Trees none;
    for (size_t f = lo; f < hi; ++f) {
        const FrameIn in = B.frame(f);
        fa.run(in, none, outs[f]);
    }
}

// Assemble frames [0, n) of `B`.  Without temporal coherence frames are independent
// and split over `n_threads` threads; with it (window_size >= 1) they run in order on
// one thread, reading and extending `trees_by_frame` (frame index -> that frame's link
// tree, built once when its links are stored).  A tree is dropped from the map as soon
// as no later frame of the batch can look back at it and it is not among the
// window_size last frame indices (what a following call could need): memory stays
// bounded by the window, not the video length.
inline void run_batch(const Params& P, const Batch& B, const int64_t* frame_index,
                      std::vector<FrameOut>& outs, int n_threads,
                      TreeMap& trees_by_frame) {
    const size_t n = B.n_frames();
    outs.assign(n, FrameOut());
    if (P.window_size >= 1) {
        FrameAssembler fa(P);
        // smallest frame index still to come, and the largest of the batch
        std::vector<int64_t> suffix_min(n + 1, std::numeric_limits<int64_t>::max());
        int64_t max_index = std::numeric_limits<int64_t>::min();
        for (size_t f = n; f-- > 0;) {
            suffix_min[f] = std::min(suffix_min[f + 1], frame_index[f]);
            max_index = std::max(max_index, frame_index[f]);
        }
        for (size_t f = 0; f < n; ++f) {
            Trees trees;
            for (int j = 1; j <= P.window_size; ++j) {
                auto it = trees_by_frame.find(frame_index[f] - j);
                if (it != trees_by_frame.end()) trees.list.push_back(it->second.get());
            }
            FrameIn in = B.frame(f);
            fa.run(in, trees, outs[f]);
            if (!outs[f].tree.empty()) {
                trees_by_frame[frame_index[f]] = std::make_shared<const LinkTree4>(std::move(outs[f].tree));
                outs[f].tree = std::vector<double>();
            }
            const int64_t keep_from = std::min(suffix_min[f + 1] == std::numeric_limits<int64_t>::max()
                                                   ? std::numeric_limits<int64_t>::max()
                                                   : suffix_min[f + 1] - P.window_size,
                                               max_index - P.window_size + 1);
            trees_by_frame.erase(trees_by_frame.begin(), trees_by_frame.lower_bound(keep_from));
        }
        return;
    }
    auto work = [&](size_t lo, size_t hi) {
        FrameAssembler fa(P);
        Trees none;
        for (size_t f = lo; f < hi; ++f) {
            FrameIn in = B.frame(f);
            fa.run(in, none, outs[f]);
        }
    };
    if (n_threads <= 1 || n < 2) { work(0, n); return; }
    const size_t nt = std::min(size_t(n_threads), n);
    std::vector<std::thread> pool;
    for (size_t t = 0; t < nt; ++t) pool.emplace_back(work, n * t / nt, n * (t + 1) / nt);
    for (auto& th : pool) th.join();
}

}  // namespace mapose_asm
