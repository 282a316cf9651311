"""Winograd F(2x2, 3x3) convolution for 3x3, stride-1 convolutions on CPU.

A 3x3 convolution computed on 2x2 output tiles needs 16 multiplications per tile and
channel pair instead of 36 (2.25x fewer): the input tiles (4x4, overlapping by 2) and the
kernels are transformed once, the products become 16 independent matrix products
``(tiles x C) @ (C x K)`` -- one batched GEMM -- and an output transform folds each 4x4
product tile back to 2x2 outputs (Lavin & Gray, "Fast Algorithms for Convolutional Neural
Networks", 2016).  Kernels are transformed once at construction.

A dilated convolution (dilation d) is d*d interleaved dilation-1 convolutions, one per
polyphase component of the input; the tiles are taken on those components through strided
views, so dilation costs no copies.

The transforms are written with sums and differences of strided views of NHWC tensors
(torch ops, no compiled code), so the same module also traces into standard ONNX ops
(NHWC slices, element-wise ops and 16 MatMuls).
Float32 error is about 1e-6 relative to the direct convolution (the transforms only add,
subtract and halve).
"""
from __future__ import annotations

from mapose._optional import require

torch = require("torch", "mapose's pose networks")
nn = torch.nn
F = torch.nn.functional

__all__ = ["WinogradConv2d", "WinogradConvTranspose2d", "winograd_eligible", "winograd_transposed_eligible",
           "winograd_transposed_weights", "winograd_weight"]

# G g G^T for F(2x2, 3x3); G is exact in binary floating point (halves)
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def winograd_eligible(conv) -> bool:
    """True for a plain 3x3, stride-1, 'same'-padded, ungrouped Conv2d."""
    return (isinstance(conv, nn.Conv2d) and tuple(conv.kernel_size) == (3, 3)
            and tuple(conv.stride) == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.dilation[0] == conv.dilation[1]
            and tuple(conv.padding) == tuple(conv.dilation))


