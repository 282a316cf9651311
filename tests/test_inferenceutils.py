"""DLC's tests/test_inferenceutils.py checklist, against mapose.core.inferenceutils."""
import numpy as np
import pytest
from scipy.spatial.distance import squareform

from _assembly_helpers import load
from mapose.core import inferenceutils as iu


@pytest.fixture(scope="module")
def real_assemblies(unittest_data):
    temp = load(unittest_data, "trimouse_assemblies.pickle")
    data = np.stack([np.stack(v) for k, v in temp.items() if k != "single"]).astype(float)
    return iu._parse_ground_truth_data(data)


@pytest.mark.smoke
def test_conv_square_to_condensed_indices():
    n = 5
    rng = np.random.default_rng(0)
    condensed = rng.random(n * (n - 1) // 2)
    square = squareform(condensed)
    for i in range(n):
        for j in range(n):
            if i == j:
                with pytest.raises(ValueError):
                    iu._conv_square_to_condensed_indices(i, j, n)
            else:
                assert condensed[iu._conv_square_to_condensed_indices(i, j, n)] == square[i, j]


def test_calc_object_keypoint_similarity(real_assemblies):
    sigma = 0.01
    xy1 = real_assemblies[0][0].xy
    xy2 = real_assemblies[0][1].xy
    assert iu.calc_object_keypoint_similarity(xy1, xy1, sigma) == 1
    assert np.isclose(iu.calc_object_keypoint_similarity(xy1, xy2, sigma), 0)
    xy3 = xy1.copy()
    xy3[: len(xy3) // 2] = np.nan
    assert iu.calc_object_keypoint_similarity(xy3, xy1, sigma) == 0.5
    xy3[:] = np.nan
    assert iu.calc_object_keypoint_similarity(xy3, xy1, sigma) == 0
    assert np.isnan(iu.calc_object_keypoint_similarity(xy1, xy3, sigma))
    xy4 = xy1.copy()
    xy4[[0, 11]] = xy4[[11, 0]]
    assert iu.calc_object_keypoint_similarity(xy4, xy1, sigma) != 1
    assert iu.calc_object_keypoint_similarity(xy4, xy1, sigma, symmetric_kpts=[(0, 11)]) == 1
    # per-keypoint sigmas
    sig = np.full(12, sigma)
    assert iu.calc_object_keypoint_similarity(xy1, xy1, sig) == 1


def test_match_assemblies(real_assemblies):
    assemblies = real_assemblies[0]
    num_gt, matched = iu.match_assemblies(assemblies, assemblies[::-1], 0.01)
    assert num_gt == len(assemblies)
    assert len(matched) == len(assemblies)
    for m in matched:
        assert m.prediction is m.ground_truth
        assert m.oks == 1
    num_gt, matched = iu.match_assemblies([], assemblies, 0.01)
    assert num_gt == len(assemblies) and not matched
    # every prediction is reported, the unmatched ones with OKS 0 (DLC)
    num_gt, matched = iu.match_assemblies(assemblies, assemblies[:1], 0.01)
    assert num_gt == 1 and len(matched) == 3
    assert sum(m.ground_truth is not None for m in matched) == 1
    num_gt, matched = iu.match_assemblies(
        assemblies, assemblies[:1], 0.01, greedy_matching=True, greedy_oks_threshold=0.5
    )
    assert [m.oks for m in matched if m.ground_truth is not None] == [1.0]
    assert [m.prediction is assemblies[0] for m in matched if m.ground_truth is not None] == [True]


@pytest.mark.parametrize("symmetric_kpts", [None, [(0, 5), (1, 4)]])
def test_evaluate_assembly(real_assemblies, symmetric_kpts):
    assemblies = {i: real_assemblies[i] for i in range(3)}
    thresholds = np.linspace(0.5, 0.95, 5)
    out = iu.evaluate_assembly(assemblies, assemblies, oks_thresholds=thresholds, symmetric_kpts=symmetric_kpts)
    assert out["mAP"] == pytest.approx(1)
    assert out["mAR"] == pytest.approx(1)
    assert out["precisions"].shape == (5, 101)
    np.testing.assert_allclose(out["precisions"], 1)
    greedy = iu.evaluate_assembly(
        assemblies, assemblies, oks_thresholds=thresholds, symmetric_kpts=symmetric_kpts, greedy_matching=True
    )
    assert greedy["mAP"] == pytest.approx(1) and greedy["mAR"] == pytest.approx(1)


def test_evaluate_assembly_greedy_hand_made():
    # two images: one perfect prediction, one off by 30 px with a higher score, and a
    # false positive; COCO precision/recall worked out by hand
    gt0 = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0]])
    gt1 = gt0 + 300
    a = lambda xy, c: iu.Assembly.from_array(np.column_stack([xy, np.full(3, c)]))  # noqa: E731
    g = {0: [iu.Assembly.from_array(gt0.copy())], 1: [iu.Assembly.from_array(gt1.copy())]}
    p = {0: [a(gt0, 0.5)], 1: [a(gt1 + [30, 0], 0.9), a(gt1 + 1000, 0.1)]}
    out = iu.evaluate_assembly_greedy(g, p, 0.1, [0.5])
    # OKS of the shifted pose: exp(-900 / (2 * 100**2 * 0.2**2)) = exp(-1.125) = 0.32 < 0.5
    # ranked: 0.9 (FP), 0.5 (TP), 0.1 (FP) -> recall 0.5, precision 0.5 up to recall 0.5
    assert out["recalls"][0] == pytest.approx(0.5)
    np.testing.assert_allclose(out["precisions"][0, :51], 0.5, atol=1e-12)
    np.testing.assert_array_equal(out["precisions"][0, 51:], 0)
    out = iu.evaluate_assembly_greedy(g, p, 0.1, [0.3])
    assert out["recalls"][0] == pytest.approx(1)


