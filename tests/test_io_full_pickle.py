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
