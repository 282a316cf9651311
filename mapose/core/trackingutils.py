"""``deeplabcut.core.trackingutils`` names, backed by mapose's compiled trackers."""
from mapose.tracking.boxes import calc_bboxes_from_keypoints
from mapose.tracking.sort import (
    TRACK_METHODS,
    BaseTracker,
    BoxTracker,
    Ellipse,
    EllipseFitter,
    EllipseTracker,
    SkeletonTracker,
    SORTBox,
    SORTEllipse,
    SORTSkeleton,
    calc_iou,
    fill_tracklets,
    reconstruct_all_ellipses,
    weighted_hausdorff,
)
from mapose.tracking.tracklets import build_tracklets

__all__ = [
    "TRACK_METHODS", "BaseTracker", "BoxTracker", "Ellipse", "EllipseFitter", "EllipseTracker",
    "SkeletonTracker", "SORTBox", "SORTEllipse", "SORTSkeleton", "calc_bboxes_from_keypoints",
    "calc_iou", "fill_tracklets", "reconstruct_all_ellipses", "weighted_hausdorff", "build_tracklets",
]
