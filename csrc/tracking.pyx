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
cimport cython
cimport numpy as cnp
from libc.string cimport memcpy
from libcpp.algorithm cimport sort
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


@cython.boundscheck(False)
@cython.wraparound(False)
def clean_assemblies(double[:, :, ::1] animals, pcutoff):
    """Hide unusable keypoints in place; return the indices of animals still visible.

    A keypoint whose x, y or score is negative (padding), or whose score is below
    ``pcutoff`` (if not None), gets NaN x and y, as DLC's ``build_tracklets`` does with
    boolean masks.  An animal is visible while any of its x, y is not NaN.

    Parameters
    ----------
    animals : ndarray of shape (n_animals, n_bodyparts, 3+), float64, C-contiguous
        Modified in place.
    pcutoff : float or None

    Returns
    -------
    ndarray of shape (n_visible,), intp
    """
    cdef Py_ssize_t n = animals.shape[0], nb = animals.shape[1], i, j, nk = 0
    cdef bint use_p = pcutoff is not None, vis
    cdef double p = float(pcutoff) if use_p else 0.0, x, y, sc
    keep = np.empty(n, dtype=np.intp)
    cdef cnp.intp_t[::1] kv = keep
    if animals.shape[2] < 3:
        raise ValueError(f"animals must have x, y, score channels; got shape {np.shape(animals)}.")
    with nogil:
        for i in range(n):
            vis = False
            for j in range(nb):
                x = animals[i, j, 0]
                y = animals[i, j, 1]
                sc = animals[i, j, 2]
                if x < 0 or y < 0 or sc < 0 or (use_p and sc < p):
                    animals[i, j, 0] = NAN
                    animals[i, j, 1] = NAN
                elif not (isnan(x) and isnan(y)):
                    vis = True
            if vis:
                kv[nk] = i
                nk += 1
    return keep[:nk]


@cython.boundscheck(False)
@cython.wraparound(False)
def box_corners(const double[:, :, ::1] animals, const cnp.intp_t[::1] bodyparts, double slack):
    """``[x1, y1, x2, y2]`` of :func:`calc_bboxes_from_keypoints` over some bodyparts.

    The tracker input of ``build_tracklets``: NaN-ignoring min/max of x and y over
    ``bodyparts`` (n_animals, n_bodyparts, 2+), minus/plus ``slack``; NaN where a
    coordinate has no value.  Same values as the NumPy version's first four columns
    (min and max are exact in any order).

    Returns
    -------
    ndarray of shape (n_animals, 4)
    """
    cdef Py_ssize_t n = animals.shape[0], nk = bodyparts.shape[0], i, j, b, k
    out = np.empty((n, 4))
    cdef double[:, ::1] o = out
    cdef double v, lo, hi
    cdef bint any_
    for j in range(nk):
        if bodyparts[j] < 0 or bodyparts[j] >= animals.shape[1]:
            raise IndexError(f"bodypart index {bodyparts[j]} out of range for {animals.shape[1]} bodyparts.")
    with nogil:
        for i in range(n):
            for k in range(2):
                any_ = False
                lo = INFINITY
                hi = -INFINITY
                for j in range(nk):
                    v = animals[i, bodyparts[j], k]
                    if isnan(v):
                        continue
                    any_ = True
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
                if any_:
                    # (min - slack) + 0.0: the NumPy version adds its offset (0) afterwards
                    o[i, k] = (lo - slack) + 0.0 if k == 0 else lo - slack
                    o[i, k + 2] = (hi + slack) + 0.0 if k == 0 else hi + slack
                else:
                    o[i, k] = NAN
                    o[i, k + 2] = NAN
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
    cdef double ident  # identity for identity-aware matching; NaN when unset
    cdef bint has_ident
    cdef public long time_since_update
    cdef public long age
    cdef public long hits
    cdef public long hit_streak

    def __cinit__(self):
        self.kind = K_ELLIPSE
        self.nc = 0
        self.id = 0
        self.ident = NAN
        self.has_ident = False
        self.time_since_update = 0
        self.age = 0
        self.hits = 0
        self.hit_streak = 0

    cdef void _setup(self, int kind, int nc, long tid) noexcept:
        self.kind = kind
        self.nc = nc
        self.s.assign(6 * nc, 0.0)
        _kf_init(self.s.data(), kind, nc)
        self.id = tid

    cdef void _set_positions(self, const double* z) noexcept:
        cdef int c
        for c in range(self.nc):
            self.s[6 * c] = z[c]
        for c in range(self.nc):
            if isnan(z[c]):
                _poison(self.s.data(), self.nc)
                break

    cdef void _predict(self) noexcept:
        cdef double* s = self.s.data()
        if self.kind == K_BOX and s[12 + 1] + s[12] <= 0.0:
            s[12 + 1] = s[12 + 1] * 0.0  # a shrinking box may not reach zero area
        _kf_predict(s, self.kind, self.nc)
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1

    cdef void _update(self, const double* z) noexcept:
        self.time_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        _kf_update(self.s.data(), self.kind, self.nc, z, False)

    cdef void _skeleton_update(self, const double* z) noexcept:
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
    @property
    def id_(self):
        """Identity the tracker was created with (identity-aware ellipse SORT), or None."""
        return self.ident if self.has_ident else None

    @id_.setter
    def id_(self, value):
        self.has_ident = value is not None
        self.ident = NAN if value is None else float(value)

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


