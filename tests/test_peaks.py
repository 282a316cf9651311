"""Peak finding / PAF cost kernels against the NumPy reference and DLC's real outputs."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mapose.kernels import peaks as K
from mapose.kernels import peaks_ref as R

GRAPH5 = [[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]]


def _blobs(rng, B, Kp, h, w, n=3):
    """Logit maps with a few Gaussian bumps (realistic, well separated maxima)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.full((B, Kp, h, w), -8.0, np.float32)
    for b in range(B):
        for k in range(Kp):
            for _ in range(rng.integers(0, n + 1)):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                out[b, k] += 14 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0)
    return out


def _same(a: K.Peaks, b: K.Peaks):
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.cols, b.cols)
    np.testing.assert_allclose(a.xy, b.xy, atol=1e-4)
    np.testing.assert_allclose(a.conf, b.conf, atol=1e-6)


@pytest.mark.smoke
def test_single_peak_position_and_refinement():
    hm = np.full((1, 1, 9, 11), -40, np.float32)  # sigmoid: ~0 background, 1.0 peak
    hm[0, 0, 4, 6] = 40
    lr = np.zeros((1, 2, 9, 11), np.float32)
    lr[0, :, 4, 6] = (0.5, -0.25)
    p = K.find_peaks(hm, lr, stride=4.0)
    assert p.offsets.tolist() == [0, 1]
    assert (p.rows[0], p.cols[0]) == (4, 6)
    np.testing.assert_allclose(p.xy[0], [4 * 6 + 2 + 0.5 * 7.2801, 4 * 4 + 2 - 0.25 * 7.2801], rtol=1e-6)
    # the confidence is read from the *smoothed* map: centre weight of the 2-D Gaussian
    g = K._pk.gaussian_weights(5, 1.0)
    assert p.conf[0] == pytest.approx(g[5] ** 2, rel=1e-5)
    assert p.xy.dtype == np.float32 and p.conf.dtype == np.float32


@pytest.mark.smoke
def test_empty_and_flat_maps():
    p = K.find_peaks(np.zeros((2, 3, 0, 5), np.float32), stride=4)
    assert p.offsets.tolist() == [0] * 7 and p.xy.shape == (0, 2)
    # all below threshold -> no peaks; a constant map is one big plateau (every pixel ties)
    p = K.find_peaks(np.full((1, 1, 5, 5), -20, np.float32), stride=4)
    assert len(p.conf) == 0
    costs = K.paf_costs(np.zeros((1, 20, 5, 5), np.float32), K.find_peaks(
        np.full((1, 5, 5, 5), -20, np.float32), stride=4), GRAPH5)
    assert costs == [{}]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), B=st.integers(1, 2), Kp=st.integers(1, 4),
       h=st.integers(1, 24), w=st.integers(1, 24), r=st.sampled_from([1, 3, 5, 4]),
       sigmoid=st.booleans())
def test_find_peaks_matches_reference(seed, B, Kp, h, w, r, sigmoid):
    rng = np.random.default_rng(seed)
    hm = _blobs(rng, B, Kp, h, w)
    if not sigmoid:
        hm = 1 / (1 + np.exp(-hm))
    lr = rng.normal(size=(B, 2 * Kp, h, w)).astype(np.float32)
    kw = dict(stride=8.0, nms_radius=r, apply_sigmoid=sigmoid)
    _same(K.find_peaks(hm, lr, **kw), R.find_peaks(hm, lr, **kw))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), h=st.integers(2, 30), w=st.integers(2, 30))
def test_paf_costs_match_reference(seed, h, w):
    rng = np.random.default_rng(seed)
    hm = _blobs(rng, 1, 5, h, w, n=4)
    paf = rng.normal(size=(1, 20, h, w)).astype(np.float32)
    pk = K.find_peaks(hm, stride=4.0)
    a = K.paf_costs(paf, pk, GRAPH5)
    b = R.paf_costs(paf, pk, GRAPH5)
    assert a[0].keys() == b[0].keys()
    for e in a[0]:
        # both are rounded to 3 decimals; float32 vs float64 sums may straddle a rounding edge
        np.testing.assert_allclose(a[0][e]["m1"], b[0][e]["m1"], atol=1.01e-3)
        np.testing.assert_allclose(a[0][e]["distance"], b[0][e]["distance"], atol=1.01e-3)


def test_paf_cost_of_aligned_field_is_one():
    """A unit field along the segment integrates to its length: affinity 1."""
    h, w = 20, 30
    paf = np.zeros((1, 2, h, w), np.float32)
    paf[0, 0] = 1.0  # x component = 1 everywhere
    hm = np.full((1, 2, h, w), -20, np.float32)
    hm[0, 0, 10, 3] = 20
    hm[0, 1, 10, 21] = 20
    pk = K.find_peaks(hm, stride=4)
    c = K.paf_costs(paf, pk, [[0, 1]])[0]
    assert c[0]["m1"][0, 0] == pytest.approx(1.0, abs=1e-3)
    assert c[0]["distance"][0, 0] == pytest.approx(18.0, abs=1e-3)
    # reversed field: same magnitude (DLC's norm-based affinity is sign-blind)
    c = K.paf_costs(-paf, pk, [[0, 1]])[0]
    assert c[0]["m1"][0, 0] == pytest.approx(1.0, abs=1e-3)


