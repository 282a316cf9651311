// Rectangular linear sum assignment by shortest augmenting paths (Crouse 2016,
// the Jonker-Volgenant family). Header-only so every kernel family can call it
// without the GIL and without cross-extension linking.
//
// The search order (columns scanned from the last remaining one, ties resolved in
// favour of an unassigned column) deliberately follows the one SciPy's
// linear_sum_assignment uses: DeepLabCut links with SciPy, and equal-cost ties
// must resolve the same way for outputs to match DLC bit for bit.
#pragma once
#include <cmath>
#include <limits>
#include <vector>
#include <algorithm>
#include <numeric>

namespace mapose {

// Returns 0 on success, -1 if infeasible, -2 if the cost matrix holds NaN or -inf.
// cost is row-major (nr, nc), read only. out_rows/out_cols receive min(nr, nc) pairs
// sorted by row index (as SciPy returns them).
inline int lsap_solve(long nr, long nc, const double* cost, bool maximize,
                      long* out_rows, long* out_cols) {
    if (nr == 0 || nc == 0) return 0;
    const bool transpose = nc < nr;
    const long R = transpose ? nc : nr;
    const long C = transpose ? nr : nc;
    std::vector<double> c(static_cast<size_t>(R * C));
    for (long i = 0; i < R; ++i) {
        for (long j = 0; j < C; ++j) {
            double v = transpose ? cost[j * nc + i] : cost[i * nc + j];
            if (maximize) v = -v;
            if (std::isnan(v) || v == -std::numeric_limits<double>::infinity()) return -2;
            c[i * C + j] = v;
        }
    }
    const double INF = std::numeric_limits<double>::infinity();
    std::vector<double> u(R, 0.0), v(C, 0.0), spc(C);
    std::vector<long> path(C, -1), col4row(R, -1), row4col(C, -1), remaining(C);
    std::vector<char> SR(R), SC(C);

    for (long cur = 0; cur < R; ++cur) {
        double minVal = 0.0;
        long i = cur;
        long num_remaining = C;
        for (long it = 0; it < C; ++it) remaining[it] = C - it - 1;
        std::fill(SR.begin(), SR.end(), 0);
        std::fill(SC.begin(), SC.end(), 0);
        std::fill(spc.begin(), spc.end(), INF);
        long sink = -1;
        while (sink == -1) {
            long index = -1;
            double lowest = INF;
            SR[i] = 1;
            for (long it = 0; it < num_remaining; ++it) {
                long j = remaining[it];
                double r = minVal + c[i * C + j] - u[i] - v[j];
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
            long j = remaining[index];
            if (row4col[j] == -1) sink = j;
            else i = row4col[j];
            SC[j] = 1;
            remaining[index] = remaining[--num_remaining];
        }
        u[cur] += minVal;
        for (long r = 0; r < R; ++r)
            if (SR[r] && r != cur) u[r] += minVal - spc[col4row[r]];
        for (long j = 0; j < C; ++j)
            if (SC[j]) v[j] -= minVal - spc[j];
        long j = sink;
        while (true) {
            long r = path[j];
            row4col[j] = r;
            std::swap(col4row[r], j);
            if (r == cur) break;
        }
    }
    if (transpose) {
        std::vector<long> order(R);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](long a, long b) { return col4row[a] < col4row[b]; });
        for (long k = 0; k < R; ++k) {
            out_rows[k] = col4row[order[k]];
            out_cols[k] = order[k];
        }
    } else {
        for (long k = 0; k < R; ++k) {
            out_rows[k] = k;
            out_cols[k] = col4row[k];
        }
    }
    return 0;
}

}  // namespace mapose
