// Rectangular linear sum assignment by shortest augmenting paths (Crouse 2016,
// the Jonker-Volgenant family). Header-only so every kernel family can call it
// without the GIL and without cross-extension linking.
//
// The search order (columns scanned from the last remaining one, ties resolved in
// favour of an unassigned column) deliberately follows the one SciPy's
// linear_sum_assignment uses: DeepLabCut links with SciPy, and equal-cost ties
// must resolve the same way for outputs to match DLC bit for bit.  Every reduced
// cost is computed with SciPy's operation order, so the floating-point values (and
// hence the comparisons) are the same too.
//
// Two entry points:
// * lsap_solve(): one call, one problem (allocates its workspace);
// * LsapWorkspace::solve(): the same solver with buffers kept across calls, for
//   kernels that solve many tiny problems (the assembler solves one per graph edge
//   and frame, where a dozen allocations cost more than the solve itself), and
//   LsapWorkspace::solve_max_unique_first(), which first tries two shortcuts that
//   are exact only for a *unique* optimum (see there).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace mapose {

struct LsapWorkspace {
    // Returns 0 on success, -1 if infeasible, -2 if the cost matrix holds NaN or -inf
    // (after negation when maximizing).  cost is row-major (nr, nc), read only.
    // out_rows/out_cols receive min(nr, nc) pairs sorted by row index (as SciPy
    // returns them).
    int solve(long nr, long nc, const double* cost, bool maximize, long* out_rows, long* out_cols) {
        if (nr == 0 || nc == 0) return 0;
        const bool transpose = nc < nr;
        const long R = transpose ? nc : nr;
        const long C = transpose ? nr : nc;
        const double INF = std::numeric_limits<double>::infinity();
        grow(c_, R * C);
        double* c = c_.data();
        for (long i = 0; i < R; ++i) {
            for (long j = 0; j < C; ++j) {
                double x = transpose ? cost[j * nc + i] : cost[i * nc + j];
                if (maximize) x = -x;
                if (!(x > -INF)) return -2;  // NaN or -inf
                c[i * C + j] = x;
            }
        }
        grow(u_, R); grow(v_, C); grow(spc_, C);
        grow(path_, C); grow(col4row_, R); grow(row4col_, C);
        grow(remaining_, C); grow(vr_, R); grow(vc_, C);
        double *u = u_.data(), *v = v_.data(), *spc = spc_.data();
        long *path = path_.data(), *col4row = col4row_.data(), *row4col = row4col_.data();
        long *remaining = remaining_.data(), *vr = vr_.data(), *vc = vc_.data();
        std::fill(u, u + R, 0.0);
        std::fill(v, v + C, 0.0);
        std::fill(path, path + C, -1L);
        std::fill(col4row, col4row + R, -1L);
        std::fill(row4col, row4col + C, -1L);
        // SciPy scans the columns from the last: every row's search starts from this
        grow(rev_, C);
        long* rev = rev_.data();
        for (long it = 0; it < C; ++it) rev[it] = C - it - 1;

        for (long cur = 0; cur < R; ++cur) {
            double minVal = 0.0;
            long i = cur;
            long num_remaining = C;
            std::copy(rev, rev + C, remaining);
            std::fill(spc, spc + C, INF);
            // rows (SciPy's SR) and columns (SC) reached by the search, as lists: the
            // dual updates below touch only those, each independently of the others
            long n_vr = 0, n_vc = 0;
            long sink = -1;
            while (sink == -1) {
                long index = -1;
                double lowest = INF;
                vr[n_vr++] = i;
                const double* ci = c + i * C;
                const double ui = u[i];
                for (long it = 0; it < num_remaining; ++it) {
                    const long j = remaining[it];
                    const double r = minVal + ci[j] - ui - v[j];
                    if (r < spc[j]) {
                        path[j] = i;
                        spc[j] = r;
                    }
                    if (spc[j] < lowest || (spc[j] == lowest && row4col[j] == -1)) {
                        lowest = spc[j];
                        index = it;
                    }
                }
                minVal = lowest;
                if (minVal == INF) return -1;
                const long j = remaining[index];
                if (row4col[j] == -1) sink = j;
                else i = row4col[j];
                vc[n_vc++] = j;
                remaining[index] = remaining[--num_remaining];
            }
            u[cur] += minVal;
            for (long q = 0; q < n_vr; ++q) {
                const long r = vr[q];
                if (r != cur) u[r] += minVal - spc[col4row[r]];
            }
            for (long q = 0; q < n_vc; ++q) {
                const long j = vc[q];
                v[j] -= minVal - spc[j];
            }
            long j = sink;
            while (true) {
                const long r = path[j];
                row4col[j] = r;
                std::swap(col4row[r], j);
                if (r == cur) break;
            }
        }
        if (transpose) {
            // pairs sorted by the original row = transposed column (all distinct)
            long k = 0;
            for (long j = 0; j < C; ++j) {
                if (row4col[j] < 0) continue;
                out_rows[k] = j;
                out_cols[k] = row4col[j];
                ++k;
            }
        } else {
            for (long k = 0; k < R; ++k) {
                out_rows[k] = k;
                out_cols[k] = col4row[k];
            }
        }
        return 0;
    }

