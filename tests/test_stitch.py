"""TrackletStitcher: DLC's test_stitcher checklist, real files, DLC-crash cases, networkx cross-checks."""
import copy
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.io.safe_pickle import read_pickle
from mapose.stitching.api import identity_weighted_distance
from mapose.stitching.stitcher import StitchingWarning, TrackletStitcher
from mapose.stitching.synthetic import fragmented_tracklets
from mapose.stitching.tracklet import Tracklet


def _piece(start, stop, x, n_bpts=2, ident=None):
    d = np.zeros((stop - start + 1, n_bpts, 3 if ident is None else 4))
    d[..., 0] = x
    d[..., 1] = np.arange(n_bpts)
    d[..., 2] = 1
    if ident is not None:
        d[..., 3] = ident
    return Tracklet(d, np.arange(start, stop + 1))


@pytest.fixture
def fake_stitcher():
    # two animals over 1000 frames, each cut into 10 pieces of 100 frames
    pieces = [_piece(k * 100, k * 100 + 99, 10.0 * a) for a in range(2) for k in range(10)]
    return TrackletStitcher(pieces, n_tracks=2)


@pytest.fixture
def montblanc(unittest_data):
    return read_pickle(unittest_data / "montblanc_tracklets.pickle")


@pytest.fixture
def trimouse(unittest_data):
    return read_pickle(unittest_data / "trimouse_tracklets.pickle")


# -- construction ---------------------------------------------------------------------------
@pytest.mark.smoke
def test_wrong_inputs():
    with pytest.raises(OSError, match="Tracklets are empty"):
        TrackletStitcher([], n_tracks=2)
    with pytest.raises(ValueError, match="min_length"):
        TrackletStitcher([_piece(0, 20, 0)], n_tracks=1, min_length=2)
    with pytest.raises(ValueError, match="n_tracks"):
        TrackletStitcher([_piece(0, 20, 0)], n_tracks=0)


def test_purify_and_split():
    t = _piece(0, 9, 1.0)
    t.data[:] = np.nan
    assert TrackletStitcher.purify_tracklet(t) is None
    t.data[0] = 1
    p = TrackletStitcher.purify_tracklet(t)
    assert len(p) == 1 and p.inds[0] == 0
    gappy = _piece(0, 30, 1.0) - _piece(10, 12, 1.0)
    parts = TrackletStitcher.split_tracklet(gappy, [13])
    assert [(x.start, x.end) for x in parts] == [(0, 9), (13, 30)]


def test_fake_stitcher(fake_stitcher, tmp_path):
    s = fake_stitcher
    assert len(s) == 20 and s.n_frames == 1000 and not s.residuals
    s.build_graph()
    assert s.max_gap == 1
    s.stitch()
    assert len(s.tracks) == 2 and all(len(t) == 1000 for t in s.tracks)
    assert sorted({float(np.nanmean(t.xy[..., 0])) for t in s.tracks}) == [0.0, 10.0]
    out = s.write_tracks(tmp_path / "tracks.h5", animal_names=["a", "b"])
    df = pd.read_hdf(out, key="tracks")
    assert df.shape == (1000, 12)
    assert list(df.columns.get_level_values("individuals").unique()) == ["a", "b"]


def test_edited_graph_is_honoured_and_warns(fake_stitcher):
    s = fake_stitcher
    s.build_graph()
    s.G.remove_edge("source", "0in")
    s.G.remove_edge("source", "1in")
    with pytest.warns(StitchingWarning):
        s.stitch()
    assert len(s.tracks) >= 1


def test_interpolate_in_stitcher_output(fake_stitcher):
    s = fake_stitcher
    s.build_graph()
    s.stitch()
    t = s.tracks[0]
    t.del_data_at(500)
    t.del_data_at(501)
    assert len(t.interpolate(max_gap=1)) == 998
    assert len(t.interpolate(max_gap=2)) == 1000


