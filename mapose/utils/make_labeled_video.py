"""DLC's ``deeplabcut.utils.make_labeled_video`` names, backed by :mod:`mapose.visualization`."""
from __future__ import annotations

from mapose.visualization.tracks import create_video_from_pickled_tracks
from mapose.visualization.videos import create_labeled_video, create_video_with_all_detections

__all__ = ["create_labeled_video", "create_video_from_pickled_tracks", "create_video_with_all_detections"]