    // Which shortcut the last solve_max_unique_first() call took (0: solve(),
    // 1: dominant, 2: exhaustive, 3: forced pairs); for tests.
    int last_path = 0;

    // Maximisation of a finite cost matrix, trying three shortcuts before solve():
    // * every row of the smaller side has a strictly largest entry and these fall in
    //   distinct columns: that assignment beats every other one;
    // * tiny problems (at most 120 injective maps, smaller side <= 4): exhaustive
    //   search, used only when the best total beats every other by a clear margin;
    // * forced pairs (see forced_pairs): pairs provably in every optimum, the rest
    //   solved on its own with a certificate that its optimum is unique.
    // Each way the optimum is unique, so it is the assignment SciPy returns too.
    // try_dominant=false skips the first shortcut (for callers that already checked it).
    int solve_max_unique_first(long nr, long nc, const double* cost, long* out_rows, long* out_cols,
                               bool try_dominant = true) {
        last_path = 0;
        if (nr == 0 || nc == 0) return 0;
        if (try_dominant && dominant(nr, nc, cost, out_rows, out_cols)) { last_path = 1; return 0; }
        if (brute_force(nr, nc, cost, out_rows, out_cols)) { last_path = 2; return 0; }
        if (forced_pairs(nr, nc, cost, out_rows, out_cols)) { last_path = 3; return 0; }
        return solve(nr, nc, cost, true, out_rows, out_cols);
    }

  private:
    // buffers only grow: a shorter problem uses a prefix (no reallocation, no clearing)
    template <class T> static void grow(std::vector<T>& v, long n) {
        if (v.size() < size_t(n)) v.resize(size_t(n));
    }
    std::vector<double> c_, u_, v_, spc_;
    std::vector<long> path_, col4row_, row4col_, remaining_, vr_, vc_, rev_;
    std::vector<long> best_, inv_;
    std::vector<char> used_;