cdef void _skeleton_init(KalmanTracker t, const double* pose, Py_ssize_t nb) noexcept:
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
# The per-frame path allocates only the returned array: inputs are read in place (any
# strides) into a reused buffer, and predictions, costs, assignments and bookkeeping live
# in C++ vectors owned by the tracker.  Inputs that are not float64 ndarrays of the right
# rank go through ``_coerce`` (overridden by the gateway to validate with clear errors).

cdef inline bint _readable(object x, int ndim, Py_ssize_t min_last, Py_ssize_t mid) noexcept:
    """Whether ``x`` is a native, aligned float64 ndarray of rank ``ndim`` readable in place.

    ``min_last``: minimum size of the last axis; ``mid`` >= 0: required size of axis 1
    (checked only for non-empty inputs).
    """
    if not cnp.PyArray_Check(x):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    if cnp.PyArray_NDIM(a) != ndim or cnp.PyArray_TYPE(a) != cnp.NPY_DOUBLE:
        return False
    if not (cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISALIGNED(a)):
        return False
    if cnp.PyArray_DIM(a, ndim - 1) < min_last:
        return False
    if mid >= 0 and cnp.PyArray_DIM(a, 0) and cnp.PyArray_DIM(a, 1) != mid:
        return False
    return True


cdef void _gather(cnp.ndarray a, Py_ssize_t ncols, vector[double]& buf) noexcept:
    """Copy ``a[..., :ncols]`` (rank 2 or 3, any strides) into ``buf`` in C order."""
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef Py_ssize_t n0 = cnp.PyArray_DIM(a, 0)
    cdef Py_ssize_t n1 = cnp.PyArray_DIM(a, 1) if nd == 3 else 1
    cdef Py_ssize_t s0 = cnp.PyArray_STRIDE(a, 0)
    cdef Py_ssize_t s1 = cnp.PyArray_STRIDE(a, 1) if nd == 3 else 0
    cdef Py_ssize_t sk = cnp.PyArray_STRIDE(a, nd - 1)
    cdef const char* base = cnp.PyArray_BYTES(a)
    cdef const char* row
    cdef Py_ssize_t i, j, k, o = 0
    buf.resize(n0 * n1 * ncols)
    cdef double* out = buf.data()
    for i in range(n0):
        for j in range(n1):
            row = base + i * s0 + j * s1
            for k in range(ncols):
                out[o] = (<const double*>(row + k * sk))[0]
                o += 1


