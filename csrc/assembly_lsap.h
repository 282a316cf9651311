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

    // Same contract as mapose::lsap_solve.
    int solve(long nr, long nc, const double* cost, bool maximize, long* out_rows, long* out_cols) {
        if (nr == 0 || nc == 0) return 0;
        if (maximize && dominant(nr, nc, cost, out_rows, out_cols)) return 0;
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
