"""DLCTransReID: DeepLabCut's keypoint-feature transformer for re-identification.

The network embeds the backbone features of one animal's keypoints into a unit vector;
two detections of the same animal should have a high cosine similarity.

Input ``(B, K, C)`` (K keypoints, C backbone channels) →

1. ``kpt_embed``: ``Linear(C → 128)`` per keypoint, plus a learned ``pos_embed`` ``(1, K, 128)``;
2. 4 pre-norm transformer blocks: ``x + MHSA(LN(x))``, ``x + MLP(LN(x))``; LayerNorm eps
   1e-6, 4 heads of 32 channels with a qkv bias and scale ``32 ** -0.5``, MLP 128→128→128
   with exact (erf) GELU; stochastic depth rising linearly 0 → 0.1 over the blocks
   (training only);
3. final LayerNorm, token 0 (the first keypoint's token), L2-normalised → ``(B, 128)``.

Module and parameter names are DeepLabCut's (``base.kpt_embed.proj.weight``,
``base.blocks.0.attn.qkv.bias``, ...), and the modules are created in DLC's order, so
DLC's ``dlc_transreid_<epoch>.pth`` checkpoints load here, mapose's load in DLC, and with
the same ``torch.manual_seed`` a fresh model gets DLC's initial weights.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from mapose._optional import require

torch = require("torch", "the ReID transformer (transformer_reID)")
nn = torch.nn

__all__ = [
    "ReIDModelConfig", "DLCTransReID", "TransReIDBackbone", "save_checkpoint",
    "load_checkpoint", "read_checkpoint", "CheckpointNotFoundError",
]


@dataclass(frozen=True)
class ReIDModelConfig:
    """Architecture of DLC's ``dlc_base_kpt_TransReID`` (DLC hard-codes all of these)."""

    embed_dim: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 1.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    drop_path_rate: float = 0.1  # reid_cfg.yaml ``drop_path``
    drop_rate: float = 0.0  # ``drop_out``
    attn_drop_rate: float = 0.0  # ``att_drop_rate``


class CheckpointNotFoundError(FileNotFoundError, ValueError):
    """A ``transformer_checkpoint`` path that does not exist (a bad argument and a missing file)."""


def _trunc_normal_(tensor, mean: float = 0.0, std: float = 0.02, a: float = -2.0, b: float = 2.0):
    """Truncated normal fill by inverse-CDF sampling (the draws DLC's initialiser makes).

    One ``uniform_`` call per tensor, so the global torch generator advances exactly as in
    DLC and a seeded model starts from DLC's weights.
    """
    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * hi - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``drop_prob``."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype,
                                  device=x.device)).floor_()
        return x.div(keep) * mask


