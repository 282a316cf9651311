"""TrackletStitcher.from_arrays and the release of the input keypoints by stitch().

References: ``TrackletStitcher.from_pickle`` / ``from_dict_of_dict`` on DeepLabCut's own
tracklet pickles (the unit-test trimouse / montblanc files, project A's ``_el.pickle``) and
DLC's ``_el.h5`` for project A; memory is checked by accounting for the array buffers the
stitcher still references (weakrefs and ``nbytes``), not by timing.
"""
from __future__ import annotations

import copy
import warnings
import weakref

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.io.safe_pickle import read_pickle
from mapose.stitching.stitcher import StitchingWarning, TrackletStitcher
from mapose.stitching.synthetic import fragmented_tracklets
from mapose.stitching.tracklet import Tracklet

STEM = "synthADLC_Resnet50_projANov23shuffle1_snapshot_best-50"


def _rows_from_dict(tracklets, interleave=True):
    """``(ids, frames, data)`` rows of a DLC tracklet dict; interleaved by frame (as a
    tracker emits them) unless ``interleave`` is False (grouped by tracklet)."""
    ids, frames, rows = [], [], []
    for key, frames_dict in tracklets.items():
        if key in ("header", "single") or not frames_dict:
            continue
        for fkey, row in frames_dict.items():
            ids.append(int(key))
            frames.append(TrackletStitcher.get_frame_ind(fkey))
            rows.append(np.asarray(row, dtype=np.float64))
    ids, frames, data = np.array(ids, np.int64), np.array(frames, np.int64), np.stack(rows)
    if interleave:
        order = np.argsort(frames, kind="stable")
        ids, frames, data = ids[order], frames[order], data[order]
    return ids, frames, data


def _same_pieces(a, b):
    assert len(a) == len(b)
    for s, t in zip(a, b):
        np.testing.assert_array_equal(s.inds, t.inds)
        np.testing.assert_array_equal(s.data, t.data)


def _stitched(st):
    st.build_graph()
    st.stitch()
    return st


def _buffer(a):
    while a.base is not None:
        a = a.base
    return a


def _held_bytes(stitcher):
    """Bytes of the distinct keypoint buffers the stitcher's tracklets, residuals and
    tracks reference (a view counts its whole base array)."""
    seen = {}
    for t in (*stitcher.tracklets, *stitcher.residuals, *stitcher.tracks):
        b = _buffer(t.data)
        seen[id(b)] = b.nbytes
    return sum(seen.values())


def _dlc_files(unittest_data, project_a):
    return {
        "trimouse": unittest_data / "trimouse_tracklets.pickle",
        "montblanc": unittest_data / "montblanc_tracklets.pickle",
        "project_a": project_a / "videos" / f"{STEM}_el.pickle",
    }


@pytest.mark.parametrize("name", ["trimouse", "montblanc", "project_a"])
def test_from_arrays_equals_from_pickle_on_dlc_files(name, unittest_data, project_a):
    path = _dlc_files(unittest_data, project_a)[name]
    raw = read_pickle(path)
    n_tracks = 3
    ref = TrackletStitcher.from_pickle(path, n_tracks)
    ids, frames, data = _rows_from_dict(raw)
    ours = TrackletStitcher.from_arrays(ids, frames, data, n_tracks, header=raw.get("header"),
                                        single=raw.get("single"))
    _same_pieces(ours.tracklets, ref.tracklets)
    _same_pieces(ours.residuals, ref.residuals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StitchingWarning)  # both stitch the same way
        _stitched(ref), _stitched(ours)
    _same_pieces(ours.tracks, ref.tracks)
    pd.testing.assert_frame_equal(ours.format_df(), ref.format_df())
    np.testing.assert_array_equal(ours.concatenate_data(), ref.concatenate_data())


