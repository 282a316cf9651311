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
        self.stage_feat = None
        self.stage_hp = None

    def fuse(self) -> "DLCRNetHead":
        """Merge layers for inference (same outputs up to float rounding).

        * ``convt1..4`` all read the same (wide) feature map: one ConvTranspose2d with their
          out-channels concatenated reads it once; the order ``convt1, convt3, convt4,
          convt2`` puts the first stage's heatmap and PAF side by side.
        * Stage i computes ``conv_i(cat(hm, paf, feat))``.  ``feat`` is the same for every
          stage, so its part of all stages' convolutions is one convolution
          (``stage_feat``: features_dim -> stages x (K + P) channels, with the biases),
          computed once; each stage then convolves only its K + P heatmap and PAF channels
          (``stage_hp``) and adds its slice.  Same multiplications, but one wide convolution
          (Winograd-eligible in the ONNX export) instead of five 153 -> 25 ones that use the
          vector units poorly, and no per-stage concatenation.

        The separate modules stay, so the state dict only gains ``convt_fused.*`` /
        ``stage_feat.*`` / ``stage_hp.*``; the merged layers are copies, so fuse after
        loading weights.  Returns ``self``.
        """
        k, p = self.convt1.out_channels, self.convt3.out_channels
        hp = k + p
        if self.num_stages:
            w0 = self.hm_ref_layers[0].weight
            dev = dict(device=w0.device, dtype=w0.dtype)
            self.stage_feat = nn.Conv2d(w0.shape[1] - hp, self.num_stages * hp, 3, padding=1).to(**dev)
            self.stage_hp = nn.ModuleList(
                [nn.Conv2d(hp, hp, 3, padding=1, bias=False).to(**dev) for _ in range(self.num_stages)])
            pairs = list(zip(self.hm_ref_layers, self.paf_ref_layers))
            with torch.no_grad():
                w = torch.cat([torch.cat((h.weight, q.weight)) for h, q in pairs])
                self.stage_feat.weight.copy_(w[:, hp:])  # stage input is cat(hm, paf, feat)
                self.stage_feat.bias.copy_(torch.cat([torch.cat((h.bias, q.bias)) for h, q in pairs]))
                for i, conv in enumerate(self.stage_hp):
                    conv.weight.copy_(w[i * hp:(i + 1) * hp, :hp])
            for m in (self.stage_feat, *self.stage_hp):
                m.requires_grad_(w0.requires_grad)
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
            return self._forward_fused(x)
        hm = self.convt1(x)
        paf = self.convt3(x)
        feat = self.convt4(x)
        z = torch.cat((hm, paf, feat), dim=1)
        loc = self.convt2(x)
        prev = None
        for i in range(self.num_stages):
            hm = self.hm_ref_layers[i](z)
            paf = self.paf_ref_layers[i](z)
            if prev is not None:
                hm = hm + prev
            prev = hm
            z = torch.cat((hm, paf, feat), dim=1)
        return self.heatmap_head(z), self.locref_head(loc), self.paf_head(z)

    def _forward_fused(self, x):
        k = self.convt1.out_channels
        hp = k + self.convt3.out_channels
        r = hp + self.convt4.out_channels
        y = self.convt_fused(x)  # (hm, paf, feat, locref)
        feat, loc = y[:, hp:r], y[:, r:]
        z = y[:, :hp]
        if self.stage_feat is not None:
            from_feat = self.stage_feat(feat)
            prev = None
            for i, conv in enumerate(self.stage_hp):
                out = conv(z) + from_feat[:, i * hp:(i + 1) * hp]
                if prev is None:
                    z = out
                else:
                    hm = out[:, :k] + prev
                    z = torch.cat((hm, out[:, k:]), dim=1)
                prev = z[:, :k]
        z = torch.cat((z, feat), dim=1)
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