class KptEmbed(nn.Module):
    """Per-keypoint linear projection of backbone features (``kpt_embed.proj``)."""

    def __init__(self, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_chans, embed_dim, bias=True)

    def forward(self, x):
        return self.proj(x)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # scale after the product (not q * scale first): the same rounding as DLC
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: ReIDModelConfig, drop_path: float):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias, cfg.attn_drop_rate, cfg.drop_rate)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.drop_rate)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TransReIDBackbone(nn.Module):
    """The transformer (DLC's ``DLCTransReID``, held as ``base`` by the full model).

    ``forward(x (B, K, C)) -> (B, embed_dim)``: the normalised token of keypoint 0.
    """

    def __init__(self, in_chans: int, num_kpts: int, cfg: ReIDModelConfig = ReIDModelConfig()):
        super().__init__()
        self.kpt_embed = KptEmbed(in_chans, cfg.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_kpts, cfg.embed_dim))
        self.pos_drop = nn.Dropout(p=cfg.drop_rate)
        rates = [float(r) for r in torch.linspace(0, cfg.drop_path_rate, cfg.depth)]
        self.blocks = nn.ModuleList([Block(cfg, r) for r in rates])
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        _trunc_normal_(self.pos_embed)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            _trunc_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.zeros_(m.bias)
            nn.init.ones_(m.weight)

    def forward(self, x):
        x = self.pos_drop(self.kpt_embed(x) + self.pos_embed)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class DLCTransReID(nn.Module):
    """DLC's ReID model (``build_dlc_transformer``): the transformer + L2 normalisation.

    Parameters
    ----------
    feature_dim : int
        Backbone channels C per keypoint (2048 for ResNet-50).
    num_kpts : int
        Keypoints K per animal.
    cfg : ReIDModelConfig, optional

    Notes
    -----
    ``forward(x)``: ``x`` of shape (B, K, C) → unit embeddings of shape (B, 128).
    """

    def __init__(self, feature_dim: int, num_kpts: int, cfg: ReIDModelConfig = ReIDModelConfig()):
        super().__init__()
        for name, v in (("feature_dim", feature_dim), ("num_kpts", num_kpts)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}.")
        self.feature_dim = int(feature_dim)
        self.num_kpts = int(num_kpts)
        self.base = TransReIDBackbone(feature_dim, num_kpts, cfg)

    def forward(self, x):
        if x.ndim != 3 or x.shape[1] != self.num_kpts or x.shape[2] != self.feature_dim:
            raise ValueError(
                f"DLCTransReID expects input of shape (batch, {self.num_kpts} keypoints, "
                f"{self.feature_dim} features); got {tuple(x.shape)}. Were the features "
                "extracted with the same pose model the checkpoint was trained on?")
        q = self.base(x)
        return q.div(torch.norm(q, p=2, dim=1, keepdim=True))


def save_checkpoint(path, model: DLCTransReID) -> Path:
    """Write DLC's checkpoint ``{"state_dict", "num_kpts", "feature_dim"}`` atomically."""
    from mapose.io.atomic import atomic_path

    path = Path(os.fspath(path))
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "num_kpts": model.num_kpts,
                    "feature_dim": model.feature_dim}, tmp)
    return path


def read_checkpoint(path) -> dict:
    """Load and validate a ``dlc_transreid_<epoch>.pth`` dict (CPU, weights only).

    Raises
    ------
    CheckpointNotFoundError
        The file does not exist (a FileNotFoundError that is also a ValueError).
    ValueError
        Not a DLC ReID checkpoint (unreadable, or keys / shapes missing).
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"transformer_checkpoint={str(path)!r} does not exist. Train one with "
            "transformer_reID (it writes <model folder>/train/dlc_transreid_<epoch>.pth) or "
            "pass the path of an existing checkpoint.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ValueError(f"transformer_checkpoint {str(path)!r} cannot be read as a torch "
                         f"checkpoint ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(ckpt, dict) or not {"state_dict", "num_kpts", "feature_dim"} <= set(ckpt):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"transformer_checkpoint {str(path)!r} is not a DLC ReID checkpoint: "
                         f"expected keys 'state_dict', 'num_kpts', 'feature_dim', found {keys}. "
                         "Pass a dlc_transreid_<epoch>.pth file written by transformer_reID.")
    return ckpt


def load_checkpoint(path, dtype=None) -> DLCTransReID:
    """The model of a DLC/mapose ReID checkpoint, in eval mode on the CPU.

    Parameters
    ----------
    path : str or os.PathLike
    dtype : torch.dtype, optional
        ``torch.float64`` for stitching (DLC runs the model in double precision there).
    """
    ckpt = read_checkpoint(path)
    try:
        model = DLCTransReID(int(ckpt["feature_dim"]), int(ckpt["num_kpts"]))
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"transformer_checkpoint {str(path)!r}: its state_dict does not fit "
                         f"DLCTransReID(feature_dim={ckpt['feature_dim']!r}, num_kpts="
                         f"{ckpt['num_kpts']!r}) ({exc}).") from exc
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()
