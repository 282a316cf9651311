"""DLC's ``deeplabcut.utils`` names used by the seed workflow (loaded lazily).

``mapose.utils.plot_edge_affinity_distributions``, ``mapose.utils.plot_trajectories``,
``mapose.utils.create_labeled_video`` ... resolve to :mod:`mapose.visualization`;
``mapose.utils.make_labeled_video`` and ``mapose.utils.plotting`` mirror DLC's modules.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "plot_edge_affinity_distributions": "mapose.visualization.plots",
    "plot_trajectories": "mapose.visualization.plots",
    "create_labeled_video": "mapose.visualization.videos",
    "create_video_with_all_detections": "mapose.visualization.videos",
    "create_video_from_pickled_tracks": "mapose.visualization.tracks",
}
_SUBMODULES = {"make_labeled_video", "plotting"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"mapose.utils.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mapose.utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
