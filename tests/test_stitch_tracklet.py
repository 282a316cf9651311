"""mapose.Tracklet against DeepLabCut 3.0.2's Tracklet.

Reference numbers marked "DLC 3.0.2" were produced by running
``deeplabcut.refine_training_dataset.stitch.Tracklet`` on the same generated data.
"""
import numpy as np
import pytest

from mapose.stitching.tracklet import Tracklet, calc_iou

N_FRAMES, N_DETS, START = 50, 4, 5


@pytest.fixture
def fake_tracklet():
    data = np.empty((N_FRAMES, N_DETS, 4))
    data[..., :2] = np.arange(N_DETS).reshape(1, -1, 1)
    data[..., 2] = 1
    data[..., 3] = 0
    return Tracklet(data, np.arange(START, START + N_FRAMES))


@pytest.fixture
def random_pair():
    rng = np.random.default_rng(0)
    d = rng.random((8, 3, 4)) * 10
    d[..., 3] = rng.integers(0, 2, (8, 3))
    t = Tracklet(d, np.arange(8) + 5)
    o = Tracklet(rng.random((6, 3, 4)) * 10, np.arange(6) + 16)
    return t, o


@pytest.mark.smoke
@pytest.mark.parametrize(
    "data, inds, match",
    [
        (np.zeros((5, 2)), np.arange(5), "3-D"),
        (np.zeros((5, 2, 5)), np.arange(5), "3 .* or 4"),
        (np.zeros((5, 2, 3)), np.arange(4), "same length"),
        (np.zeros((2, 2, 3)), np.array([0.5, 1.0]), "integer frame"),
    ],
)
def test_bad_inputs_raise(data, inds, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Tracklet(data, inds)


def test_reversed_inds_are_sorted(fake_tracklet):
    inv = Tracklet(fake_tracklet.data[::-1], fake_tracklet.inds[::-1])
    np.testing.assert_equal(inv.inds, fake_tracklet.inds)
    np.testing.assert_equal(inv.xy, fake_tracklet.xy)


@pytest.mark.smoke
def test_basic_properties(fake_tracklet):
    t = fake_tracklet
    assert len(t) == N_FRAMES
    assert t.likelihood == 1
    assert t.identity == 0
    assert t.start == START and t.end == START + N_FRAMES - 1
    assert t.is_continuous
    np.testing.assert_allclose(t.centroid, np.full((N_FRAMES, 2), np.arange(N_DETS).mean()))
    assert t.flat_data.shape == (N_FRAMES, N_DETS * 3)


def test_arithmetic(fake_tracklet):
    other = Tracklet(fake_tracklet.data, fake_tracklet.inds + N_FRAMES)
    assert fake_tracklet not in other
    assert fake_tracklet < other and other > fake_tracklet
    both = fake_tracklet + other
    assert len(both) == 2 * N_FRAMES and both.is_continuous
    rest = both - fake_tracklet
    np.testing.assert_equal(rest.data, other.data)
    np.testing.assert_equal(rest.inds, other.inds)
    assert (fake_tracklet - fake_tracklet) is None
    assert (fake_tracklet + fake_tracklet).contains_duplicates()
    assert sum([fake_tracklet, other]).inds.size == 2 * N_FRAMES  # 0 + t works


def test_identity_rules(fake_tracklet):
    assert Tracklet(fake_tracklet.data[..., :3], fake_tracklet.inds).identity == -1
    d = fake_tracklet.data.copy()
    d[..., 3] = np.nan
    assert np.isnan(Tracklet(d, fake_tracklet.inds).identity)
    d[:2, :, 3] = [[2, 2, 1, 1], [1, 2, 1, 2]]  # tie between 1 and 2 -> smallest
    assert Tracklet(d, fake_tracklet.inds).identity == 1


def test_data_access(fake_tracklet):
    t = fake_tracklet
    np.testing.assert_equal(t.get_data_at(START), t.data[0])
    t.set_data_at(START + 1, t.data[0] * 2)
    np.testing.assert_equal(t.data[1], t.data[0] * 2)
    t.del_data_at(START + 1)
    assert not t.is_continuous and START + 1 not in t.inds
    with pytest.raises(KeyError, match="not in this tracklet"):
        t.get_data_at(10_000)


def test_interpolate(fake_tracklet):
    t = fake_tracklet
    t.data[:, :, 0] += np.arange(N_FRAMES)[:, None]
    t.del_data_at(START + 5)
    t.del_data_at(START + 6)
    assert len(t.interpolate(max_gap=1)) == len(t)
    filled = t.interpolate(max_gap=2)
    assert len(filled) == len(t) + 2 and filled.is_continuous
    new = np.isin(filled.inds, [START + 5, START + 6])
    assert np.all(filled.data[new, :, 2] == 0.5)
    assert np.all(filled.data[new, :, 3] == 0)
    np.testing.assert_allclose(filled.data[new, 0, 0], [5, 6])  # linear in time
    with pytest.raises(ValueError, match="positive"):
        t.interpolate(0)


def test_metrics_match_dlc(random_pair):
    t, o = random_pair
    # DLC 3.0.2 on the same data
    assert t.calc_velocity("head", True) == pytest.approx(5.619920989826923, rel=1e-12)
    assert t.calc_velocity("tail", True) == pytest.approx(5.735648908357811, rel=1e-12)
    np.testing.assert_allclose(t.calc_velocity("head", False), [-0.97917892, 2.71653613], rtol=1e-7)
    assert t.calc_rate_of_turn("head") == pytest.approx(-4.16102291845346, rel=1e-12)
    assert t.calc_rate_of_turn("tail") == pytest.approx(3.3305125998075678, rel=1e-12)
    assert t.maximal_velocity == pytest.approx(7.5893371106385175, rel=1e-12)
    assert t.distance_to(o) == pytest.approx(7.0963128010515275, rel=1e-12)
    assert t.motion_affinity_with(o) == o.motion_affinity_with(t) == pytest.approx(15.758256165086884, rel=1e-12)
    assert t.shape_dissimilarity_with(o) == pytest.approx(8.434554665340833, rel=1e-12)
    assert t.box_overlap_with(o) == pytest.approx(0.001624305355012984, rel=1e-12)
    assert t.time_gap_to(o) == o.time_gap_to(t) == 4
    assert t.identity == 0 and t.likelihood == pytest.approx(5.833797686528766)
    assert t.to_hankelet().shape == (6, 6)


@pytest.mark.parametrize("n, shape", [(5, (4, 4)), (6, (6, 4)), (9, (8, 6)), (21, (16, 14)), (50, (34, 34))])
def test_hankel_shape_as_dlc(n, shape):
    t = Tracklet(np.random.default_rng(n).random((n, 2, 3)), np.arange(n))
    H = t.to_hankelet()
    assert H.shape == shape
    np.testing.assert_equal(H[0], t.centroid[: shape[1], 0])
    np.testing.assert_equal(H[1], t.centroid[: shape[1], 1])
    np.testing.assert_equal(H[2], t.centroid[1: shape[1] + 1, 0])


def test_dynamic_scores_run(random_pair):
    # exact values against a reference: test_stitch_dynamic.py
    t, o = random_pair
    assert 0 <= t.dynamic_dissimilarity_with(o) <= 2
    assert t.dynamic_similarity_with(o) >= -1
    assert t.estimate_rank(0.01) >= 0


def test_overlapping_distance_is_mean_over_common_frames(fake_tracklet):
    other = Tracklet(fake_tracklet.data.copy(), fake_tracklet.inds + 10)
    other.data[..., 0] += 3
    assert fake_tracklet.distance_to(other) == pytest.approx(3.0)
    assert fake_tracklet.time_gap_to(other) == 0
    assert fake_tracklet.box_overlap_with(other) == 0


def test_calc_iou():
    assert calc_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert calc_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0
    assert calc_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0  # degenerate boxes, no ZeroDivisionError