def test_from_arrays_reproduces_dlc_el_h5(project_a, tmp_path):
    """Project A: DLC 3.0.2's own stitched tracks, from the tracklet rows as arrays."""
    raw = read_pickle(project_a / "videos" / f"{STEM}_el.pickle")
    ids, frames, data = _rows_from_dict(raw)
    st = _stitched(TrackletStitcher.from_arrays(ids, frames, data, 3, header=raw["header"],
                                                single=raw.get("single")))
    out = st.write_tracks(tmp_path / "tracks.h5", animal_names=["a", "b", "c"])
    ours = pd.read_hdf(out, key="tracks")
    dlc = pd.read_hdf(project_a / "videos" / f"{STEM}_el.h5", key="tracks")
    np.testing.assert_array_equal(ours.to_numpy(), dlc.to_numpy())


@pytest.mark.smoke
def test_from_arrays_takes_grouped_float64_data_without_a_copy_and_stitch_frees_it():
    raw, _truth = fragmented_tracklets(n_animals=3, n_bodyparts=4, n_frames=600, seed=3)
    ids, frames, data = _rows_from_dict(raw, interleave=False)
    alive = weakref.ref(data)
    st = TrackletStitcher.from_arrays(ids, frames, data, 3, header=raw["header"])
    del data
    assert alive() is not None  # the tracklets are views of the caller's array
    assert all(_buffer(t.data) is alive() for t in (*st.tracklets, *st.residuals))
    before = [(t.inds.copy(), t.data.copy()) for t in (*st.tracklets, *st.residuals)]
    reference = _stitched(TrackletStitcher.from_dict_of_dict(copy.deepcopy(raw), 3))
    _stitched(st)
    assert alive() is None  # nothing references the input rows any more
    # every tracklet / residual keeps its values (now a view of its track or its own copy)
    for (inds, data), t in zip(before, (*st.tracklets, *st.residuals)):
        np.testing.assert_array_equal(t.inds, inds)
        np.testing.assert_array_equal(t.data, data)
    _same_pieces(st.tracks, reference.tracks)
    pd.testing.assert_frame_equal(st.format_df(), reference.format_df())
    # keypoints held once: the tracks, plus own copies of pieces left out of every track
    in_tracks = {id(_buffer(t.data)) for t in st.tracks}
    left_out = [t for t in (*st.tracklets, *st.residuals) if id(_buffer(t.data)) not in in_tracks]
    expected = sum(t.data.nbytes for t in st.tracks) + sum(t.data.nbytes for t in left_out)
    assert _held_bytes(st) == expected
    assert sum(t.data.nbytes for t in left_out) < 0.05 * expected


@pytest.mark.smoke
def test_tracklets_become_views_of_their_track():
    raw, _ = fragmented_tracklets(n_animals=2, n_bodyparts=3, n_frames=400, seed=5)
    st = _stitched(TrackletStitcher.from_dict_of_dict(raw, 2))
    tracks = {id(_buffer(t.data)) for t in st.tracks}
    for path in st.paths:
        for t in path:
            assert id(_buffer(t.data)) in tracks
    # the constructor's concatenation of the input tracklets is not held any more
    assert _held_bytes(st) <= sum(t.data.nbytes for t in st.tracks) + sum(
        t.data.nbytes for t in st.residuals)


def test_constructor_from_tracklet_list_releases_its_concatenation():
    raw, _ = fragmented_tracklets(n_animals=3, n_bodyparts=4, n_frames=500, seed=7)
    ref = _stitched(TrackletStitcher.from_dict_of_dict(copy.deepcopy(raw), 3))
    pieces = [Tracklet(t.data.copy(), t.inds.copy()) for t in (*ref.tracklets, *ref.residuals)]
    st = TrackletStitcher(pieces, 3)
    bufs = {id(_buffer(t.data)) for t in st.tracklets}
    assert len(bufs) == 1  # one concatenated buffer before stitching
    big = weakref.ref(_buffer(st.tracklets[0].data))
    _stitched(st)
    assert big() is None
    assert _held_bytes(st) <= sum(t.data.nbytes for t in st.tracks) + sum(t.data.nbytes for t in st.residuals)