    bool dominant(long nr, long nc, const double* cost, long* out_rows, long* out_cols) {
        const bool by_row = nr <= nc;
        const long R = by_row ? nr : nc, C = by_row ? nc : nr;
        grow(best_, R);
        const long si = by_row ? nc : 1, sj = by_row ? 1 : nc;  // strides of row i / column j
        uint64_t used_bits = 0;  // columns taken, while C <= 64 (no buffer to clear)
        if (C > 64) used_.assign(size_t(C), 0);
        for (long i = 0; i < R; ++i) {
            const double* ci = cost + i * si;
            long arg = 0;
            double top = ci[0];
            if (std::isnan(top)) return false;
            bool unique = true;
            for (long j = 1; j < C; ++j) {
                const double x = ci[j * sj];
                if (x > top) { top = x; arg = j; unique = true; }
                else if (x == top) unique = false;
                else if (std::isnan(x)) return false;
            }
            if (!unique) return false;
            if (C <= 64) {
                if (used_bits >> arg & 1u) return false;
                used_bits |= uint64_t(1) << arg;
            } else {
                if (used_[size_t(arg)]) return false;
                used_[size_t(arg)] = 1;
            }
            best_[size_t(i)] = arg;
        }
        if (by_row) {
            for (long i = 0; i < R; ++i) { out_rows[i] = i; out_cols[i] = best_[size_t(i)]; }
        } else {  // pairs sorted by row index
            grow(inv_, C);
            for (long c = 0; c < R; ++c) inv_[size_t(best_[size_t(c)])] = c;
            long k = 0;
            for (long r = 0; r < C; ++r)
                if (C <= 64 ? (used_bits >> r & 1u) : used_[size_t(r)]) { out_rows[k] = r; out_cols[k] = inv_[size_t(r)]; ++k; }
        }
        return true;
    }

    // exhaustive search state
    long bf_R = 0, bf_C = 0, bf_si = 0, bf_sj = 0;
    const double* bf_cost = nullptr;
    long cur_sel[8], best_sel[8];
    double best_sum = 0, second_sum = 0;
    bool have_best = false;
    unsigned used_mask = 0;

    void bf_rec(long i, double acc) {
        if (i == bf_R) {
            if (!have_best || acc > best_sum) {
                if (have_best) second_sum = best_sum;
                best_sum = acc;
                have_best = true;
                for (long k = 0; k < bf_R; ++k) best_sel[k] = cur_sel[k];
            } else if (acc > second_sum) {
                second_sum = acc;
            }
            return;
        }
        for (long j = 0; j < bf_C; ++j) {
            if (used_mask & (1u << j)) continue;
            used_mask |= 1u << j;
            cur_sel[i] = j;
            bf_rec(i + 1, acc + bf_cost[i * bf_si + j * bf_sj]);
            used_mask &= ~(1u << j);
        }
    }

    void bf_leaf(double acc, long j0, long j1, long j2) {
        if (!have_best || acc > best_sum) {
            if (have_best) second_sum = best_sum;
            best_sum = acc;
            have_best = true;
            best_sel[0] = j0; best_sel[1] = j1; best_sel[2] = j2;
        } else if (acc > second_sum) {
            second_sum = acc;
        }
    }

    // bf_rec for one to three rows as plain loops (the usual case: a few animals);
    // same sums in the same order, and the best/second totals do not depend on the
    // enumeration order
    void bf_loops() {
        const long R = bf_R, C = bf_C;
        auto at = [&](long i, long j) { return bf_cost[i * bf_si + j * bf_sj]; };
        for (long j0 = 0; j0 < C; ++j0) {
            const double s0 = 0.0 + at(0, j0);
            if (R == 1) { bf_leaf(s0, j0, 0, 0); continue; }
            for (long j1 = 0; j1 < C; ++j1) {
                if (j1 == j0) continue;
                const double s1 = s0 + at(1, j1);
                if (R == 2) { bf_leaf(s1, j0, j1, 0); continue; }
                for (long j2 = 0; j2 < C; ++j2) {
                    if (j2 == j0 || j2 == j1) continue;
                    bf_leaf(s1 + at(2, j2), j0, j1, j2);
                }
            }
        }
    }

