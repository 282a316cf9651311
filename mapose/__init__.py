"""mapose: a fast, drop-in replacement for DeepLabCut's multi-animal pose pipeline.

``import mapose as deeplabcut`` gives DLC-named functions backed by compiled kernels.
The top level is deliberately light: heavy modules (torch, onnxruntime, matplotlib,
dask, and even pandas-based I/O) load only when one of their names is first used.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it.  Resolved lazily by ``__getattr__`` so that
# ``import mapose`` costs milliseconds and never imports torch & co.
_LAZY_EXPORTS: dict[str, str] = {
    # assembly (core/inferenceutils)
    "Assembler": "mapose.assembly.assembler",
    "Assembly": "mapose.assembly.model",
    "Joint": "mapose.assembly.model",
    "Link": "mapose.assembly.model",
    "evaluate_assembly": "mapose.assembly.evaluation",
    "match_assemblies": "mapose.assembly.evaluation",
    "calc_object_keypoint_similarity": "mapose.assembly.evaluation",
    "find_outlier_assemblies": "mapose.assembly.evaluation",
    # tracking (core/trackingutils)
    "SORTEllipse": "mapose.tracking.sort",
    "SORTBox": "mapose.tracking.sort",
    "SORTSkeleton": "mapose.tracking.sort",
    "calc_bboxes_from_keypoints": "mapose.tracking.boxes",
    "build_tracklets": "mapose.tracking.tracklets",
    "convert_detections2tracklets": "mapose.tracking.convert",
    # stitching
    "Tracklet": "mapose.stitching.tracklet",
    "TrackletStitcher": "mapose.stitching.stitcher",
    "stitch_tracklets": "mapose.stitching.api",
    # ReID transformer (appearance-based stitching)
    "transformer_reID": "mapose.reid.api",
    "create_tracking_dataset": "mapose.reid.api",
    # inference
    "analyze_videos": "mapose.inference.analyze",
    "export_model": "mapose.inference.export",
    # visual checks
    "create_video_with_all_detections": "mapose.visualization.videos",
    "create_labeled_video": "mapose.visualization.videos",
    "plot_trajectories": "mapose.visualization.plots",
    "plot_edge_affinity_distributions": "mapose.visualization.plots",
    "create_video_from_pickled_tracks": "mapose.visualization.tracks",
    # evaluation / batch
    "evaluate_tracks": "mapose.evaluation.tracks",
    "run_videos": "mapose.batch.runner",
}

# DLC-style subpackages reachable as attributes (``mapose.utils.x`` after ``import mapose``).
_LAZY_SUBPACKAGES = {
    "assembly", "batch", "core", "demo", "evaluation", "inference", "io", "kernels", "models",
    "pose_tracking_pytorch", "refine_training_dataset", "reid", "stitching", "tracking", "utils",
    "visualization",
}

__all__ = sorted(_LAZY_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY_SUBPACKAGES:
        module = importlib.import_module(f"mapose.{name}")
        globals()[name] = module
        return module
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mapose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
