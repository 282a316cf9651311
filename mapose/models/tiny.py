"""A tiny convolutional backbone for the shipped demo model.

Built by :func:`mapose.models.build_backbone` for any ``net_type`` starting with
``"mapose_tiny"``; DLC's ``DLCRNetHead`` sits on top, so the complete model outputs
heatmaps, location refinement and part-affinity fields exactly like a DLC bottom-up model
and runs through the same predictor, assembly, tracking and stitching code.

Architecture (all convolutions 3x3, BatchNorm, ReLU)::

    stem      : conv(3 -> c0, stride 2)
    stage 1   : conv(c0 -> c1, stride 2)
    stage i>1 : conv(c_{i-1} -> c_i, stride 2) -> residual block(c_i)
    last stage: its residual block uses dilation 2 for a wider receptive field

Total stride = 2 ** len(channels).  With ``channels = [16, 32, 48, 64]`` the backbone has
stride 16 and ~0.2 M parameters; the whole demo model (with a slim ``DLCRNetHead``) is a
few hundred kB on disk and runs at well over 25 frames/s on one CPU core at 320x256.

``pytorch_config.yaml``::

    net_type: mapose_tiny
    model:
      backbone: {type: MaposeTiny, channels: [16, 32, 48, 64]}
      backbone_output_channels: 64
"""
from __future__ import annotations

from mapose._optional import require

DEFAULT_CHANNELS = (16, 32, 48, 64)


def _modules():
    torch = require("torch", "the mapose_tiny demo backbone")
    nn = torch.nn

    def conv_bn(c_in, c_out, stride=1, dilation=1):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    class ResidualBlock(nn.Module):
        def __init__(self, channels, dilation=1):
            super().__init__()
            self.conv1 = conv_bn(channels, channels, dilation=dilation)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(x + self.bn2(self.conv2(self.conv1(x))))

    class TinyBackbone(nn.Module):
        """Strided conv stack, input (B, 3, H, W) -> (B, channels[-1], ceil(H/s), ceil(W/s))."""

        def __init__(self, channels=DEFAULT_CHANNELS):
            super().__init__()
            channels = [int(c) for c in channels]
            self.stem = conv_bn(3, channels[0], stride=2)
            stages = []
            for i in range(1, len(channels)):
                dilation = 2 if i == len(channels) - 1 else 1
                layers = [conv_bn(channels[i - 1], channels[i], stride=2)]
                if i > 1:  # no residual block at stride 4: it would cost most of the compute
                    layers.append(ResidualBlock(channels[i], dilation=dilation))
                stages.append(nn.Sequential(*layers))
            self.stages = nn.Sequential(*stages)
            self.out_channels = channels[-1]
            self.stride = float(2 ** len(channels))

        def forward(self, x):
            return self.stages(self.stem(x))

    return TinyBackbone


def build_backbone(model_cfg: dict):
    """Build the tiny backbone from the ``model`` section of ``pytorch_config.yaml``.

    Parameters
    ----------
    model_cfg : dict
        The ``model`` section; ``model_cfg["backbone"]["channels"]`` (list of int, one
        per stride-2 stage) is optional and defaults to ``[16, 32, 48, 64]``.

    Returns
    -------
    module : torch.nn.Module
        Maps (B, 3, H, W) float32 to (B, channels[-1], ceil(H / stride), ceil(W / stride)).
    out_channels : int
    stride : float
    """
    if not isinstance(model_cfg, dict):
        raise TypeError(f"model_cfg must be the dict 'model' section of pytorch_config.yaml; got {type(model_cfg).__name__}.")
    backbone_cfg = model_cfg.get("backbone") or {}
    channels = backbone_cfg.get("channels", DEFAULT_CHANNELS)
    if (not isinstance(channels, (list, tuple)) or len(channels) < 2
            or not all(isinstance(c, int) and c > 0 for c in channels)):
        raise ValueError(
            f"model.backbone.channels must be a list of at least 2 positive ints; got {channels!r}. "
            f"Example: {list(DEFAULT_CHANNELS)}."
        )
    declared = model_cfg.get("backbone_output_channels")
    if declared is not None and int(declared) != channels[-1]:
        raise ValueError(
            f"model.backbone_output_channels={declared!r} does not match model.backbone.channels[-1]="
            f"{channels[-1]}; set backbone_output_channels to {channels[-1]}."
        )
    module = _modules()(channels)
    return module, module.out_channels, module.stride
