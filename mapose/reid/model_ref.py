"""Slow, obviously-correct NumPy statement of the DLCTransReID forward pass (tests only).

Same input as :class:`mapose.reid.model.DLCTransReID` in eval mode, weights taken from a
state dict of NumPy arrays with DLC's names; float64 throughout, one loop per sample,
head and token.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["transreid_forward_ref"]


def _layer_norm(x, w, b, eps):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return (x - mu) / math.sqrt(var + eps) * w + b


def _gelu(x):
    return np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])


def transreid_forward_ref(state: dict, x: np.ndarray, num_heads: int = 4, depth: int = 4,
                          eps: float = 1e-6) -> np.ndarray:
    """Embeddings of shape (B, D) for features ``x`` of shape (B, K, C).

    Parameters
    ----------
    state : dict of str -> ndarray
        ``DLCTransReID.state_dict()`` as NumPy arrays (``base.*`` keys).
    x : ndarray of shape (B, K, C)
    """
    s = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    x = np.asarray(x, dtype=np.float64)
    B, K, _ = x.shape
    out = []
    for bi in range(B):
        # token k = W x_k + b + pos_k
        tok = [s["base.kpt_embed.proj.weight"] @ x[bi, k] + s["base.kpt_embed.proj.bias"]
               + s["base.pos_embed"][0, k] for k in range(K)]
        D = tok[0].size
        hd = D // num_heads
        for L in range(depth):
            p = f"base.blocks.{L}."
            normed = [_layer_norm(t, s[p + "norm1.weight"], s[p + "norm1.bias"], eps) for t in tok]
            qkv = [s[p + "attn.qkv.weight"] @ t + s[p + "attn.qkv.bias"] for t in normed]
            q = [v[:D] for v in qkv]
            k_ = [v[D:2 * D] for v in qkv]
            v_ = [v[2 * D:] for v in qkv]
            attended = []
            for i in range(K):
                heads = []
                for h in range(num_heads):
                    sl = slice(h * hd, (h + 1) * hd)
                    logits = np.array([q[i][sl] @ k_[j][sl] / math.sqrt(hd) for j in range(K)])
                    w = np.exp(logits - logits.max())
                    w /= w.sum()
                    heads.append(sum(w[j] * v_[j][sl] for j in range(K)))
                attended.append(np.concatenate(heads))
            tok = [t + s[p + "attn.proj.weight"] @ a + s[p + "attn.proj.bias"]
                   for t, a in zip(tok, attended)]
            new = []
            for t in tok:
                n2 = _layer_norm(t, s[p + "norm2.weight"], s[p + "norm2.bias"], eps)
                hidden = _gelu(s[p + "mlp.fc1.weight"] @ n2 + s[p + "mlp.fc1.bias"])
                new.append(t + s[p + "mlp.fc2.weight"] @ hidden + s[p + "mlp.fc2.bias"])
            tok = new
        e = _layer_norm(tok[0], s["base.norm.weight"], s["base.norm.bias"], eps)
        out.append(e / math.sqrt(float(e @ e)))
    return np.array(out)
