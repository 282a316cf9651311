"""PAF line-integral scorer: NumPy reference, DLC's test data, and the full PAF pipeline."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _assembly_helpers import load
from mapose.kernels import paf, paf_ref

GRAPH66 = [[i, j] for i in range(12) for j in range(i + 1, 12)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert list(x) == list(y)
        for k in x:
            np.testing.assert_array_equal(x[k]["m1"], y[k]["m1"])
            np.testing.assert_array_equal(x[k]["distance"], y[k]["distance"])
            assert x[k]["m1"].dtype == np.float32


@st.composite
def _maps(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_img, n_bp = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    graph = [[a, b] for a in range(n_bp) for b in range(n_bp) if a != b and rng.random() < 0.5] or [[0, 1]]
    pafs = rng.normal(size=(n_img, 2 * len(graph), h, w)).astype(draw(st.sampled_from([np.float32, np.float64])))
    peaks = [
        [np.column_stack([rng.integers(-2, h + 2, k), rng.integers(-2, w + 2, k)]) for k in rng.integers(0, 4, n_bp)]
        for _ in range(n_img)
    ]
    return pafs, peaks, graph


@pytest.mark.smoke
@settings(max_examples=150, deadline=None)
@given(case=_maps(), variant=st.sampled_from(["pytorch", "tf"]))
def test_kernel_matches_reference(case, variant):
    pafs, peaks, graph = case
    _same(paf.compute_paf_costs(pafs, peaks, graph, variant=variant), paf_ref.compute_paf_costs(pafs, peaks, graph, variant=variant))


@pytest.mark.smoke
def test_layouts_and_peak_rows_agree():
    rng = np.random.default_rng(1)
    pafs = rng.normal(size=(2, 4, 9, 11)).astype(np.float32)
    peaks = [[np.array([[1, 2], [7, 9]]), np.array([[3, 3]])], [np.array([[0, 0]]), np.zeros((0, 2), int)]]
    graph = [[0, 1], [1, 0]]
    nchw = paf.compute_paf_costs(pafs, peaks, graph)
    nhwc = paf.compute_paf_costs(pafs.transpose(0, 2, 3, 1), peaks, graph, layout="nhwc")
    rows = np.array([[0, 0, 1, 2], [0, 0, 7, 9], [0, 1, 3, 3], [1, 0, 0, 0]])
    _same(nchw, nhwc)
    _same(nchw, paf.compute_paf_costs(pafs, rows, graph))
    assert nchw[1] == {}  # bodypart 1 has no peak in image 1: no entry (PyTorch)
    tf = paf.compute_paf_costs(pafs, peaks, graph, variant="tf")
    assert tf[1][0]["m1"].shape == (1, 0)  # TF emitted empty entries


@pytest.mark.smoke
def test_straight_field_has_unit_affinity():
    # a unit field along +x: a horizontal limb integrates to its length -> affinity 1
    pafs = np.zeros((1, 2, 5, 20), np.float32)
    pafs[0, 0] = 1
    out = paf.compute_paf_costs(pafs, [[np.array([[2, 1]]), np.array([[2, 10]])]], [[0, 1]])[0][0]
    assert out["m1"][0, 0] == pytest.approx(1.0, abs=1e-3)
    assert out["distance"][0, 0] == pytest.approx(9.0)
    # orthogonal limb: no affinity
    out = paf.compute_paf_costs(pafs, [[np.array([[0, 4]]), np.array([[4, 4]])]], [[0, 1]])[0][0]
    assert out["m1"][0, 0] == 0


@pytest.mark.smoke
def test_bad_inputs():
    pafs = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="channels"):
        paf.compute_paf_costs(pafs, [[np.zeros((1, 2))] * 3], [[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="layout"):
        paf.compute_paf_costs(pafs, [[np.zeros((1, 2))] * 2], [[0, 1]], layout="hwc")
    with pytest.raises(ValueError, match="shape"):
        paf.compute_paf_costs(np.zeros((5, 5)), [[np.zeros((1, 2))] * 2], [[0, 1]])
    with pytest.raises(ValueError, match="variant"):
        paf.compute_paf_costs(pafs, [[np.zeros((1, 2))] * 2], [[0, 1]], variant="keras")
    with pytest.raises(ValueError, match="images"):
        paf.compute_paf_costs(pafs, [], [[0, 1]])


def _tf_peaks(scmap):
    from scipy.ndimage import maximum_filter

    peaks = []
    for k in range(scmap.shape[-1]):
        m = scmap[..., k]
        mx = maximum_filter(m, size=5, mode="constant", cval=-np.inf)
        peaks.append(np.argwhere((m == mx) & (m >= 0.01)))
    return peaks


def test_tf_costs_against_dets_pickle(unittest_data):
    """DLC's test_predict_multianimal: same peaks, argmax(m1) agrees on 60 of 66 edges."""
    scmap, locref, pafs = load(unittest_data, "outputs.pickle")
    dets = load(unittest_data, "dets.pickle")[0]
    peaks = _tf_peaks(scmap[0])
    lr = locref[0].reshape(60, 80, 12, 2) * 7.2801
    for k, rc in enumerate(peaks):
        xy = rc[:, ::-1] * 8 + 4 + lr[rc[:, 0], rc[:, 1], k]
        np.testing.assert_allclose(xy, dets["coordinates"][0][k], atol=1e-3)
    costs = paf.compute_paf_costs(pafs, [peaks], GRAPH66, layout="nhwc", variant="tf")[0]
    assert len(costs) == 66
    agree = sum(np.array_equal(costs[k]["m1"].argmax(axis=0), dets["costs"][k]["m1"].argmax(axis=0)) for k in range(66))
    assert agree == 60
    for k in range(66):
        np.testing.assert_allclose(costs[k]["distance"], dets["costs"][k]["distance"], atol=1.5)
    _same([costs], paf_ref.compute_paf_costs(pafs, [peaks], GRAPH66, layout="nhwc", variant="tf"))


def test_pytorch_pipeline_on_outputs_pickle(unittest_data):
    """Peaks (mapose.kernels.peaks) -> PAF costs -> Assembler: three 12-keypoint mice."""
    peaks_mod = pytest.importorskip("mapose.kernels.peaks")
    from mapose.assembly.assembler import Assembler

    scmap, locref, pafs = load(unittest_data, "outputs.pickle")
    pk = peaks_mod.find_peaks(scmap.transpose(0, 3, 1, 2), locref.transpose(0, 3, 1, 2), stride=8, apply_sigmoid=False)
    assert len(pk.conf) == 38
    per_bp = [np.column_stack([pk.rows[pk.span(0, k)], pk.cols[pk.span(0, k)]]) for k in range(12)]
    costs = paf.compute_paf_costs(pafs, [per_bp], GRAPH66, layout="nhwc")[0]
    if hasattr(peaks_mod, "paf_costs"):  # an independent implementation of the same scorer
        theirs = peaks_mod.paf_costs(pafs.transpose(0, 3, 1, 2), pk, GRAPH66)[0]
        _same([costs], [theirs])
    coords, confs = pk.image_lists(0)
    asm = Assembler.empty(3, 12, 0, GRAPH66, list(range(66)))
    assemblies, unique = asm._assemble({"coordinates": (coords,), "confidence": confs, "costs": costs}, 0)
    assert unique is None
    assert [len(a) for a in assemblies] == [12, 12, 12]
    np.testing.assert_allclose([a.affinity for a in assemblies], [0.52, 0.52, 0.47], atol=0.006)
    np.testing.assert_allclose(assemblies[0].xy[0], [52.85, 225.41], atol=0.01)
