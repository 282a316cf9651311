// The solver of lsap.h (SciPy's search order and tie-breaking, see there) with a
// reusable workspace: the assembler solves one tiny problem per graph edge and frame,
// and allocating a dozen vectors each time cost more than the solve itself.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace mapose_asm {

struct LsapWorkspace {
    std::vector<double> c, u, v, spc;
    std::vector<long> path, col4row, row4col, remaining, order;
    std::vector<char> SR, SC;

    std::vector<long> best;
    std::vector<char> used;

    // Unique optimum shortcut (maximisation of finite costs): when every row of the
    // smaller side has a strictly largest entry and these fall in distinct columns,
    // that assignment beats every other one, so it is the one SciPy returns.
    bool dominant(long nr, long nc, const double* cost, long* out_rows, long* out_cols) {
        const bool by_row = nr <= nc;
        const long R = by_row ? nr : nc, C = by_row ? nc : nr;
        best.resize(size_t(R));
        used.assign(size_t(C), 0);
        for (long i = 0; i < R; ++i) {
            long arg = 0;
            double top = by_row ? cost[i * nc] : cost[i];
            if (std::isnan(top)) return false;
            bool unique = true;
            for (long j = 1; j < C; ++j) {
                double x = by_row ? cost[i * nc + j] : cost[j * nc + i];
                if (std::isnan(x)) return false;
                if (x > top) { top = x; arg = j; unique = true; }
                else if (x == top) unique = false;
            }
            if (!unique || used[size_t(arg)]) return false;
            used[size_t(arg)] = 1;
            best[size_t(i)] = arg;
        }
        if (by_row) {
            for (long i = 0; i < R; ++i) { out_rows[i] = i; out_cols[i] = best[size_t(i)]; }
        } else {  // pairs sorted by row index
            long k = 0;
            for (long r = 0; r < C; ++r)
                if (used[size_t(r)])
                    for (long c = 0; c < R; ++c)
                        if (best[size_t(c)] == r) { out_rows[k] = r; out_cols[k] = c; ++k; break; }
        }
        return true;
    }

