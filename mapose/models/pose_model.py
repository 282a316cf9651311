"""PoseModel: backbone + heads, with flat tuple outputs for torch and ONNX runners."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from mapose._optional import require
from mapose.models.specs import HeadSpec

torch = require("torch", "mapose's pose networks")
nn = torch.nn
F = torch.nn.functional

# albumentations.Normalize as DLC runs it, in float32: (x - mean*255) * (1 / (std*255)).
# Multiplying by the float32 reciprocal (not dividing by std) is what makes the input
# tensor bit-identical to DLC's.
_MEAN255 = np.float32([0.485, 0.456, 0.406]) * np.float32(255)
_INV_STD255 = np.reciprocal(np.float32([0.229, 0.224, 0.225]) * np.float32(255), dtype=np.float32)


def normalize_frames(frames: np.ndarray) -> np.ndarray:
    """DLC's input normalisation of RGB uint8 frames.

    Parameters
    ----------
    frames : ndarray of shape (B, H, W, 3), uint8, RGB

    Returns
    -------
    ndarray of shape (B, 3, H, W), float32
    """
    x = (frames.astype(np.float32) - _MEAN255) * _INV_STD255
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class PoseModel(nn.Module):
    """DLC-compatible bottom-up pose model.

    ``forward(x)`` takes the normalised float32 batch (B, 3, H, W) and returns a tuple of
    tensors in the order of :attr:`output_names` (``"<head>/<key>"``, e.g.
    ``"bodypart/heatmap"``).  State-dict keys are DLC's: ``backbone.*``, ``heads.<name>.*``.
    """

    def __init__(self, backbone: nn.Module, backbone_stride: float, heads: dict[str, nn.Module],
                 head_cfgs: dict[str, dict]):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.backbone_stride = float(backbone_stride)
        self.head_specs = tuple(
            HeadSpec(name, head_cfgs[name].get("type", ""), tuple(head.output_keys),
                     self.backbone_stride / float(head.stride),
                     dict(head_cfgs[name].get("predictor") or {}))
            for name, head in self.heads.items()
        )
        self.output_names = tuple(f"{s.name}/{k}" for s in self.head_specs for k in s.keys)

    @classmethod
    def from_config(cls, pytorch_cfg: dict) -> "PoseModel":
        from mapose.models import build_backbone
        from mapose.models.heads import build_head

        model_cfg = pytorch_cfg.get("model")
        if not isinstance(model_cfg, dict) or "heads" not in model_cfg:
            raise ValueError("pytorch_config has no 'model.heads' section; is this a DLC 3 "
                             "PyTorch pytorch_config.yaml?")
        if model_cfg.get("neck"):
            raise ValueError(f"model.neck={model_cfg['neck']!r} is not supported by mapose.")
        backbone, _, stride = build_backbone(model_cfg, pytorch_cfg.get("net_type"))
        head_cfgs = dict(model_cfg["heads"])
        heads = {name: build_head(cfg) for name, cfg in head_cfgs.items()}
        return cls(backbone, stride, heads, head_cfgs)

    def forward(self, x):
        features = self.backbone(x)
        out = []
        for head in self.heads.values():
            out.extend(head(features))
        return tuple(out)


class FramesModel(nn.Module):
    """Wraps a :class:`PoseModel` to take raw decoded frames.

    Input: uint8 (B, H, W, 3) in BGR (OpenCV) or RGB order.  The channel flip, float
    conversion and normalisation run inside the graph (same float32 arithmetic as
    :func:`normalize_frames`), so runners ship uint8 to the device (4x less traffic) and an
    exported ONNX model is self-contained.
    """

    def __init__(self, model: PoseModel, bgr: bool = True, channels_last: bool = False):
        super().__init__()
        self.model = model
        # NHWC activations: ~20 % faster convolutions with oneDNN on CPU (and cuDNN),
        # same numbers up to float rounding
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        order = [2, 1, 0] if bgr else [0, 1, 2]
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("mean", torch.from_numpy(_MEAN255.copy()).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("inv_std", torch.from_numpy(_INV_STD255.copy()).view(1, 3, 1, 1),
                             persistent=False)
        self.output_names = model.output_names

    def forward(self, frames):
        x = frames.permute(0, 3, 1, 2).index_select(1, self.order).to(self.mean.dtype)
        x = (x - self.mean) * self.inv_std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


@dataclass(frozen=True)
class InferenceOptions:
    """Inference-only rewrites of a :class:`PoseModel` (same outputs up to float rounding).

    Attributes
    ----------
    fuse_heads : bool, default True
        Layers of a DLCRNet head that read the same input run as one
        (:meth:`~mapose.models.heads.DLCRNetHead.fuse`).
    winograd : bool, default True
        3x3 stride-1 convolutions with at least ``winograd_min_channels`` input channels run
        as Winograd F(2x2, 3x3) (:mod:`mapose.models.winograd`; 2.25x fewer multiplications,
        relative error ~1e-6).  CPU only.
    winograd_min_channels : int, default 256
        Below this, the transforms cost more than the saved multiplications (measured on
        ResNet-50 shapes: 0.4x at 64 channels, 0.9x at 128, 1.1x at 256, 1.9x at 512).
        The ONNX export uses 128 (its graph form has cheaper transforms; see
        :func:`mapose.inference.export.export_onnx`).
    winograd_min_out_channels : int, default 64
        Convolutions with fewer output channels stay direct: the products are too narrow
        to pay for the transforms (DLCRNet's unfused stage convs, 153 -> 25 channels:
        0.97x in ONNX Runtime).
    onednn : bool, default True
        Every remaining convolution goes to oneDNN.  torch sends 1x1 convolutions of
        batches below 16 in single-threaded forwards (the frame-parallel workers) to its
        slower reference kernel.  CPU only; skipped while tracing (ONNX export).
    winograd_transposed : bool, default False
        Size-doubling 3x3 transposed convolutions with at least ``winograd_min_channels``
        inputs and ``winograd_min_out_channels`` outputs (DLCRNet's fused upsampling,
        2048 -> 163 channels) run as :class:`~mapose.models.winograd.WinogradConvTranspose2d`
        (25 instead of 36 products per 2x2 tile).  The ONNX export turns it on (ONNX
        Runtime, 1 thread: 25.5 -> 18.3 ms per 320x256 frame, the network 2.6 % faster);
        in torch it is slower than oneDNN's transposed convolution (279 vs 275 ms per
        frame), hence off by default.  CPU only.
    groupnorm_affine_conv : bool, default False
        GroupNorm's per-channel scale and shift run as a depthwise 1x1 convolution after an
        affine-free group normalisation (:class:`GroupNormDepthwiseAffine`).  ONNX Runtime
        runs that convolution in its blocked layout with the following ReLU fused, instead
        of three element-wise passes (Mul, Add, Relu); the ONNX export turns it on (network
        ~1 % faster).  In torch GroupNorm's own fused affine is faster.  CPU only.
    """

    fuse_heads: bool = True
    winograd: bool = True
    winograd_min_channels: int = 256
    winograd_min_out_channels: int = 64
    onednn: bool = True
    winograd_transposed: bool = False
    groupnorm_affine_conv: bool = False


class GroupNormDepthwiseAffine(nn.Module):
    """``nn.GroupNorm`` as an affine-free group normalisation followed by its per-channel
    scale and shift as a depthwise 1x1 convolution (same outputs, float rounding aside).

    For ONNX export: the normalisation exports as InstanceNormalization alone and the
    convolution runs in ONNX Runtime's blocked layout with a following ReLU fused.
    """

    def __init__(self, norm: nn.GroupNorm):
        super().__init__()
        if not norm.affine:
            raise ValueError(f"norm={norm!r} has no affine parameters; keep it as nn.GroupNorm.")
        c = norm.num_channels
        self.num_groups, self.eps = norm.num_groups, norm.eps
        w = norm.weight
        self.affine = nn.Conv2d(c, c, 1, groups=c).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            self.affine.weight.copy_(w.detach().view(c, 1, 1, 1))
            self.affine.bias.copy_(norm.bias.detach())
        self.affine.requires_grad_(w.requires_grad)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.affine.in_channels}, eps={self.eps}"

    def forward(self, x):
        return self.affine(F.group_norm(x, self.num_groups, None, None, self.eps))


class _OneDNNConv2d(nn.Conv2d):
    """nn.Conv2d that always runs oneDNN's kernel for float32 CPU tensors."""

    def forward(self, x):
        if (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.jit.is_tracing()
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)):
            return torch.ops.aten.mkldnn_convolution(x, self.weight, self.bias, self.padding,
                                                     self.stride, self.dilation, self.groups)
        return super().forward(x)


