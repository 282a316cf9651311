# cython: language_level=3
"""Drawing primitives for labeled videos, pixel-identical to scikit-image (what DLC draws with)."""
from libc.math cimport ceil, floor, isfinite


cdef void _disk(unsigned char[:, :, :] img, double x, double y, double radius,
                unsigned char* color, double alpha) noexcept nogil:
    cdef Py_ssize_t h = img.shape[0], w = img.shape[1], nch = img.shape[2]
    cdef Py_ssize_t r, c, k, r0, r1, c0, c1
    cdef double dr, dc, v
    if not (isfinite(x) and isfinite(y)) or radius <= 0:
        return
    # skimage.draw.disk's bounding box: ceil(centre - r) .. floor(centre + r), clipped
    r0 = max(<Py_ssize_t>ceil(y - radius), 0)
    r1 = min(<Py_ssize_t>floor(y + radius), h - 1)
    c0 = max(<Py_ssize_t>ceil(x - radius), 0)
    c1 = min(<Py_ssize_t>floor(x + radius), w - 1)
    for r in range(r0, r1 + 1):
        # same float64 expression as skimage's ((r - y) / radius) ** 2 + ((c - x) / radius) ** 2 < 1
        dr = (<double>r - y) / radius
        for c in range(c0, c1 + 1):
            dc = (<double>c - x) / radius
            if dr * dr + dc * dc < 1:
                for k in range(nch):
                    if alpha >= 1:
                        img[r, c, k] = color[k]
                    elif alpha > 0:
                        v = img[r, c, k] * (1.0 - alpha) + color[k] * alpha
                        img[r, c, k] = <unsigned char>v


def draw_disk(unsigned char[:, :, :] img, double x, double y, double radius,
              const unsigned char[::1] color, double alpha=1.0):
    """Fill one disk in place (validated by :func:`mapose.kernels.draw.draw_disk`)."""
    with nogil:
        _disk(img, x, y, radius, <unsigned char*>&color[0], alpha)


def draw_disks(unsigned char[:, :, :] img, const double[::1] xs, const double[::1] ys, double radius,
               const unsigned char[:, ::1] colors, const double[::1] alphas):
    """Fill many disks in order (later disks paint over earlier ones)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(xs.shape[0]):
            _disk(img, xs[i], ys[i], radius, <unsigned char*>&colors[i, 0], alphas[i])


cdef inline void _put(unsigned char[:, :, :] img, long r, long c, Py_ssize_t h, Py_ssize_t w,
                      Py_ssize_t nch, const unsigned char* color) noexcept nogil:
    cdef Py_ssize_t k
    if 0 <= r < h and 0 <= c < w:
        for k in range(nch):
            img[r, c, k] = color[k]


cdef inline double _clip(double v, double lo, double hi) noexcept nogil:
    return hi if v > hi else (lo if v < lo else v)


def draw_line_aa(unsigned char[:, :, :] img, double x0, double y0, double x1, double y1,
                 const unsigned char[::1] color):
    """Paint the pixel set of ``skimage.draw.line_aa`` (weights dropped) between clipped endpoints.

    Endpoints are clipped as DLC clips them (start to [0, size-1], end to [1, size-1]) and
    truncated to int; Zingl's anti-aliased line then emits each pixel and, while the error
    term is within one pixel width of the ideal line, its neighbour across the line.
    """
    cdef Py_ssize_t h = img.shape[0], w = img.shape[1], nch = img.shape[2], k
    cdef long r0 = <long>_clip(y0, 0, h - 1), c0 = <long>_clip(x0, 0, w - 1)
    cdef long r1 = <long>_clip(y1, 1, h - 1), c1 = <long>_clip(x1, 1, w - 1)
    cdef long dc = abs(c0 - c1), dr = abs(r0 - r1)
    cdef long err = dc - dr, err_prime, c_prime
    cdef double ed = 1.0 if dc + dr == 0 else ((<double>(dc * dc + dr * dr)) ** 0.5)
    cdef long sign_c = 1 if c0 < c1 else -1
    cdef long sign_r = 1 if r0 < r1 else -1
    cdef long c = c0, r = r0
    with nogil:
        while True:
            _put(img, r, c, h, w, nch, &color[0])
            err_prime = err
            c_prime = c
            if 2 * err_prime >= -dc:
                if c == c1:
                    break
                if err_prime + dr < ed:
                    _put(img, r + sign_r, c, h, w, nch, &color[0])
                err -= dr
                c += sign_c
            if 2 * err_prime <= dr:
                if r == r1:
                    break
                if dc - err_prime < ed:
                    _put(img, r, c_prime + sign_c, h, w, nch, &color[0])
                err += dc
                r += sign_r
