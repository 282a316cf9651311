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


# ---- the compiled byte-level reader (scan_tracklets) ---------------------------------

def _scan(path):
    return stitch_pickle.scan_tracklets(path.read_bytes())


def _assert_scan_matches(path):
    """The byte-level reader alone (no fallback) gives the general reader's content."""
    from mapose.io.tracklets_pickle import _read_spans_and_blocks

    fast = _read_spans_and_blocks(path.read_bytes())
    assert fast is not None, "the byte-level reader declined a file it should read"
    slow = read_pickle(path)
    assert list(fast) == list(slow)
    assert [type(k) for k in fast] == [type(k) for k in slow]
    for k, v in slow.items():
        if isinstance(v, pd.Index):
            assert fast[k].equals(v) and fast[k].names == v.names
            assert type(fast[k]) is type(v)
            continue
        if not v:
            assert fast[k] == {}
            continue
        inds, data = stitch_pickle_ref.compact_frames(v)
        np.testing.assert_array_equal(fast[k].inds, inds)
        assert fast[k].data.shape == data.shape and fast[k].data.tobytes() == data.tobytes()


@pytest.mark.parametrize("name", ["montblanc_tracklets.pickle", "trimouse_tracklets.pickle"])
def test_scan_dlc_files(unittest_data, name):
    _assert_scan_matches(unittest_data / name)  # TF era: protocol 4, header last / "single"


def test_scan_dlc3_pytorch_file(project_a):
    paths = list(project_a.glob("*/*_el.pickle"))
    assert paths
    for path in paths:  # DLC 3.0.2: protocol 5, _frombuffer, header first
        _assert_scan_matches(path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), protocol=st.sampled_from([3, 4, 5]),
       n_bpts=st.integers(1, 6), cols=st.sampled_from([3, 4]), keys=st.sampled_from(["str", "int"]),
       single=st.booleans(), header_last=st.booleans(), empty=st.booleans())
def test_scan_generated_files(tmp_path_factory, seed, protocol, n_bpts, cols, keys, single,
                              header_last, empty):
    rng = np.random.default_rng(seed)
    d = _tracklets(rng, int(rng.integers(0, 8)), n_bpts, cols, keys)
    if single:
        d["single"] = {int(f): rng.normal(0, 1, (2, 3)) for f in range(int(rng.integers(1, 5)))}
    if empty:
        d[np.int64(77)] = {}
    if header_last:
        d["header"] = d.pop("header")
    path = tmp_path_factory.mktemp("s") / "t_el.pickle"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    _assert_scan_matches(path)
    _same_as_general_reader(path)


def test_scan_skeleton_flat_states(tmp_path):
    rng = np.random.default_rng(5)
    d = {"header": make_tracklet_header("s", ["a", "b"]),
         np.int64(0): {f"frame{i}": rng.random(6) for i in range(5)}}
    path = tmp_path / "sk.pickle"
    path.write_bytes(pickle.dumps(d, protocol=5))
    _assert_scan_matches(path)
    assert read_tracklets_compact(path)[0].data.shape == (5, 6)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("odd", ["float32", "bigendian", "fortran", "unsorted", "duplicate_number",
                                 "list_value", "float_key", "ragged"])
def test_scan_declines_what_it_does_not_cover(tmp_path, protocol, odd):
    """Outside the grammar the byte reader says None and the result is the general one."""
    rng = np.random.default_rng(2)
    frames = {f"frame{i}": rng.random((3, 4)) for i in range(4)}
    if odd == "float32":
        frames["frame2"] = frames["frame2"].astype(np.float32)
    elif odd == "bigendian":
        frames = {k: v.astype(">f8") for k, v in frames.items()}
    elif odd == "fortran":
        frames["frame1"] = np.asfortranarray(rng.random((3, 4)))
    elif odd == "unsorted":
        frames = dict(reversed(list(frames.items())))
    elif odd == "duplicate_number":
        frames["frame01"] = rng.random((3, 4))  # "frame1" and "frame01": two keys, one number
    elif odd == "list_value":
        frames["frame9"] = [1.0, 2.0]
    elif odd == "float_key":
        frames[1.5] = rng.random((3, 4))
    elif odd == "ragged":
        frames["frame9"] = rng.random((2, 4))
    d = {"header": make_tracklet_header("s", ["a", "b", "c"]), np.int64(0): frames}
    path = tmp_path / "odd_el.pickle"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    if odd in ("unsorted", "duplicate_number", "list_value", "float_key", "ragged") and protocol > 2:
        assert _scan(path) is None
    if protocol == 2:
        assert _scan(path) is None  # bytes are _codecs.encode(latin-1 str) calls
    if odd in ("float32", "bigendian", "fortran") and protocol > 2:
        assert _scan(path) is None
    fast = read_tracklets_compact(path)
    slow = read_pickle(path)
    assert list(fast) == list(slow)
    f0 = fast[0]
    if isinstance(f0, FrameBlock):
        inds, data = stitch_pickle_ref.compact_frames(slow[0])
        np.testing.assert_array_equal(f0.inds, inds)
        np.testing.assert_array_equal(f0.data, data)
    else:
        assert list(f0) == list(slow[0])
        for k in f0:
            np.testing.assert_array_equal(np.asarray(f0[k]), np.asarray(slow[0][k]))