    // Forced pairs.  View the problem with R <= C (every row is assigned).  A pair (i, j)
    // is in every optimum if (a) a[i][j] beats every other entry of row i and (b) for
    // all rows k != i and columns l != j, a[i][j] + a[k][l] > a[i][l] + a[k][j]:
    // an assignment without (i, j) gives row i some l and column j either nobody
    // (then moving row i to j gains, by (a)) or a row k (then swapping gains, by (b)).
    // Pass 1 checks (b) with the bound a[k][l] >= min(a), a[i][l] <= row i's second
    // largest, a[k][j] <= column j's largest outside row i; these pairs hold in every
    // optimum at once.  Pass 2 checks (a) and (b) exactly on the rows and columns left
    // over, one row at a time: given the pairs already fixed, every optimum restricted
    // to the rest is an optimum of the smaller problem, so the same argument applies.
    // All inequalities must hold by a margin far above rounding, so SciPy's solver
    // (which finds the exact optimum up to rounding) returns this unique optimum too.
    // What is left is solved exactly on its own and must have a unique optimum
    // (unique_by_duals); then the pairs together are the unique optimum.
    std::vector<double> fa_, fsub_, rtop_, rsec_, clim_, ctop_, csec_;
    std::vector<long> rarg_, fcol_, frow_, urow_, ucol_, carg_;
    bool forced_pairs(long nr, long nc, const double* cost, long* out_rows, long* out_cols) {
        const bool by_row = nr <= nc;
        const long R = by_row ? nr : nc, C = by_row ? nc : nr;
        if (R < 2 || C > 64) return false;
        const double INF = std::numeric_limits<double>::infinity();
        grow(fa_, R * C); grow(rtop_, R); grow(rsec_, R); grow(rarg_, R);
        grow(fcol_, R); grow(frow_, C);
        // by rows: the matrix itself; by columns: a transposed copy
        const double* a = cost;
        if (!by_row) {
            double* t = fa_.data();
            for (long i = 0; i < R; ++i)
                for (long j = 0; j < C; ++j) t[i * C + j] = cost[j * nc + i];
            a = t;
        }
        double *rtop = rtop_.data(), *rsec = rsec_.data();
        long *rarg = rarg_.data(), *fcol = fcol_.data();
        // largest, second largest (equal to the largest on a tie) and arg-max of each row
        double gmin = INF, gmax = -INF, nonfinite = 0.0;
        for (long i = 0; i < R; ++i) {
            double top = -INF, sec = -INF;
            long arg = 0;
            const double* ai = a + i * C;
            // branch-free (min/max, conditional move): on these values the
            // comparisons are coin flips and mispredictions would cost more
            for (long j = 0; j < C; ++j) {
                const double x = ai[j];
                nonfinite += x - x;  // NaN once any entry is +-inf or NaN
                gmin = std::min(gmin, x);
                arg = x > top ? j : arg;
                sec = std::max(sec, std::min(top, x));
                top = std::max(top, x);
            }
            rtop[i] = top; rsec[i] = sec; rarg[i] = arg; fcol[i] = -1;
            gmax = std::max(gmax, top);
        }
        if (nonfinite != 0.0) return false;
        if (!forced_core(R, C, a, gmin, gmax)) return false;
        emit_view(R, C, !by_row, out_rows, out_cols);
        return true;
    }

    // The unique optimum of an R x C remainder (2 <= R <= 3, R <= C, few
    // assignments) by enumeration into best_sel: true when the best sum beats every
    // other by more than `margin`.  bf_count: the assignments enumerated (0: too many
    // to try).
    long bf_count = 0;
    bool remainder_brute(long R, long C, const double* cost, double margin) {
        bf_count = 0;
        if (R < 2 || R > 3 || C < R) return false;
        const long count = R == 2 ? C * (C - 1) : C * (C - 1) * (C - 2);
        if (count > 132) return false;
        bf_count = count;
        bf_R = R; bf_C = C; bf_cost = cost; bf_si = C; bf_sj = 1;
        have_best = false;
        second_sum = -std::numeric_limits<double>::infinity();
        bf_loops();
        return best_sum - second_sum > margin;
    }

