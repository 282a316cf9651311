"""Pose networks that load DeepLabCut 3 PyTorch snapshots unchanged.

mapose rebuilds DLC's bottom-up models (backbone + heads) with mapose's own torch code
whose module tree reproduces DLC's ``state_dict`` names exactly, so a DLC snapshot's
``snapshot["model"]`` loads with ``load_state_dict(strict=True)`` and no renaming:

* backbones (:mod:`mapose.models.backbones`): timm-compatible ResNet-50/101 (BatchNorm or
  GroupNorm ``*_gn`` variants, output stride 8/16/32 by dilation exactly like timm) under
  ``backbone.model.*``; DLCRNet multi-scale fusion (``backbone.conv_block{1..5}``);
* heads (:mod:`mapose.models.heads`): ``DeconvModule``, ``HeatmapHead`` (unique body parts,
  identity) and ``DLCRNetHead`` (multi-stage PAF head) under ``heads.<name>.*``;
* :class:`mapose.models.pose_model.PoseModel` ties them together and returns a flat tuple
  of tensors named by :attr:`~mapose.models.pose_model.PoseModel.output_names`, which is
  what the torch and ONNX runners consume.

Backbone registry contract
--------------------------
:func:`build_backbone` dispatches on ``net_type`` / ``model["backbone"]["type"]``.
Extra backbones plug in through :func:`register_backbone` or, for the shipped demo model,
by ``net_type`` prefix: any ``net_type`` starting with ``"mapose_tiny"`` imports
:mod:`mapose.models.tiny` and calls::

    build_backbone(model_cfg: dict) -> (module: torch.nn.Module, out_channels: int, stride: float)

where ``model_cfg`` is the ``model`` section of ``pytorch_config.yaml`` (a plain dict),
``module`` maps a float32 tensor (B, 3, H, W) (ImageNet-normalised RGB) to features
(B, out_channels, h, w), and ``stride`` is the backbone's total stride (H / h, e.g. 16.0).
The module is stored as the ``backbone`` attribute of the pose model, so its parameters
appear as ``backbone.<name>`` in snapshots.  Heads are then built from
``model_cfg["heads"]`` exactly as for DLC models, and the model stride of each head is
``stride / head_stride``.

Everything here needs torch (``pip install 'mapose[torch]'``); importing this package
does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["build_backbone", "register_backbone", "build_pose_model", "load_pose_model"]

# net_type prefix -> "module:function" or a callable with the contract above.
_BACKBONE_PLUGINS: dict[str, object] = {
    "mapose_tiny": "mapose.models.tiny:build_backbone",
}


def register_backbone(net_type_prefix: str, factory: Callable) -> None:
    """Register ``factory(model_cfg) -> (module, out_channels, stride)`` for a net_type prefix."""
    if not isinstance(net_type_prefix, str) or not net_type_prefix:
        raise ValueError(f"net_type_prefix must be a non-empty str; got {net_type_prefix!r}.")
    if not callable(factory):
        raise TypeError(f"factory must be callable; got {type(factory).__name__}.")
    _BACKBONE_PLUGINS[net_type_prefix] = factory


def _plugin_for(net_type: str | None):
    if not net_type:
        return None
    for prefix, factory in _BACKBONE_PLUGINS.items():
        if net_type.startswith(prefix):
            if isinstance(factory, str):
                module_name, func = factory.split(":")
                factory = getattr(importlib.import_module(module_name), func)
            return factory
    return None


def build_backbone(model_cfg: dict, net_type: str | None = None):
    """Build the backbone described by ``model_cfg["backbone"]``.

    Returns
    -------
    module : torch.nn.Module
    out_channels : int
    stride : float
        Total stride of the feature map relative to the input.
    """
    plugin = _plugin_for(net_type)
    if plugin is not None:
        return plugin(model_cfg)
    from mapose.models.backbones import build_dlc_backbone

    return build_dlc_backbone(model_cfg)


def build_pose_model(pytorch_cfg: dict):
    """Build a :class:`~mapose.models.pose_model.PoseModel` from a ``pytorch_config`` dict."""
    from mapose.models.pose_model import PoseModel

    return PoseModel.from_config(pytorch_cfg)


def load_pose_model(pytorch_cfg: dict, snapshot_path, weights_only: bool | None = None):
    """Build the model and load a DLC snapshot's weights (strict), in eval mode."""
    from mapose.models.snapshot import load_pose_model as _load

    return _load(pytorch_cfg, snapshot_path, weights_only=weights_only)