cdef object _to_array(const double* src, Py_ssize_t n, Py_ssize_t width):
    cdef cnp.npy_intp dims[2]
    dims[0] = n
    dims[1] = width
    out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_DOUBLE, 0)
    if n * width:
        memcpy(cnp.PyArray_DATA(<cnp.ndarray>out), src, n * width * sizeof(double))
    return out


cdef double _mode(const double* v, Py_ssize_t m, vector[double]& tmp) noexcept:
    """Most frequent value (smallest on ties, as scipy's mode); NaN if empty or any NaN."""
    cdef Py_ssize_t i, run = 1, best_run = 0
    cdef double best = NAN
    if m == 0:
        return NAN
    for i in range(m):
        if isnan(v[i]):
            return NAN
    tmp.assign(v, v + m)
    sort(tmp.begin(), tmp.end())
    for i in range(1, m + 1):
        if i < m and tmp[i] == tmp[i - 1]:
            run += 1
            continue
        if run > best_run:  # strictly: the smaller value wins ties
            best_run = run
            best = tmp[i - 1]
        run = 1
    return best


cdef class _SortBase:
    cdef public int max_age
    cdef public int min_hits
    cdef public long n_frames
    cdef public long n_created
    cdef public list trackers
    cdef vector[double] buf      # the frame's input, contiguous
    cdef vector[double] preds    # predicted states of the kept trackers
    cdef vector[double] cost     # (detections, trackers), row major
    cdef vector[long] rows
    cdef vector[long] cols
    cdef vector[long] trk_det    # detection matched to each tracker, -1 if none
    cdef vector[long] animal     # detection index reported for each tracker
    cdef vector[long] unmatched
    cdef vector[char] assigned
    cdef vector[double] outbuf

    def __cinit__(self):
        self.trackers = []
        self.n_frames = 0
        self.n_created = 0

    def _coerce(self, x):
        """Slow path for inputs that cannot be read in place (the gateway validates here)."""
        return np.ascontiguousarray(x, dtype=np.float64)

    cdef cnp.ndarray _input(self, object x, int ndim, Py_ssize_t min_last, Py_ssize_t mid, str what):
        if not _readable(x, ndim, min_last, mid):
            x = self._coerce(x)
            if not _readable(x, ndim, min_last, mid):
                raise ValueError(f"{what}; got shape {np.shape(x)}.")
        return <cnp.ndarray>x

    cdef Py_ssize_t _assign(self, Py_ssize_t nr, Py_ssize_t nc, bint maximize) except -1:
        """Optimal pairs of ``cost`` into rows/cols (rows ascending, like SciPy)."""
        cdef Py_ssize_t k = nr if nr < nc else nc
        cdef int status = 0
        self.rows.resize(k)
        self.cols.resize(k)
        if k:
            status = lsap_solve(nr, nc, self.cost.data(), maximize, self.rows.data(), self.cols.data())
            if status != 0:
                raise ValueError("association cost matrix is infeasible or holds NaN")
        return k

    cdef void _split(self, Py_ssize_t n_det, Py_ssize_t nt, Py_ssize_t k, double threshold) noexcept:
        """DLC's unmatched-detection order: never assigned (ascending), then gated pairs."""
        cdef Py_ssize_t i
        self.assigned.assign(n_det, 0)
        self.trk_det.assign(nt, -1)
        self.unmatched.clear()
        for i in range(k):
            self.assigned[self.rows[i]] = 1
        for i in range(n_det):
            if not self.assigned[i]:
                self.unmatched.push_back(i)
        for i in range(k):
            if self.cost[self.rows[i] * nt + self.cols[i]] < threshold:
                self.unmatched.push_back(self.rows[i])
            else:
                self.trk_det[self.cols[i]] = self.rows[i]

    cdef Py_ssize_t _predict_finite(self, int dim):
        """Predict every tracker; keep (in order) those whose predicted state is finite."""
        cdef list trk = self.trackers
        cdef Py_ssize_t nt = len(trk), k, j, n = 0
        cdef KalmanTracker t
        cdef double* p
        cdef bint bad
        self.preds.resize(nt * dim)
        for k in range(nt):
            t = <KalmanTracker>trk[k]
            t._predict()
            p = self.preds.data() + n * dim
            t._state(p)
            bad = False
            for j in range(dim):
                if isnan(p[j]):
                    bad = True
            if not bad:
                if n != k:
                    trk[n] = t
                n += 1
        if n < nt:
            del trk[n:]
        return n

    cdef object _emit(self, int width, int empty_width):
        """Newest tracker first; drop trackers unseen for more than ``max_age`` frames."""
        cdef list trk = self.trackers
        cdef Py_ssize_t i, n = 0, nt = len(trk)
        cdef KalmanTracker t
        cdef double* o
        self.outbuf.resize(nt * width)
        for i in range(nt - 1, -1, -1):
            t = <KalmanTracker>trk[i]
            if t.time_since_update < 1 and (t.hit_streak >= self.min_hits or self.n_frames <= self.min_hits):
                o = self.outbuf.data() + n * width
                t._state(o)
                o[width - 2] = t.id
                o[width - 1] = self.animal[i]
                n += 1
            if t.time_since_update > self.max_age:
                del trk[i]
        return _to_array(self.outbuf.data(), n, width if n else empty_width)


