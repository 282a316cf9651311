# cython: language_level=3
"""SORT trackers (ellipse, box, skeleton) with filterpy-1.4.x Kalman filters, compiled.

The filters DLC builds (``kinematic_kf(dim, 1, order_by_dim=False)`` with diagonal ``P``,
``Q``, ``R`` and ``H = [I | 0]``) never couple two coordinates: every measured coordinate is
an independent 2-state (position, velocity) filter, or a 1-state filter for the box aspect
ratio.  Each coordinate therefore stores ``[x, v, P00, P01, P10, P11]`` and the matrix
products of filterpy's equations are written out term by term *in the order BLAS sums
them* (``K = PH^T * (1/S)``, Joseph form, the covariance kept unsymmetrised), which gives the
same float64 results as filterpy 1.4.5 on NumPy.  NaN propagation is emulated: one NaN in
the state (or in a measurement) makes the whole state NaN, as the dense products do.

Everything is float64 on purpose: DLC's trackers run in float64 and their decisions are
threshold comparisons on those values.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport sqrt, cos, atan2, fmod, isnan, isfinite, INFINITY, NAN, M_PI
from libcpp.vector cimport vector
from lsap cimport lsap_solve
from _boxiou cimport iou_xyxy

cnp.import_array()

cdef enum:
    K_ELLIPSE = 0
    K_BOX = 1
    K_SKELETON = 2


# ----------------------------------------------------------------------------- Kalman
cdef inline bint _hasvel(int kind, int c) noexcept nogil:
    return not (kind == K_BOX and c == 3)  # the box aspect ratio has no velocity


cdef inline double _qv(int kind, int c) noexcept nogil:
    if kind == K_ELLIPSE:
        return 1.0 * 0.01
    if kind == K_BOX:
        # Q[-1, -1] *= 0.01 and then Q[4:, 4:] *= 0.01
        return (1.0 * 0.01) * 0.01 if c == 2 else 1.0 * 0.01
    return 1.0 * 10.0


cdef inline double _r(int kind, int c) noexcept nogil:
    if kind == K_SKELETON:
        return 1.0
    return 1.0 if c < 2 else 1.0 * 10.0


cdef inline void _kf_init(double* s, int kind, int nc) noexcept nogil:
    cdef int c
    cdef double p0 = 1.0 if kind == K_SKELETON else 1.0 * 10.0
    cdef double v0 = (1.0 * 1000.0) if kind == K_SKELETON else (1.0 * 1000.0) * 10.0
    for c in range(nc):
        s[6 * c + 0] = 0.0
        s[6 * c + 1] = 0.0
        s[6 * c + 2] = p0
        s[6 * c + 3] = 0.0
        s[6 * c + 4] = 0.0
        s[6 * c + 5] = v0 if _hasvel(kind, c) else 0.0


cdef inline void _poison(double* s, int nc) noexcept nogil:
    cdef int c
    for c in range(nc):
        s[6 * c] = NAN
        s[6 * c + 1] = NAN


cdef void _kf_predict(double* s, int kind, int nc) noexcept nogil:
    """x = F x;  P = F P F^T + Q."""
    cdef int c
    cdef double* b
    cdef double a, bb, cc, d
    cdef bint bad = False
    for c in range(nc):
        b = s + 6 * c
        if _hasvel(kind, c):
            b[0] = b[0] + b[1]
            a = b[2]; bb = b[3]; cc = b[4]; d = b[5]
            b[2] = ((a + cc) + (bb + d)) + 1.0
            b[3] = bb + d
            b[4] = cc + d
            b[5] = d + _qv(kind, c)
        else:
            b[2] = b[2] + 1.0
        if isnan(b[0]) or isnan(b[1]):
            bad = True
    if bad:
        _poison(s, nc)


cdef void _kf_update(double* s, int kind, int nc, const double* z, bint mask_nan) noexcept nogil:
    """filterpy 1.4.5 ``update``: K = P H^T S^-1, Joseph-form covariance.

    With ``mask_nan`` (the skeleton tracker's partial update) NaN measurements leave their
    coordinate untouched, which is what zeroing those rows of H does.
    """
    cdef int c
    cdef double* b
    cdef double y, a, bb, cc, d, r, si, k0, k1, i00, a00, a01, a10, a11, kr0, kr1
    cdef bint bad = False
    for c in range(nc):
        if isnan(z[c]):
            if mask_nan:
                continue
            bad = True
        b = s + 6 * c
        r = _r(kind, c)
        y = z[c] - b[0]
        a = b[2]; bb = b[3]; cc = b[4]; d = b[5]
        si = 1.0 / (a + r)
        k0 = a * si
        b[0] = b[0] + k0 * y
        i00 = 1.0 - k0
        if _hasvel(kind, c):
            k1 = cc * si
            b[1] = b[1] + k1 * y
            a00 = i00 * a
            a01 = i00 * bb
            a10 = -k1 * a + cc
            a11 = -k1 * bb + d
            kr0 = k0 * r
            kr1 = k1 * r
            b[2] = a00 * i00 + kr0 * k0
            b[3] = (a00 * -k1 + a01) + kr0 * k1
            b[4] = a10 * i00 + kr1 * k0
            b[5] = (a10 * -k1 + a11) + kr1 * k1
        else:
            b[2] = (i00 * a) * i00 + (k0 * r) * k0
        if isnan(b[0]) or isnan(b[1]):
            bad = True
    if bad:
        _poison(s, nc)


# ----------------------------------------------------------------------------- geometry
cdef inline double _pymod_pi(double t) noexcept nogil:
    """Python/NumPy ``t % pi`` (result in [0, pi], sign of the divisor)."""
    cdef double m = fmod(t, M_PI)
    if m != 0.0:
        if m < 0.0:
            m = m + M_PI
    else:
        m = 0.0
    return m


cdef bint _fit_error_ellipse(const double* pose, Py_ssize_t nb, double sd, double* out) noexcept nogil:
    """Covariance error ellipse of the finite keypoints; False if < 3 or degenerate.

    ``out`` = [x, y, width, height, theta]: width spans the major axis (2*sd*sqrt of the
    larger covariance eigenvalue), theta is its direction modulo pi.
    """
    cdef Py_ssize_t i, n = 0
    cdef double sx = 0.0, sy = 0.0, mx, my, dx, dy, sxx = 0.0, syy = 0.0, sxy = 0.0
    cdef double fact, half, diff, rad, lmax, lmin, vx, vy, ux, uy
    for i in range(nb):
        if isfinite(pose[2 * i]) and isfinite(pose[2 * i + 1]):
            sx = sx + pose[2 * i]
            sy = sy + pose[2 * i + 1]
            n += 1
    if n < 3:
        return False
    mx = sx / n
    my = sy / n
    for i in range(nb):
        if isfinite(pose[2 * i]) and isfinite(pose[2 * i + 1]):
            dx = pose[2 * i] - mx
            dy = pose[2 * i + 1] - my
            sxx = sxx + dx * dx
            syy = syy + dy * dy
            sxy = sxy + dx * dy
    fact = 1.0 / (n - 1)  # np.cov multiplies by the reciprocal of (N - ddof)
    sxx = sxx * fact
    syy = syy * fact
    sxy = sxy * fact
    half = 0.5 * (sxx + syy)
    diff = 0.5 * (sxx - syy)
    rad = sqrt(diff * diff + sxy * sxy)
    lmax = half + rad
    lmin = half - rad
    if lmin < 0.0:
        lmin = 0.0  # collinear points: rounding can make the small eigenvalue -eps
    # eigenvector of the larger eigenvalue, from the better-conditioned row of (C - l I)
    if sxy == 0.0:
        if sxx > syy:
            vx = 1.0; vy = 0.0
        else:
            vx = 0.0; vy = 1.0
    else:
        vx = lmax - syy; vy = sxy
        ux = sxy; uy = lmax - sxx
        if ux * ux + uy * uy > vx * vx + vy * vy:
            vx = ux; vy = uy
    out[0] = mx
    out[1] = my
    out[2] = 2.0 * sd * sqrt(lmax)
    out[3] = 2.0 * sd * sqrt(lmin)
    out[4] = _pymod_pi(atan2(vy, vx))
    for i in range(5):
        if isnan(out[i]):
            return False
    return True


cdef inline double _ellipse_similarity(const double* a, const double* b) noexcept nogil:
    cdef double m = a[3]
    if a[2] > m:
        m = a[2]
    if b[3] > m:
        m = b[3]
    if b[2] > m:
        m = b[2]
    if m == 0.0:
        m = 1.0
    cdef double dx = a[0] - b[0], dy = a[1] - b[1]
    cdef double ratio = sqrt(dx * dx + dy * dy) / m
    if ratio > 1.0:
        ratio = 1.0
    cdef double c1 = 1.0 - ratio
    cdef double c2 = cos(a[4] - b[4])
    if c2 < 0.0:
        c2 = -c2
    return 0.8 * c1 + 0.2 * c2 * c1


cdef double _hausdorff(const double* x, const double* y, Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """Directed Hausdorff distance x -> y with the early-break scan; NaN pairs are ignored."""
    cdef Py_ssize_t i, j
    cdef double cmax = 0.0, cmin, d, dx, dy
    cdef bint no_break
    for i in range(n):
        no_break = True
        cmin = INFINITY
        for j in range(m):
            dx = x[2 * i] - y[2 * j]
            dy = x[2 * i + 1] - y[2 * j + 1]
            d = dx * dx + dy * dy
            if d < cmax:
                no_break = False
                break
            if d < cmin:
                cmin = d
        if cmin != INFINITY and cmin > cmax and no_break:
            cmax = cmin
    return sqrt(cmax)


cdef inline void _box_to_z(const double* b, double* z) noexcept nogil:
    cdef double w = b[2] - b[0], h = b[3] - b[1]
    z[0] = b[0] + w / 2.0
    z[1] = b[1] + h / 2.0
    z[2] = w * h
    z[3] = w / h


cdef inline void _x_to_box(const double* s, double* out) noexcept nogil:
    cdef double cx = s[0], cy = s[6], area = s[12], ratio = s[18]
    cdef double w = sqrt(area * ratio)
    cdef double h = area / w
    out[0] = cx - w / 2.0
    out[1] = cy - h / 2.0
    out[2] = cx + w / 2.0
    out[3] = cy + h / 2.0


def fit_ellipses(const double[:, :, ::1] poses, double sd):
    """Error ellipses (n, 5) of poses (n, n_bodyparts, 2); NaN rows where no fit exists."""
    cdef Py_ssize_t n = poses.shape[0], nb = poses.shape[1], i
    out = np.full((n, 5), np.nan)
    cdef double[:, ::1] o = out
    cdef double tmp[5]
    with nogil:
        for i in range(n):
            if nb and _fit_error_ellipse(&poses[i, 0, 0], nb, sd, tmp):
                o[i, 0] = tmp[0]; o[i, 1] = tmp[1]; o[i, 2] = tmp[2]
                o[i, 3] = tmp[3]; o[i, 4] = tmp[4]
    return out


def ellipse_similarity_matrix(const double[:, ::1] a, const double[:, ::1] b):
    """Similarity (n, m) of ellipses a (n, 5) and b (m, 5)."""
    cdef Py_ssize_t n = a.shape[0], m = b.shape[0], i, j
    out = np.empty((n, m))
    cdef double[:, ::1] o = out
    with nogil:
        for i in range(n):
            for j in range(m):
                o[i, j] = _ellipse_similarity(&a[i, 0], &b[j, 0])
    return out


def hausdorff_matrix(const double[:, :, ::1] poses, const double[:, :, ::1] preds):
    """Directed Hausdorff distance (n, m) from each pose (n, k, 2) to each prediction (m, l, 2)."""
    cdef Py_ssize_t n = poses.shape[0], m = preds.shape[0], i, j
    out = np.zeros((n, m))
    cdef double[:, ::1] o = out
    with nogil:
        for i in range(n):
            for j in range(m):
                o[i, j] = _hausdorff(&poses[i, 0, 0], &preds[j, 0, 0], poses.shape[1], preds.shape[1])
    return out


# ----------------------------------------------------------------------------- trackers
cdef class KalmanTracker:
    """One track: a filterpy-1.4.x constant-velocity Kalman filter plus SORT counters.

    Built by the SORT classes; also usable alone through :class:`EllipseTracker`,
    :class:`BoxTracker` and :class:`SkeletonTracker`.
    """
    cdef int kind
    cdef int nc
    cdef vector[double] s
    cdef public long id
    cdef public object id_
    cdef public long time_since_update
    cdef public long age
    cdef public long hits
    cdef public long hit_streak

    def __cinit__(self):
        self.kind = K_ELLIPSE
        self.nc = 0
        self.id = 0
        self.id_ = None
        self.time_since_update = 0
        self.age = 0
        self.hits = 0
        self.hit_streak = 0

    cdef void _setup(self, int kind, int nc, long tid):
        self.kind = kind
        self.nc = nc
        self.s.assign(6 * nc, 0.0)
        _kf_init(self.s.data(), kind, nc)
        self.id = tid

    cdef void _set_positions(self, const double* z):
        cdef int c
        for c in range(self.nc):
            self.s[6 * c] = z[c]
        for c in range(self.nc):
            if isnan(z[c]):
                _poison(self.s.data(), self.nc)
                break

    cdef void _predict(self):
        cdef double* s = self.s.data()
        if self.kind == K_BOX and s[12 + 1] + s[12] <= 0.0:
            s[12 + 1] = s[12 + 1] * 0.0  # a shrinking box may not reach zero area
        _kf_predict(s, self.kind, self.nc)
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1

    cdef void _update(self, const double* z):
        self.time_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        _kf_update(self.s.data(), self.kind, self.nc, z, False)

    cdef void _skeleton_update(self, const double* z):
        cdef int c
        for c in range(self.nc):
            if isnan(z[c]):
                # DLC calls kf.update directly with those H rows zeroed: counters untouched
                _kf_update(self.s.data(), self.kind, self.nc, z, True)
                return
        self._update(z)

    cdef void _positions(self, double* out) noexcept:
        cdef int c
        for c in range(self.nc):
            out[c] = self.s[6 * c]

    cdef int _state_size(self) noexcept:
        return 4 if self.kind == K_BOX else self.nc

    cdef void _state(self, double* out) noexcept:
        if self.kind == K_BOX:
            _x_to_box(self.s.data(), out)
        else:
            self._positions(out)

    # -- Python API (DLC's BaseTracker) --------------------------------------------
    def predict(self):
        """Advance one frame; return the predicted :attr:`state`."""
        self._predict()
        return self.state

    def update(self, z):
        """Correct with a measurement (parameters, box or flattened pose)."""
        zz = np.ascontiguousarray(z, dtype=np.float64).ravel()
        cdef double buf[4]
        cdef double[::1] zv
        if self.kind == K_BOX:
            if zz.size < 4:
                raise ValueError(f"bbox must hold [x1, y1, x2, y2]; got {zz.size} values.")
            zv = zz
            _box_to_z(&zv[0], buf)
            self._update(buf)
            return
        if zz.size != self.nc:
            raise ValueError(f"measurement must have {self.nc} values; got {zz.size}.")
        zv = zz
        if self.kind == K_SKELETON:
            self._skeleton_update(&zv[0])
        else:
            self._update(&zv[0])

    def _setup_ellipse(self, const double[::1] params, long tid):
        self._setup(K_ELLIPSE, 5, tid)
        self._set_positions(&params[0])

    def _setup_box(self, const double[::1] bbox, long tid):
        cdef double z[4]
        self._setup(K_BOX, 4, tid)
        _box_to_z(&bbox[0], z)
        self._set_positions(z)

    def _setup_skeleton(self, long n_bodyparts, long tid):
        self._setup(K_SKELETON, 2 * n_bodyparts, tid)

    @property
    def state(self):
        """Ellipse ``[x, y, w, h, theta]``, box ``[x1, y1, x2, y2]`` or flat pose ``[x0, y0, ...]``."""
        out = np.empty(self._state_size())
        cdef double[::1] o = out
        if o.shape[0]:
            self._state(&o[0])
        return out

    @state.setter
    def state(self, value):
        cdef double z[4]
        cdef const double[::1] v
        cdef const double[:, ::1] p
        if self.kind == K_SKELETON:
            p = np.ascontiguousarray(np.asarray(value, dtype=np.float64).reshape(-1, 2))
            if 2 * p.shape[0] != self.nc:
                raise ValueError(f"pose must have {self.nc // 2} keypoints; got {p.shape[0]}.")
            if p.shape[0]:
                _skeleton_init(self, &p[0, 0], p.shape[0])
            return
        v = np.ascontiguousarray(value, dtype=np.float64).ravel()
        if self.kind == K_BOX:
            if v.shape[0] < 4:
                raise ValueError(f"bbox must hold [x1, y1, x2, y2]; got {v.shape[0]} values.")
            _box_to_z(&v[0], z)
            self._set_positions(z)
        else:
            if v.shape[0] != self.nc:
                raise ValueError(f"state must have {self.nc} values; got {v.shape[0]}.")
            self._set_positions(&v[0])

    @property
    def x(self):
        """Full Kalman state, filterpy layout: positions then velocities, shape (dim_x, 1)."""
        nv = sum(1 for c in range(self.nc) if _hasvel(self.kind, c))
        out = np.zeros((self.nc + nv, 1))
        k = self.nc
        for c in range(self.nc):
            out[c, 0] = self.s[6 * c]
            if _hasvel(self.kind, c):
                out[k, 0] = self.s[6 * c + 1]
                k += 1
        return out

    @property
    def P(self):
        """Full covariance, filterpy layout (dim_x, dim_x)."""
        vel = {}
        k = self.nc
        for c in range(self.nc):
            if _hasvel(self.kind, c):
                vel[c] = k
                k += 1
        out = np.zeros((k, k))
        for c in range(self.nc):
            out[c, c] = self.s[6 * c + 2]
            if c in vel:
                v = vel[c]
                out[c, v] = self.s[6 * c + 3]
                out[v, c] = self.s[6 * c + 4]
                out[v, v] = self.s[6 * c + 5]
        return out


cdef KalmanTracker _new_tracker(int kind, int nc, long tid):
    cdef KalmanTracker t = KalmanTracker.__new__(KalmanTracker)
    t._setup(kind, nc, tid)
    return t


def make_ellipse_tracker(const double[::1] params, long tid):
    """Tracker initialised at ellipse ``params`` (5,)."""
    cdef KalmanTracker t = _new_tracker(K_ELLIPSE, 5, tid)
    t._set_positions(&params[0])
    return t


def make_box_tracker(const double[::1] bbox, long tid):
    """Tracker initialised at box ``bbox`` (>=4,) ``[x1, y1, x2, y2]``."""
    cdef KalmanTracker t = _new_tracker(K_BOX, 4, tid)
    cdef double z[4]
    _box_to_z(&bbox[0], z)
    t._set_positions(z)
    return t


cdef void _skeleton_init(KalmanTracker t, const double* pose, Py_ssize_t nb):
    """State = the pose; all-NaN keypoints take the pose's per-axis nanmean."""
    cdef Py_ssize_t i, k
    cdef vector[double] z
    cdef double mean[2]
    cdef double tot
    cdef long cnt
    z.assign(2 * nb, 0.0)
    for k in range(2):
        tot = 0.0
        cnt = 0
        for i in range(nb):
            if not isnan(pose[2 * i + k]):
                tot = tot + pose[2 * i + k]
                cnt += 1
        mean[k] = tot / cnt if cnt else NAN
    for i in range(nb):
        if isnan(pose[2 * i]) and isnan(pose[2 * i + 1]):
            z[2 * i] = mean[0]
            z[2 * i + 1] = mean[1]
        else:
            z[2 * i] = pose[2 * i]
            z[2 * i + 1] = pose[2 * i + 1]
    t._set_positions(z.data())


def make_skeleton_tracker(long n_bodyparts, long tid, pose=None):
    """Tracker over ``n_bodyparts`` keypoints, optionally initialised at ``pose`` (n, 2)."""
    cdef KalmanTracker t = _new_tracker(K_SKELETON, 2 * n_bodyparts, tid)
    cdef const double[:, ::1] p
    if pose is not None:
        p = np.ascontiguousarray(pose, dtype=np.float64)[:, :2].copy()
        if p.shape[0] != n_bodyparts:
            raise ValueError(f"pose must have {n_bodyparts} keypoints; got {p.shape[0]}.")
        if n_bodyparts:
            _skeleton_init(t, &p[0, 0], n_bodyparts)
    return t


def set_skeleton_state(KalmanTracker t, pose):
    """Set the tracker's positions to ``pose`` (n, 2), filling all-NaN keypoints."""
    cdef const double[:, ::1] p = np.ascontiguousarray(pose, dtype=np.float64)[:, :2].copy()
    if 2 * p.shape[0] != t.nc:
        raise ValueError(f"pose must have {t.nc // 2} keypoints; got {p.shape[0]}.")
    if p.shape[0]:
        _skeleton_init(t, &p[0, 0], p.shape[0])


# ----------------------------------------------------------------------------- SORT
cdef class _SortBase:
    cdef public int max_age
    cdef public int min_hits
    cdef public long n_frames
    cdef public long n_created
    cdef public list trackers

    def __cinit__(self):
        self.trackers = []
        self.n_frames = 0
        self.n_created = 0

    cdef object _assign(self, double* cost, Py_ssize_t nr, Py_ssize_t nc, bint maximize):
        """Optimal pairs (rows sorted), as SciPy's linear_sum_assignment returns them."""
        cdef Py_ssize_t k = nr if nr < nc else nc
        rows = np.empty(k, dtype=np.int64)
        cols = np.empty(k, dtype=np.int64)
        cdef long[::1] r = rows
        cdef long[::1] c = cols
        cdef int status = 0
        if k:
            with nogil:
                status = lsap_solve(nr, nc, cost, maximize, &r[0], &c[0])
            if status != 0:
                raise ValueError("association cost matrix is infeasible or holds NaN")
        return rows, cols

    cdef list _split(self, const double* cost, Py_ssize_t ncol, rows, cols, Py_ssize_t n_det,
                     double threshold, long[::1] trk_det):
        """DLC's unmatched-detection order: never assigned (ascending), then gated pairs."""
        cdef long[::1] r = rows
        cdef long[::1] c = cols
        cdef Py_ssize_t k = r.shape[0], i
        assigned = np.zeros(n_det, dtype=bool)
        assigned[rows] = True
        unmatched = [i for i in range(n_det) if not assigned[i]]
        for i in range(k):
            if cost[r[i] * ncol + c[i]] < threshold:
                unmatched.append(r[i])
            else:
                trk_det[c[i]] = r[i]
        return unmatched

    cdef object _emit(self, long[::1] animalindex, int width, int empty_width):
        """Newest tracker first; drop trackers unseen for more than ``max_age`` frames."""
        cdef Py_ssize_t i, n = 0, nt = len(self.trackers)
        cdef KalmanTracker t
        out = np.empty((nt, width))
        cdef double[:, ::1] o = out
        for i in range(nt - 1, -1, -1):
            t = self.trackers[i]
            if t.time_since_update < 1 and (t.hit_streak >= self.min_hits or self.n_frames <= self.min_hits):
                t._state(&o[n, 0])
                o[n, width - 2] = t.id
                o[n, width - 1] = animalindex[i]
                n += 1
            if t.time_since_update > self.max_age:
                del self.trackers[i]
        if n == 0:
            return np.empty((0, empty_width))
        return out[:n]

    cdef void _drop_nan_predictions(self, list kept, double[:, ::1] preds):
        """Predict every tracker; keep those whose predicted state is finite."""
        cdef KalmanTracker t
        cdef Py_ssize_t j, n = 0
        cdef bint bad
        for t in self.trackers:
            t._predict()
            t._state(&preds[n, 0])
            bad = False
            for j in range(preds.shape[1]):
                if isnan(preds[n, j]):
                    bad = True
            if not bad:
                kept.append(t)
                n += 1
        self.trackers = kept


cdef class EllipseSORT(_SortBase):
    """Compiled core of DLC's ``SORTEllipse`` (see :class:`mapose.tracking.sort.SORTEllipse`)."""
    cdef public double iou_threshold
    cdef public double sd

    def __init__(self, int max_age=1, int min_hits=1, double iou_threshold=0.6, double sd=2.0):
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.sd = sd

    def track(self, const double[:, :, ::1] poses, pose_ids=None):
        """One frame: poses (n, n_bodyparts, 2) -> rows ``[x, y, w, h, theta, id, index]``."""
        cdef Py_ssize_t n = poses.shape[0], nb = poses.shape[1], i, j, ne = 0, nt
        cdef KalmanTracker t
        self.n_frames += 1
        preds_arr = np.empty((len(self.trackers), 5))
        cdef double[:, ::1] preds = preds_arr
        self._drop_nan_predictions([], preds)
        nt = len(self.trackers)
        ell_arr = np.empty((n, 5))
        cdef double[:, ::1] ell = ell_arr
        cdef vector[double] ids
        with nogil:
            for i in range(n):
                if nb and _fit_error_ellipse(&poses[i, 0, 0], nb, self.sd, &ell[ne, 0]):
                    ne += 1
        if pose_ids is not None:
            # pose_ids is indexed like the poses; keep the ids of the fitted ones
            ok = np.flatnonzero(~np.isnan(np.asarray(fit_ellipses(poses, self.sd))[:, 0]))
            for v in np.asarray(pose_ids, dtype=np.float64)[ok]:
                ids.push_back(v)
        cost_arr = np.zeros((ne, nt))
        cdef double[:, ::1] cost = cost_arr
        cdef double tid
        for j in range(nt):
            t = self.trackers[j]
            tid = NAN if t.id_ is None else float(t.id_)
            for i in range(ne):
                cost[i, j] = _ellipse_similarity(&ell[i, 0], &preds[j, 0])
                if ids.size():
                    cost[i, j] = cost[i, j] * (2.0 if ids[i] == tid else 1.0)
        rows, cols = self._assign(&cost[0, 0] if ne and nt else NULL, ne, nt, True)
        trk_det_arr = np.full(nt, -1, dtype=np.int64)
        cdef long[::1] trk_det = trk_det_arr
        unmatched = self._split(&cost[0, 0] if ne and nt else NULL, nt, rows, cols, ne,
                                self.iou_threshold, trk_det)
        animal_arr = np.empty(nt + len(unmatched), dtype=np.int64)
        cdef long[::1] animalindex = animal_arr
        for j in range(nt):
            animalindex[j] = trk_det[j]
            if trk_det[j] >= 0:
                (<KalmanTracker>self.trackers[j])._update(&ell[trk_det[j], 0])
        for k, i in enumerate(unmatched):
            t = _new_tracker(K_ELLIPSE, 5, self.n_created)
            self.n_created += 1
            t._set_positions(&ell[i, 0])
            if ids.size():
                t.id_ = ids[i]
            self.trackers.append(t)
            animalindex[nt + k] = i
        return self._emit(animalindex, 7, 7)


cdef class BoxSORT(_SortBase):
    """Compiled core of DLC's ``SORTBox`` (see :class:`mapose.tracking.sort.SORTBox`)."""
    cdef public double iou_threshold

    def __init__(self, int max_age=1, int min_hits=1, double iou_threshold=0.3):
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold

    def track(self, const double[:, ::1] dets):
        """One frame: boxes (n, >=4) ``[x1, y1, x2, y2, ...]`` -> rows ``[x1, y1, x2, y2, id, index]``."""
        cdef Py_ssize_t n = dets.shape[0], i, j, nt
        cdef KalmanTracker t
        cdef double z[4]
        self.n_frames += 1
        preds_arr = np.empty((len(self.trackers), 4))
        cdef double[:, ::1] preds = preds_arr
        self._drop_nan_predictions([], preds)
        nt = len(self.trackers)
        cost_arr = np.zeros((n, nt))
        cdef double[:, ::1] cost = cost_arr
        cdef float v
        with nogil:
            for i in range(n):
                for j in range(nt):
                    v = <float>iou_xyxy(&dets[i, 0], &preds[j, 0])
                    # DLC crashes on NaN IoU (two degenerate boxes); no overlap is the
                    # defined answer here.
                    cost[i, j] = 0.0 if isnan(v) else v
        neg_arr = -cost_arr
        cdef double[:, ::1] neg = neg_arr
        rows, cols = self._assign(&neg[0, 0] if n and nt else NULL, n, nt, False)
        trk_det_arr = np.full(nt, -1, dtype=np.int64)
        cdef long[::1] trk_det = trk_det_arr
        unmatched = self._split(&cost[0, 0] if n and nt else NULL, nt, rows, cols, n,
                                self.iou_threshold, trk_det)
        animal_arr = np.empty(nt + len(unmatched), dtype=np.int64)
        cdef long[::1] animalindex = animal_arr
        for j in range(nt):
            animalindex[j] = trk_det[j]
            if trk_det[j] >= 0:
                _box_to_z(&dets[trk_det[j], 0], z)
                (<KalmanTracker>self.trackers[j])._update(z)
        for k, i in enumerate(unmatched):
            t = _new_tracker(K_BOX, 4, self.n_created)
            self.n_created += 1
            _box_to_z(&dets[i, 0], z)
            t._set_positions(z)
            self.trackers.append(t)
            animalindex[nt + k] = i
        return self._emit(animalindex, 6, 5)


cdef class SkeletonSORT(_SortBase):
    """Compiled core of DLC's ``SORTSkeleton`` (see :class:`mapose.tracking.sort.SORTSkeleton`)."""
    cdef public long n_bodyparts
    cdef public double oks_threshold

    def __init__(self, long n_bodyparts, int max_age=20, int min_hits=3, double oks_threshold=0.5):
        self.n_bodyparts = n_bodyparts
        self.max_age = max_age
        self.min_hits = min_hits
        self.oks_threshold = oks_threshold

    def track(self, const double[:, :, ::1] poses):
        """One frame: poses (n, n_bodyparts, 2) -> rows ``[x0, y0, ..., id, index]``."""
        cdef Py_ssize_t n = poses.shape[0], nb = self.n_bodyparts, i, j, nt, k
        cdef KalmanTracker t
        cdef int width = 2 * nb + 2
        self.n_frames += 1
        if not self.trackers:
            for i in range(n):
                t = _new_tracker(K_SKELETON, 2 * nb, self.n_created)
                self.n_created += 1
                if nb:
                    _skeleton_init(t, &poses[i, 0, 0], nb)
                self.trackers.append(t)
        nt = len(self.trackers)
        preds_arr = np.empty((nt, nb, 2))
        cdef double[:, :, ::1] preds = preds_arr
        for j in range(nt):
            t = self.trackers[j]
            t._predict()
            if nb:
                t._positions(&preds[j, 0, 0])
        cost_arr = np.zeros((n, nt))
        cdef double[:, ::1] cost = cost_arr
        if nb:
            with nogil:
                for i in range(n):
                    for j in range(nt):
                        cost[i, j] = _hausdorff(&poses[i, 0, 0], &preds[j, 0, 0], nb, nb)
        rows, cols = self._assign(&cost[0, 0] if n and nt else NULL, n, nt, False)
        cdef long[::1] r = rows
        cdef long[::1] c = cols
        trk_det_arr = np.full(nt, -1, dtype=np.int64)
        cdef long[::1] trk_det = trk_det_arr
        assigned = np.zeros(n, dtype=bool)
        for k in range(r.shape[0]):
            trk_det[c[k]] = r[k]
            assigned[r[k]] = True
        unmatched = [i for i in range(n) if not assigned[i]]
        animal_arr = np.empty(nt + len(unmatched), dtype=np.int64)
        cdef long[::1] animalindex = animal_arr
        for j in range(nt):
            animalindex[j] = trk_det[j]
            if trk_det[j] >= 0 and nb:
                (<KalmanTracker>self.trackers[j])._skeleton_update(&poses[trk_det[j], 0, 0])
        for k, i in enumerate(unmatched):
            t = _new_tracker(K_SKELETON, 2 * nb, self.n_created)
            self.n_created += 1
            if nb:
                _skeleton_init(t, &poses[i, 0, 0], nb)
            self.trackers.append(t)
            animalindex[nt + k] = i
        cdef list out = []
        cdef double[::1] rv
        for i in range(len(self.trackers) - 1, -1, -1):
            t = self.trackers[i]
            if t.time_since_update > self.max_age:
                del self.trackers[i]
                continue
            t._predict()
            row = np.empty(width)
            rv = row
            if nb:
                t._positions(&rv[0])
            rv[width - 2] = t.id
            rv[width - 1] = animalindex[i]
            out.append(row)
        return np.array(out) if out else np.empty((0, width))
