"""Visual checks: labeled videos, detection and tracklet videos, trajectory and affinity plots.

Public entry points (DLC names): :func:`create_labeled_video`,
:func:`create_video_with_all_detections` (:mod:`.videos`), :func:`plot_trajectories`,
:func:`plot_edge_affinity_distributions` (:mod:`.plots`) and
:func:`create_video_from_pickled_tracks` (:mod:`.tracks`).  Nothing heavy (cv2,
matplotlib, pandas) is imported until one of them is called.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "create_labeled_video": "mapose.visualization.videos",
    "create_video_with_all_detections": "mapose.visualization.videos",
    "create_video_from_pickled_tracks": "mapose.visualization.tracks",
    "plot_trajectories": "mapose.visualization.plots",
    "plot_edge_affinity_distributions": "mapose.visualization.plots",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mapose.visualization' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
