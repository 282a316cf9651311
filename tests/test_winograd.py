"""Winograd F(2x2, 3x3) convolution, the Winograd F(2, 2) form of size-doubling transposed
convolutions, and the inference rewrites of a PoseModel.

References: torch's direct convolution in float64 (an independent algorithm), a direct
NumPy convolution for small cases, and the unmodified model for the rewrites.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mapose.models.winograd import (  # noqa: E402
    WinogradConv2d,
    WinogradConvTranspose2d,
    winograd_eligible,
    winograd_transposed_eligible,
    winograd_transposed_weights,
    winograd_weight,
)

pytestmark = pytest.mark.torch
F = torch.nn.functional


def _conv(c, k, d, bias, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Conv2d(c, k, 3, padding=d, dilation=d, bias=bias).eval()


def _reference(conv, x):
    """Direct convolution in float64."""
    with torch.no_grad():
        b = None if conv.bias is None else conv.bias.double()
        return F.conv2d(x.double(), conv.weight.double(), b, padding=conv.padding, dilation=conv.dilation)


def _numpy_conv(x, w, d):
    """Textbook 'same' 3x3 convolution with dilation d: x (N, C, H, W), w (K, C, 3, 3)."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (d, d), (d, d)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            patch = xp[:, :, i * d:i * d + h, j * d:j * d + wd]
            out += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j])
    return out


@pytest.mark.smoke
def test_matches_numpy_direct_convolution():
    for d in (1, 2, 3):
        conv = _conv(3, 4, d, bias=False, seed=d)
        x = torch.randn(2, 3, 7, 10)
        want = _numpy_conv(x.double().numpy(), conv.weight.double().detach().numpy(), d)
        wc = WinogradConv2d(conv)
        with torch.inference_mode():
            for got in (wc(x), wc._forward_graph(x)):
                assert got.shape == (2, 4, 7, 10) and got.dtype == torch.float32
                np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 9), k=st.integers(1, 9), h=st.integers(1, 13),
       w=st.integers(1, 13), d=st.integers(1, 3), bias=st.booleans(), channels_last=st.booleans(),
       seed=st.integers(0, 2**16))
def test_equals_direct_convolution(n, c, k, h, w, d, bias, channels_last, seed):
    conv = _conv(c, k, d, bias, seed)
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = _reference(conv, x)
    wc = WinogradConv2d(conv)
    with torch.inference_mode():
        eager, graph = wc(x), wc._forward_graph(x)
    scale = max(1.0, float(want.abs().max()))
    for got in (eager, graph):
        assert got.shape == want.shape and got.dtype == torch.float32
        assert float((got.double() - want).abs().max()) <= 1e-5 * scale
    assert eager.is_contiguous(memory_format=torch.channels_last)


def test_wide_layers_float32_error():
    # ResNet-50 layer4 shapes (512 channels, dilation 2): relative error of float32
    # Winograd vs a float64 direct convolution stays at the level of a float32 direct conv
    conv = _conv(512, 512, 2, bias=False)
    x = torch.relu(torch.randn(1, 512, 20, 16)).contiguous(memory_format=torch.channels_last)
    want = _reference(conv, x)
    _assert_float32_error_like_direct(conv, WinogradConv2d(conv), x, want)


def _assert_float32_error_like_direct(direct, fast, x, want):
    """The float32 error of ``fast`` against the float64 ``want`` stays at the level of
    the float32 direct layer's own."""
    with torch.inference_mode():
        err_direct, err_fast = (float((m(x).double() - want).abs().max()) / float(want.abs().max())
                                for m in (direct, fast))
    assert err_fast < 2e-6 and err_fast < 10 * err_direct


