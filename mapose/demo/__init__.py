"""Offline end-to-end demo: synthetic video with ground truth, shipped model, full pipeline.

* :mod:`mapose.demo.render` -- synthetic multi-animal videos and their exact ground truth;
* :mod:`mapose.demo.project` -- a DeepLabCut-format project around the shipped demo model
  (``mapose/data/demo_model``: tiny backbone + DLCRNet PAF head, < 1 MB);
* :mod:`mapose.demo.runner` -- ``mapose demo``: render, ``analyze_videos(auto_track=True)``,
  labeled video, ``evaluate_tracks`` against the ground truth, timing per stage.
"""
