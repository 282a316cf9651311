"""Compact tracklet-pickle reading (``read_tracklets_compact`` + ``mapose.kernels.stitch_pickle``).

Reference: the general restricted unpickler (:func:`mapose.io.safe_pickle.read_pickle`)
followed by the NumPy reference :mod:`mapose.kernels.stitch_pickle_ref`.
"""
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapose.io.safe_pickle import UnsafePickleError, read_pickle
from mapose.io.tracklets_pickle import FrameBlock, make_tracklet_header, read_tracklets_compact
from mapose.kernels import stitch_pickle, stitch_pickle_ref
from mapose.stitching.stitcher import TrackletStitcher


def _same_as_general_reader(path):
    fast = read_tracklets_compact(path)
    slow = read_pickle(path)
    assert list(fast) == list(slow)
    for k, v in slow.items():
        f = fast[k]
        if isinstance(v, pd.Index):
            assert f.equals(v) and f.names == v.names
            continue
        if isinstance(f, FrameBlock):
            inds, data = stitch_pickle_ref.compact_frames(v)
            np.testing.assert_array_equal(f.inds, inds)
            assert f.data.dtype == np.float64 and f.data.shape == data.shape
            assert f.data.tobytes() == data.tobytes()  # bit for bit, NaN payloads included
        else:
            assert stitch_pickle_ref.compact_frames(v) is None
            assert list(f) == list(v)
            for key in v:
                np.testing.assert_array_equal(np.asarray(f[key]), np.asarray(v[key]))
    return fast


@pytest.mark.parametrize("name", ["montblanc_tracklets.pickle", "trimouse_tracklets.pickle"])
def test_dlc_files(unittest_data, name):
    fast = _same_as_general_reader(unittest_data / name)
    assert sum(isinstance(v, FrameBlock) for v in fast.values()) >= 3


def test_dlc3_pytorch_file(project_a):
    for path in project_a.glob("*/*_el.pickle"):
        _same_as_general_reader(path)


def _tracklets(rng, n_tracklets, n_bpts, cols=4, keys="str"):
    out = {"header": make_tracklet_header("s", [f"b{i}" for i in range(n_bpts)])}
    for t in range(n_tracklets):
        n = int(rng.integers(1, 20))
        start = int(rng.integers(0, 500))
        frames = {}
        for f in range(start, start + n):
            arr = rng.normal(100, 30, (n_bpts, cols))
            arr[rng.random((n_bpts, cols)) < 0.1] = np.nan
            frames[f"frame{f:04d}" if keys == "str" else f] = arr
        out[np.int64(t)] = frames
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), protocol=st.sampled_from([2, 3, 4, 5]),
       n_bpts=st.integers(1, 6), cols=st.sampled_from([3, 4]), keys=st.sampled_from(["str", "int"]))
def test_generated_files_match_general_reader(tmp_path_factory, seed, protocol, n_bpts, cols, keys):
    rng = np.random.default_rng(seed)
    d = _tracklets(rng, int(rng.integers(1, 8)), n_bpts, cols, keys)
    if rng.random() < 0.3:
        d["single"] = {int(f): rng.normal(0, 1, (2, 3)) for f in range(int(rng.integers(1, 5)))}
    if rng.random() < 0.3:  # one odd tracklet: Fortran order, int keys mixed, float32
        odd = {"frame1": np.asfortranarray(rng.random((n_bpts, cols)).T).T,
               "frame2": rng.random((n_bpts, cols)).astype(np.float32)}
        d[np.int64(99)] = odd
    path = tmp_path_factory.mktemp("p") / "t_el.pickle"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    _same_as_general_reader(path)


def test_ragged_skeleton_rows_fall_back(tmp_path):
    rng = np.random.default_rng(0)
    d = _tracklets(rng, 2, 3)
    first = next(k for k in d if k != "header")
    key = next(iter(d[first]))
    d[first][key] = rng.random(9)  # flat predicted state, as the skeleton tracker writes
    path = tmp_path / "sk.pickle"
    path.write_bytes(pickle.dumps(d, protocol=5))
    fast = _same_as_general_reader(path)
    assert isinstance(fast[first], dict)
    s1 = TrackletStitcher.from_pickle(path, 2, min_length=3)
    s2 = TrackletStitcher.from_dict_of_dict(read_pickle(path), 2, min_length=3)
    assert [t.inds.tolist() for t in s1.tracklets] == [t.inds.tolist() for t in s2.tracklets]


@pytest.mark.smoke
def test_compact_frames_kernel_matches_reference():
    rng = np.random.default_rng(3)
    frames = {f"frame{i:03d}": rng.random((4, 4)) for i in range(7)}
    placeholders = pickle.loads(pickle.dumps(frames, protocol=5))  # real arrays: kernel says None
    assert stitch_pickle.compact_frames(placeholders) is None
    fb = {k: stitch_pickle.FromBuffer(bytearray(v.tobytes()), np.dtype(np.float64), v.shape, "C")
          for k, v in frames.items()}
    inds, data = stitch_pickle.compact_frames(fb)
    r_inds, r_data = stitch_pickle_ref.compact_frames(frames)
    np.testing.assert_array_equal(inds, r_inds)
    np.testing.assert_array_equal(data, r_data)
    for bad in ({"frameX1": fb["frame000"]}, {"fr1": fb["frame000"]}, {1.5: fb["frame000"]}, {}):
        assert stitch_pickle.compact_frames(bad) is None
        assert stitch_pickle_ref.compact_frames({k: frames["frame000"] for k in bad}) is None
    wrong = dict(fb)
    wrong["frame999"] = stitch_pickle.FromBuffer(bytearray(8), np.dtype(np.float64), (4, 4), "C")  # short buffer
    assert stitch_pickle.compact_frames(wrong) is None
    with pytest.raises(TypeError, match="frames must be a dict"):
        stitch_pickle.compact_frames([1, 2])
    arr = stitch_pickle.materialize(fb["frame002"])
    np.testing.assert_array_equal(arr, frames["frame002"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_refuses_arbitrary_globals(tmp_path):
    d = {"header": make_tracklet_header("s", ["a"]), np.int64(0): {"frame1": np.zeros((1, 4))},
         np.int64(1): {"frame2": _Evil()}}
    path = tmp_path / "evil_el.pickle"
    path.write_bytes(pickle.dumps(d, protocol=5))
    with pytest.raises(UnsafePickleError):
        read_tracklets_compact(path)
    with pytest.raises(UnsafePickleError):
        TrackletStitcher.from_pickle(path, 1)


def test_errors_are_the_general_readers(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_tracklets_compact(tmp_path / "missing.pickle")
    (tmp_path / "empty.pickle").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_tracklets_compact(tmp_path / "empty.pickle")
    d = _tracklets(np.random.default_rng(1), 3, 2)
    raw = pickle.dumps(d, protocol=5)
    (tmp_path / "cut.pickle").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_tracklets_compact(tmp_path / "cut.pickle")
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([1, 2]))
    assert read_tracklets_compact(tmp_path / "list.pickle") == [1, 2]  # layout checks are the caller's
    with pytest.raises(ValueError, match="does not hold a tracklet dict"):
        TrackletStitcher.from_pickle(tmp_path / "list.pickle", 1)