# -- DLC's real test files -------------------------------------------------------------------
def test_trimouse(trimouse, tmp_path):
    s = TrackletStitcher.from_dict_of_dict(trimouse, n_tracks=3)
    assert "header" not in trimouse  # popped, as DLC does
    assert len(s) == 3 and not s.residuals
    assert all(t.identity == -1 for t in s.tracklets)
    assert s.compute_max_gap(s.tracklets) == 0
    s.build_graph()
    edges = list(s.G.edges(data="weight"))
    assert len(edges) == 9 and all(w is None for *_, w in edges)
    s.stitch()
    assert len(s.tracks) == 3
    for t in s.tracks:
        assert len(t) == 50
        assert 0.998 <= t.likelihood <= 1
    out = s.write_tracks(tmp_path / "tri.h5", animal_names=["m1", "m2", "m3"], save_as_csv=True)
    df = pd.read_hdf(out)
    assert df.shape == (50, 108)
    assert (tmp_path / "tri.csv").exists()


def test_montblanc_exact(montblanc, unittest_data):
    s = TrackletStitcher.from_dict_of_dict(montblanc, n_tracks=3)
    assert len(s) == 5
    assert [(t.start, t.end, len(t)) for t in s.tracklets] == [
        (0, 128, 129), (0, 130, 131), (3, 179, 177), (130, 179, 50), (135, 179, 45)]
    assert [len(r) for r in s.residuals] == [2]
    assert s.compute_max_gap(s.tracklets) == 5
    s.build_graph()
    assert s.G.number_of_edges() == 18
    assert list(s.weights.values()) == [2453, 24498, 5428]
    assert list(s.weights) == [("0out", "3in"), ("0out", "4in"), ("1out", "4in")]
    s.stitch()
    assert sorted(len(t) for t in s.tracks) == [176, 179, 179]
    for t in s.tracks:
        assert len(t) >= 176 and 0.996 <= t.likelihood <= 1
    df = s.format_df()
    ref = pd.read_hdf(unittest_data / "montblanc_tracks.h5")
    assert df.shape == ref.shape == (180, 39)
    np.testing.assert_array_equal(df.to_numpy(), ref.to_numpy())
    assert df.columns.get_level_values("individuals").unique().tolist() == ["ind1", "ind2", "ind3", "single"]
    assert s.single is not None and len(s.single) == 78


def test_montblanc_from_pickle_default_name(unittest_data, tmp_path):
    src = unittest_data / "montblanc_tracklets.pickle"
    dst = tmp_path / "vidDLC_el.pickle"
    dst.write_bytes(src.read_bytes())
    s = TrackletStitcher.from_pickle(dst, n_tracks=3)
    s.build_graph()
    s.stitch()
    out = s.write_tracks()
    assert out == tmp_path / "vidDLC_el.h5"
    ref = pd.read_hdf(unittest_data / "montblanc_tracks.h5")
    np.testing.assert_array_equal(pd.read_hdf(out, "tracks").to_numpy(), ref.to_numpy())
    assert s.write_tracks(suffix="tr") == tmp_path / "vidDLC_el_tr.h5"


