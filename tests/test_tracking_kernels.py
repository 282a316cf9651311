"""Compiled tracking kernels against the slow NumPy reference (mapose.kernels.*_ref)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mapose.kernels import iou, iou_ref, tracking, tracking_ref
from mapose.tracking.boxes import calc_bboxes_from_keypoints

from _tracking_helpers import make_sequence

coords = st.floats(-1e3, 1e3, allow_nan=False, width=64)


@pytest.mark.smoke
@settings(max_examples=150, deadline=None)
@given(a=hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.just(4)), elements=coords),
       b=hnp.arrays(np.float64, st.tuples(st.integers(0, 6), st.just(4)), elements=coords))
def test_iou_matrix_matches_reference(a, b):
    a = np.c_[np.minimum(a[:, :2], a[:, 2:]), np.maximum(a[:, :2], a[:, 2:])]
    b = np.c_[np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])]
    got = iou.iou_matrix(a, b)
    assert got.dtype == np.float32 and got.shape == (len(a), len(b))
    np.testing.assert_array_equal(got, iou_ref.iou_matrix(a, b))
    np.testing.assert_array_equal(got, tracking_ref.iou_matrix(a, b))


def test_iou_properties():
    rng = np.random.default_rng(0)
    xy = rng.random((8, 2)) * 100
    boxes = np.c_[xy, xy + rng.random((8, 2)) * 50 + 1]
    m = iou.iou_matrix(boxes, boxes)
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_allclose(np.diag(m), 1)
    assert ((m >= 0) & (m <= 1)).all()
    with pytest.raises(ValueError, match="boxes1"):
        iou.iou_matrix(np.zeros((2, 3)), boxes)


@settings(max_examples=100, deadline=None)
@given(poses=hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(0, 9), st.just(2)),
                        elements=st.one_of(coords, st.just(np.nan))),
       sd=st.sampled_from([1.0, 2.0, 3.5]))
def test_fit_ellipses_matches_reference(poses, sd):
    got = tracking.fit_ellipses(poses, sd)
    with np.errstate(invalid="ignore"):
        ref = tracking_ref.fit_ellipses(poses, sd)
    n_finite = np.isfinite(poses).all(axis=2).sum(axis=1)
    np.testing.assert_array_equal(np.isnan(got).any(axis=1), n_finite < 3)
    ok = ~np.isnan(ref).any(axis=1)
    np.testing.assert_allclose(got[ok, :3], ref[ok, :3], rtol=1e-9, atol=1e-6)
    # the minor axis of (nearly) collinear points is sqrt of a rounding-level eigenvalue
    scale = np.maximum(ref[ok, 2], 1.0)
    assert (np.abs(got[ok, 3] - ref[ok, 3]) <= 1e-3 * scale).all()
    well = ok.copy()
    well[ok] = ref[ok, 3] > 1e-3 * ref[ok, 2]
    well &= ~np.isclose(ref[:, 2], ref[:, 3], rtol=1e-6)  # theta undefined for circles
    d = np.abs(got[well, 4] - ref[well, 4]) % np.pi
    assert (np.minimum(d, np.pi - d) < 1e-6).all()


def _run(kind, impl, frames, nb):
    if kind == "ellipse":
        t = impl.EllipseSORT(1, 1, 0.6)
    elif kind == "box":
        t = impl.BoxSORT(1, 1, 0.1)
    else:
        t = impl.SkeletonSORT(nb, 20, 3, 0.5)
    out = []
    for fr in frames:
        inp = calc_bboxes_from_keypoints(fr) if kind == "box" else np.ascontiguousarray(fr[..., :2])
        out.append(np.asarray(t.track(inp)))
    return out


@pytest.mark.parametrize("kind", ["ellipse", "box", "skeleton"])
@settings(max_examples=12, deadline=None)
@given(n_animals=st.integers(1, 6), n_bpts=st.integers(1, 8), seed=st.integers(0, 10_000),
       p_missing=st.sampled_from([0.0, 0.2, 0.5]))
def test_sort_matches_reference(kind, n_animals, n_bpts, seed, p_missing):
    frames = make_sequence(n_animals, n_bpts, 25, seed=seed, p_missing_bpt=p_missing, p_missing_animal=0.1)
    with np.errstate(all="ignore"):
        got = _run(kind, tracking, frames, n_bpts)
        ref = _run(kind, tracking_ref, frames, n_bpts)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        np.testing.assert_array_equal(g[:, -2:], r[:, -2:])  # ids and assignments: exact
        if kind == "ellipse":
            np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-9)
        else:  # same arithmetic order as the dense filterpy equations: bit-identical
            np.testing.assert_array_equal(g, r)


@pytest.mark.smoke
def test_kalman_matches_dense_filter():
    rng = np.random.default_rng(3)
    ref = tracking_ref.KalmanFilter(5)
    ref.R[2:, 2:] *= 10.0
    ref.P[5:, 5:] *= 1000.0
    ref.P *= 10.0
    ref.Q[5:, 5:] *= 0.01
    z0 = rng.random(5) * 100
    ref.x[:5, 0] = z0
    from mapose.tracking.sort import EllipseTracker

    trk = EllipseTracker(z0)
    for _ in range(30):
        ref.predict()
        trk.predict()
        z = rng.random(5) * 100
        ref.update(z)
        trk.update(z)
        np.testing.assert_array_equal(trk.x, ref.x)
        np.testing.assert_array_equal(trk.P, ref.P)


# --------------------------------------------------------------------------- input layouts
def _tracker(kind, nb):
    from mapose.tracking.sort import SORTBox, SORTEllipse, SORTSkeleton

    if kind == "ellipse":
        return SORTEllipse(1, 1, 0.6)
    if kind == "box":
        return SORTBox(1, 1, 0.1)
    return SORTSkeleton(nb, 20, 3, 0.5)


def _layouts(fr, kind):
    """The same frame as a contiguous float64 array and as other accepted layouts."""
    base = calc_bboxes_from_keypoints(fr) if kind == "box" else np.ascontiguousarray(fr[..., :2])
    wide = fr if kind != "box" else np.c_[base, base]  # read in place through strides
    yield base, wide if kind == "box" else wide[..., :2]
    yield base, np.asfortranarray(base)
    yield base, base.astype(">f8")  # byte-swapped: converted
    yield base, base.tolist() if len(base) else base
    rounded = base.astype(np.float32)
    yield rounded.astype(np.float64), rounded


@pytest.mark.parametrize("kind", ["ellipse", "box", "skeleton"])
def test_track_reads_any_layout_like_contiguous(kind):
    frames = make_sequence(4, 6, 20, seed=11, p_missing_bpt=0.2, p_missing_animal=0.1)
    for k in range(5):
        a, b = _tracker(kind, 6), _tracker(kind, 6)
        for fr in frames:
            ref, other = list(_layouts(fr, kind))[k]
            got = b.track(other)
            want = a.track(ref)
            assert got.flags.c_contiguous and got.dtype == np.float64
            np.testing.assert_array_equal(got, want)


def _mode(row):
    """Most frequent value, smallest on ties, NaN if any NaN (scipy.stats.mode semantics)."""
    row = np.asarray(row, dtype=float).ravel()
    if row.size == 0 or np.isnan(row).any():
        return np.nan
    vals, counts = np.unique(row, return_counts=True)
    return vals[np.argmax(counts)]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_ids=st.integers(1, 4), p_nan=st.sampled_from([0.0, 0.05]))
def test_identity_aware_ellipse_matches_reference(seed, n_ids, p_nan):
    from mapose.tracking.sort import SORTEllipse

    rng = np.random.default_rng(seed)
    frames = make_sequence(4, 5, 25, seed=seed, p_missing_bpt=0.2, p_missing_animal=0.1)
    mine, ref = SORTEllipse(1, 1, 0.6), tracking_ref.EllipseSORT(1, 1, 0.6)
    for fr in frames:
        ids = rng.integers(0, n_ids, fr.shape[:2]).astype(float)
        ids[rng.random(ids.shape) < p_nan] = np.nan
        with np.errstate(all="ignore"):
            want = ref.track(np.ascontiguousarray(fr[..., :2]), [_mode(r) for r in ids])
        got = mine.track(fr[..., :2], ids)
        np.testing.assert_array_equal(got[:, -2:], want[:, -2:])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    live = [t.id_ for t in mine.trackers]
    assert all(v is None or isinstance(v, float) for v in live)


def test_identity_modes_and_shapes():
    from mapose.tracking.sort import SORTEllipse

    pose = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]])
    t = SORTEllipse(1, 1, 0.6)
    t.track(pose[None], np.array([[2.0, 2.0, 1.0, 1.0, 3.0]]))
    assert t.trackers[0].id_ == 1.0  # tie between 1 and 2: the smaller wins
    t = SORTEllipse(1, 1, 0.6)
    t.track(pose[None], np.array([7.0]))  # one identity per pose
    assert t.trackers[0].id_ == 7.0
    t = SORTEllipse(1, 1, 0.6)
    t.track(pose[None], np.array([[1.0, np.nan, 1.0, 1.0, 1.0]]))
    assert np.isnan(t.trackers[0].id_)
    assert t.track(np.empty((0, 5, 2)), np.empty((0, 5))).shape == (0, 7)  # no poses: ignored
    with pytest.raises(ValueError, match="identities must have one row per pose"):
        t.track(pose[None], np.zeros((2, 5)))


# --------------------------------------------------------------------------- build_tracklets helpers
frame_vals = st.one_of(st.floats(-50, 1e3, allow_nan=False, width=64), st.just(np.nan), st.just(-1.0))


@settings(max_examples=100, deadline=None)
@given(animals=hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(1, 7), st.sampled_from([3, 4])),
                          elements=frame_vals),
       pcutoff=st.one_of(st.none(), st.sampled_from([0.0, 0.5, 100.0])))
def test_clean_assemblies_matches_numpy_masks(animals, pcutoff):
    want = animals.copy()
    want[np.any(want[..., :3] < 0, axis=-1), :2] = np.nan
    if pcutoff is not None:
        want[want[..., 2] < pcutoff, :2] = np.nan
    keep = np.flatnonzero(~np.isnan(want[..., :2]).all(axis=(1, 2)))
    got = animals.copy()
    vis = tracking.clean_assemblies(got, pcutoff)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(vis, keep)
    with pytest.raises(TypeError, match="C-contiguous float64"):
        tracking.clean_assemblies(animals.astype(np.float32), pcutoff)


@settings(max_examples=100, deadline=None)
@given(animals=hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(1, 7), st.just(4)),
                          elements=frame_vals),
       slack=st.sampled_from([0.0, 3.5]), data=st.data())
def test_box_corners_match_calc_bboxes(animals, slack, data):
    nb = animals.shape[1]
    parts = data.draw(st.lists(st.integers(0, nb - 1), min_size=1, max_size=nb, unique=True).map(sorted))
    want = calc_bboxes_from_keypoints(animals[:, parts], slack)[:, :4]
    np.testing.assert_array_equal(tracking.box_corners(animals, parts, slack), want)
    np.testing.assert_array_equal(tracking.box_corners(animals[..., :2].tolist() if len(animals) else
                                                       animals, None, slack),
                                  calc_bboxes_from_keypoints(animals, slack)[:, :4])