@pytest.mark.smoke
def test_weight_transform():
    g = torch.randn(2, 3, 3, 3)
    G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64)
    u = winograd_weight(g)
    assert u.shape == (16, 3, 2) and u.dtype == torch.float32
    for kk in range(2):
        for cc in range(3):
            want = G @ g[kk, cc].double() @ G.T
            np.testing.assert_allclose(u[:, cc, kk].reshape(4, 4).numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.smoke
def test_eligibility_and_errors():
    nn = torch.nn
    assert winograd_eligible(nn.Conv2d(4, 4, 3, padding=1))
    assert winograd_eligible(nn.Conv2d(4, 4, 3, padding=2, dilation=2, bias=False))
    for conv in (nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 1),
                 nn.Conv2d(4, 4, 3, padding=0), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                 nn.Conv2d(4, 4, 3, padding="same"), nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
                 nn.ConvTranspose2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=2, dilation=1)):
        assert not winograd_eligible(conv)
        with pytest.raises(ValueError, match="keep it as nn.Conv2d"):
            WinogradConv2d(conv)


def _export_dynamic(module, example_shape, path):
    """Export ``module`` with dynamic batch and image sizes; (ONNX Runtime session, nodes)."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.zeros(*example_shape),), str(path), input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h2", 3: "w2"}})
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), onnx.load(str(path)).graph.node


def test_onnx_export_keeps_dynamic_sizes(tmp_path):
    conv = _conv(6, 5, 2, bias=True)
    sess, nodes = _export_dynamic(WinogradConv2d(conv), (1, 6, 8, 8), tmp_path / "w.onnx")
    ops = {node.op_type for node in nodes}
    assert "Conv" not in ops and "MatMul" in ops
    # graph v3: the transforms slice NHWC tensors; the only layout changes are the two
    # single-axis moves NCHW -> NHWC -> NCHW (fast in ONNX Runtime); the 2-D one permutes
    # the int64 pad widths of Pad
    perms = sorted(tuple(a.ints) for node in nodes if node.op_type == "Transpose" for a in node.attribute)
    assert perms == [(0, 2, 3, 1), (0, 3, 1, 2), (1, 0)]
    for shape in ((2, 6, 11, 7), (1, 6, 4, 16), (3, 6, 1, 1)):
        x = torch.randn(*shape)
        (got,) = sess.run(None, {"x": x.numpy()})
        want = _reference(conv, x).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))


def _convt(c, k, bias, seed=0):
    torch.manual_seed(seed)
    return torch.nn.ConvTranspose2d(c, k, 3, stride=2, padding=1, output_padding=1, bias=bias).eval()


def _numpy_conv_transpose(x, w):
    """Textbook scatter form: input pixel (i, j) adds w[:, :, a, b] at output (2i - 1 + a,
    2j - 1 + b); the output keeps rows/columns 0 .. 2H-1 (padding 1, output_padding 1).
    x (N, C, H, W), w (C, K, 3, 3)."""
    n, c, h, wd = x.shape
    full = np.zeros((n, w.shape[1], 2 * h + 2, 2 * wd + 2))  # offset by 1 row/column
    for a in range(3):
        for b in range(3):
            full[:, :, a:a + 2 * h:2, b:b + 2 * wd:2] += np.einsum("nchw,ck->nkhw", x, w[:, :, a, b])
    return full[:, :, 1:2 * h + 1, 1:2 * wd + 1]


@pytest.mark.smoke
def test_transposed_matches_numpy_scatter():
    conv = _convt(3, 4, bias=False, seed=3)
    x = torch.randn(2, 3, 5, 8)
    want = _numpy_conv_transpose(x.double().numpy(), conv.weight.double().detach().numpy())
    with torch.inference_mode():
        got = WinogradConvTranspose2d(conv)(x)
    assert got.shape == (2, 4, 10, 16) and got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 9), k=st.integers(1, 9), h=st.integers(1, 11),
       w=st.integers(1, 11), bias=st.booleans(), channels_last=st.booleans(), seed=st.integers(0, 2**16))
def test_transposed_equals_direct(n, c, k, h, w, bias, channels_last, seed):
    conv = _convt(c, k, bias, seed)
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = F.conv_transpose2d(x.double(), conv.weight.double(),
                                  None if conv.bias is None else conv.bias.double(),
                                  stride=2, padding=1, output_padding=1)
    with torch.inference_mode():
        got = WinogradConvTranspose2d(conv)(x)
    assert got.shape == want.shape == (n, k, 2 * h, 2 * w) and got.dtype == torch.float32
    assert float((got.double() - want).abs().max()) <= 1e-5 * max(1.0, float(want.abs().max()))


def test_transposed_wide_layer_float32_error():
    # DLCRNet's fused upsampling (2048 -> 163 channels at 16 x 20): float32 error of the
    # F(2, 2) form stays at the level of float32 ConvTranspose2d's own
    conv = _convt(2048, 163, bias=True)
    x = torch.relu(torch.randn(1, 2048, 16, 20))
    with torch.no_grad():
        want = F.conv_transpose2d(x.double(), conv.weight.double(), conv.bias.double(),
                                  stride=2, padding=1, output_padding=1)
    _assert_float32_error_like_direct(conv, WinogradConvTranspose2d(conv), x, want)


@pytest.mark.smoke
def test_transposed_weights_are_tap_sums():
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    u = winograd_transposed_weights(w)
    # slices x0, x1, x0 - x1, x2 - x1 use taps {1}, {1} and {0, 2}, {2}, {0}
    taps = ([(1,)], [(1,), (0, 2)], [(2,)], [(0,)])
    assert [tuple(t.shape) for t in u] == [(2, len(r) * len(c) * 3) for r in taps for c in taps]
    for i, rows in enumerate(taps):
        for j, cols in enumerate(taps):
            want = [sum(w[:, :, a, b] for a in rt for b in ct) for rt in rows for ct in cols]
            np.testing.assert_allclose(u[4 * i + j].numpy(), torch.cat(want, dim=1).numpy(), rtol=1e-15)


@pytest.mark.smoke
def test_transposed_eligibility_and_errors():
    nn = torch.nn
    assert winograd_transposed_eligible(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1))
    for conv in (nn.ConvTranspose2d(4, 4, 3, stride=2),  # DLC's HeatmapHead deconvs: 2H + 1
                 nn.ConvTranspose2d(4, 4, 3, stride=1, padding=1),
                 nn.ConvTranspose2d(4, 4, 2, stride=2),
                 nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
                 nn.ConvTranspose2d(4, 4, 3, stride=2, padding=2, output_padding=1, dilation=2),
                 nn.Conv2d(4, 4, 3, padding=1)):
        assert not winograd_transposed_eligible(conv)
        with pytest.raises(ValueError, match="keep it as nn.ConvTranspose2d"):
            WinogradConvTranspose2d(conv)


def test_transposed_onnx_export_keeps_dynamic_sizes(tmp_path):
    conv = _convt(6, 5, bias=True)
    sess, nodes = _export_dynamic(WinogradConvTranspose2d(conv), (1, 6, 4, 4), tmp_path / "t.onnx")
    ops = {node.op_type for node in nodes}
    assert "ConvTranspose" not in ops and "MatMul" in ops
    for shape in ((1, 6, 4, 4), (2, 6, 5, 7), (1, 6, 1, 1)):
        x = torch.randn(*shape)
        with torch.no_grad():
            want = conv(x).numpy()
        (got,) = sess.run(None, {"x": x.numpy()})
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), groups=st.sampled_from([1, 2, 4]), per_group=st.integers(1, 4),
       h=st.integers(2, 9), w=st.integers(1, 9), seed=st.integers(0, 2**16))  # >1 value per group
def test_groupnorm_depthwise_affine_equals_groupnorm(n, groups, per_group, h, w, seed):
    from mapose.models.pose_model import GroupNormDepthwiseAffine

    gen = torch.Generator().manual_seed(seed)
    norm = torch.nn.GroupNorm(groups, groups * per_group).double()
    with torch.no_grad():
        norm.weight.copy_(torch.randn(groups * per_group, generator=gen, dtype=torch.float64))
        norm.bias.copy_(torch.randn(groups * per_group, generator=gen, dtype=torch.float64))
    x = torch.randn(n, groups * per_group, h, w, generator=gen, dtype=torch.float64) * 3 + 1
    with torch.no_grad():
        want, got = norm(x), GroupNormDepthwiseAffine(norm)(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.smoke
def test_groupnorm_depthwise_affine_needs_affine():
    from mapose.models.pose_model import GroupNormDepthwiseAffine

    with pytest.raises(ValueError, match="no affine parameters"):
        GroupNormDepthwiseAffine(torch.nn.GroupNorm(2, 4, affine=False))
