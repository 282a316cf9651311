"""Drawing gateway: scikit-image-identical disks for labeled videos, compiled.

The NumPy reference with the same signature is :func:`mapose.kernels.draw_ref.draw_disk`.
"""
from __future__ import annotations

import numpy as np

from mapose._cy import load

_draw = load("draw")


def draw_disk(img: np.ndarray, x: float, y: float, radius: float, color, alpha: float = 1.0) -> None:
    """Fill the disk of ``skimage.draw.disk((y, x), radius, shape=img.shape)`` in place.

    Parameters
    ----------
    img : ndarray of shape (h, w, n_channels), uint8
        Image painted in place (any strides).
    x, y : float
        Centre (column, row); a non-finite centre draws nothing.
    radius : float
    color : array-like of n_channels uint8
    alpha : float
        Opacity; blended as ``trunc(pixel * (1 - alpha) + color * alpha)``.
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(
            f"img must be a uint8 array of shape (h, w, channels); got "
            f"{getattr(img, 'dtype', type(img))} with shape {getattr(img, 'shape', None)}."
        )
    col = np.ascontiguousarray(np.asarray(color).ravel()[: img.shape[2]], dtype=np.uint8)
    if col.size != img.shape[2]:
        raise ValueError(f"color must have {img.shape[2]} components; got {color!r}.")
    _draw.draw_disk(img, float(x), float(y), float(radius), col, float(alpha))


def draw_line_aa(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    """Paint DLC's skeleton segment: the pixels of ``skimage.draw.line_aa`` between clipped endpoints.

    Parameters
    ----------
    img : ndarray of shape (h, w, n_channels), uint8
    x0, y0, x1, y1 : float
        Finite endpoints (column, row); clipped to the image as DLC clips them.
    color : array-like of n_channels uint8
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(
            f"img must be a uint8 array of shape (h, w, channels); got "
            f"{getattr(img, 'dtype', type(img))} with shape {getattr(img, 'shape', None)}."
        )
    ends = np.array([x0, y0, x1, y1], dtype=np.float64)
    if not np.isfinite(ends).all():
        raise ValueError(f"line endpoints must be finite; got {tuple(ends)}. Skip segments with missing keypoints.")
    col = np.ascontiguousarray(np.asarray(color).ravel()[: img.shape[2]], dtype=np.uint8)
    if col.size != img.shape[2]:
        raise ValueError(f"color must have {img.shape[2]} components; got {color!r}.")
    _draw.draw_line_aa(img, *ends, col)