@pytest.mark.parametrize("add_back", [True, False])
def test_release_without_residuals_and_in_infeasible_problems(add_back):
    # three animals visible at once but n_tracks=2: DLC fails (#1260), mapose drops tracklets
    pieces = []
    for a in range(3):
        d = np.zeros((30, 2, 3))
        d[..., 0] = 10.0 * a
        d[..., 2] = 1
        pieces.append((np.full(30, a), np.arange(30), d))
    ids = np.concatenate([p[0] for p in pieces])
    frames = np.concatenate([p[1] for p in pieces])
    data = np.concatenate([p[2] for p in pieces])
    alive = weakref.ref(data)
    st = TrackletStitcher.from_arrays(ids, frames, data, 2)
    del data
    with pytest.warns(StitchingWarning):
        st.build_graph()
        st.stitch(add_back_residuals=add_back)
    assert alive() is None
    assert len(st.tracks) == 2 and all(len(t) == 30 for t in st.tracks)
    for t in (*st.tracklets, *st.residuals):
        assert t.data.shape == (30, 2, 3) and np.all(t.data[..., 2] == 1)


def test_single_animal_one_piece_track_keeps_the_input_array_once():
    d = np.random.default_rng(0).random((50, 3, 3))
    expected = d.copy()
    st = _stitched(TrackletStitcher.from_arrays(np.zeros(50, int), np.arange(50), d, 1))
    assert st.tracks[0] is st.tracklets[0]  # DLC: a one-piece path is the tracklet itself
    np.testing.assert_array_equal(st.tracks[0].data, expected)
    assert _held_bytes(st) == d.nbytes  # the whole input array is the track: no copy
    # a track that is a slice of a larger input array gets its own rows
    d2 = np.random.default_rng(1).random((60, 3, 3))
    d2[50:, :, :2] = np.nan  # dropped rows: the tracklet is a view of d2[:50]
    alive = weakref.ref(d2)
    st = TrackletStitcher.from_arrays(np.zeros(60, int), np.arange(60), d2, 1)
    del d2
    _stitched(st)
    assert alive() is None
    assert _held_bytes(st) == st.tracks[0].data.nbytes


def test_from_arrays_row_order_and_dtypes():
    raw, _ = fragmented_tracklets(n_animals=2, n_bodyparts=3, n_frames=300, seed=11, identity=True)
    ref = _stitched(TrackletStitcher.from_dict_of_dict(copy.deepcopy(raw), 2))
    ids, frames, data = _rows_from_dict(raw)
    # rows shuffled within the array: tracklet order = first appearance, rows sorted by frame
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(ids))
    ours = TrackletStitcher.from_arrays(ids[perm], frames[perm].astype(np.float64), data[perm], 2)
    _same_pieces(sorted(ours.tracklets, key=lambda t: (t.start, t.end, float(np.nansum(t.data)))),
                 sorted(ref.tracklets, key=lambda t: (t.start, t.end, float(np.nansum(t.data)))))
    _stitched(ours)
    # same tracks whatever the row order inside the arrays (each tracklet is sorted by frame)
    assert sorted(len(t) for t in ours.tracks) == sorted(len(t) for t in ref.tracks)
    np.testing.assert_array_equal(np.sort(ours.concatenate_data(), axis=1),
                                  np.sort(ref.concatenate_data(), axis=1))


@pytest.mark.smoke
@pytest.mark.parametrize("args, match, exc", [
    ((np.zeros(3), np.arange(3), np.zeros((2, 2, 3))), "one entry per row", ValueError),
    ((np.zeros(3), np.arange(3), np.zeros((3, 2, 5))), "3 or 4", ValueError),
    ((np.zeros(3), np.arange(3), np.zeros((3, 6))), "3 or 4", ValueError),
    ((np.zeros(3), np.arange(3) + 0.5, np.zeros((3, 2, 3))), "frames must hold integers", ValueError),
    ((np.zeros((3, 1)), np.arange(3), np.zeros((3, 2, 3))), "tracklet_ids must be 1-D", ValueError),
    ((np.zeros(0), np.zeros(0), np.zeros((0, 2, 3))), "Tracklets are empty", OSError),
])
def test_from_arrays_errors(args, match, exc):
    with pytest.raises(exc, match=match):
        TrackletStitcher.from_arrays(*args, 1)