cdef class EllipseSORT(_SortBase):
    """Compiled core of DLC's ``SORTEllipse`` (see :class:`mapose.tracking.sort.SORTEllipse`)."""
    cdef public double iou_threshold
    cdef public double sd
    cdef vector[double] ell      # fitted ellipses, (n_fitted, 5)
    cdef vector[long] fitidx     # pose index of each fitted ellipse
    cdef vector[double] eids     # identity of each fitted ellipse
    cdef vector[double] tmp

    def __init__(self, int max_age=1, int min_hits=1, double iou_threshold=0.6, double sd=2.0):
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.sd = sd

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def track(self, poses, identities=None):
        """Track one frame.

        Parameters
        ----------
        poses : ndarray of shape (n_animals, n_bodyparts, 2+)
            x, y first; float64 arrays are read in place (any strides).
        identities : array_like of shape (n_animals, n_bodyparts) or (n_animals,), optional
            Identity per keypoint (or per pose).  A tracker created with the pose's most
            frequent identity (smallest on ties, NaN if any is NaN) gets double similarity.

        Returns
        -------
        ndarray of shape (k, 7)
            ``[x, y, width, height, theta, tracker id, index]`` for every reported tracker,
            newest first.  ``index`` counts only the poses an ellipse could be fitted to
            (at least 3 finite keypoints), as in DLC.
        """
        cdef cnp.ndarray a = self._input(
            poses, 3, 2, -1, "poses must have shape (n_animals, n_bodyparts, 2+) with x, y first")
        cdef Py_ssize_t n = cnp.PyArray_DIM(a, 0), nb = cnp.PyArray_DIM(a, 1)
        cdef Py_ssize_t i, j, k, d, ne = 0, nt, nu, m
        cdef KalmanTracker t
        cdef list trk = self.trackers
        cdef double c
        cdef bint has_ids = False
        cdef const double[:, ::1] idv
        _gather(a, 2, self.buf)
        if identities is not None and n:
            ids = np.asarray(identities, dtype=np.float64)
            if ids.ndim == 0 or ids.shape[0] != n:
                raise ValueError(
                    f"identities must have one row per pose ({n}); got shape {ids.shape}.")
            idv = np.ascontiguousarray(ids.reshape(n, -1))
            has_ids = True
        self.n_frames += 1
        nt = self._predict_finite(5)
        self.ell.resize(n * 5)
        self.fitidx.resize(n)
        if nb:
            for i in range(n):
                if _fit_error_ellipse(self.buf.data() + i * nb * 2, nb, self.sd, self.ell.data() + ne * 5):
                    self.fitidx[ne] = i
                    ne += 1
        has_ids = has_ids and ne > 0
        if has_ids:
            m = idv.shape[1]
            self.eids.resize(ne)
            for i in range(ne):
                self.eids[i] = _mode(&idv[self.fitidx[i], 0] if m else NULL, m, self.tmp)
        self.cost.resize(ne * nt)
        for j in range(nt):
            t = <KalmanTracker>trk[j]
            for i in range(ne):
                c = _ellipse_similarity(self.ell.data() + i * 5, self.preds.data() + j * 5)
                if has_ids:
                    c = c * (2.0 if self.eids[i] == t.ident else 1.0)
                self.cost[i * nt + j] = c
        k = self._assign(ne, nt, True)
        self._split(ne, nt, k, self.iou_threshold)
        nu = self.unmatched.size()
        self.animal.resize(nt + nu)
        for j in range(nt):
            d = self.trk_det[j]
            self.animal[j] = d
            if d >= 0:
                (<KalmanTracker>trk[j])._update(self.ell.data() + d * 5)
        for k in range(nu):
            i = self.unmatched[k]
            t = _new_tracker(K_ELLIPSE, 5, self.n_created)
            self.n_created += 1
            t._set_positions(self.ell.data() + i * 5)
            if has_ids:
                t.ident = self.eids[i]
                t.has_ident = True
            trk.append(t)
            self.animal[nt + k] = i
        return self._emit(7, 7)


