"""``export_model``: DLC-Live's ``.pt`` export and a self-contained ONNX model.

The ONNX graph takes raw decoded frames — input ``frames``: uint8 (batch, height, width, 3)
in BGR order, dynamic batch and image size — and does DLC's normalisation inside, so any
ONNX runtime can run it without mapose.  Outputs are named ``"<head>/<key>"``
(``bodypart/heatmap``, ``bodypart/locref``, ``bodypart/paf``, ...), float32 NCHW.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from mapose._optional import require

__all__ = ["export_model", "export_onnx", "onnx_path_for"]

_OPSET = 17
# Bumped whenever the exported graph changes in a way worth re-exporting for (g2: Winograd
# and fused head layers, ~15 % faster on CPU; g4: Winograd transforms on NHWC slices, 16
# prepacked MatMuls, also for the 128-channel layers; g5: the head's size-doubling
# transposed convolution as Winograd F(2, 2) MatMuls, the feature part of all DLCRNet
# stages as one Winograd convolution, GroupNorm's affine as a depthwise convolution;
# network 5-6 % faster).  It is part of the file name, so
# analyze_videos(engine="onnx") re-exports once instead of reusing an older, slower graph.
_ONNX_GRAPH_VERSION = 5
# The exported Winograd form runs in ONNX Runtime with cheaper transforms than torch's
# eager one, so there it already wins from 128 input channels (ResNet-50 layer2: 1.35x per
# layer, 1 thread; 64 channels: 0.95x), where torch's does not (InferenceOptions' 256).
_ONNX_WINOGRAD_MIN_CHANNELS = 128


def _export_dir(pm, iteration=None) -> Path:
    it = pm.cfg.get("iteration") if iteration is None else iteration
    name = f"DLC_{pm.cfg['Task']}_{pm.net_type}_iteration-{it}_shuffle-{pm.shuffle}"
    return Path(str(pm.cfg["project_path"])) / "exported-models-pytorch" / name


def _snapshot_uid(pm) -> str:
    from mapose.io.project import Snapshot

    return Snapshot.from_path(pm.snapshot).uid()


def _export_target(pm, d: Path, format: str) -> Path:
    stem = f"{d.name}_snapshot-{_snapshot_uid(pm)}"
    if format == "onnx":
        return d / f"{stem}_graph-v{_ONNX_GRAPH_VERSION}.onnx"
    return d / f"{stem}.pt"


def onnx_path_for(pm) -> Path:
    """Where the ONNX export of a project model lives (what ``export_model`` writes)."""
    return _export_target(pm, _export_dir(pm), "onnx")


def export_onnx(model, path, opset: int = _OPSET, bgr: bool = True, optimize=True) -> Path:
    """Export a :class:`~mapose.models.pose_model.PoseModel` to ONNX (atomic write).

    Parameters
    ----------
    model : PoseModel
    path : str or Path
        Destination ``.onnx`` file.
    opset : int, default 17
    bgr : bool, default True
        The graph expects BGR frames (OpenCV order); False for RGB.
    optimize : bool or InferenceOptions, default True
        Export the inference rewrites of
        :func:`~mapose.models.pose_model.optimize_for_inference` (fused head layers,
        Winograd 3x3 convolutions and size-doubling transposed convolutions as MatMul and
        element-wise ops, GroupNorm's affine as a depthwise convolution: faster in ONNX
        Runtime on CPU); True uses them all, with Winograd from 128 input channels
        (torch's default is 256); an :class:`~mapose.models.pose_model.InferenceOptions`
        exactly as given; False exports the plain layers (the model as trained, one op
        per layer).
        ``model`` itself is not modified.
    """
    torch = require("torch", "ONNX export")
    require("onnx", "ONNX export")
    from mapose.io.atomic import atomic_path
    from mapose.models.pose_model import FramesModel, InferenceOptions, optimized_if_asked

    if optimize is True:
        optimize = InferenceOptions(winograd_min_channels=_ONNX_WINOGRAD_MIN_CHANNELS,
                                    winograd_transposed=True, groupnorm_affine_conv=True)
    model = optimized_if_asked(model, optimize, "cpu")
    net = FramesModel(model, bgr=bgr).eval().cpu()
    dummy = torch.zeros((1, 64, 64, 3), dtype=torch.uint8)
    names = list(net.output_names)
    axes = {"frames": {0: "batch", 1: "height", 2: "width"}}
    axes.update({n: {0: "batch", 2: f"{n}_h", 3: f"{n}_w"} for n in names})
    path = Path(os.fspath(path))
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints in shapes
        kwargs = dict(input_names=["frames"], output_names=names, dynamic_axes=axes,
                      opset_version=int(opset), do_constant_folding=True)
        try:
            torch.onnx.export(net, (dummy,), str(tmp), dynamo=False, **kwargs)
        except TypeError:  # torch < 2.5 has no `dynamo` argument
            torch.onnx.export(net, (dummy,), str(tmp), **kwargs)
    return path


def export_model(config, shuffle: int = 1, trainingsetindex: int = 0, snapshotindex=None,
                 detector_snapshot_index=None, iteration=None, overwrite: bool = False,
                 wipe_paths: bool = False, without_detector: bool = False, modelprefix=None,
                 *, format: str = "onnx", opset: int = _OPSET) -> Path:
    """Export a trained bottom-up model (``deeplabcut.export_model`` compatible).

    Parameters follow DLC 3.0.2; ``format`` selects what is written into
    ``<project>/exported-models-pytorch/DLC_<Task>_<net_type>_iteration-<it>_shuffle-<S>/``:

    * ``"onnx"`` (default): ``<dir>_snapshot-<uid>_graph-v<N>.onnx`` (see module docstring;
      ``N`` is mapose's graph version, so an export from an older mapose is not reused);
    * ``"pytorch"``: DLC-Live's ``<dir>_snapshot-<uid>.pt`` = ``{"config", "pose"}`` with
      plain strings (DLC 3.0.1's file pickles enums that ``weights_only`` loading rejects).

    Returns
    -------
    Path
        The written (or already existing, without ``overwrite``) file.
    """
    if format not in ("onnx", "pytorch"):
        raise ValueError(f"format must be 'onnx' or 'pytorch'; got {format!r}.")
    if detector_snapshot_index is not None:
        warnings.warn("detector_snapshot_index is ignored: mapose exports bottom-up models only.",
                      UserWarning, stacklevel=2)
    from mapose.inference.project_model import _plain, find_project_model

    pm = find_project_model(config, shuffle, trainingsetindex, snapshotindex, modelprefix or "")
    d = _export_dir(pm, iteration)
    target = _export_target(pm, d, format)
    if target.exists() and not overwrite:
        print(f"Exported model already exists at {target}; pass overwrite=True to replace it.")
        return target
    d.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        return export_onnx(pm.build_model(), target, opset=opset)
    torch = require("torch", "model export")
    from mapose.io.atomic import atomic_path
    from mapose.models.snapshot import load_snapshot

    cfg = _plain(pm.pytorch_cfg)
    if wipe_paths:
        meta = cfg.get("metadata") or {}
        for key in ("project_path", "pose_config_path"):
            if key in meta:
                meta[key] = ""
    state = load_snapshot(pm.snapshot, pytorch_cfg=cfg)["model"]
    with atomic_path(target) as tmp:
        torch.save({"config": cfg, "pose": state}, tmp)
    return target
