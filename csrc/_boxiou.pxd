# Box IoU shared by the ``iou`` and ``tracking`` families (inline: no runtime coupling).
# Boxes are [x1, y1, x2, y2]; the comparisons mirror Python's max()/min() (the first
# argument wins unless the second is strictly larger/smaller), which is what DLC's
# per-pair ``calc_iou`` does, so NaN coordinates behave the same.

cdef inline double _pmax(double a, double b) noexcept nogil:
    return b if b > a else a

cdef inline double _pmin(double a, double b) noexcept nogil:
    return b if b < a else a

cdef inline double iou_xyxy(const double* a, const double* b) noexcept nogil:
    cdef double w = _pmax(0.0, _pmin(a[2], b[2]) - _pmax(a[0], b[0]))
    cdef double h = _pmax(0.0, _pmin(a[3], b[3]) - _pmax(a[1], b[1]))
    cdef double inter = w * h
    cdef double union_ = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    # 0/0 (two degenerate boxes) gives NaN, as in DLC; callers decide what NaN means.
    return inter / union_
