"""Prediction heads of DLC's bottom-up models (module names match DLC's state_dict keys).

Shapes for a backbone feature map of size (h, w):

* ``DeconvModule`` with one k3/s2 transposed conv (padding 0): (2h+1, 2w+1).
* ``DLCRNetHead``: the multi-stage block runs at (2h, 2w), its deconv outputs are
  (4h+1, 4w+1) -- DLC's grids are one cell larger than 4x, on purpose kept here.
"""
from __future__ import annotations

from mapose._optional import require

torch = require("torch", "mapose's pose networks")
nn = torch.nn


class DeconvModule(nn.Module):
    """Transposed convolutions (padding 0) with ReLU between them, not after the last.

    Parameters
    ----------
    channels : list of int
        ``[c_in, c_1, ..., c_out]``.
    kernel_size, strides : list of int
        One entry per transposed conv; may be empty (then the module is the identity,
        optionally followed by ``final_conv``).
    final_conv : dict, optional
        ``{"out_channels": int, "kernel_size": int}``: a stride-1 Conv2d after the deconvs.
    """

    def __init__(self, channels, kernel_size, strides, final_conv=None):
        super().__init__()
        channels = list(channels)
        kernel_size = list(kernel_size or [])
        strides = list(strides or [])
        if len(kernel_size) != len(strides) or len(channels) != len(kernel_size) + 1 and kernel_size:
            raise ValueError(
                f"head config mismatch: channels={channels}, kernel_size={kernel_size}, "
                f"strides={strides}; need len(channels) == len(kernel_size) + 1 == len(strides) + 1."
            )
        self.stride = 1
        if kernel_size:
            layers: list[nn.Module] = []
            for c_in, c_out, k, s in zip(channels[:-1], channels[1:], kernel_size, strides):
                layers += [nn.ConvTranspose2d(c_in, c_out, k, stride=s), nn.ReLU()]
                self.stride *= s
            self.deconv_layers = nn.Sequential(*layers[:-1])
        else:
            self.deconv_layers = nn.Identity()
        if final_conv:
            self.final_conv = nn.Conv2d(channels[-1], int(final_conv["out_channels"]),
                                        int(final_conv["kernel_size"]), stride=1)
        else:
            self.final_conv = nn.Identity()

    def forward(self, x):
        return self.final_conv(self.deconv_layers(x))


def _deconv(cfg: dict) -> DeconvModule:
    return DeconvModule(cfg["channels"], cfg.get("kernel_size", []), cfg.get("strides", []),
                        cfg.get("final_conv"))


class HeatmapHead(nn.Module):
    """Heatmap (+ optional location refinement) head: unique body parts, identity."""

    output_keys: tuple[str, ...]

    def __init__(self, heatmap_config: dict, locref_config: dict | None = None):
        super().__init__()
        self.heatmap_head = _deconv(heatmap_config)
        self.locref_head = _deconv(locref_config) if locref_config else None
        self.stride = float(self.heatmap_head.stride)
        self.output_keys = ("heatmap", "locref") if self.locref_head is not None else ("heatmap",)

    def forward(self, x):
        hm = self.heatmap_head(x)
        if self.locref_head is None:
            return (hm,)
        return hm, self.locref_head(x)


