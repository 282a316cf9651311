"""Backbones with timm's module names, so DLC snapshots load without renaming.

timm cannot be used here (it imports torchvision, which does not match every torch
build), so the architectures DLC trains are written out directly.  Names, dilation rules
and padding follow timm 1.0's ``resnet.py`` *behaviour* (checked against timm's own
parameter shapes and outputs); the code is mapose's.

ResNet "v1.5" bottlenecks put the stride on the 3x3 conv.  An output stride below 32 is
reached the way timm does it: the stride of a late stage becomes dilation, and block 0 of a
dilated stage keeps the *previous* dilation (so layer4 at output stride 16 runs its first
block with dilation 1 and the others with dilation 2).
"""
from __future__ import annotations

from mapose._optional import require

torch = require("torch", "mapose's pose networks")
nn = torch.nn
F = torch.nn.functional

# timm model name -> (block repeats, norm)
_RESNETS = {
    "resnet50": ((3, 4, 6, 3), "bn"),
    "resnet50_gn": ((3, 4, 6, 3), "gn"),
    "resnet101": ((3, 4, 23, 3), "bn"),
    "resnet101_gn": ((3, 4, 23, 3), "gn"),
    "resnet152": ((3, 8, 36, 3), "bn"),
}


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "gn":
        return nn.GroupNorm(32, channels, eps=1e-5)
    return nn.BatchNorm2d(channels, eps=1e-5)


class Bottleneck(nn.Module):
    """timm ``Bottleneck`` (expansion 4) with ``conv1/bn1/conv2/bn2/conv3/bn3/downsample``."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1,
                 first_dilation=1, norm="bn"):
        super().__init__()
        width = planes
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = _norm(norm, width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=first_dilation,
                               dilation=first_dilation, bias=False)
        self.bn2 = _norm(norm, width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, outplanes, 1, bias=False)
        self.bn3 = _norm(norm, outplanes)
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act3(x + shortcut)


class TimmResNet(nn.Module):
    """timm-compatible ResNet trunk (no classifier): ``forward`` = timm's ``forward_features``.

    Parameters
    ----------
    model_name : str
        One of ``resnet50``, ``resnet50_gn``, ``resnet101``, ``resnet101_gn``, ``resnet152``.
    output_stride : {8, 16, 32}
        Total stride of the output feature map.
    """

    def __init__(self, model_name: str = "resnet50", output_stride: int = 32):
        super().__init__()
        if model_name not in _RESNETS:
            raise ValueError(
                f"model_name={model_name!r} is not a supported ResNet; use one of {sorted(_RESNETS)}."
            )
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32; got {output_stride!r}.")
        layers, norm = _RESNETS[model_name]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = _norm(norm, 64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        net_stride, dilation, prev_dilation = 4, 1, 1
        for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if stage == 0 else 2
            if net_stride >= output_stride:
                dilation *= stride
                stride = 1
            else:
                net_stride *= stride
            downsample = None
            if stride != 1 or inplanes != planes * Bottleneck.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                    _norm(norm, planes * Bottleneck.expansion),
                )
            mods = []
            for b in range(blocks):
                mods.append(Bottleneck(
                    inplanes, planes, stride if b == 0 else 1, downsample if b == 0 else None,
                    dilation=dilation, first_dilation=prev_dilation, norm=norm,
                ))
                prev_dilation = dilation
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*mods))
        self.num_features = inplanes
        self.output_stride = output_stride

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetBackbone(nn.Module):
    """DLC's ``ResNet`` backbone: ``backbone.model`` is the timm trunk."""

    def __init__(self, model_name="resnet50_gn", output_stride=32):
        super().__init__()
        self.model = TimmResNet(model_name, output_stride)
        self.stride = float(output_stride)
        self.out_channels = self.model.num_features

    def forward(self, x):
        return self.model(x)


def _conv_block(c_in, c_out, k, stride):
    # DLCRNet's fusion convs have bias and *no padding* (DLC's choice; sizes are fixed by
    # the final resize anyway).
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=0, bias=True),
        nn.BatchNorm2d(c_out, eps=1e-5),
        nn.ReLU(inplace=True),
    )


class DLCRNetBackbone(nn.Module):
    """DLCRNet: BatchNorm ResNet plus multi-scale fusion of layer1[2] and layer2[2].

    Output channels = 128 (from layer1 block 2) + 128 (from layer2 block 2) + 2048 (layer4).
    """

    def __init__(self, model_name="resnet50", output_stride=32):
        super().__init__()
        self.model = TimmResNet(model_name, output_stride)
        self.conv_block1 = _conv_block(512, 512, 3, 2)
        self.conv_block2 = _conv_block(512, 128, 1, 1)
        self.conv_block3 = _conv_block(256, 256, 3, 2)
        self.conv_block4 = _conv_block(256, 256, 3, 2)
        self.conv_block5 = _conv_block(256, 128, 1, 1)
        self.stride = float(output_stride)
        self.out_channels = self.model.num_features + 256

    def forward(self, x):
        m = self.model
        x = m.maxpool(m.act1(m.bn1(m.conv1(x))))
        # the banks are the outputs of block index 2 (not the last block of layer2)
        bank1 = m.layer1(x)
        y = bank1
        for i, blk in enumerate(m.layer2):
            y = blk(y)
            if i == 2:
                bank2 = y
        out = m.layer4(m.layer3(y))
        h, w = out.shape[-2:]
        b2 = self.conv_block2(self.conv_block1(bank2))
        b1 = self.conv_block5(self.conv_block4(self.conv_block3(bank1)))
        # torchvision resize(antialias=True) == interpolate(bilinear, antialias=True)
        b1 = F.interpolate(b1, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        b2 = F.interpolate(b2, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return torch.cat((b1, b2, out), dim=1)


def build_dlc_backbone(model_cfg: dict):
    """Build the backbone of a DLC ``model`` config section.

    Returns ``(module, out_channels, stride)``.
    """
    cfg = dict(model_cfg.get("backbone") or {})
    kind = cfg.get("type")
    if kind == "ResNet":
        m = ResNetBackbone(cfg.get("model_name", "resnet50_gn"), int(cfg.get("output_stride", 32)))
    elif kind == "DLCRNet":
        m = DLCRNetBackbone(cfg.get("model_name", "resnet50"), int(cfg.get("output_stride", 32)))
    elif kind == "HRNet":
        from mapose.models.hrnet import build_hrnet_backbone  # imports this module

        m = build_hrnet_backbone(cfg)
    else:
        raise ValueError(
            f"model.backbone.type={kind!r} is not supported by mapose; supported: 'ResNet' "
            "(resnet_50/resnet_101), 'DLCRNet' (dlcrnet_stride16/32_ms5) and 'HRNet' (hrnet_w18/32/48)."
        )
    return m, m.out_channels, m.stride