    // forced_pairs after the row statistics (rtop_, rsec_, rarg_ of the R x C view `a`,
    // R <= C, and the smallest and largest entries): fills fcol_/frow_
    bool forced_core(long R, long C, const double* a, double gmin, double gmax) {
        const double INF = std::numeric_limits<double>::infinity();
        double *rtop = rtop_.data(), *rsec = rsec_.data();
        long *rarg = rarg_.data(), *fcol = fcol_.data(), *frow = frow_.data();
        // each column's largest entry, its first row and the second largest (equal to
        // the largest on a tie): the largest entry of column j outside row i in one
        // look-up, instead of a scan down the column per row (branch-free, row by row)
        grow(ctop_, C); grow(csec_, C); grow(carg_, C);
        double *ctop = ctop_.data(), *csec = csec_.data();
        long* carg = carg_.data();
        for (long j = 0; j < C; ++j) { ctop[j] = -INF; csec[j] = -INF; carg[j] = 0; }
        for (long k = 0; k < R; ++k) {
            const double* ak = a + k * C;
            for (long j = 0; j < C; ++j) {
                const double x = ak[j], t = ctop[j];
                carg[j] = x > t ? k : carg[j];
                csec[j] = std::max(csec[j], std::min(t, x));
                ctop[j] = std::max(t, x);
            }
        }
        for (long j = 0; j < C; ++j) frow[j] = -1;
        // per column: +inf while free, -inf once fixed; min(entry, clim) reads fixed
        // columns as -inf without a branch (whether a column is fixed is a coin flip)
        grow(clim_, C);
        double* clim = clim_.data();
        for (long j = 0; j < C; ++j) clim[j] = INF;
        const double amax = std::max(std::fabs(gmin), std::fabs(gmax));
        const double margin = 1e-9 * std::max(1.0, amax);
        long n_fixed = 0;
        for (long i = 0; i < R; ++i) {  // pass 1
            const long j = rarg[i];
            const double gap = rtop[i] - rsec[i] + gmin;  // a[i][j] - a[i][l] + a[k][l], at least
            fcol[i] = -1;
            if (!(gap - gmin > margin)) continue;
            // a[k][j] below gap for all k != i, exactly: gap - x falls as x grows, so
            // checking the column's largest entry outside row i decides for all k
            const double other = carg[j] == i ? csec[j] : ctop[j];
            const bool ok = gap - other > margin;
            if (ok) {
                if (frow[j] >= 0) return false;  // cannot happen: (b) is antisymmetric
                fcol[i] = j; frow[j] = i; clim[j] = -INF; ++n_fixed;
            }
        }
        for (long i = 0; i < R && n_fixed < R; ++i) {  // pass 2
            if (fcol[i] >= 0) continue;
            const double* ai = a + i * C;
            double top = -INF, sec = -INF;
            long j = -1;
            // largest and second largest over the free columns, branch-free (fixed
            // columns read as -inf, which never wins: the entries are finite)
            for (long l = 0; l < C; ++l) {
                const double x = std::min(ai[l], clim[l]);
                j = x > top ? l : j;
                sec = std::max(sec, std::min(top, x));
                top = std::max(top, x);
            }
            if (j < 0 || !(top - sec > margin)) continue;
            bool ok = true;
            for (long k = 0; k < R && ok; ++k) {
                if (k == i || fcol[k] >= 0) continue;
                const double* ak = a + k * C;
                const double base = top - ak[j] - margin;
                // the whole row at once: an early exit mispredicts more than it saves
                bool row_ok = true;
                for (long l = 0; l < C; ++l)
                    row_ok &= (l == j) | (frow[l] >= 0) | (base + ak[l] - ai[l] > 0.0);
                ok = row_ok;
            }
            if (!ok) continue;
            fcol[i] = j; frow[j] = i; clim[j] = -INF; ++n_fixed;
        }
        if (n_fixed < R) {
            grow(urow_, R); grow(ucol_, C);
            long nu = 0, nv = 0;
            for (long i = 0; i < R; ++i) if (fcol[i] < 0) urow_[size_t(nu++)] = i;
            for (long j = 0; j < C; ++j) if (frow[j] < 0) ucol_[size_t(nv++)] = j;
            grow(fsub_, nu * nv);
            for (long p = 0; p < nu; ++p)
                for (long q = 0; q < nv; ++q) fsub_[size_t(p * nv + q)] = a[urow_[size_t(p)] * C + ucol_[size_t(q)]];
            grow(sr_, nu); grow(sc_, nu);
            if (remainder_brute(nu, nv, fsub_.data(), margin)) {
                // a few rows left (rows without a partner, false positives): their
                // unique optimum by enumeration, which also certifies the optima that
                // the dual check below cannot (degenerate duals), sparing those edges
                // a second, full solve
                for (long p = 0; p < nu; ++p) sc_[size_t(p)] = best_sel[p];
            } else {
                if (nu <= 3 && bf_count > 1) return false;  // enumerated: not unique
                if (solve(nu, nv, fsub_.data(), true, sr_.data(), sc_.data()) != 0) return false;
                if (!unique_by_duals(nu, nv, margin)) return false;
            }
            for (long p = 0; p < nu; ++p) {
                const long i = urow_[size_t(p)], j = ucol_[size_t(sc_[size_t(p)])];
                fcol[i] = j; frow[j] = i;
            }
        }
        return true;
    }

