"""``_full.pickle`` in both layouts and both containers (pickle, shelve)."""
from __future__ import annotations

import pickle
import shelve

import numpy as np
import pytest

from _io_helpers import assert_same, truncate_copy
from mapose.examples import make_example_poses, pytorch_full_dict, tf_full_dict
from mapose.io.full_pickle import (FullPickleWriter, frame_index, frame_key, frame_key_width,
                                   full_pickle_exists, is_pytorch_layout, read_full_pickle,
                                   write_full_pickle)


@pytest.mark.smoke
@pytest.mark.parametrize("n,width", [(None, 5), (0, 0), (1, 0), (2, 1), (9, 1), (10, 1), (11, 2),
                                     (100, 2), (101, 3), (150, 3), (180, 3), (1000, 3),
                                     (1001, 4), (2330, 4)])
def test_frame_key_width_matches_dlc(n, width):
    # DLC: int(np.ceil(np.log10(nframes))); the shelf writer defaults to 5
    assert frame_key_width(n) == width
    assert frame_key(7, n) == "frame" + "7".zfill(width)
    assert frame_index(frame_key(7, n)) == 7


@pytest.mark.smoke
def test_frame_key_errors():
    with pytest.raises(ValueError, match="n_frames"):
        frame_key_width(-1)
    with pytest.raises(ValueError, match="frame index"):
        frame_key(-1, 10)
    with pytest.raises(ValueError, match="not a DLC frame key"):
        frame_index("metadata")


@pytest.fixture(scope="module")
def real_full_files(unittest_data, project_a):
    return [unittest_data / "trimouse_full.pickle", unittest_data / "montblanc_full.pickle",
            *sorted(project_a.glob("*/*_full.pickle"))]


def test_read_real_files(real_full_files, unittest_data, project_a):
    tri = read_full_pickle(unittest_data / "trimouse_full.pickle")
    assert list(tri)[:2] == ["metadata", "frame0000"] and len(tri) == 51
    assert tri["metadata"]["nframes"] == 2330 and not is_pytorch_layout(tri)
    f0 = tri["frame0000"]
    assert isinstance(f0["coordinates"], tuple) and len(f0["coordinates"][0]) == 12
    assert f0["coordinates"][0][0].dtype == np.float16 and len(f0["costs"]) == 66
    mb = read_full_pickle(unittest_data / "montblanc_full.pickle")
    assert list(mb)[1] == "frame000" and mb["metadata"]["PAFinds"] == [1, 0, 2, 5, 4, 3]
    assert list(mb["frame000"]["costs"]) == [1, 0, 2, 5, 4, 3]  # PAFinds order
    a = read_full_pickle(next(project_a.glob("videos/*_full.pickle")))
    assert is_pytorch_layout(a) and a["metadata"]["key_str_width"] == 3 and len(a) == 151
    fr = a["frame149"]
    assert fr["costs"] is None and fr["coordinates"][0][0].shape == (3, 2)
    assert fr["coordinates"][0][0].dtype == np.float32 and fr["confidence"][0].shape == (3, 1)


@pytest.mark.parametrize("use_shelve", [False, True])
def test_real_files_roundtrip(real_full_files, tmp_path, use_shelve):
    for src in real_full_files:
        raw = pickle.loads(src.read_bytes())  # trusted shared data: reference reader
        out = tmp_path / f"{src.parent.name}_{src.name}"
        write_full_pickle(out, read_full_pickle(src), use_shelve=use_shelve)
        back = read_full_pickle(out)
        assert_same(back, raw)
        if use_shelve:
            # DLC's reader: shelve.open(path, "r") (stdlib unpickler) sees the same data
            with shelve.open(str(out), "r") as db:
                assert sorted(db.keys()) == sorted(raw)
                assert_same(db["metadata"], raw["metadata"])
        else:
            assert_same(pickle.loads(out.read_bytes()), raw)


def test_dlc_shelf_layout_is_read(tmp_path):
    """A shelf written the way DLC's ShelfWriter does (stdlib shelve, DEFAULT_PROTOCOL)."""
    p = make_example_poses(n_frames=12, n_animals=2, n_bodyparts=3, n_unique=1)
    full = pytorch_full_dict(p)
    path = tmp_path / "vidDLC_x_full.pickle"
    with shelve.open(str(path), flag="c", protocol=pickle.DEFAULT_PROTOCOL) as db:
        for k in reversed(list(full)):  # insertion order must not matter
            db[k] = full[k]
    assert full_pickle_exists(path) and not path.exists()
    assert_same(read_full_pickle(path), full)


