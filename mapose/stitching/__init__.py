"""Tracklet stitching (DeepLabCut's ``refine_training_dataset.stitch``), compiled.

- :mod:`mapose.stitching.tracklet`: :class:`Tracklet` and its affinity helpers.
- :mod:`mapose.stitching.stitcher`: :class:`TrackletStitcher` (min-cost flow on DLC's graph,
  solved by :mod:`mapose.kernels.flow`).
- :mod:`mapose.stitching.api`: :func:`stitch_tracklets` for DLC projects.
- :mod:`mapose.stitching.synthetic`: generated fragmented workloads (tests, benchmarks).
"""