    // The assignment fcol_/frow_ of an R x C view (R <= C) as SciPy returns it for the
    // original matrix (the view itself, or its transpose when `transposed`).
    void emit_view(long R, long C, bool transposed, long* out_rows, long* out_cols) const {
        const long *fcol = fcol_.data(), *frow = frow_.data();
        if (!transposed) {
            for (long i = 0; i < R; ++i) { out_rows[i] = i; out_cols[i] = fcol[i]; }
        } else {  // view rows are the original columns: pairs sorted by original row
            long k = 0;
            for (long r = 0; r < C; ++r)
                if (frow[r] >= 0) { out_rows[k] = r; out_cols[k] = frow[r]; ++k; }
        }
    }

  public:
    // The assembler's entry point: the caller writes the problem as an R x C view with
    // R <= C (the matrix, or its transpose when it has more rows than columns: what
    // solve() works on either way), finite, into view_buffer(), and each view row's
    // largest entry, second largest (equal to the largest on a tie) and first arg-max
    // into view_top/view_sec/view_arg while reading it, plus the smallest entry and the
    // largest row maximum.  Same answer as solve_max_unique_first on the matrix (each
    // shortcut is exact only for a unique optimum, which they certify), without
    // re-reading or transposing it.
    double* view_buffer(long R, long C) {
        if (R > view_r_ || C > view_c_) {  // grow-only: one check on the usual call
            view_r_ = std::max(view_r_, R); view_c_ = std::max(view_c_, C);
            grow(fa_, view_r_ * view_c_); grow(rtop_, view_r_); grow(rsec_, view_r_); grow(rarg_, view_r_);
            grow(fcol_, view_r_); grow(frow_, view_c_);
        }
        return fa_.data();
    }
    long view_r_ = 0, view_c_ = 0;
    const double* view_data() const { return fa_.data(); }
    double* view_top() { return rtop_.data(); }
    double* view_sec() { return rsec_.data(); }
    long* view_arg() { return rarg_.data(); }

