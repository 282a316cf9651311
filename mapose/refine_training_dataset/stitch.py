"""DeepLabCut-compatible module path ``deeplabcut.refine_training_dataset.stitch``."""
from mapose.io.project import TRACK_METHODS
from mapose.stitching.api import stitch_tracklets
from mapose.stitching.stitcher import TrackletStitcher
from mapose.stitching.tracklet import Tracklet, calc_iou

__all__ = ["TRACK_METHODS", "Tracklet", "TrackletStitcher", "calc_iou", "stitch_tracklets"]
