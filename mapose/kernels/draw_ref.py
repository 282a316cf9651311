"""NumPy reference for :mod:`mapose.kernels.draw` (same signature, obviously correct)."""
from __future__ import annotations

import numpy as np


def draw_disk(img: np.ndarray, x: float, y: float, radius: float, color, alpha: float = 1.0) -> None:
    """Fill the disk of ``skimage.draw.disk((y, x), radius, shape=img.shape)`` in place.

    Parameters
    ----------
    img : ndarray of shape (h, w, 3), uint8
    x, y : float
        Centre in pixel coordinates (column, row); non-finite centres draw nothing.
    radius : float
    color : array-like of 3 uint8
        Colour in the image's channel order.
    alpha : float
        Opacity in [0, 1]; blended as ``trunc(alpha*color + (1-alpha)*pixel)``.
    """
    if not (np.isfinite(x) and np.isfinite(y)) or radius <= 0:
        return
    h, w = img.shape[:2]
    # bounding box exactly as skimage: ceil(centre - r) .. floor(centre + r), clipped
    r0 = max(int(np.ceil(y - radius)), 0)
    r1 = min(int(np.floor(y + radius)), h - 1)
    c0 = max(int(np.ceil(x - radius)), 0)
    c1 = min(int(np.floor(x + radius)), w - 1)
    if r0 > r1 or c0 > c1:
        return
    rr = (np.arange(r0, r1 + 1, dtype=np.float64) - y) / radius
    cc = (np.arange(c0, c1 + 1, dtype=np.float64) - x) / radius
    mask = (rr[:, None] ** 2 + cc[None, :] ** 2) < 1
    if not mask.any():
        return
    window = img[r0:r1 + 1, c0:c1 + 1]
    if alpha >= 1:
        window[mask] = color
    elif alpha > 0:
        blended = window[mask] * (1.0 - alpha) + np.asarray(color, dtype=np.float64) * alpha
        window[mask] = blended.astype(np.uint8)


def line_aa_pixels(r0: int, c0: int, r1: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``skimage.draw.line_aa(r0, c0, r1, c1)`` (weights dropped).

    Zingl's anti-aliased line: each step emits the current pixel and, while the error
    term is within one pixel width of the ideal line, its neighbour across the line.
    """
    rr: list[int] = []
    cc: list[int] = []
    dc = abs(c0 - c1)
    dr = abs(r0 - r1)
    err = dc - dr
    ed = 1.0 if dc + dr == 0 else float(np.sqrt(dc * dc + dr * dr))
    sign_c = 1 if c0 < c1 else -1
    sign_r = 1 if r0 < r1 else -1
    c, r = c0, r0
    while True:
        cc.append(c)
        rr.append(r)
        err_prime = err
        c_prime = c
        if 2 * err_prime >= -dc:
            if c == c1:
                break
            if err_prime + dr < ed:
                cc.append(c)
                rr.append(r + sign_r)
            err -= dr
            c += sign_c
        if 2 * err_prime <= dr:
            if r == r1:
                break
            if dc - err_prime < ed:
                cc.append(c_prime + sign_c)
                rr.append(r)
            err += dc
            r += sign_r
    return np.asarray(rr, dtype=np.intp), np.asarray(cc, dtype=np.intp)


def draw_line_aa(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    """Paint DLC's skeleton segment between two keypoints (endpoints clipped like DLC)."""
    h, w = img.shape[:2]
    rr, cc = line_aa_pixels(
        int(np.clip(y0, 0, h - 1)), int(np.clip(x0, 0, w - 1)),
        int(np.clip(y1, 1, h - 1)), int(np.clip(x1, 1, w - 1)),
    )
    keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    img[rr[keep], cc[keep]] = color
