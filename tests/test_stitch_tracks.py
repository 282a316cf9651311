"""Compiled stitcher kernels (mapose.kernels.stitch_tracks) against their NumPy/Python
references (mapose.kernels.stitch_tracks_ref): bit-identical centroids, identical
residual placements."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.kernels import stitch_tracks, stitch_tracks_ref
from mapose.stitching.tracklet import Tracklet


@st.composite
def keypoints(draw):
    n = draw(st.integers(0, 30))
    nb = draw(st.sampled_from([1, 2, 5, 7, 8, 9, 12, 16, 23, 40, 130]))
    cols = draw(st.sampled_from([3, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    data = rng.normal(0, 100, (n, nb, cols))
    data[..., 2] = rng.uniform(0, 1, (n, nb))
    mask = rng.random((n, nb, cols)) < draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    data[mask] = np.nan
    if n and draw(st.booleans()):
        data[rng.random((n, nb)) < 0.3, :] = -0.0  # signed zeros keep their sign as in NumPy
    return data


@settings(max_examples=200, deadline=None)
@given(keypoints())
def test_row_centroids_bitwise_equal_to_numpy(data):
    got, has = stitch_tracks.row_centroids(data, return_has_xy=True)
    ref, ref_has = stitch_tracks_ref.row_centroids(data, return_has_xy=True)
    assert got.shape == ref.shape == (len(data), 2)
    np.testing.assert_array_equal(got.view(np.uint64), ref.view(np.uint64))
    np.testing.assert_array_equal(has, ref_has)
    np.testing.assert_array_equal(stitch_tracks.row_centroids(data).view(np.uint64), got.view(np.uint64))


@pytest.mark.smoke
def test_row_centroids_match_tracklet_centroid_on_strided_input():
    rng = np.random.default_rng(1)
    big = rng.random((40, 5, 4))
    view = big[::3]  # not contiguous: read in place
    t = Tracklet(view.copy(), np.arange(len(view)))
    np.testing.assert_array_equal(stitch_tracks.row_centroids(view), t.centroid_at(slice(None)))
    with pytest.raises(ValueError, match="n_rows, n_bodyparts, 3 or 4"):
        stitch_tracks.row_centroids(big[..., :2])


@st.composite
def placements(draw):
    """Tracks occupying frames and residuals (some overlapping tracks, some in gaps)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_tracks = draw(st.integers(1, 5))
    n_frames = draw(st.integers(5, 60))
    occupied = rng.random((n_tracks, n_frames)) < draw(st.sampled_from([0.3, 0.7, 0.95]))
    src = np.full((n_tracks, n_frames), -1, np.int64)
    n_rows = int(occupied.sum())
    src[occupied] = rng.permutation(n_rows)
    n_res = draw(st.integers(0, 8))
    frames, offsets, first_row = [], [0], []
    row = n_rows
    for _ in range(n_res):
        length = int(rng.integers(1, 6))
        start = int(rng.integers(0, n_frames))
        f = np.unique(np.clip(start + np.cumsum(rng.integers(1, 3, length)) - 1, 0, n_frames - 1))
        frames.extend(f.tolist())
        offsets.append(len(frames))
        first_row.append(row)
        row += f.size
    cen = rng.normal(0, 10, (row, 2))
    if draw(st.booleans()):
        cen[rng.random(row) < 0.1] = np.nan
    if draw(st.booleans()):  # ties between candidate tracks
        cen = np.round(cen)
    return src, cen, np.array(frames, np.int64), np.array(offsets, np.int64), np.array(first_row, np.int64)


@settings(max_examples=300, deadline=None)
@given(placements())
def test_place_residuals_equals_reference(args):
    got = stitch_tracks.place_residuals(*args)
    ref = stitch_tracks_ref.place_residuals(*args)
    for g, r in zip(got, ref):
        np.testing.assert_array_equal(g, r)


@pytest.mark.smoke
def test_place_residuals_single_fit_then_nearest_and_left_out():
    # track 0 has frames 0-3 and 8-11, track 1 frames 0-11 except 5: residual A (frames
    # 4-6) fits track 0 only; residual B (frame 5) then fits track 1 only after A joined
    src = np.full((2, 12), -1, np.int64)
    src[0, [0, 1, 2, 3, 8, 9, 10, 11]] = np.arange(8)
    src[1, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]] = np.arange(8, 19)
    cen = np.zeros((23, 2))
    frames = np.array([4, 5, 6, 5, 0, 1])
    offsets = np.array([0, 3, 4, 6])
    first_row = np.array([19, 22, 21])
    assign, order, after = stitch_tracks.place_residuals(src, cen, frames, offsets, first_row)
    assert assign.tolist() == [0, 1, -1]  # C (frames 0-1) fits no track: left out
    assert order.tolist() == [0, 1]
    assert after[0, 4:7].tolist() == [19, 20, 21] and after[1, 5] == 22
    assert src[0, 4] == -1  # the input is not modified