def winograd_weight(weight):
    """Transformed kernels.

    Parameters
    ----------
    weight : Tensor of shape (K, C, 3, 3)

    Returns
    -------
    Tensor of shape (16, C, K)
        ``U[4*i + j] = (G g G^T)[i, j]`` transposed for ``(tiles x C) @ (C x K)``.
    """
    # float64 so the transform adds no rounding of its own beyond the final cast
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ia,kcab,jb->ijck", g, weight.detach().double(), g)
    return u.reshape(16, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


class WinogradConv2d(nn.Module):
    """Drop-in replacement of a 3x3 stride-1 ``nn.Conv2d`` (any dilation, 'same' padding).

    Parameters
    ----------
    conv : nn.Conv2d
        Satisfies :func:`winograd_eligible`; its weights are transformed (a copy, the
        module is not kept).

    Input (N, C, H, W), output (N, K, H, W) in channels_last memory format.
    """

    def __init__(self, conv):
        super().__init__()
        if not winograd_eligible(conv):
            raise ValueError(f"conv={conv!r} is not a 3x3 stride-1 same-padded ungrouped Conv2d; "
                             "keep it as nn.Conv2d.")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.dilation = int(conv.dilation[0])
        self.register_buffer("u", winograd_weight(conv.weight))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, dilation={self.dilation}"

    def forward(self, x):
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._forward_graph(x)
        return self._forward_eager(x)

    def _forward_graph(self, x):
        """Functional formulation for tracing / ONNX export (no ``out=`` writes).

        Sizes flow through the graph as shape ops, so the export keeps dynamic batch and
        image sizes.  Written for ONNX Runtime's CPU kernels (1 thread, ResNet-50 layer2-4
        shapes: 1.2-1.4x faster per layer than an NCHW formulation with one batched
        MatMul, which in turn was 1.1-1.2x faster than a direct 3x3 convolution):

        * the transforms slice an NHWC copy of the input, so every slice moves whole
          channel vectors (contiguous runs; slicing the innermost axis of NCHW copies
          element by element) and the two layout changes are single-axis transposes,
          which ONNX Runtime has a fast path for;
        * the 16 products are separate ``(tiles, C) @ (C, K)`` MatMuls with a constant
          2-D right operand, which ONNX Runtime packs once at session start (a batched
          3-D weight is re-packed at every run), and the output transform reads them
          without gathering them from one stacked tensor.
        """
        n, c, h, w = x.shape
        d = self.dilation
        k = self.out_channels
        th, tw = (h + 2 * d - 1) // (2 * d), (w + 2 * d - 1) // (2 * d)
        hq, wq = 2 * th + 2, 2 * tw + 2
        p = F.pad(x.permute(0, 2, 3, 1), (0, 0, d, d * wq - w - d, d, d * hq - h - d))
        q = p.reshape(n, hq, d, wq, d, c)  # polyphase components as (row, a, col, b) axes
        # rows r, r+2, ... (th of them) of every component; r = 0, 1 drop the spare last row
        r0, r1, r2, r3 = q[:, 0:-2:2], q[:, 1:-1:2], q[:, 2::2], q[:, 3::2]  # (N, th, d, wq, d, C)
        m = []  # m[i][j]: (N, th, d, tw, d, K)
        for i, t in enumerate((r0 - r2, r1 + r2, r2 - r1, r1 - r3)):
            c0, c1, c2, c3 = t[:, :, :, 0:-2:2], t[:, :, :, 1:-1:2], t[:, :, :, 2::2], t[:, :, :, 3::2]
            m.append([torch.matmul(v, self.u[4 * i + j])
                      for j, v in enumerate((c0 - c2, c1 + c2, c2 - c1, c1 - c3))])
        s = ([m[0][j] + m[1][j] + m[2][j] for j in range(4)],
             [m[1][j] - m[2][j] - m[3][j] for j in range(4)])
        rows = [torch.stack((sr[0] + sr[1] + sr[2], sr[1] - sr[2] - sr[3]), dim=4) for sr in s]
        # (N, th, r, d, tw, c, d, K): output row d*(2*ti + r) + a, column likewise
        y = torch.stack(rows, dim=2).reshape(n, 2 * d * th, 2 * d * tw, k)[:, :h, :w]
        if self.bias is not None:
            y = y + self.bias
        return y.permute(0, 3, 1, 2)

    def _forward_eager(self, x):
        n, c, h, w = x.shape
        d = self.dilation
        k = self.out_channels
        th, tw = -(-h // (2 * d)), -(-w // (2 * d))  # tiles per polyphase component
        hq, wq = 2 * th + 2, 2 * tw + 2  # padded component size
        # NHWC view (free for channels_last input), zero-padded by d (the conv's padding)
        # and up to whole tiles
        p = F.pad(x.permute(0, 2, 3, 1), (0, 0, d, d * wq - w - d, d, d * hq - h - d)).contiguous()
        # polyphase components as a strided view: (N, d, d, hq, wq, C)
        q = p.view(n, hq, d, wq, d, c).permute(0, 2, 4, 1, 3, 5)

        # input transform B^T z B, rows then columns; B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
        def rows(z, r):  # row r of every tile: rows r, r+2, ... of the component
            return z[:, :, :, r:r + 2 * th:2]

        t = x.new_empty((4, n, d, d, th, wq, c))
        torch.sub(rows(q, 0), rows(q, 2), out=t[0])
        torch.add(rows(q, 1), rows(q, 2), out=t[1])
        torch.sub(rows(q, 2), rows(q, 1), out=t[2])
        torch.sub(rows(q, 1), rows(q, 3), out=t[3])

        def cols(z, s):
            return z[..., s:s + 2 * tw:2, :]

        tiles = n * d * d * th * tw
        v = x.new_empty((4, 4, n, d, d, th, tw, c))
        torch.sub(cols(t, 0), cols(t, 2), out=v[:, 0])
        torch.add(cols(t, 1), cols(t, 2), out=v[:, 1])
        torch.sub(cols(t, 2), cols(t, 1), out=v[:, 2])
        torch.sub(cols(t, 1), cols(t, 3), out=v[:, 3])

        # 16 GEMMs (tiles x C) @ (C x K)
        m = torch.bmm(v.view(16, tiles, c), self.u).view(4, 4, n, d, d, th, tw, k)

        # output transform A^T m A; A^T = [[1,1,1,0],[0,1,-1,-1]]
        s = torch.empty_like(m[:2])
        torch.add(m[0], m[1], out=s[0])
        s[0].add_(m[2])
        torch.sub(m[1], m[2], out=s[1])
        s[1].sub_(m[3])
        # written straight into the interleaved output (N, th, 2, d, tw, 2, d, K)
        out = x.new_empty((n, th, 2, d, tw, 2, d, k))
        for r in range(2):
            y0 = out[:, :, r, :, :, 0].permute(0, 2, 4, 1, 3, 5)  # (N, d, d, th, tw, K)
            y1 = out[:, :, r, :, :, 1].permute(0, 2, 4, 1, 3, 5)
            torch.add(s[r, 0], s[r, 1], out=y0)
            y0.add_(s[r, 2])
            torch.sub(s[r, 1], s[r, 2], out=y1)
            y1.sub_(s[r, 3])
        y = out.view(n, 2 * th * d, 2 * tw * d, k)
        if self.bias is not None:
            y.add_(self.bias)
        if y.shape[1] != h or y.shape[2] != w:
            y = y[:, :h, :w].contiguous()
        return y.permute(0, 3, 1, 2)


# Transposed 3x3, stride 2, padding 1, output_padding 1 (DLCRNet's upsampling layers).
# Output row 2m takes tap 1 of input row m; row 2m+1 takes tap 2 of row m and tap 0 of
# row m+1 -- a 2-tap correlation, which Winograd F(2, 2) computes for two outputs with 3
# products: (x0 - x1)*w2, x1*(w0 + w2), (x2 - x1)*w0.  A tile of 2 input rows thus needs 5
# products for its 4 output rows instead of 6, and 5 x 5 = 25 instead of 36 per 2x2 tile.
# Input slices of a tile (rows, then columns alike): x0, x1, x0 - x1, x2 - x1, and the
# kernel taps each is multiplied by (x1 twice: the even output and the odd middle term).
_T_TAPS = (((1,),), ((1,), (0, 2)), ((2,),), ((0,),))
# output row r of a tile = sum of products (slice, filter) -- indexes into _T_TAPS
_T_OUT = (((0, 0),), ((2, 0), (1, 1)), ((1, 0),), ((1, 1), (3, 0)))


def winograd_transposed_eligible(conv) -> bool:
    """True for a ConvTranspose2d that exactly doubles the size: 3x3, stride 2, padding 1,
    output_padding 1, no dilation or groups."""
    return (isinstance(conv, nn.ConvTranspose2d) and tuple(conv.kernel_size) == (3, 3)
            and tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (1, 1)
            and tuple(conv.output_padding) == (1, 1) and tuple(conv.dilation) == (1, 1)
            and conv.groups == 1 and conv.padding_mode == "zeros")


def winograd_transposed_weights(weight):
    """Combined kernels of :class:`WinogradConvTranspose2d`.

    Parameters
    ----------
    weight : Tensor of shape (C, K, 3, 3)
        A ConvTranspose2d's weight (in-channels first).

    Returns
    -------
    list of 16 Tensors, entry ``4 * i + j`` of shape (C, f_i * f_j * K)
        For row slice ``i`` and column slice ``j``: the sums of taps each of their
        ``f_i x f_j`` (row filter, column filter) pairs needs, concatenated row filter
        major; f = 1, 2, 1, 1.
    """
    w = weight.detach().double()  # sums in float64, one rounding at the end
    out = []
    for rows in _T_TAPS:
        for cols in _T_TAPS:
            parts = [sum(w[:, :, a, b] for a in rtaps for b in ctaps) for rtaps in rows for ctaps in cols]
            out.append(torch.cat(parts, dim=1).to(weight.dtype).contiguous())
    return out


class WinogradConvTranspose2d(nn.Module):
    """Drop-in replacement of a size-doubling 3x3 ``nn.ConvTranspose2d``
    (:func:`winograd_transposed_eligible`): 25 instead of 36 products per 2x2 input tile.

    The products are 16 MatMuls ``(tiles, C) @ (C, f * K)`` with constant weights on NHWC
    slices, like :meth:`WinogradConv2d._forward_graph`, so the module traces into standard
    ONNX ops that ONNX Runtime runs faster than its ConvTranspose (DLCRNet's 2048 -> 163
    channel upsampling: 1.2-1.4x).  Input (N, C, H, W), output (N, K, 2H, 2W).  Float32
    error ~1e-6 relative (the transforms only add and subtract).
    """

    def __init__(self, conv):
        super().__init__()
        if not winograd_transposed_eligible(conv):
            raise ValueError(f"conv={conv!r} is not a 3x3, stride-2, padding-1, output_padding-1 "
                             "ungrouped ConvTranspose2d; keep it as nn.ConvTranspose2d.")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        for idx, u in enumerate(winograd_transposed_weights(conv.weight)):
            self.register_buffer(f"u{idx}", u)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}"

    def forward(self, x):
        n, c, h, w = x.shape
        k = self.out_channels
        th, tw = (h + 1) // 2, (w + 1) // 2
        # NHWC, zero rows/columns after the end: x[H] = 0 is the last odd output's second
        # tap, and whole tiles need an even size
        p = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, 2 * tw + 1 - w, 0, 2 * th + 1 - h))

        def slices(z, axis):
            def take(start, stop):
                return z[:, start:stop:2] if axis == 1 else z[:, :, start:stop:2]
            x0, x1, x2 = take(0, -1), take(1, None), take(2, None)
            return x0, x1, x0 - x1, x2 - x1

        # products[i][j][a][b]: row slice i with its filter a, column slice j with filter b
        products = []
        for i, r in enumerate(slices(p, 1)):
            row = []
            for j, v in enumerate(slices(r, 2)):
                m = torch.matmul(v, getattr(self, f"u{4 * i + j}"))
                fi, fj = len(_T_TAPS[i]), len(_T_TAPS[j])
                if fi * fj == 1:
                    row.append([[m]])
                else:
                    parts = torch.split(m, k, dim=-1)
                    row.append([[parts[a * fj + b] for b in range(fj)] for a in range(fi)])
            products.append(row)

        def total(terms):  # builtin sum would start from 0 and trace an extra Add
            return sum(terms[1:], terms[0])

        # columns first: cols[(i, a)][c] over the 4 output columns of a tile
        cols = {(i, a): [total([products[i][j][a][b] for j, b in _T_OUT[col]]) for col in range(4)]
                for i in range(4) for a in range(len(_T_TAPS[i]))}
        rows = [torch.stack([total([cols[ia][col] for ia in _T_OUT[r]]) for col in range(4)], dim=3)
                for r in range(4)]  # each (N, th, tw, 4, K)
        # odd sizes made one tile row/column too many (no Python test on the sizes: traced,
        # it would fix the export to the example's parity)
        y = torch.stack(rows, dim=2).reshape(n, 4 * th, 4 * tw, k)[:, :2 * h, :2 * w]
        if self.bias is not None:
            y = y + self.bias
        return y.permute(0, 3, 1, 2)
