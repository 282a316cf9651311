"""Torch-free description of a model's heads (what the predictors need to know)."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HeadSpec", "head_specs_from_config"]


@dataclass(frozen=True)
class HeadSpec:
    """Static description of one head's outputs.

    Attributes
    ----------
    name : str
        ``"bodypart"``, ``"unique_bodypart"``, ``"identity"``.
    type : str
        DLC head type (``"DLCRNetHead"``, ``"HeatmapHead"``).
    keys : tuple of str
        Output keys in order (``"heatmap"``, ``"locref"``, ``"paf"``).
    stride : float
        Model stride of the head's maps (backbone stride / head upsampling).
    predictor : dict
        The head's ``predictor`` config.
    """

    name: str
    type: str
    keys: tuple[str, ...]
    stride: float
    predictor: dict


def _deconv_stride(cfg: dict | None) -> int:
    s = 1
    for v in (cfg or {}).get("strides") or []:
        s *= int(v)
    return s


def head_specs_from_config(pytorch_cfg: dict) -> tuple[HeadSpec, ...] | None:
    """Head specs computed from ``pytorch_config`` alone (no torch needed).

    Returns None when the backbone's stride cannot be known without building it (plugin
    backbones); callers then build the model.
    """
    model = pytorch_cfg.get("model") or {}
    bb = model.get("backbone") or {}
    if bb.get("type") in ("ResNet", "DLCRNet"):
        backbone_stride = float(int(bb.get("output_stride", 32)))
    elif bb.get("type") == "HRNet":
        # DLC's HRNet reports the stride of its first (highest-resolution) branch
        backbone_stride = float(bb.get("stride", 4))
    else:
        return None
    specs = []
    for name, cfg in (model.get("heads") or {}).items():
        kind = cfg.get("type", "")
        if kind == "DLCRNetHead":
            keys = ("heatmap", "locref", "paf")
            stride = _deconv_stride(cfg.get("heatmap_config")) * (2 if int(cfg.get("num_stages", 5)) > 0 else 1)
        elif kind == "HeatmapHead":
            keys = ("heatmap", "locref") if cfg.get("locref_config") else ("heatmap",)
            stride = _deconv_stride(cfg.get("heatmap_config"))
        else:
            return None
        specs.append(HeadSpec(name, kind, keys, backbone_stride / float(stride), dict(cfg.get("predictor") or {})))
    return tuple(specs)