def _small_pickle(protocol, header=True):
    rng = np.random.default_rng(11)
    d = {"header": make_tracklet_header("s", ["a"]),
         np.int64(0): {f"frame{i}": rng.random((1, 4)) for i in range(2)},
         np.int64(3): {"frame7": rng.random((1, 4))},
         "single": {0: rng.random((1, 3))}}
    if not header:
        del d["header"]
    return pickle.dumps(d, protocol=protocol)


def _outcome(reader, path):
    try:
        return "ok", reader(path)
    except (ValueError, UnsafePickleError) as err:
        return "error", type(err)


def _equal_results(fast, slow):
    if list(fast) != list(slow):
        return False
    for k, v in slow.items():
        f = fast[k]
        if isinstance(v, pd.Index):
            if not (isinstance(f, pd.Index) and f.equals(v)):
                return False
        elif isinstance(f, FrameBlock):
            ref = stitch_pickle_ref.compact_frames(v)
            if ref is None or f.inds.tolist() != ref[0].tolist() or f.data.tobytes() != ref[1].tobytes():
                return False
        else:
            if list(f) != list(v):
                return False
    return True


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_scan_truncated_at_every_position(tmp_path, protocol):
    raw = _small_pickle(protocol)
    assert stitch_pickle.scan_tracklets(raw) is not None
    path = tmp_path / "cut_el.pickle"
    for cut in range(len(raw)):
        assert stitch_pickle.scan_tracklets(raw[:cut]) is None  # STOP is the last byte
        if cut and cut % 7 == 0:
            path.write_bytes(raw[:cut])
            with pytest.raises(ValueError, match="truncated or corrupt|empty"):
                read_tracklets_compact(path)


# NumPy itself reports errors while freeing arrays of a corrupt dtype (flags byte flipped)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_scan_flipped_bytes_match_general_reader(tmp_path, protocol):
    """Every single-byte corruption: the same content or the same error as the general reader.

    Without a header: corrupting the header's object arrays can crash NumPy itself
    (``ndarray.__setstate__`` of an object array with a list shorter than its shape
    segfaults in NumPy 2.4), in the general reader as much as here.
    """
    raw = _small_pickle(protocol, header=False)
    rng = np.random.default_rng(protocol)
    path = tmp_path / "flip_el.pickle"
    for pos in range(len(raw)):  # the byte reader alone: every position, several values
        for new in (raw[pos] ^ 0xFF, raw[pos] ^ 0x01, raw[pos] ^ 0x80, int(rng.integers(0, 256))):
            bad = bytearray(raw)
            bad[pos] = new
            stitch_pickle.scan_tracklets(bytes(bad))  # never crashes, never reads out of bounds
    for pos in rng.choice(len(raw), 120, replace=False):  # against the general reader
        for new in (raw[pos] ^ 0xFF, int(rng.integers(0, 256))):
            bad = bytearray(raw)
            bad[pos] = new
            bad = bytes(bad)
            path.write_bytes(bad)
            try:
                slow = read_pickle(path)
            except Exception as err:  # noqa: BLE001 - the general reader's verdict
                with pytest.raises(type(err)):
                    read_tracklets_compact(path)
                continue
            try:
                fast = read_tracklets_compact(path)
            except Exception as err:  # noqa: BLE001
                pytest.fail(f"byte {pos} -> {new}: general reader succeeded, fast raised {err!r}")
            if isinstance(slow, dict) and all(isinstance(v, dict) for v in slow.values()):
                assert _equal_results(fast, slow), f"byte {pos} -> {new}"
            else:
                assert type(fast) is type(slow)