def optimize_for_inference(model: PoseModel, options: InferenceOptions | None = None,
                           device="cpu") -> PoseModel:
    """A copy of ``model`` rewritten for fast inference (``model`` is left unchanged).

    Parameters
    ----------
    model : PoseModel
        In eval mode.
    options : InferenceOptions, optional
        Which rewrites; default: all.
    device : str or torch.device, default "cpu"
        Where the copy will run; the CPU-only rewrites are skipped elsewhere.

    Returns
    -------
    PoseModel
        Same state-dict keys as ``model`` (plus fused head entries), same outputs up to
        float rounding.
    """
    from mapose.models.heads import DLCRNetHead
    from mapose.models.winograd import (WinogradConv2d, WinogradConvTranspose2d, winograd_eligible,
                                        winograd_transposed_eligible)

    options = InferenceOptions() if options is None else options
    if not isinstance(options, InferenceOptions):
        raise TypeError(f"options must be an InferenceOptions or None; got {type(options).__name__}.")
    cpu = torch.device(device).type == "cpu"
    model = copy.deepcopy(model)
    if options.fuse_heads:
        for head in model.heads.values():
            if isinstance(head, DLCRNetHead):
                head.fuse()
    if not cpu:
        return model
    # layers a fusion made unused keep their plain form: no weights to transform
    unused = {id(m) for parent in model.modules() for name in getattr(parent, "superseded", ())
              for m in getattr(parent, name).modules()}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in unused:
                continue
            if (options.winograd and winograd_eligible(child)
                    and child.in_channels >= options.winograd_min_channels
                    and child.out_channels >= options.winograd_min_out_channels):
                setattr(parent, name, WinogradConv2d(child))
            elif (options.winograd_transposed and winograd_transposed_eligible(child)
                  and child.in_channels >= options.winograd_min_channels
                  and child.out_channels >= options.winograd_min_out_channels):
                setattr(parent, name, WinogradConvTranspose2d(child))
            elif (options.groupnorm_affine_conv and type(child) is nn.GroupNorm and child.affine):
                setattr(parent, name, GroupNormDepthwiseAffine(child))
            elif options.onednn and type(child) is nn.Conv2d:
                child.__class__ = _OneDNNConv2d
    return model


def optimized_if_asked(model: PoseModel, optimize, device="cpu") -> PoseModel:
    """The runners' and exporter's ``optimize`` argument: True → all rewrites, an
    :class:`InferenceOptions` → those, False → ``model`` itself."""
    if optimize is True or isinstance(optimize, InferenceOptions):
        return optimize_for_inference(model, None if optimize is True else optimize, device)
    if optimize is not False:
        raise TypeError(f"optimize must be True, False or an InferenceOptions; got {optimize!r}.")
    return model
