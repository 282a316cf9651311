"""Packed tracklet-pickle reading (``read_tracklets_packed``: every tracklet's rows in one
buffer) and ``TrackletStitcher.from_pickle`` built on it.

References: ``read_tracklets_compact`` (the per-tracklet blocks, itself checked against
the general restricted unpickler in test_stitch_pickle.py) and ``from_dict_of_dict`` on
the general reader's dict (the construction path that does not use the packed buffer).
"""
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapose.io.safe_pickle import read_pickle
from mapose.io.tracklets_pickle import FrameBlock, make_tracklet_header, read_tracklets_compact, read_tracklets_packed
from mapose.stitching.stitcher import StitchingWarning, TrackletStitcher
from mapose.stitching.synthetic import fragmented_tracklets


def _write(path, d, protocol=5):
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    return path


def _check_packed_like_compact(path):
    got, packed = read_tracklets_packed(path)
    ref = read_tracklets_compact(path)
    assert list(got) == list(ref)
    for k, v in ref.items():
        if isinstance(v, FrameBlock):
            assert isinstance(got[k], FrameBlock)
            np.testing.assert_array_equal(got[k].inds, v.inds)
            assert got[k].data.tobytes() == v.data.tobytes() and got[k].data.shape == v.data.shape
        elif isinstance(v, pd.Index):
            assert got[k].equals(v)
        else:
            assert got[k] == v or (not got[k] and not v)
    return got, packed


def _same_stitcher(path, n_tracks, **kw):
    """from_pickle (packed) against from_dict_of_dict on the general reader's dict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StitchingWarning)
        ours = TrackletStitcher.from_pickle(path, n_tracks, **kw)
        ref = TrackletStitcher.from_dict_of_dict(read_pickle(path), n_tracks, **kw)
        for s in (ours, ref):
            s.build_graph()
            s.stitch()
    for a, b in ((ours.tracklets, ref.tracklets), (ours.residuals, ref.residuals), (ours.tracks, ref.tracks)):
        assert len(a) == len(b)
        for s, t in zip(a, b):
            np.testing.assert_array_equal(s.inds, t.inds)
            assert s.data.tobytes() == t.data.tobytes()
    pd.testing.assert_frame_equal(ours.format_df(), ref.format_df())
    return ours


@pytest.mark.smoke
def test_packed_blocks_are_views_of_one_buffer(tmp_path):
    d, _ = fragmented_tracklets(3, 4, 300, mean_length=30, seed=2)
    path = _write(tmp_path / "a_el.pickle", d)
    got, packed = _check_packed_like_compact(path)
    inds, data = packed
    blocks = [v for v in got.values() if isinstance(v, FrameBlock)]
    assert sum(len(b.inds) for b in blocks) == len(inds) == len(data)
    assert all(b.inds.base is inds and b.data.base is data for b in blocks)
    np.testing.assert_array_equal(np.concatenate([b.inds for b in blocks]), inds)
    _same_stitcher(path, 3)


def test_dlc_files_packed(unittest_data, project_a):
    for path, n in ((unittest_data / "montblanc_tracklets.pickle", 3),
                    (unittest_data / "trimouse_tracklets.pickle", 3),
                    *((p, 3) for p in project_a.glob("videos/*_el.pickle"))):
        _, packed = _check_packed_like_compact(path)
        assert packed is not None
        _same_stitcher(path, n)


def _tracklets(rng, n_tracklets, n_bpts, cols, keys):
    out = {"header": make_tracklet_header("s", [f"b{i}" for i in range(n_bpts)])}
    for t in range(n_tracklets):
        n = int(rng.integers(1, 25))
        start = int(rng.integers(0, 200))
        out[np.int64(t)] = {(f"frame{f:04d}" if keys == "str" else f): rng.normal(100, 30, (n_bpts, cols))
                            for f in range(start, start + n)}
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), protocol=st.sampled_from([3, 4, 5]), n_bpts=st.integers(1, 5),
       cols=st.sampled_from([3, 4]), keys=st.sampled_from(["str", "int"]), single=st.booleans(),
       empty=st.booleans(), ragged=st.booleans(), header_last=st.booleans())
def test_packed_generated_files(tmp_path_factory, seed, protocol, n_bpts, cols, keys, single, empty, ragged,
                                header_last):
    rng = np.random.default_rng(seed)
    d = _tracklets(rng, int(rng.integers(1, 12)), n_bpts, cols, keys)
    if single:  # unique body parts: listed last in the header
        d["header"] = make_tracklet_header("s", [f"b{i}" for i in range(n_bpts)] + ["u0", "u1"])
        d["single"] = {int(f): rng.normal(0, 1, (2, 3)) for f in range(int(rng.integers(1, 5)))}
    if empty:
        d[np.int64(77)] = {}
    if ragged:  # one tracklet with another body-part count: no shared buffer
        d[np.int64(78)] = {f"frame{f:04d}": rng.normal(0, 1, (n_bpts + 1, cols)) for f in range(30, 45)}
    if header_last:
        d["header"] = d.pop("header")
    path = _write(tmp_path_factory.mktemp("p") / "t_el.pickle", d, protocol)
    _, packed = _check_packed_like_compact(path)
    assert (packed is None) == ragged
    if not ragged:
        _same_stitcher(path, 2, min_length=3)


def test_unreadable_by_the_byte_reader_falls_back(tmp_path):
    d, _ = fragmented_tracklets(2, 3, 200, mean_length=30, seed=4)
    path = _write(tmp_path / "p2_el.pickle", d, protocol=2)  # outside the compiled grammar
    got, packed = read_tracklets_packed(path)
    assert packed is None and set(got) == set(read_tracklets_compact(path))
    _same_stitcher(path, 2)
    with pytest.raises(FileNotFoundError):
        read_tracklets_packed(tmp_path / "missing_el.pickle")
