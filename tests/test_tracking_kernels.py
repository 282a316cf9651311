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