def test_identity_recovered(trimouse):
    data = copy.deepcopy(trimouse)
    header = data.pop("header")
    for k, key in enumerate(sorted(data, key=int)):
        for arr in data[key].values():
            arr[:, 3] = k
    # split each tracklet at frame 25 -> 6 tracklets
    split = {}
    for key, frames in data.items():
        split[np.int64(2 * key)] = {f: v for f, v in frames.items() if f < 25}
        split[np.int64(2 * key + 1)] = {f: v for f, v in frames.items() if f >= 25}
    split["header"] = header
    s = TrackletStitcher.from_dict_of_dict(copy.deepcopy(split), n_tracks=3)
    assert len(s) == 6
    s.build_graph()
    plain = dict(s.weights)
    s2 = TrackletStitcher.from_dict_of_dict(copy.deepcopy(split), n_tracks=3)
    s2.build_graph(weight_func=identity_weighted_distance())
    assert s2.G.number_of_edges() == 27
    ids = [t.identity for t in s2.tracklets]
    for (u, v), w in s2.weights.items():
        i, j = int(u[:-3]), int(v[:-2])
        assert w == (plain[(u, v)] // 100 if ids[i] == ids[j] else plain[(u, v)])
    s2.stitch()
    tracks = sorted(s2.tracks, key=lambda t: t.identity)
    assert [t.identity for t in tracks] == [0, 1, 2]
    assert all(len(t) == 50 for t in tracks)


# -- graph and solver: same optimum as networkx on DLC's own graph ----------------------------
@st.composite
def interval_tracklets(draw):
    n = draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(n):
        s = int(rng.integers(0, 80))
        ln = int(rng.integers(3, 25))
        d = rng.random((ln, 2, 3)) * 50
        d[..., 2] = 1
        out.append(Tracklet(d, np.arange(s, s + ln)))
    return out, draw(st.integers(1, 4))


@settings(max_examples=80, deadline=None)
@given(case=interval_tracklets())
def test_same_optimum_as_networkx_capacity_scaling(case):
    tracklets, n_tracks = case
    s = TrackletStitcher(tracklets, n_tracks, min_length=3, prestitch_residuals=False)
    s.build_graph(max_gap=30)
    G = s.G.copy()
    try:
        want, _ = nx.capacity_scaling(G)
    except nx.NetworkXUnfeasible:
        with pytest.warns(StitchingWarning, match="cannot be covered|could be reconstructed|can start"):
            s.stitch(add_back_residuals=False)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.stitch(add_back_residuals=False)
    got = sum(s.weights.get((s._mapping[a]["out"], s._mapping[b]["in"]), 0)
              for p in s.paths for a, b in zip(p[:-1], p[1:]))
    assert got == want
    # every tracklet is in a track; DLC's graph lets a tracklet serve two tracks (its
    # in->out edge may carry a unit), so duplicates are legal optima as in networkx
    assert {id(t) for p in s.paths for t in p} == {id(t) for t in s.tracklets}


def test_unique_optimum_paths_are_the_true_animals():
    d, truth = fragmented_tracklets(n_animals=6, n_bodyparts=4, n_frames=600, mean_length=40,
                                    residual_fraction=0.0, seed=11, arena=3000.0)
    ids = [k for k in d if k != "header"]
    s = TrackletStitcher.from_dict_of_dict(copy.deepcopy(d), n_tracks=6)
    s.build_graph()
    s.stitch()
    # map tracklets back to generated ids through their first frame and position
    lookup = {}
    for k in ids:
        first = next(iter(d[k]))
        lookup[(int(first[5:]), round(float(np.nanmean(d[k][first][:, 0])), 6))] = truth[k]
    pure = 0
    for p in s.paths:
        animals = {lookup[(t.start, round(float(np.nanmean(t.data[0, :, 0])), 6))] for t in p}
        pure += len(animals) == 1
    assert pure == 6


# -- where DeepLabCut crashes or degrades ------------------------------------------------------
def test_1260_infeasible_flow_keeps_most_frames():
    ts = [_piece(0, 30, 0), _piece(0, 30, 5), _piece(0, 30, 10), _piece(31, 60, 0)]
    s = TrackletStitcher(ts, 2)
    s.build_graph()
    with pytest.warns(StitchingWarning, match=r"cannot be covered by n_tracks=2.*increase n_tracks"):
        s.stitch()
    assert sorted(len(t) for t in s.tracks) == [31, 61]
    assert s.format_df().shape == (61, 12)


def test_1308_single_track(montblanc):
    s = TrackletStitcher.from_dict_of_dict(montblanc, n_tracks=1)
    s.build_graph()
    with pytest.warns(StitchingWarning, match="n_tracks=1"):
        s.stitch()
    assert len(s.tracks) == 1 and len(s.tracks[0]) == 179  # DLC 3.0.2 keeps 174
    assert not s.tracks[0].contains_duplicates()
    assert s.format_df().shape == (180, 15)


def test_1925_all_tracklets_short():
    with pytest.warns(StitchingWarning, match=r"min_length=10.*Tracklets are empty"):
        s = TrackletStitcher([_piece(0, 5, 0), _piece(20, 25, 5)], 2)
    s.build_graph()
    s.stitch()
    assert sorted(len(t) for t in s.tracks) == [6, 6]


def test_2146_empty_tracklet_dicts(montblanc):
    with pytest.raises(OSError, match="holds no animal tracklet"):
        TrackletStitcher.from_dict_of_dict({0: {}, 1: {}, "header": montblanc["header"]}, 2)
    data = {np.int64(9): {}, **copy.deepcopy(montblanc)}
    s = TrackletStitcher.from_dict_of_dict(data, 3)
    assert len(s) == 5


def test_2684_no_gap_gives_max_gap_zero():
    ts = [_piece(0, 30, 0), _piece(5, 40, 5), _piece(10, 50, 10)]
    s = TrackletStitcher(ts, 2)
    with pytest.warns(StitchingWarning, match="#2684"):
        s.build_graph()
    assert s.max_gap == 0
    with pytest.warns(StitchingWarning, match="cannot be covered"):
        s.stitch()
    assert len(s.tracks) == 2


def test_more_tracks_than_tracklets():
    s = TrackletStitcher([_piece(0, 30, 0), _piece(0, 30, 5)], 4)
    s.build_graph()
    with pytest.warns(StitchingWarning, match="Only 2 of n_tracks=4"):
        s.stitch()
    df = s.format_df()
    assert df.shape == (31, 24)
    assert df.iloc[:, 12:].isna().all().all()


def test_all_nan_tracklets():
    with pytest.raises(OSError, match="no tracklet holds a single finite keypoint"):
        TrackletStitcher([Tracklet(np.full((20, 2, 3), np.nan), np.arange(20))], 2)


def test_nan_likelihood_weights_do_not_crash():
    a, b = _piece(0, 20, 0), _piece(22, 40, 1)
    b.data[:, :, 2] = np.nan
    a.data[-1, :, :2] = np.nan
    a.data[-1, 0, :2] = 1
    s = TrackletStitcher([a, b, _piece(0, 40, 50)], 2)
    with pytest.warns(StitchingWarning, match="NaN/inf"):
        s.build_graph()  # DLC: ValueError from int(nan)
    s.stitch()
    assert len(s.tracks) == 2


def test_no_output_name_without_pickle(fake_stitcher):
    fake_stitcher.build_graph()
    fake_stitcher.stitch()
    with pytest.raises(ValueError, match="output_name is required"):
        fake_stitcher.write_tracks()


def test_format_df_names(fake_stitcher):
    fake_stitcher.build_graph()
    fake_stitcher.stitch()
    cols = lambda df: df.columns.get_level_values("individuals").unique().tolist()  # noqa: E731
    assert cols(fake_stitcher.format_df(["x"])) == ["ind1", "ind2"]
    assert cols(fake_stitcher.format_df(["a", "b", "c"])) == ["a", "b"]
    assert fake_stitcher.format_df().columns.get_level_values("bodyparts").unique().tolist() == ["bpt1", "bpt2"]


def test_skeleton_flat_rows_and_int_keys(montblanc):
    # skeleton tracker quirk: a frame without detection stores a flat (3n,) predicted state
    d = {"header": montblanc["header"]}
    rows = {k: np.tile([[float(k), 1.0, 0.9, 0.0]], (4, 1)) for k in range(30)}
    rows[5] = np.tile([5.0, 1.0, 1.0], 4)
    d[np.int64(0)] = rows
    d[np.int64(1)] = {f"frame{k:03d}": np.tile([[100.0 + k, 1.0, 0.9, 0.0]], (4, 1)) for k in range(30)}
    s = TrackletStitcher.from_dict_of_dict(d, n_tracks=2)
    t0 = min(s.tracklets, key=lambda t: t.data[0, 0, 0])
    assert t0.data.shape == (30, 4, 4)
    np.testing.assert_array_equal(t0.data[5, :, :3], np.tile([5.0, 1.0, 1.0], (4, 1)))
    assert np.isnan(t0.data[5, :, 3]).all()
    with pytest.raises(ValueError, match="frame number"):
        TrackletStitcher.get_frame_ind("nodigits")


def test_plots_run(montblanc):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    s = TrackletStitcher.from_dict_of_dict(montblanc, n_tracks=3)
    with pytest.raises(ValueError, match="stitch"):
        s.plot_tracks()
    s.build_graph()
    s.stitch()
    for fig in (s.plot_tracklets(), s.plot_paths(), s.plot_tracks(), s.draw_graph(with_weights=True),
                s.tracklets[0].plot()[0].figure):
        assert fig.axes
    plt.close("all")
