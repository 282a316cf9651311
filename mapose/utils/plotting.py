"""DLC's ``deeplabcut.utils.plotting`` names, backed by :mod:`mapose.visualization.plots`."""
from __future__ import annotations

from mapose.visualization.plots import plot_edge_affinity_distributions, plot_trajectories

__all__ = ["plot_edge_affinity_distributions", "plot_trajectories"]
