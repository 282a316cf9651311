"""Reference for :mod:`mapose.kernels.iou`: vectorised NumPy IoU."""
from __future__ import annotations

import numpy as np


def iou_matrix(boxes1, boxes2) -> np.ndarray:
    """Same signature and results as :func:`mapose.kernels.iou.iou_matrix`."""
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, np.shape(boxes1)[-1] if np.size(boxes1) else 4)[:, None, :4]
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, np.shape(boxes2)[-1] if np.size(boxes2) else 4)[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inter / union).astype(np.float32)
