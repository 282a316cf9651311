"""Box IoU gateway (DLC's ``trackingutils.calc_iou`` over all pairs, compiled)."""
from __future__ import annotations

import numpy as np

from mapose._cy import load

_iou = load("iou")

__all__ = ["iou_matrix", "calc_iou"]


def _boxes(arr, name):
    a = np.asarray(arr)
    if a.ndim == 1 and a.size == 0:
        a = a.reshape(0, 4)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] < 4:
        raise ValueError(
            f"{name} must have shape (n_boxes, 4+) holding [x1, y1, x2, y2, ...]; got shape {a.shape}."
        )
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TypeError(f"{name} must hold real numbers; got dtype {a.dtype}.")
    return np.ascontiguousarray(a, dtype=np.float64)


def iou_matrix(boxes1, boxes2) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Parameters
    ----------
    boxes1 : array_like of shape (n, 4+)
        ``[x1, y1, x2, y2, ...]`` rows (extra columns such as a score are ignored).
    boxes2 : array_like of shape (m, 4+)

    Returns
    -------
    ndarray of shape (n, m), float32
        IoU computed in float64 then rounded to float32 (DLC's association matrix).
        Pairs of zero-area boxes give NaN, as DLC's ``calc_iou`` does.
    """
    return _iou.iou_matrix(_boxes(boxes1, "boxes1"), _boxes(boxes2, "boxes2"))


def calc_iou(bbox1, bbox2) -> float:
    """IoU of two boxes ``[x1, y1, x2, y2]`` (float64; NaN for two zero-area boxes)."""
    a = _boxes(bbox1, "bbox1")[0]
    b = _boxes(bbox2, "bbox2")[0]
    xx1, yy1 = max(a[0], b[0]), max(a[1], b[1])
    xx2, yy2 = min(a[2], b[2]), min(a[3], b[3])
    wh = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - wh
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(wh) / np.float64(union))