@pytest.mark.smoke
@pytest.mark.parametrize("use_shelve", [False, True])
def test_streaming_writer(tmp_path, use_shelve):
    p = make_example_poses(n_frames=25, n_animals=3, n_bodyparts=4, n_unique=1)
    full = pytorch_full_dict(p)
    path = tmp_path / "v_full.pickle"
    meta = {k: v for k, v in full["metadata"].items() if k not in ("nframes", "key_str_width")}
    with FullPickleWriter(path, meta, n_frames=25, use_shelve=use_shelve) as w:
        for i, (k, fr) in enumerate(list(full.items())[1:]):
            assert w.add(i, fr) == k
    assert w.n_written == 25
    back = read_full_pickle(path)
    assert back["metadata"]["nframes"] == 25 and back["metadata"]["key_str_width"] == 2
    assert_same({k: v for k, v in back.items() if k != "metadata"},
                {k: v for k, v in full.items() if k != "metadata"})
    with pytest.raises(ValueError, match="closed"):
        w.add(25, {})


@pytest.mark.parametrize("use_shelve", [False, True])
def test_writer_nframes_updated_and_abort(tmp_path, use_shelve):
    path = tmp_path / "v_full.pickle"
    w = FullPickleWriter(path, {"all_joints_names": ["a"]}, n_frames=None, use_shelve=use_shelve)
    for i in range(3):
        w.add(i, {"coordinates": ([np.zeros((1, 2), np.float32)],), "confidence": [np.ones((1, 1), np.float32)], "costs": None})
    w.close()
    back = read_full_pickle(path)
    assert back["metadata"]["nframes"] == 3 and list(back)[1] == "frame00000"  # DLC shelf width 5
    # an interrupted run leaves the previous output untouched and no temp files
    with pytest.raises(RuntimeError):
        with FullPickleWriter(path, {"all_joints_names": ["a"]}, n_frames=2, use_shelve=use_shelve) as w2:
            w2.add(0, {"coordinates": ([],), "confidence": [], "costs": None})
            raise RuntimeError("killed")
    assert read_full_pickle(path)["metadata"]["nframes"] == 3
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_tf_layout_roundtrip(tmp_path):
    p = make_example_poses(n_frames=10, n_animals=3, n_bodyparts=4, n_unique=0, missing=0.2)
    tf = tf_full_dict(p)
    assert not is_pytorch_layout(tf)
    write_full_pickle(tmp_path / "t_full.pickle", tf)
    assert_same(read_full_pickle(tmp_path / "t_full.pickle"), tf)


@pytest.mark.smoke
def test_zero_frames_and_one_frame(tmp_path):
    meta = {"all_joints_names": ["a", "b"], "nframes": 0}
    write_full_pickle(tmp_path / "z_full.pickle", {"metadata": meta})
    z = read_full_pickle(tmp_path / "z_full.pickle")
    assert list(z) == ["metadata"] and not is_pytorch_layout(z)
    with FullPickleWriter(tmp_path / "o_full.pickle", {"all_joints_names": ["a"]}, n_frames=1) as w:
        assert w.add(0, {"coordinates": ([np.zeros((1, 2))],), "confidence": [np.zeros((1, 1))], "costs": None}) == "frame0"


def test_bad_files(tmp_path, unittest_data):
    with pytest.raises(FileNotFoundError, match="Run analyze_videos"):
        read_full_pickle(tmp_path / "missing_full.pickle")
    (tmp_path / "e_full.pickle").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_full_pickle(tmp_path / "e_full.pickle")
    truncate_copy(unittest_data / "montblanc_full.pickle", tmp_path / "t_full.pickle")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_full_pickle(tmp_path / "t_full.pickle")
    with pytest.raises(ValueError, match="tracklet pickle"):
        read_full_pickle(unittest_data / "montblanc_tracklets.pickle")
    with pytest.raises(ValueError, match="_assemblies.pickle"):
        read_full_pickle(unittest_data / "montblanc_assemblies.pickle")
    with pytest.raises(ValueError, match="_meta.pickle"):
        read_full_pickle(unittest_data / "montblanc_meta.pickle")
    with pytest.raises(ValueError, match="metadata"):
        write_full_pickle(tmp_path / "x_full.pickle", {"frame0": {}})
    with pytest.raises(TypeError, match="dict"):
        write_full_pickle(tmp_path / "x_full.pickle", [1, 2])
    assert not (tmp_path / "x_full.pickle").exists()


