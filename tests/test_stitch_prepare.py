"""Vectorised tracklet preparation and output helpers against literal references."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.stitching.stitcher import StitchingWarning, TrackletStitcher, _product_index
from mapose.stitching.tracklet import Tracklet


def _reference_prepare(tracklets, min_length, split):
    """DLC 3.0.2's loop in TrackletStitcher.__init__, one tracklet at a time."""
    keep, resid = [], []
    for t in tracklets:
        valid = ~np.isnan(t.xy).all(axis=(1, 2))
        if not valid.any():
            continue
        t = Tracklet(t.data[valid], t.inds[valid])
        if not t.is_continuous and split:
            cut = t.inds[np.flatnonzero(np.diff(t.inds) != 1) + 1]
            idx = sorted(set(np.searchsorted(t.inds, cut)))
            pieces = [Tracklet(d, i) for d, i in zip(np.split(t.data, idx), np.split(t.inds, idx)) if len(i)]
        else:
            pieces = [t]
        for p in pieces:
            (keep if len(p) >= min_length else resid).append(p)
    return keep, resid


@st.composite
def _tracklet(draw, nb):
    n = draw(st.integers(1, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = int(rng.integers(0, 100))
    steps = rng.choice([0, 1, 1, 1, 1, 2, 5], size=n - 1) if n > 1 else np.zeros(0, int)
    inds = start + np.concatenate([[0], np.cumsum(steps)])
    if draw(st.booleans()):
        inds = rng.permutation(inds)  # unsorted frame keys
    data = rng.normal(100, 20, (n, nb, draw(st.sampled_from([3, 4]))))
    data[rng.random(n) < 0.2, :, :2] = np.nan  # frames without any keypoint
    return data, inds


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3).flatmap(lambda nb: st.lists(_tracklet(nb), min_size=1, max_size=8)),
       st.integers(3, 8), st.booleans())
def test_prepare_matches_dlc_loop(blocks, min_length, split):
    tracklets = [Tracklet(d, i) for d, i in blocks]
    exp_keep, exp_resid = _reference_prepare(tracklets, min_length, split)
    if not exp_keep and not exp_resid:
        with pytest.raises(OSError, match="empty"):
            TrackletStitcher(tracklets, 2, min_length, split, prestitch_residuals=False)
        return
    s = TrackletStitcher.__new__(TrackletStitcher)
    s.min_length, s.tracklets, s.residuals = min_length, [], []
    s._ingest([(i, d) for d, i in blocks], split, presorted=False)  # raw blocks, as from a pickle
    for got, exp in ((s.tracklets, exp_keep), (s.residuals, exp_resid)):
        assert len(got) == len(exp)
        for g, e in zip(got, exp):
            np.testing.assert_array_equal(g.inds, e.inds)
            np.testing.assert_array_equal(g.data, e.data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StitchingWarning)  # e.g. only short pieces
        full = TrackletStitcher(tracklets, 2, min_length, split, prestitch_residuals=False)
    if not exp_keep:
        return
    assert sorted(len(t) for t in full.residuals) == sorted(len(t) for t in exp_resid)


def test_mixed_bodypart_counts_are_prepared_one_by_one():
    a = Tracklet(np.ones((12, 2, 3)), np.arange(12))
    b = Tracklet(np.ones((12, 3, 3)), np.arange(20, 32))
    s = TrackletStitcher([a, b], 2)
    assert [t.data.shape[1] for t in s.tracklets] == [2, 3]


@pytest.mark.smoke
@pytest.mark.parametrize("iterables", [
    [["DLC_x"], ["ind1", "ind2", "ind10"], ["snout", "leftear", "tail"], ["x", "y", "likelihood"]],
    [["s"], ["single"], ["b"], ["x", "y", "likelihood"]],
    [["s"], ["b", "a"], ["b"], ["x", "y", "likelihood"]],
    [["s"], [1, 2], ["b"], ["x", "y"]],  # not strings: from_product itself
    [["s"], ["a", "a"], ["b"], ["x"]],  # duplicates: from_product itself
])
def test_product_index_is_from_product(iterables):
    names = ["scorer", "individuals", "bodyparts", "coords"]
    exp = pd.MultiIndex.from_product(iterables, names=names)
    got = _product_index(iterables, names)
    assert got.equals(exp) and list(got) == list(exp) and got.names == exp.names
    for lg, le in zip(got.levels, exp.levels):
        assert lg.equals(le) and lg.dtype == le.dtype
    for cg, ce in zip(got.codes, exp.codes):
        assert cg.dtype == ce.dtype
        np.testing.assert_array_equal(cg, ce)
