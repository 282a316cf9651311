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