cdef class BoxSORT(_SortBase):
    """Compiled core of DLC's ``SORTBox`` (see :class:`mapose.tracking.sort.SORTBox`)."""
    cdef public double iou_threshold

    def __init__(self, int max_age=1, int min_hits=1, double iou_threshold=0.3):
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def track(self, dets):
        """Track one frame.

        Parameters
        ----------
        dets : ndarray of shape (n_boxes, 4+)
            ``[x1, y1, x2, y2, ...]`` (see :func:`calc_bboxes_from_keypoints`).

        Returns
        -------
        ndarray of shape (k, 6)
            ``[x1, y1, x2, y2, tracker id, box index]`` for every reported tracker, newest
            first; shape (0, 5) when none is reported (as DLC).
        """
        cdef cnp.ndarray a = self._input(
            dets, 2, 4, -1, "dets must have shape (n_boxes, 4+) holding [x1, y1, x2, y2, ...]")
        cdef Py_ssize_t n = cnp.PyArray_DIM(a, 0), i, j, k, d, nt, nu
        cdef KalmanTracker t
        cdef list trk = self.trackers
        cdef double z[4]
        cdef float v
        _gather(a, 4, self.buf)
        self.n_frames += 1
        nt = self._predict_finite(4)
        self.cost.resize(n * nt)
        for i in range(n):
            for j in range(nt):
                v = <float>iou_xyxy(self.buf.data() + i * 4, self.preds.data() + j * 4)
                # DLC crashes on NaN IoU (two degenerate boxes); no overlap is the
                # defined answer here.
                self.cost[i * nt + j] = 0.0 if isnan(v) else v
        # maximising negates the costs inside the solver, exactly like DLC's -iou matrix
        k = self._assign(n, nt, True)
        self._split(n, nt, k, self.iou_threshold)
        nu = self.unmatched.size()
        self.animal.resize(nt + nu)
        for j in range(nt):
            d = self.trk_det[j]
            self.animal[j] = d
            if d >= 0:
                _box_to_z(self.buf.data() + d * 4, z)
                (<KalmanTracker>trk[j])._update(z)
        for k in range(nu):
            i = self.unmatched[k]
            t = _new_tracker(K_BOX, 4, self.n_created)
            self.n_created += 1
            _box_to_z(self.buf.data() + i * 4, z)
            t._set_positions(z)
            trk.append(t)
            self.animal[nt + k] = i
        return self._emit(6, 5)