def test_place_residuals_rejects_bad_indices():
    src = np.full((1, 4), -1, np.int64)
    with pytest.raises(ValueError, match="frames must lie in"):
        stitch_tracks.place_residuals(src, np.zeros((2, 2)), [7], [0, 1], [0])
    with pytest.raises(ValueError, match="offsets must"):
        stitch_tracks.place_residuals(src, np.zeros((2, 2)), [1], [0, 1, 1], [0])
    with pytest.raises(ValueError, match="cen"):
        stitch_tracks.place_residuals(src, np.zeros((2, 3)), [1], [0, 1], [0])
    assign, order, _ = stitch_tracks.place_residuals(src, np.zeros((0, 2)), [], [0], [])
    assert assign.size == 0 and order.size == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.2, 0.6]), st.booleans())
def test_box_affinities_equal_calc_iou_loop(seed, nan_fraction, degenerate):
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.stitching.tracklet import calc_iou

    rng = np.random.default_rng(seed)
    pieces = []
    for k in range(6):
        data = rng.normal(0, 20, (3, 4, 3)) + 10 * k
        data[..., 2] = 1.0
        data[rng.random((3, 4)) < nan_fraction, :2] = np.nan
        if degenerate and k % 2:
            data[..., 0] = 5.0  # zero-width boxes: union 0
        pieces.append(Tracklet(data, np.arange(3) + 4 * k))
    li = np.array([0, 0, 1, 2, 3, 4, 5], np.int64)
    lj = np.array([1, 2, 3, 4, 5, 5, 0], np.int64)
    with np.errstate(all="ignore"):
        got = TrackletStitcher._box_affinities(pieces, li, lj)
        ref = [1 - calc_iou(pieces[i].calc_bbox(-1), pieces[j].calc_bbox(0)) for i, j in zip(li, lj)]
    np.testing.assert_array_equal(np.array(got).view(np.uint64), np.array(ref).view(np.uint64))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 3, 6]), st.sampled_from([0, 1, 3]))
def test_flow_in_served_backwards_order_is_optimal(seed, n_animals, extra_tracks):
    """The stitcher's renumbered solve (supplies served from the last tracklet back)
    reaches the optimum of the plain solve and of networkx, with a valid flow."""
    import warnings

    from mapose.kernels.flow import InfeasibleFlowError, min_cost_flow
    from mapose.kernels.flow_ref import min_cost_flow as nx_min_cost_flow
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.stitching.synthetic import fragmented_tracklets

    d, _ = fragmented_tracklets(n_animals, 2, 150, mean_length=15, seed=seed % 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = TrackletStitcher.from_dict_of_dict(d, n_animals + extra_tracks)
        s.build_graph()
    g, n, k = s._graph, len(s._graph_nodes), s.n_tracks
    supply = np.concatenate([[k, -k], -np.ones(n, np.int64), np.ones(n, np.int64)])
    args = (supply, g.tail, g.head, g.cap, g.weight)
    try:
        plain = min_cost_flow(*args)
    except InfeasibleFlowError:
        with pytest.raises(InfeasibleFlowError):
            TrackletStitcher._min_cost_flow_dlc_layout(*args)
        return
    got = TrackletStitcher._min_cost_flow_dlc_layout(*args)
    assert got.cost == plain.cost == nx_min_cost_flow(*args).cost
    assert got.cost == int((got.flow * g.weight).sum())
    net = np.zeros(len(supply), np.int64)
    np.add.at(net, g.tail, got.flow)
    np.add.at(net, g.head, -got.flow)
    np.testing.assert_array_equal(net, supply)
    assert np.all((got.flow >= 0) & (got.flow <= g.cap))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(1, 6), st.sampled_from([3, 4]), st.booleans())
