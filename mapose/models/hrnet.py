"""HRNet backbones (``hrnet_w18/32/48`` and relatives) with timm's parameter names.

DLC 3.0.2 builds its ``HRNet`` backbone as ``timm.create_model(name, features_only=True,
out_indices=(1, 2, 3, 4), feature_location="incre" if increased_channel_count else "")``
and stores it as ``backbone.model``, so snapshot keys look like
``backbone.model.stage3.2.fuse_layers.2.0.0.0.weight``.  timm cannot be imported here
(it needs torchvision), so :class:`HighResolutionFeatures` rebuilds the same module tree:
the names, the block layout, the order of the fusion sums and the nearest-neighbour
upsampling follow timm 1.0's ``hrnet.py`` *behaviour* (checked key by key and output by
output against timm/DLC in ``benchmarks/compare_hrnet.py``); the code is mapose's.

Architecture (width C, e.g. 32 for ``hrnet_w32``)::

    stem      conv1 3x3/2 -> bn1 -> relu -> conv2 3x3/2 -> bn2 -> relu          (64 ch, stride 4)
    layer1    4 bottlenecks 64 -> 256                                             (stride 4)
    stage2    1 module,  branches (C, 2C)            strides (4, 8)
    stage3    4 modules, branches (C, 2C, 4C)        strides (4, 8, 16)
    stage4    3 modules, branches (C, 2C, 4C, 8C)    strides (4, 8, 16, 32)

Each module runs 4 basic blocks per branch, then *fuses*: output branch i is the ReLU of
the sum over input branches j (in order j = 0, 1, ...) of: identity (j == i), a 1x1 conv +
BN + nearest upsampling by 2^(j-i) (j > i), or (i - j) strided 3x3 convs (j < i).  The
upsampling multiplies sizes exactly, so the input height and width must make every branch
size an exact power-of-two multiple of the next: ``ceil(H / 4) % 8 == 0``, which DLC
guarantees by padding to multiples of 32 (``data.inference.auto_padding``).

DLC uses only the stride-4 branch (``interpolate_branches: false``, C channels; 128 with
``increased_channel_count``, where timm's "incre" bottlenecks widen the branches to
128/256/512/1024 channels), or with ``interpolate_branches: true`` the concatenation of
all four branches bilinearly resized to the stride-4 size.
"""
from __future__ import annotations

from mapose._optional import require
from mapose.models.backbones import Bottleneck

torch = require("torch", "mapose's pose networks")
nn = torch.nn
F = torch.nn.functional

__all__ = ["HRNET_ARCHS", "BasicBlock", "HighResolutionModule", "HighResolutionFeatures",
           "HRNetBackbone", "build_hrnet_backbone"]


def _width_arch(width: int) -> dict:
    return {
        "layer1": (4, 64),  # (bottleneck blocks, planes)
        # per stage: (modules, blocks per branch, branch widths)
        "stages": ((1, 4, (width, 2 * width)),
                   (4, 4, (width, 2 * width, 4 * width)),
                   (3, 4, (width, 2 * width, 4 * width, 8 * width))),
    }


# timm model name -> architecture (all use a 64-channel stem and basic blocks in stages 2-4)
HRNET_ARCHS: dict[str, dict] = {f"hrnet_w{w}": _width_arch(w) for w in (18, 30, 32, 40, 44, 48, 64)}
HRNET_ARCHS["hrnet_w18_small"] = {
    "layer1": (1, 32),
    "stages": ((1, 2, (16, 32)), (1, 2, (16, 32, 64)), (1, 2, (16, 32, 64, 128))),
}
HRNET_ARCHS["hrnet_w18_small_v2"] = {
    "layer1": (2, 64),
    "stages": ((1, 2, (18, 36)), (3, 2, (18, 36, 72)), (2, 2, (18, 36, 72, 144))),
}
# timm's "incre" head widths (bottleneck planes; x4 output channels)
_INCRE_PLANES = (32, 64, 128, 256)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, relu: bool) -> nn.Sequential:
    mods = [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), _bn(c_out)]
    if relu:
        mods.append(nn.ReLU(inplace=True))
    return nn.Sequential(*mods)