cdef class SkeletonSORT(_SortBase):
    """Compiled core of DLC's ``SORTSkeleton`` (see :class:`mapose.tracking.sort.SORTSkeleton`)."""
    cdef public long n_bodyparts
    cdef public double oks_threshold

    def __init__(self, long n_bodyparts, int max_age=20, int min_hits=3, double oks_threshold=0.5):
        self.n_bodyparts = n_bodyparts
        self.max_age = max_age
        self.min_hits = min_hits
        self.oks_threshold = oks_threshold

    @cython.boundscheck(False)
    @cython.wraparound(False)
    def track(self, poses):
        """Track one frame.

        Parameters
        ----------
        poses : ndarray of shape (n_animals, n_bodyparts, 2+)
            x, y first; float64 arrays are read in place (any strides).

        Returns
        -------
        ndarray of shape (k, 2 n_bodyparts + 2)
            ``[x0, y0, x1, y1, ..., tracker id, pose index]`` of every live tracker's
            prediction, newest first (index -1 for trackers without a detection).
        """
        cdef Py_ssize_t nb = self.n_bodyparts
        cdef cnp.ndarray a = self._input(
            poses, 3, 2, nb, f"poses must have shape (n_animals, {nb}, 2+) with x, y first")
        cdef Py_ssize_t n = cnp.PyArray_DIM(a, 0), i, j, k, d, nt, nu, m = 0
        cdef Py_ssize_t w = 2 * nb, width = 2 * nb + 2
        cdef KalmanTracker t
        cdef list trk = self.trackers
        cdef double* o
        _gather(a, 2, self.buf)
        self.n_frames += 1
        if not trk:
            for i in range(n):
                t = _new_tracker(K_SKELETON, w, self.n_created)
                self.n_created += 1
                if nb:
                    _skeleton_init(t, self.buf.data() + i * w, nb)
                trk.append(t)
        nt = len(trk)
        self.preds.resize(nt * w)
        for j in range(nt):
            t = <KalmanTracker>trk[j]
            t._predict()
            if nb:
                t._positions(self.preds.data() + j * w)
        self.cost.assign(n * nt, 0.0)
        if nb:
            for i in range(n):
                for j in range(nt):
                    self.cost[i * nt + j] = _hausdorff(self.buf.data() + i * w, self.preds.data() + j * w, nb, nb)
        k = self._assign(n, nt, False)
        self.trk_det.assign(nt, -1)
        self.assigned.assign(n, 0)
        for i in range(k):
            self.trk_det[self.cols[i]] = self.rows[i]
            self.assigned[self.rows[i]] = 1
        self.unmatched.clear()
        for i in range(n):
            if not self.assigned[i]:
                self.unmatched.push_back(i)
        nu = self.unmatched.size()
        self.animal.resize(nt + nu)
        for j in range(nt):
            d = self.trk_det[j]
            self.animal[j] = d
            if d >= 0 and nb:
                (<KalmanTracker>trk[j])._skeleton_update(self.buf.data() + d * w)
        for k in range(nu):
            i = self.unmatched[k]
            t = _new_tracker(K_SKELETON, w, self.n_created)
            self.n_created += 1
            if nb:
                _skeleton_init(t, self.buf.data() + i * w, nb)
            trk.append(t)
            self.animal[nt + k] = i
        nt = len(trk)
        self.outbuf.resize(nt * width)
        for i in range(nt - 1, -1, -1):
            t = <KalmanTracker>trk[i]
            if t.time_since_update > self.max_age:
                del trk[i]
                continue
            t._predict()
            o = self.outbuf.data() + m * width
            if nb:
                t._positions(o)
            o[width - 2] = t.id
            o[width - 1] = self.animal[i]
            m += 1
        return _to_array(self.outbuf.data(), m, width)