def test_fill_columns_equals_numpy_assignment(seed, n, nb, cols, repeats):
    rng = np.random.default_rng(seed)
    n_rows, n_tracks = 50, 3
    data = rng.normal(0, 10, (n, nb, cols))
    data[rng.random(data.shape) < 0.2] = np.nan
    rows = rng.integers(0, n_rows, n) if repeats else rng.permutation(n_rows)[:min(n, n_rows)]
    data = data[: len(rows)]
    k = int(rng.integers(0, n_tracks))
    got = np.full((n_tracks * 3 * nb, n_rows), np.nan)
    ref = got.copy()
    stitch_tracks.fill_columns(got, data, rows, k * 3 * nb)
    stitch_tracks_ref.fill_columns(ref, data, rows, k * 3 * nb)
    np.testing.assert_array_equal(got.view(np.uint64), ref.view(np.uint64))


def test_fill_columns_rejects_bad_input():
    table = np.zeros((6, 4))
    with pytest.raises(ValueError, match="C-contiguous"):
        stitch_tracks.fill_columns(table.T, np.zeros((1, 2, 3)), [0], 0)
    with pytest.raises(ValueError, match="do not fit"):
        stitch_tracks.fill_columns(table, np.zeros((1, 2, 3)), [0], 3)
    with pytest.raises(ValueError, match="rows must lie"):
        stitch_tracks.fill_columns(table, np.zeros((1, 2, 3)), [4], 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), min_size=0, max_size=12))
def test_max_gap_of_sorted_tracklets_equals_pairwise_definition(spans):
    """DLC: per tracklet (in list order) the smallest positive gap to a later-listed one;
    the largest of those."""
    from mapose.stitching.stitcher import TrackletStitcher

    ts = sorted((Tracklet(np.ones((n, 1, 3)), np.arange(s, s + n)) for s, n in spans), key=lambda t: t.start)
    expected = 0
    for i, a in enumerate(ts):
        gaps = [g for b in ts[i + 1:] for g in (b.start - a.end, a.start - b.end) if g > 0]
        expected = max(expected, min(gaps)) if gaps else expected
    assert TrackletStitcher.compute_max_gap(ts) == expected
    assert TrackletStitcher.compute_max_gap(ts[::-1]) == max(
        [0] + [min([g for b in ts[::-1][i + 1:] for g in (b.start - a.end, a.start - b.end) if g > 0] or [0])
               for i, a in enumerate(ts[::-1])])


def test_prestitched_residual_centroids_equal_recomputed():
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.stitching.synthetic import fragmented_tracklets

    d, _ = fragmented_tracklets(4, 3, 400, mean_length=20, residual_fraction=0.4, seed=11)
    s = TrackletStitcher.from_dict_of_dict(d, 4)
    assert s.residuals
    for t in (*s.tracklets, *s.residuals):
        np.testing.assert_array_equal(t.centroid, Tracklet(t.data.copy(), t.inds.copy()).centroid)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # also the infeasible case: dropped tracklets re-added
        s.build_graph()
        s.stitch()
    for t in (*s.tracks, *s.tracklets, *s.residuals):  # carried through assembly and binding
        np.testing.assert_array_equal(t.centroid, Tracklet(t.data.copy(), t.inds.copy()).centroid)


def test_lazy_flow_dict_and_paths_equal_the_networkx_graph_route():
    """stitch() reads paths from the flow arrays and builds DLC's flow dict when read;
    with the graph materialised first (G), the dict route of DLC's reconstruct_path runs:
    the same paths, the same flow dict (used edges taken off), also after a new graph."""
    import warnings

    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.stitching.synthetic import fragmented_tracklets

    d, _ = fragmented_tracklets(3, 3, 400, mean_length=25, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = TrackletStitcher.from_dict_of_dict(dict(d), 3)
        slow = TrackletStitcher.from_dict_of_dict(dict(d), 3)
        for s in (fast, slow):
            s.build_graph()
        assert slow.G is not None  # edits to G would be honoured: the dict route
        for s in (fast, slow):
            s.stitch()
    index = {id(t): i for i, t in enumerate(fast.tracklets)}
    index_slow = {id(t): i for i, t in enumerate(slow.tracklets)}
    assert [[index[id(t)] for t in p] for p in fast.paths] == [[index_slow[id(t)] for t in p] for p in slow.paths]
    assert fast.flow == slow.flow
    assert sum(fast.flow["source"].values()) == 3 and all(
        f == 0 for node, succ in fast.flow.items() if node.endswith("out") for f in succ.values())
    fast.build_graph(nodes=fast.tracklets[:5])  # a new graph does not change the solved flow
    assert fast.flow == slow.flow
    # a second reconstruction sees the used out-edges taken off (DLC's dict is mutated too)
    again = [[index[id(t)] for t in p] for p in fast.reconstruct_paths()]
    assert again == [[index_slow[id(t)] for t in p] for p in slow.reconstruct_paths()]
    assert all(len(p) == 1 for p in again)