class DLCRNetHead(nn.Module):
    """DLCRNet multi-stage PAF head (heatmap, locref, paf).

    Stage input is ``cat(heatmap, paf, features)`` (that channel order); stage i>0 adds
    the previous stage's heatmap (a residual on heatmaps only, never on PAFs).
    """

    output_keys = ("heatmap", "locref", "paf")

    def __init__(self, heatmap_config, locref_config, paf_config, num_stages=5, features_dim=128):
        super().__init__()
        c_in = heatmap_config["channels"][0]
        k = heatmap_config["channels"][-1]
        p = paf_config["channels"][-1]
        two_k = locref_config["channels"][-1]
        r = k + p + features_dim
        self.num_stages = int(num_stages)

        def convt(c_out):
            # exactly doubles the size
            return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)

        self.convt1 = convt(k)
        self.convt2 = convt(two_k)
        self.convt3 = convt(p)
        self.convt4 = convt(features_dim)
        self.hm_ref_layers = nn.ModuleList(
            [nn.Conv2d(r, k, 3, padding=1) for _ in range(self.num_stages)])
        self.paf_ref_layers = nn.ModuleList(
            [nn.Conv2d(r, p, 3, padding=1) for _ in range(self.num_stages)])
        # The config lists the backbone width as channels[0]; the final deconvs actually
        # read the stage output (r channels) and locref reads convt2's 2K channels.
        self.heatmap_head = _deconv({**heatmap_config, "channels": [r] + list(heatmap_config["channels"][1:])})
        self.paf_head = _deconv({**paf_config, "channels": [r] + list(paf_config["channels"][1:])})
        self.locref_head = _deconv({**locref_config, "channels": [two_k] + list(locref_config["channels"][1:])})
        self.stride = float(self.heatmap_head.stride * (2 if self.num_stages > 0 else 1))
        self.convt_fused = None
        self.ref_fused = None

    def fuse(self) -> "DLCRNetHead":
        """Merge the layers that read the same input into one (for inference).

        ``convt1..4`` all read the same (wide) feature map; one ConvTranspose2d with their
        out-channels concatenated reads it once, and the order ``convt1, convt3, convt4,
        convt2`` makes the first stage input ``cat(heatmap, paf, features)`` a slice of its
        output instead of a copy.  Likewise each stage's heatmap and PAF convs become one
        conv with K + P outputs (narrow convs use the vector units poorly).  Every output
        channel is the same sum as before (float rounding aside).  The separate modules
        stay, so the state dict only gains ``convt_fused.*`` / ``ref_fused.*``; the merged
        layers are copies, so fuse after loading weights.  Returns ``self``.
        """
        self.ref_fused = nn.ModuleList()
        for hm_conv, paf_conv in zip(self.hm_ref_layers, self.paf_ref_layers):
            w = hm_conv.weight
            conv = nn.Conv2d(w.shape[1], hm_conv.out_channels + paf_conv.out_channels, 3,
                             padding=1).to(device=w.device, dtype=w.dtype)
            with torch.no_grad():
                conv.weight.copy_(torch.cat((hm_conv.weight, paf_conv.weight)))
                conv.bias.copy_(torch.cat((hm_conv.bias, paf_conv.bias)))
            self.ref_fused.append(conv.requires_grad_(w.requires_grad))
        parts = (self.convt1, self.convt3, self.convt4, self.convt2)
        ref = self.convt1.weight
        fused = nn.ConvTranspose2d(ref.shape[0], sum(m.out_channels for m in parts), 3, stride=2,
                                   padding=1, output_padding=1).to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([m.weight for m in parts], dim=1))
            fused.bias.copy_(torch.cat([m.bias for m in parts]))
        self.convt_fused = fused.requires_grad_(ref.requires_grad)
        return self

    @property
    def superseded(self) -> tuple[str, ...]:
        """Names of the children :meth:`fuse` made unused (kept for the state dict)."""
        if self.convt_fused is None:
            return ()
        return ("convt1", "convt2", "convt3", "convt4", "hm_ref_layers", "paf_ref_layers")

    def forward(self, x):
        if self.convt_fused is not None:
            y = self.convt_fused(x)
            r = self.convt1.out_channels + self.convt3.out_channels + self.convt4.out_channels
            feat = y[:, r - self.convt4.out_channels:r]
            z = y[:, :r]
            loc = y[:, r:]
        else:
            hm = self.convt1(x)
            paf = self.convt3(x)
            feat = self.convt4(x)
            z = torch.cat((hm, paf, feat), dim=1)
            loc = self.convt2(x)
        prev = None
        k = self.convt1.out_channels
        for i in range(self.num_stages):
            if self.ref_fused is not None:
                out = self.ref_fused[i](z)
                hm, paf = out[:, :k], out[:, k:]
            else:
                hm = self.hm_ref_layers[i](z)
                paf = self.paf_ref_layers[i](z)
            if prev is not None:
                hm = hm + prev
            prev = hm
            z = torch.cat((hm, paf, feat), dim=1)
        return self.heatmap_head(z), self.locref_head(loc), self.paf_head(z)


def build_head(cfg: dict) -> nn.Module:
    """Build a head from one entry of ``model.heads`` in ``pytorch_config.yaml``."""
    kind = cfg.get("type")
    if kind == "DLCRNetHead":
        return DLCRNetHead(cfg["heatmap_config"], cfg["locref_config"], cfg["paf_config"],
                           num_stages=int(cfg.get("num_stages", 5)),
                           features_dim=int(cfg.get("features_dim", 128)))
    if kind == "HeatmapHead":
        return HeatmapHead(cfg["heatmap_config"], cfg.get("locref_config"))
    raise ValueError(
        f"head type {kind!r} is not supported by mapose; supported: 'DLCRNetHead', 'HeatmapHead'."
    )