def test_link_and_assembly():
    j1 = iu.Joint((1, 1), 0.5, 0, 0)
    j2 = iu.Joint((1, 2), 0.5, 1, 1)
    link = iu.Link(j1, j2)
    assert link.confidence == 0.25
    assert link.idx == (0, 1)
    assert link.to_vector() == [1, 1, 1, 2]
    assert link.length == 1

    ass = iu.Assembly(3)
    assert len(ass) == 0
    assert ass.add_link(link, store_dict=True)
    assert len(ass) == 2
    assert ass.data[j2.label, 3] == -1
    assert ass.area == 0
    assert ass.intersection_with(ass) == 1
    assert np.all(np.isnan(ass._dict["data"][:, :2]))
    np.testing.assert_array_equal(ass._dict["data"][:, 2], 0)  # DLC quirk: confidence 0
    ass.remove_joint(j2)
    assert len(ass) == 1
    assert np.all(np.isnan(ass.data[j2.label]))
    ass2 = iu.Assembly(3)
    ass2.add_link(link)
    with pytest.raises(ValueError):
        _ = ass + ass2
    ass2.remove_joint(j1)
    assert ass2 not in ass
    ass3 = ass + ass2
    assert len(ass3) == 2


def test_find_outlier_assemblies(real_assemblies):
    assert len(iu.find_outlier_assemblies(real_assemblies)) == 13
    assert iu.find_outlier_assemblies({}) == []  # DLC raises on empty input
    with pytest.raises(ValueError, match="criterion"):
        iu.find_outlier_assemblies(real_assemblies, criterion="nope")


def test_parse_ground_truth_data_file(unittest_data):
    import pandas as pd

    gt = iu.parse_ground_truth_data_file(unittest_data / "trimouse_calib.h5")
    xy = pd.read_hdf(unittest_data / "trimouse_calib.h5").to_numpy(dtype=float).reshape(500, 3, 12, 2)
    animals = ~np.isnan(xy).all(axis=(2, 3))
    assert len(gt) == int(animals.any(axis=1).sum())
    assert sum(len(v) for v in gt.values()) == int(animals.sum())
    assert all(len(a) <= 12 for v in gt.values() for a in v)