@pytest.mark.smoke
def test_from_arrays_checks_n_tracks_and_single():
    args = (np.zeros(12), np.arange(12), np.ones((12, 2, 3)))
    with pytest.raises(ValueError, match="n_tracks"):
        TrackletStitcher.from_arrays(*args, 0)
    with pytest.raises(TypeError, match="single must be"):
        TrackletStitcher.from_arrays(*args, 1, single=[1, 2])
    st = TrackletStitcher.from_arrays(*args, 1, single={0: np.ones((1, 3)), 3: np.ones((1, 3))})
    assert st.single.inds.tolist() == [0, 3]
    assert TrackletStitcher.from_arrays(*args, 1, single={}).single is None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_animals=st.integers(1, 4), interleave=st.booleans(),
       residuals=st.sampled_from([0.0, 0.3]))
def test_from_arrays_equals_dict_path_property(seed, n_animals, interleave, residuals):
    raw, _ = fragmented_tracklets(n_animals=n_animals, n_bodyparts=2, n_frames=200, mean_length=25,
                                  residual_fraction=residuals, seed=seed)
    ids, frames, data = _rows_from_dict(raw, interleave=interleave)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StitchingWarning)
        ref = _stitched(TrackletStitcher.from_dict_of_dict(copy.deepcopy(raw), n_animals))
        ours = _stitched(TrackletStitcher.from_arrays(ids, frames, data, n_animals))
    _same_pieces(ours.tracklets, ref.tracklets)
    _same_pieces(ours.residuals, ref.residuals)
    _same_pieces(ours.tracks, ref.tracks)


def test_long_input_tracklets_are_taken_without_concatenation_and_freed_per_track():
    """Tracklets of >= 2048 rows are prepared one by one (views of the caller's arrays);
    the result equals from_arrays / the dict path, and each input array is released."""
    rng = np.random.default_rng(4)
    pieces, raw = [], {}
    for a in range(3):
        for k, (s, e) in enumerate([(0, 2499), (2503, 5000)]):
            d = np.empty((e - s + 1, 3, 3))
            d[..., :2] = 100.0 * a + rng.random((len(d), 3, 2))
            d[..., 2] = 0.9
            pieces.append(Tracklet(d, np.arange(s, e + 1)))
            raw[len(raw)] = {f"frame{f}": d[f - s].copy() for f in range(s, e + 1)}
    for s in (10, 40, 2500, 2501):  # short ones, prepared together
        d = np.full((3, 3, 3), 0.5)
        pieces.append(Tracklet(d, np.arange(s, s + 3)))
        raw[len(raw)] = {f"frame{f}": d[f - s].copy() for f in range(s, s + 3)}
    alive = [weakref.ref(p.data) for p in pieces[:6]]
    st = TrackletStitcher(pieces, 3)
    # no copy: the six long tracklets are the caller's arrays
    assert {id(_buffer(t.data)) for t in st.tracklets} == {id(w()) for w in alive}
    del pieces
    ref = _stitched(TrackletStitcher.from_dict_of_dict(raw, 3))
    _stitched(st)
    _same_pieces(st.tracklets, ref.tracklets)
    _same_pieces(st.residuals, ref.residuals)
    _same_pieces(st.tracks, ref.tracks)
    assert all(w() is None for w in alive)


def test_release_keeps_values_with_repeated_frames():
    """Repeated frames in a track (rows can't be matched by frame alone): values are
    compared, pieces keep exactly their rows."""
    rng = np.random.default_rng(9)
    a = Tracklet(rng.random((20, 2, 3)), np.r_[np.arange(10), np.arange(9, 19)])  # frame 9 twice
    b = Tracklet(rng.random((15, 2, 3)), np.arange(25, 40))
    r = Tracklet(rng.random((3, 2, 3)), np.arange(20, 23))  # residual between a and b
    st = TrackletStitcher([a, b, r], 1, split_tracklets=False)
    before = {id(t): (t.inds.copy(), t.data.copy()) for t in (*st.tracklets, *st.residuals)}
    _stitched(st)
    assert len(st.tracks) == 1 and len(st.tracks[0]) == 38
    for t in (*st.tracklets, *st.residuals):
        np.testing.assert_array_equal(t.inds, before[id(t)][0])
        np.testing.assert_array_equal(t.data, before[id(t)][1])
    assert _held_bytes(st) == st.tracks[0].data.nbytes
