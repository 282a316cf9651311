"""Winograd F(2x2, 3x3) convolution and the inference rewrites of a PoseModel.

References: torch's direct convolution in float64 (an independent algorithm), a direct
NumPy convolution for small cases, and the unmodified model for the rewrites.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mapose.models.winograd import WinogradConv2d, winograd_eligible, winograd_weight  # noqa: E402

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
    with torch.inference_mode():
        direct = conv(x).double()
        wino = WinogradConv2d(conv)(x).double()
    scale = float(want.abs().max())
    err_direct = float((direct - want).abs().max()) / scale
    err_wino = float((wino - want).abs().max()) / scale
    assert err_wino < 2e-6 and err_wino < 10 * err_direct


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


def test_onnx_export_keeps_dynamic_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import warnings

    conv = _conv(6, 5, 2, bias=True)
    wc = WinogradConv2d(conv).eval()
    path = tmp_path / "w.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wc, (torch.zeros(1, 6, 8, 8),), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
                          opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    nodes = __import__("onnx").load(str(path)).graph.node
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
