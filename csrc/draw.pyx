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