def test_peaks_shift_with_heatmap():
    rng = np.random.default_rng(3)
    hm = _blobs(rng, 1, 2, 30, 30)
    hm[..., :, :6] = -8
    hm[..., :6, :] = -8
    a = K.find_peaks(hm[..., :24, :24], stride=4)
    b = K.find_peaks(np.pad(hm[..., :24, :24], ((0, 0), (0, 0), (3, 0), (5, 0)), constant_values=-8), stride=4)
    np.testing.assert_array_equal(a.rows + 3, b.rows)
    np.testing.assert_array_equal(a.cols + 5, b.cols)
    np.testing.assert_allclose(a.conf, b.conf, rtol=1e-6)


def test_heatmap_argmax_matches_reference():
    rng = np.random.default_rng(0)
    hm = rng.normal(size=(3, 2, 7, 9)).astype(np.float32) * 2
    lr = rng.normal(size=(3, 4, 7, 9)).astype(np.float32)
    for sig, clip in [(False, True), (True, False)]:
        np.testing.assert_allclose(
            K.heatmap_argmax(hm, lr, stride=8, apply_sigmoid=sig, clip_scores=clip),
            R.heatmap_argmax(hm, lr, stride=8, apply_sigmoid=sig, clip_scores=clip), rtol=1e-6)
    out = K.heatmap_argmax(hm, stride=8)
    assert out.shape == (3, 2, 3) and (out[..., 2] >= 0).all() and (out[..., 2] <= 1).all()


def test_nan_maps_give_no_peaks_at_nan():
    hm = np.full((1, 1, 12, 12), -10, np.float32)
    hm[0, 0, 3, 3] = 10
    hm[0, 0, 9, 9] = np.nan
    p = K.find_peaks(hm, stride=4)
    assert np.isfinite(p.xy).all() and np.isfinite(p.conf).all()
    assert (3, 3) in set(zip(p.rows.tolist(), p.cols.tolist()))


@pytest.mark.smoke
def test_bad_inputs_raise_clear_errors():
    hm = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="stride"):
        K.find_peaks(hm, stride=0)
    with pytest.raises(ValueError, match="nms_radius"):
        K.find_peaks(hm, stride=4, nms_radius=0)
    with pytest.raises(ValueError, match="sigma"):
        K.find_peaks(hm, stride=4, sigma=-1)
    with pytest.raises(ValueError, match="locref"):
        K.find_peaks(hm, np.zeros((1, 3, 5, 5)), stride=4)
    with pytest.raises(ValueError, match="shape"):
        K.find_peaks(np.zeros((5, 5)), stride=4)
    with pytest.raises(TypeError, match="heatmap"):
        K.find_peaks(np.array([[["a"]]]), stride=4)
    pk = K.find_peaks(hm, stride=4)
    with pytest.raises(ValueError, match="graph"):
        K.paf_costs(np.zeros((1, 2, 5, 5)), pk, [[0, 7]])
    with pytest.raises(ValueError, match="channels"):
        K.paf_costs(np.zeros((1, 1, 5, 5)), pk, [[0, 1]])
    with pytest.raises(ValueError, match="edges_to_keep"):
        K.paf_costs(np.zeros((1, 2, 5, 5)), pk, [[0, 1]], edges_to_keep=[3])


def test_torch_linspace_bits():
    torch = pytest.importorskip("torch")
    # DLC samples 10 points per PAF edge
    np.testing.assert_array_equal(K.torch_linspace(10), torch.linspace(0, 1, 10).numpy())
    np.testing.assert_allclose(K.torch_linspace(7), torch.linspace(0, 1, 7).numpy(), atol=1.2e-7)


# --- DLC's real data ---------------------------------------------------------------------

def test_dlc_unittest_outputs_pickle(unittest_data):
    """dlc-inference-spec §9: 38 peaks on outputs.pickle, first snout at (52.85, 225.41)."""
    with open(unittest_data / "outputs.pickle", "rb") as fh:
        scmap, locref, paf = (np.asarray(a) for a in pickle.load(fh))
    hm = scmap.transpose(0, 3, 1, 2)
    lr = locref.transpose(0, 3, 1, 2)
    p = K.find_peaks(hm, lr, stride=8, apply_sigmoid=False)
    assert len(p.conf) == 38
    np.testing.assert_allclose(p.xy[0], [52.85, 225.41], atol=5e-3)
    # same local-maxima set as an independent max filter (DLC's TF test uses skimage)
    _same(p, R.find_peaks(hm, lr, stride=8, apply_sigmoid=False))
    graph = [[i, j] for i in range(12) for j in range(i + 1, 12)]
    costs = K.paf_costs(paf.transpose(0, 3, 1, 2), p, graph)[0]
    assert len(costs) == 66


@pytest.mark.parametrize("frame", [0, 50, 108, 149])
def test_predictor_matches_dlc_on_project_a(project_a, frame):
    """PAF predictor on DLC's raw head outputs reproduces DLC's poses (B, N, K, 5)."""
    from mapose.inference.predictor import BottomUpPredictor
    from mapose.io.pytorch_config import read_pytorch_config
    from mapose.models.specs import HeadSpec

    pcfg = read_pytorch_config(project_a / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train")
    pred_cfg = dict(pcfg["model"]["heads"]["bodypart"]["predictor"])
    spec = HeadSpec("bodypart", "DLCRNetHead", ("heatmap", "locref", "paf"), 4.0, pred_cfg)
    d = np.load(project_a / f"raw_outputs/synthA_frame{frame:04d}.npz")
    out = {f"bodypart/{k}": d[f"out.bodypart.{k}"] for k in ("heatmap", "locref", "paf")}
    poses = BottomUpPredictor([spec])(out)[0].poses
    ref = d["pred.bodypart.poses"][0]
    np.testing.assert_array_equal(np.isnan(poses), np.isnan(ref))
    np.testing.assert_allclose(poses, ref, atol=1e-4, equal_nan=True)