    // try_dominant=false: the caller has already found the rows not dominant
    int solve_max_view(long R, long C, bool transposed, double gmin, double gmax, long* out_rows, long* out_cols,
                       bool try_dominant = true) {
        last_path = 0;
        if (R == 0 || C == 0) return 0;
        const double* a = fa_.data();
        long *fcol = fcol_.data(), *frow = frow_.data();
        const double *rtop = rtop_.data(), *rsec = rsec_.data();
        const long* rarg = rarg_.data();
        // dominant rows: each row's strict maximum, in distinct columns
        bool dom = try_dominant && C <= 64;
        uint64_t used_bits = 0;
        for (long i = 0; i < R && dom; ++i) {
            const uint64_t bit = uint64_t(1) << rarg[i];
            dom = rtop[i] > rsec[i] && !(used_bits & bit);
            used_bits |= bit;
        }
        if (dom) {
            for (long j = 0; j < C; ++j) frow[j] = -1;
            for (long i = 0; i < R; ++i) { fcol[i] = rarg[i]; frow[rarg[i]] = i; }
            last_path = 1;
            emit_view(R, C, transposed, out_rows, out_cols);
            return 0;
        }
        grow(vrows_, R); grow(vcols_, R);
        long *vr = vrows_.data(), *vc = vcols_.data();
        // the view is the matrix SciPy's solver works on: solve it as it is (R <= C,
        // so no transposition there either), then map the pairs back
        if (brute_force(R, C, a, vr, vc)) last_path = 2;
        else if (R >= 2 && C <= 64 && forced_core(R, C, a, gmin, gmax)) { last_path = 3; }
        else if (solve(R, C, a, true, vr, vc) != 0) return -2;
        if (last_path != 3) {
            for (long j = 0; j < C; ++j) frow[j] = -1;
            for (long i = 0; i < R; ++i) { fcol[vr[i]] = vc[i]; frow[vc[i]] = vr[i]; }
        }
        emit_view(R, C, transposed, out_rows, out_cols);
        return 0;
    }

  private:
    std::vector<long> vrows_, vcols_;

    // After solve() on an (R, C) problem with R <= C: is its assignment the unique
    // optimum?  solve() leaves dual potentials with u[i] + v[j] <= c[i][j] (c: the
    // negated costs), equality on the assignment, v <= 0 and v = 0 on unassigned
    // columns.  Any other assignment then costs at least as much plus the reduced
    // cost c - u - v of a pair it uses outside ours: unique when all those exceed
    // the margin (far above the rounding in u and v).
    std::vector<long> sr_, sc_;
    bool unique_by_duals(long R, long C, double margin) const {
        const double *c = c_.data(), *u = u_.data(), *v = v_.data();
        const long* col4row = col4row_.data();
        for (long i = 0; i < R; ++i) {
            const double* ci = c + i * C;
            for (long j = 0; j < C; ++j)
                if (j != col4row[i] && !(ci[j] - u[i] - v[j] > margin)) return false;
        }
        return true;
    }

    bool brute_force(long nr, long nc, const double* cost, long* out_rows, long* out_cols) {
        const bool by_row = nr <= nc;
        bf_R = by_row ? nr : nc;
        bf_C = by_row ? nc : nr;
        if (bf_R > 4 || bf_C > 8) return false;
        long count = 1;
        for (long k = 0; k < bf_R; ++k) count *= (bf_C - k);
        if (count > 120 || count < 2) return false;
        for (long q = 0; q < nr * nc; ++q)
            if (!std::isfinite(cost[q])) return false;
        bf_cost = cost;
        bf_si = by_row ? nc : 1;
        bf_sj = by_row ? 1 : nc;
        have_best = false;
        used_mask = 0;
        second_sum = -std::numeric_limits<double>::infinity();
        if (bf_R <= 3) bf_loops(); else bf_rec(0, 0.0);
        const double scale = std::max(1.0, std::fabs(best_sum));
        if (!(best_sum - second_sum > 1e-9 * scale)) return false;
        if (by_row) {
            for (long i = 0; i < bf_R; ++i) { out_rows[i] = i; out_cols[i] = best_sel[i]; }
        } else {  // pairs sorted by row index of the original (tall) matrix
            long k = 0;
            for (long r = 0; r < bf_C; ++r)
                for (long c = 0; c < bf_R; ++c)
                    if (best_sel[c] == r) { out_rows[k] = r; out_cols[k] = c; ++k; }
        }
        return true;
    }
};

// Returns 0 on success, -1 if infeasible, -2 if the cost matrix holds NaN or -inf.
// cost is row-major (nr, nc), read only. out_rows/out_cols receive min(nr, nc) pairs
// sorted by row index (as SciPy returns them).
inline int lsap_solve(long nr, long nc, const double* cost, bool maximize,
                      long* out_rows, long* out_cols) {
    LsapWorkspace ws;
    return ws.solve(nr, nc, cost, maximize, out_rows, out_cols);
}

}  // namespace mapose