def test_corrupt_shelve(tmp_path):
    p = make_example_poses(n_frames=5)
    path = tmp_path / "s_full.pickle"
    write_full_pickle(path, pytorch_full_dict(p), use_shelve=True)
    dat = tmp_path / "s_full.pickle.dat"
    dat.write_bytes(dat.read_bytes()[:50])
    with pytest.raises(ValueError, match="corrupt"):
        read_full_pickle(path)


def test_streaming_writer_memory_is_flat(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    meta = {"all_joints_names": [f"b{i}" for i in range(10)]}

    def frame():
        return {"coordinates": ([rng.random((4, 2), dtype=np.float32) for _ in range(10)],),
                "confidence": [rng.random((4, 1), dtype=np.float32) for _ in range(10)], "costs": None}

    def peak(n):
        tracemalloc.start()
        with FullPickleWriter(tmp_path / f"m{n}_full.pickle", meta, n_frames=n) as w:
            for i in range(n):
                w.add(i, frame())
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak_bytes

    small, large = peak(200), peak(4000)
    assert large < 2 * small + 1_000_000, (small, large)  # 20x the frames, not 20x the memory
    back = pickle.loads((tmp_path / "m4000_full.pickle").read_bytes())  # DLC's reader
    assert len(back) == 4001 and list(back)[:2] == ["metadata", "frame0000"]
    assert back["metadata"]["nframes"] == 4000 and back["metadata"]["key_str_width"] == 4


def test_shelve_part_paths_are_accepted(tmp_path):
    from mapose.io.summary import describe

    p = make_example_poses(n_frames=6)
    path = tmp_path / "v_full.pickle"
    write_full_pickle(path, pytorch_full_dict(p), use_shelve=True)
    s = describe(tmp_path / "v_full.pickle.dat")
    assert s.path == str(path) and s.frames == 6 and s.layout == "pytorch, shelve"


# -- resumable writing, streamed reading -------------------------------------------------------
def _frames(n=20):
    p = make_example_poses(n_frames=n, n_animals=3, n_bodyparts=4, n_unique=1)
    full = pytorch_full_dict(p)
    meta = {k: v for k, v in full["metadata"].items() if k not in ("nframes", "key_str_width")}
    return meta, [v for k, v in full.items() if k != "metadata"]


def _write(path, meta, frames, start=0, stop=None, every=4, use_shelve=False, run_key="k",
           close=True):
    w = FullPickleWriter(path, meta, n_frames=len(frames), use_shelve=use_shelve, resume=True,
                         checkpoint_every=every, run_key=run_key)
    assert w.frames_done == start
    for i in range(w.frames_done, len(frames) if stop is None else stop):
        w.add(i, frames[i])
    if close:
        w.close()
    return w


@pytest.mark.smoke
@pytest.mark.parametrize("use_shelve", [False, True])
def test_resumable_writer_continues_from_checkpoint(tmp_path, use_shelve):
    from mapose.io.full_pickle import resume_paths

    meta, frames = _frames(20)
    ref = tmp_path / "ref_full.pickle"
    _write(ref, meta, frames, use_shelve=use_shelve)
    path = tmp_path / "v_full.pickle"
    # "killed" after 14 frames: the object is dropped without close/abort
    w = _write(path, meta, frames, stop=14, use_shelve=use_shelve, close=False)
    w.suspend()
    assert not full_pickle_exists(path)  # nothing that looks finished
    assert resume_paths(path)["record"].exists()
    _write(path, meta, frames, start=12, use_shelve=use_shelve)  # last checkpoint: before frame 12
    assert_same(read_full_pickle(path), read_full_pickle(ref))
    if not use_shelve:
        assert path.read_bytes() == ref.read_bytes()
        assert pickle.loads(path.read_bytes())["metadata"]["nframes"] == 20  # DLC's reader
    assert not any(p.exists() for p in resume_paths(path).values())


@pytest.mark.parametrize("damage", ["flip", "truncate", "run_key", "metadata"])
def test_resumable_writer_bad_checkpoint_restarts(tmp_path, damage):
    from mapose.io.full_pickle import ResumeWarning, resume_paths

    meta, frames = _frames(12)
    path = tmp_path / "v_full.pickle"
    _write(path, meta, frames, stop=10, close=False).suspend()
    spool = resume_paths(path)["spool"]
    key = "k"
    if damage == "flip":
        data = bytearray(spool.read_bytes())
        data[5] ^= 1
        spool.write_bytes(bytes(data))
    elif damage == "truncate":
        spool.write_bytes(spool.read_bytes()[:40])
    elif damage == "run_key":
        key = "other"
    else:
        meta = dict(meta, sigma=99)
    with pytest.warns(ResumeWarning, match="starting over"):
        _write(path, meta, frames, start=0, run_key=key)
    back = read_full_pickle(path)
    assert len(back) == 13 and back["metadata"]["nframes"] == 12


def test_resumable_writer_errors(tmp_path):
    meta, frames = _frames(4)
    w = FullPickleWriter(tmp_path / "v_full.pickle", meta, n_frames=4, resume=True)
    with pytest.raises(ValueError, match="in order: expected frame 0"):
        w.add(2, frames[2])
    w.abort()
    with pytest.raises(ValueError, match="checkpoint_every"):
        FullPickleWriter(tmp_path / "v_full.pickle", meta, checkpoint_every=-1)
    plain = FullPickleWriter(tmp_path / "w_full.pickle", meta)
    with pytest.raises(ValueError, match="resume=True"):
        plain.checkpoint()
    plain.abort()
    assert not list(tmp_path.iterdir())


def test_iter_pickled_dict_matches_whole_read_on_dlc_files(real_full_files, unittest_data):
    from mapose.io.full_pickle import iter_pickled_dict
    from mapose.io.safe_pickle import read_pickle

    files = list(real_full_files) + [unittest_data / "trimouse_tracklets.pickle",
                                     unittest_data / "montblanc_assemblies.pickle"]
    for f in files:
        whole = read_pickle(f)
        streamed = dict(iter_pickled_dict(f))
        assert list(streamed) == list(whole)
        assert_same(streamed, whole)


def test_iter_pickled_dict_errors(tmp_path):
    from mapose.io.full_pickle import iter_pickled_dict
    from mapose.io.safe_pickle import UnsafePickleError

    with pytest.raises(FileNotFoundError):
        list(iter_pickled_dict(tmp_path / "missing.pickle"))
    lst = tmp_path / "list.pickle"
    lst.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="top level"):
        list(iter_pickled_dict(lst))
    d = {i: np.arange(100.0) + i for i in range(50)}
    full = tmp_path / "d.pickle"
    full.write_bytes(pickle.dumps(d, protocol=5))
    cut = tmp_path / "cut.pickle"
    cut.write_bytes(full.read_bytes()[:-300])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        list(iter_pickled_dict(cut))
    shared = tmp_path / "shared.pickle"
    items = {i: np.arange(100.0) + i for i in range(1000)}
    items[1000] = items[0]  # one object twice, in two SETITEMS batches (1000 items each)
    shared.write_bytes(pickle.dumps(items, protocol=5))
    with pytest.raises(ValueError, match="refers back"):
        list(iter_pickled_dict(shared))
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(b"\x80\x04}\x94(K\x01\x8c\x02os\x8c\x06system\x93\x94u.")
    with pytest.raises(UnsafePickleError):
        list(iter_pickled_dict(evil))


def test_iter_pickled_dict_memory_is_bounded(tmp_path):
    import tracemalloc

    from mapose.io.full_pickle import iter_pickled_dict

    def peak(n):
        path = tmp_path / f"a{n}.pickle"
        path.write_bytes(pickle.dumps({i: np.full((3, 12, 4), float(i)) for i in range(n)},
                                      protocol=5))
        tracemalloc.start()
        total = 0.0
        for _k, v in iter_pickled_dict(path):
            total += v[0, 0, 0]
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert total == n * (n - 1) / 2
        return peak_bytes

    # the pickler groups items by 1000 (one SETITEMS each): a batch is the unit held
    small, large = peak(2000), peak(20_000)
    assert large < 1.3 * small + 200_000, (small, large)  # 10x the items, not 10x the memory