    // Exhaustive search for tiny problems (at most 120 injective row->column maps).
    // Used only when the best total beats every other assignment by a clear margin:
    // the optimum is then unique and SciPy's solver returns that same assignment.
    long bf_R = 0, bf_C = 0;
    bool bf_by_row = true;
    const double* bf_cost = nullptr;
    long bf_nc = 0;
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
            bf_rec(i + 1, acc + (bf_by_row ? bf_cost[i * bf_nc + j] : bf_cost[j * bf_nc + i]));
            used_mask &= ~(1u << j);
        }
    }
    bool brute_force(long nr, long nc, const double* cost, long* out_rows, long* out_cols) {
        bf_by_row = nr <= nc;
        bf_R = bf_by_row ? nr : nc;
        bf_C = bf_by_row ? nc : nr;
        long count = 1;
        for (long k = 0; k < bf_R; ++k) count *= (bf_C - k);
        if (bf_R > 4 || bf_C > 8 || count > 120 || count < 2) return false;
        for (long q = 0; q < nr * nc; ++q)
            if (!std::isfinite(cost[q])) return false;
        bf_cost = cost;
        bf_nc = nc;
        have_best = false;
        used_mask = 0;
        second_sum = -std::numeric_limits<double>::infinity();
        bf_rec(0, 0.0);
        const double scale = std::max(1.0, std::fabs(best_sum));
        if (!(best_sum - second_sum > 1e-9 * scale)) return false;
        if (bf_by_row) {
            for (long i = 0; i < bf_R; ++i) { out_rows[i] = i; out_cols[i] = best_sel[i]; }
        } else {  // pairs sorted by row index of the original (tall) matrix
            long k = 0;
            for (long r = 0; r < bf_C; ++r)
                for (long c = 0; c < bf_R; ++c)
                    if (best_sel[c] == r) { out_rows[k] = r; out_cols[k] = c; ++k; }
        }
        return true;
    }

    // Same contract as mapose::lsap_solve.
    int solve(long nr, long nc, const double* cost, bool maximize, long* out_rows, long* out_cols) {
        if (nr == 0 || nc == 0) return 0;
        if (maximize && dominant(nr, nc, cost, out_rows, out_cols)) return 0;
        if (maximize && brute_force(nr, nc, cost, out_rows, out_cols)) return 0;
        const bool transpose = nc < nr;
        const long R = transpose ? nc : nr;
        const long C = transpose ? nr : nc;
        c.resize(size_t(R * C));
        for (long i = 0; i < R; ++i) {
            for (long j = 0; j < C; ++j) {
                double x = transpose ? cost[j * nc + i] : cost[i * nc + j];
                if (maximize) x = -x;
                if (std::isnan(x) || x == -std::numeric_limits<double>::infinity()) return -2;
                c[size_t(i * C + j)] = x;
            }
        }
        const double INF = std::numeric_limits<double>::infinity();
        u.assign(size_t(R), 0.0);
        v.assign(size_t(C), 0.0);
        spc.resize(size_t(C));
        path.assign(size_t(C), -1);
        col4row.assign(size_t(R), -1);
        row4col.assign(size_t(C), -1);
        remaining.resize(size_t(C));
        SR.resize(size_t(R));
        SC.resize(size_t(C));
        for (long cur = 0; cur < R; ++cur) {
            double minVal = 0.0;
            long i = cur;
            long num_remaining = C;
            for (long it = 0; it < C; ++it) remaining[size_t(it)] = C - it - 1;
            std::fill(SR.begin(), SR.end(), 0);
            std::fill(SC.begin(), SC.end(), 0);
            std::fill(spc.begin(), spc.end(), INF);
            long sink = -1;
            while (sink == -1) {
                long index = -1;
                double lowest = INF;
                SR[size_t(i)] = 1;
                for (long it = 0; it < num_remaining; ++it) {
                    long j = remaining[size_t(it)];
                    double r = minVal + c[size_t(i * C + j)] - u[size_t(i)] - v[size_t(j)];
                    if (r < spc[size_t(j)]) {
                        path[size_t(j)] = i;
                        spc[size_t(j)] = r;
                    }
                    if (spc[size_t(j)] < lowest || (spc[size_t(j)] == lowest && row4col[size_t(j)] == -1)) {
                        lowest = spc[size_t(j)];
                        index = it;
                    }
                }
                minVal = lowest;
                if (minVal == INF) return -1;
                long j = remaining[size_t(index)];
                if (row4col[size_t(j)] == -1) sink = j;
                else i = row4col[size_t(j)];
                SC[size_t(j)] = 1;
                remaining[size_t(index)] = remaining[size_t(--num_remaining)];
            }
            u[size_t(cur)] += minVal;
            for (long r = 0; r < R; ++r)
                if (SR[size_t(r)] && r != cur) u[size_t(r)] += minVal - spc[size_t(col4row[size_t(r)])];
            for (long j = 0; j < C; ++j)
                if (SC[size_t(j)]) v[size_t(j)] -= minVal - spc[size_t(j)];
            long j = sink;
            while (true) {
                long r = path[size_t(j)];
                row4col[size_t(j)] = r;
                std::swap(col4row[size_t(r)], j);
                if (r == cur) break;
            }
        }
        if (transpose) {
            order.resize(size_t(R));
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(),
                             [&](long a, long b) { return col4row[size_t(a)] < col4row[size_t(b)]; });
            for (long k = 0; k < R; ++k) {
                out_rows[k] = col4row[size_t(order[size_t(k)])];
                out_cols[k] = order[size_t(k)];
            }
        } else {
            for (long k = 0; k < R; ++k) {
                out_rows[k] = k;
                out_cols[k] = col4row[size_t(k)];
            }
        }
        return 0;
    }
};

}  // namespace mapose_asm