@pytest.mark.smoke
def test_scan_tracklets_gateway_errors_and_none():
    with pytest.raises(TypeError, match="data must be bytes"):
        stitch_pickle.scan_tracklets("not bytes")
    assert stitch_pickle.scan_tracklets(b"") is None
    assert stitch_pickle.scan_tracklets(pickle.dumps([1, 2], protocol=5)) is None
    assert stitch_pickle.scan_tracklets(b"\x80\x05}\x94(\x8c\x01a\x94\x8c\x01b\x94u.") is None  # str value
    assert stitch_pickle.scan_tracklets(b"\x80\x05}\x94.") == (5, [])
    huge = b"\x80\x05}(\x8c\x06header\x8e" + (2**62).to_bytes(8, "little") + b"u."
    assert stitch_pickle.scan_tracklets(huge) is None  # length beyond the buffer
    memo = b"\x80\x03}(Kxr\xff\xff\xff\x7fu."  # LONG_BINPUT far beyond the file size
    assert stitch_pickle.scan_tracklets(memo) is None
    rng = np.random.default_rng(0)
    frames = {f"frame{i}": rng.random((2, 4)) for i in range(3)}
    proto, entries = stitch_pickle.scan_tracklets(pickle.dumps({np.int64(4): frames}, protocol=5))
    assert proto == 5 and entries[0][0] == 4 and type(entries[0][0]) is np.int64
    inds, data = entries[0][2]
    np.testing.assert_array_equal(inds, [0, 1, 2])
    np.testing.assert_array_equal(data, np.stack(list(frames.values())))
    assert stitch_pickle.scan_tracklets(memoryview(pickle.dumps({0: frames}, protocol=4))) is not None


def test_scan_refuses_arbitrary_globals_in_header(tmp_path):
    d = {"header": _Evil(), np.int64(0): {"frame1": np.zeros((1, 4))}}
    path = tmp_path / "evil_el.pickle"
    path.write_bytes(pickle.dumps(d, protocol=5))
    with pytest.raises(UnsafePickleError):
        read_tracklets_compact(path)


def test_scan_state_reuse_and_threads(tmp_path):
    """The parser state kept between calls is reset; concurrent calls do not share it."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    big = pickle.dumps(_tracklets(rng, 30, 4), protocol=5)
    small = pickle.dumps(_tracklets(rng, 2, 2, keys="int"), protocol=4)
    ref_big, ref_small = stitch_pickle.scan_tracklets(big), stitch_pickle.scan_tracklets(small)

    def same(a, b):
        return a[0] == b[0] and [(k, kind) for k, kind, _ in a[1]] == [(k, kind) for k, kind, _ in b[1]] and all(
            np.array_equal(x[2][0], y[2][0]) and x[2][1].tobytes() == y[2][1].tobytes()
            for x, y in zip(a[1], b[1]) if x[1] == "block")

    for raw, ref in ((small, ref_small), (big, ref_big), (small, ref_small)):
        assert same(stitch_pickle.scan_tracklets(raw), ref)
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(stitch_pickle.scan_tracklets, [big, small] * 8))
    assert all(same(o, ref_big if i % 2 == 0 else ref_small) for i, o in enumerate(outs))


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_scan_shared_and_odd_objects_match_general_reader(tmp_path, protocol):
    rng = np.random.default_rng(4)
    frames = {f"frame{i}": rng.random((2, 4)) for i in range(3)}
    arr = rng.random((2, 4))
    cases = [
        {"header": make_tracklet_header("s", ["a", "b"]), np.int64(0): frames, np.int64(1): frames},  # shared dict
        {"header": make_tracklet_header("s", ["a", "b"]), 0: {"frame1": arr, "frame2": arr}},  # shared array
        {"header": (frames,), np.int64(0): frames},  # a tuple holding a tracklet: not a tracklet file
        {"header": make_tracklet_header("s", ["a", "b"]), 5: 1.5},  # a float value
        {"header": make_tracklet_header("s", ["a", "b"]), np.int64(2): {}},  # an empty tracklet
    ]
    path = tmp_path / "odd_el.pickle"
    for d in cases:
        path.write_bytes(pickle.dumps(d, protocol=protocol))
        fast, slow = read_tracklets_compact(path), read_pickle(path)
        assert list(fast) == list(slow)
        for k, v in slow.items():
            if isinstance(fast[k], FrameBlock):
                inds, data = stitch_pickle_ref.compact_frames(v)
                np.testing.assert_array_equal(fast[k].inds, inds)
                np.testing.assert_array_equal(fast[k].data, data)
            elif isinstance(v, pd.Index):
                assert fast[k].equals(v)
            elif isinstance(v, tuple):
                assert isinstance(fast[k], tuple) and list(fast[k][0]) == list(v[0])
            elif isinstance(v, dict):
                assert list(fast[k]) == list(v)
                for key in v:
                    np.testing.assert_array_equal(fast[k][key], v[key])
            else:
                assert fast[k] == v