class BasicBlock(nn.Module):
    """timm ``BasicBlock`` (expansion 1): ``conv1/bn1/conv2/bn2[/downsample]``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _bn(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _bn(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        shortcut = x
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(y + shortcut)


def _make_layer(block, inplanes: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
            _bn(planes * block.expansion),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    for _ in range(1, blocks):
        layers.append(block(planes * block.expansion, planes))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """One multi-resolution module: ``branches.<i>`` (basic blocks) and ``fuse_layers.<i>.<j>``.

    Parameters
    ----------
    in_channels : sequence of int
        Channels of each input branch (equal to ``channels`` in all timm configs).
    channels : sequence of int
        Channels of each branch.
    blocks : int
        Basic blocks per branch.
    """

    def __init__(self, in_channels, channels, blocks: int):
        super().__init__()
        n = len(channels)
        self.num_branches = n
        self.branches = nn.ModuleList(
            _make_layer(BasicBlock, in_channels[i], channels[i], blocks) for i in range(n)
        )
        if n == 1:
            self.fuse_layers = nn.Identity()
        else:
            rows = []
            for i in range(n):
                row = []
                for j in range(n):
                    if j > i:
                        row.append(nn.Sequential(
                            nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                            _bn(channels[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        ))
                    elif j == i:
                        row.append(nn.Identity())
                    else:
                        # (i - j) stride-2 convs; only the last one changes the width and
                        # has no ReLU
                        steps = [
                            _conv_bn(channels[j], channels[i] if k == i - j - 1 else channels[j],
                                     3, 2, relu=k < i - j - 1)
                            for k in range(i - j)
                        ]
                        row.append(nn.Sequential(*steps))
                rows.append(nn.ModuleList(row))
            self.fuse_layers = nn.ModuleList(rows)
        self.fuse_act = nn.ReLU(inplace=False)

    def forward(self, xs: list, n_out: int | None = None) -> list:
        """Run the branches and fuse; ``n_out`` limits the fused outputs to the first ones
        (the others are not needed when only the high-resolution branch is used)."""
        if self.num_branches == 1:
            return [self.branches[0](xs[0])]
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for row in list(self.fuse_layers)[: n_out or self.num_branches]:
            # the summation order (j = 0, 1, ...) is timm's, which keeps float32 bit parity
            y = row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + row[j](xs[j])
            out.append(self.fuse_act(y))
        return out


def _make_transition(pre: tuple, cur: tuple) -> nn.ModuleList:
    mods = []
    for i, c in enumerate(cur):
        if i < len(pre):
            mods.append(_conv_bn(pre[i], c, 3, 1, relu=True) if c != pre[i] else nn.Identity())
        else:
            # new lower-resolution branch: stride-2 convs from the last existing branch
            n = i + 1 - len(pre)
            mods.append(nn.Sequential(*(
                _conv_bn(pre[-1], c if k == n - 1 else pre[-1], 3, 2, relu=True) for k in range(n)
            )))
    return nn.ModuleList(mods)


class HighResolutionFeatures(nn.Module):
    """timm ``HighResolutionNetFeatures`` trunk (``features_only=True, out_indices=(1,2,3,4)``).

    ``forward(x)`` returns the four branch outputs (strides 4, 8, 16, 32) as a list.

    Parameters
    ----------
    model_name : str
        A key of :data:`HRNET_ARCHS` (``hrnet_w18``, ``hrnet_w32``, ``hrnet_w48``, ...).
    increased_channel_count : bool
        timm's ``feature_location="incre"``: widen each branch with one bottleneck to
        128/256/512/1024 channels (``incre_modules.*``).
    """

    def __init__(self, model_name: str = "hrnet_w32", increased_channel_count: bool = False):
        super().__init__()
        if model_name not in HRNET_ARCHS:
            raise ValueError(
                f"model_name={model_name!r} is not a supported HRNet; use one of {sorted(HRNET_ARCHS)}."
            )
        arch = HRNET_ARCHS[model_name]
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(64)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = _bn(64)
        self.act2 = nn.ReLU(inplace=True)
        n_blocks, planes = arch["layer1"]
        self.layer1 = _make_layer(Bottleneck, 64, planes, n_blocks)
        pre = (planes * Bottleneck.expansion,)
        for s, (n_modules, blocks, widths) in enumerate(arch["stages"]):
            self.add_module(f"transition{s + 1}", _make_transition(pre, widths))
            self.add_module(f"stage{s + 2}", nn.Sequential(
                *(HighResolutionModule(widths, widths, blocks) for _ in range(n_modules))))
            pre = widths
        if increased_channel_count:
            self.incre_modules = nn.ModuleList(
                _make_layer(Bottleneck, c, p, 1) for c, p in zip(pre, _INCRE_PLANES)
            )
            self.feature_channels = tuple(p * Bottleneck.expansion for p in _INCRE_PLANES)
        else:
            self.incre_modules = None
            self.feature_channels = tuple(pre)

    @staticmethod
    def _run_stage(stage, xs, n_out=None):
        for k, module in enumerate(stage):
            xs = module(xs, n_out if k == len(stage) - 1 else None)
        return xs

    def forward(self, x, n_out: int | None = None) -> list:
        """Branch features, highest resolution first; ``n_out`` returns only the first ones."""
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        # transition1 feeds every branch from layer1's output; later transitions keep the
        # existing branches (identity) and grow a new one from the lowest-resolution branch
        ys = self._run_stage(self.stage2, [t(x) for t in self.transition1])
        for trans, stage, last in ((self.transition2, self.stage3, False),
                                   (self.transition3, self.stage4, True)):
            xs = [ys[i] if isinstance(t, nn.Identity) else t(ys[-1]) for i, t in enumerate(trans)]
            ys = self._run_stage(stage, xs, n_out if last else None)
        if self.incre_modules is not None:
            ys = [m(y) for m, y in zip(self.incre_modules, ys)]
        return ys


def _check_size(h: int, w: int) -> None:
    for name, n in (("height", h), ("width", w)):
        if -(-n // 4) % 8:
            raise ValueError(
                f"HRNet input {name}={n} does not give exact branch sizes: pad images so that "
                "ceil(size / 4) is a multiple of 8, e.g. to a multiple of 32 (DLC's "
                "data.inference.auto_padding with pad_*_divisor: 32)."
            )


class HRNetBackbone(nn.Module):
    """DLC's ``HRNet`` backbone: ``backbone.model`` is the timm-named trunk.

    Parameters
    ----------
    model_name : str
        ``hrnet_w18``, ``hrnet_w32``, ``hrnet_w48`` (or another key of :data:`HRNET_ARCHS`).
    stride : float
        The backbone stride DLC reports (4: the stride of the first branch).
    interpolate_branches : bool
        Concatenate all four branches resized (bilinear) to the first branch's size
        instead of returning the first branch only.
    increased_channel_count : bool
        timm's ``feature_location="incre"`` widened features.
    """

    def __init__(self, model_name: str = "hrnet_w32", stride: float = 4,
                 interpolate_branches: bool = False, increased_channel_count: bool = False):
        super().__init__()
        self.model = HighResolutionFeatures(model_name, bool(increased_channel_count))
        self.interpolate_branches = bool(interpolate_branches)
        self.stride = float(stride)
        chans = self.model.feature_channels
        self.out_channels = sum(chans) if self.interpolate_branches else chans[0]

    def forward(self, x):
        if not (torch.jit.is_tracing() or torch.jit.is_scripting()):
            _check_size(int(x.shape[-2]), int(x.shape[-1]))
        if not self.interpolate_branches:
            # only branch 0 is used: skip the unused fusions of the last module
            return self.model(x, n_out=1)[0]
        ys = self.model(x)
        size = ys[0].shape[-2:]
        rest = [F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in ys[1:]]
        return torch.cat([ys[0], *rest], dim=1)


def build_hrnet_backbone(cfg: dict) -> HRNetBackbone:
    """Build from a DLC ``model.backbone`` section (``type: HRNet``)."""
    return HRNetBackbone(
        cfg.get("model_name", "hrnet_w32"),
        stride=cfg.get("stride", 4),
        interpolate_branches=bool(cfg.get("interpolate_branches", False)),
        increased_channel_count=bool(cfg.get("increased_channel_count", False)),
    )
