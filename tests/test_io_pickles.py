"""``_meta``, ``_assemblies`` and tracklet pickles."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from _io_helpers import assert_same, truncate_copy
from mapose.examples import assemblies_dict, make_example_poses, tracklets_dict
from mapose.io.assemblies_pickle import (assemblies_layout, read_assemblies_pickle,
                                         write_assemblies_pickle)
from mapose.io.meta_pickle import meta_frame_size, read_meta_pickle, write_meta_pickle
from mapose.io.safe_pickle import read_pickle
from mapose.io.tracklets_pickle import (make_tracklet_header, read_tracklets_pickle,
                                        tracklet_ids, write_tracklets_pickle)


def _raw(path):
    return pickle.loads(path.read_bytes())  # trusted shared data: reference reader


# ---------------------------------------------------------------- meta

def test_meta_real_files_roundtrip(unittest_data, project_a, tmp_path):
    for src in [unittest_data / "trimouse_meta.pickle", *project_a.glob("*/*_meta.pickle")]:
        meta = read_meta_pickle(src)
        write_meta_pickle(tmp_path / "m_meta.pickle", meta)
        assert_same(read_meta_pickle(tmp_path / "m_meta.pickle"), meta)
    d = read_meta_pickle(next(project_a.glob("videos/*_meta.pickle")))["data"]
    assert list(d)[:5] == ["start", "stop", "run_duration", "Scorer", "pytorch-config"]
    assert d["Scorer"] == "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
    assert meta_frame_size({"data": d}) == (320, 256)
    assert meta_frame_size({"data": {"frame_dimensions": (256, 320)}}) == (320, 256)  # TF (ny, nx)


@pytest.mark.smoke
def test_meta_wraps_inner_dict_and_errors(tmp_path):
    write_meta_pickle(tmp_path / "m.pickle", {"nframes": 3})
    assert read_meta_pickle(tmp_path / "m.pickle") == {"data": {"nframes": 3}}
    (tmp_path / "bad.pickle").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not DLC metadata"):
        read_meta_pickle(tmp_path / "bad.pickle")
    with pytest.raises(TypeError):
        write_meta_pickle(tmp_path / "m.pickle", "x")


# ---------------------------------------------------------------- assemblies

def test_assemblies_tf_files(unittest_data, tmp_path):
    for name, nbpt in (("trimouse", 12), ("montblanc", 4)):
        src = unittest_data / f"{name}_assemblies.pickle"
        raw = _raw(src)
        asm, single = read_assemblies_pickle(src)
        assert assemblies_layout(read_pickle(src)) == "tf"
        frames = [k for k in raw if k != "single"]
        assert list(asm) == sorted(frames)
        for k in frames:
            np.testing.assert_array_equal(asm[k], np.stack(raw[k]))
            assert asm[k].shape[1:] == (nbpt, 4)
        assert_same(single, {k: raw["single"][k] for k in sorted(raw.get("single", {}))})
        # TF layout round trip: same per-frame lists (order normalised), single last
        write_assemblies_pickle(tmp_path / "a.pickle", asm, single, layout="tf")
        back = _raw(tmp_path / "a.pickle")
        assert (list(back)[-1] == "single") == bool(single)
        for k in frames:
            assert isinstance(back[k], list)
            assert_same(back[k], [np.asarray(a, np.float64) for a in raw[k]])
    assert len(read_assemblies_pickle(unittest_data / "montblanc_assemblies.pickle")[1]) == 78


def test_assemblies_pytorch_files(project_a, tmp_path):
    for src in project_a.glob("*/*_assemblies.pickle"):
        raw = _raw(src)
        asm, single = read_assemblies_pickle(src)
        assert list(raw)[0] == "single" and raw["single"] == {} and single == {}
        assert list(asm) == list(range(150)) and asm[0].shape == (3, 5, 4)
        write_assemblies_pickle(tmp_path / "a.pickle", asm, single)
        assert_same(_raw(tmp_path / "a.pickle"), raw)  # byte-level layout identical


@pytest.mark.smoke
def test_assemblies_pytorch_layout_details(tmp_path):
    p = make_example_poses(n_frames=8, n_animals=2, n_bodyparts=3, n_unique=2, missing=0.3)
    asm, single = assemblies_dict(p)
    asm[3] = np.empty((0, 3, 4))  # a frame without animals
    write_assemblies_pickle(tmp_path / "a.pickle", asm, single)
    raw = _raw(tmp_path / "a.pickle")
    assert list(raw) == ["single", *range(8)] and raw[3].shape == (0, 3, 4)
    assert all(v.dtype == np.float64 for k, v in raw.items() if k != "single")
    a2, s2 = read_assemblies_pickle(tmp_path / "a.pickle")
    assert_same(a2, {k: np.asarray(v, np.float64) for k, v in asm.items()})
    assert_same(s2, single)
    # TF layout drops empty frames and keeps only frames with assemblies
    write_assemblies_pickle(tmp_path / "t.pickle", asm, single, layout="tf")
    t = _raw(tmp_path / "t.pickle")
    assert 3 not in t and list(t)[-1] == "single"
    a3, _ = read_assemblies_pickle(tmp_path / "t.pickle")
    assert 3 not in a3 and a3[0].shape == asm[0].shape


def test_assemblies_errors(tmp_path, unittest_data):
    with pytest.raises(ValueError, match="_full.pickle"):
        read_assemblies_pickle(unittest_data / "montblanc_full.pickle")
    with pytest.raises(ValueError, match="tracklet"):
        read_assemblies_pickle(unittest_data / "trimouse_tracklets.pickle")
    truncate_copy(unittest_data / "trimouse_assemblies.pickle", tmp_path / "t.pickle", 0.3)
    with pytest.raises(ValueError, match="truncated"):
        read_assemblies_pickle(tmp_path / "t.pickle")
    (tmp_path / "shape.pickle").write_bytes(pickle.dumps({0: np.zeros((2, 3))}))
    with pytest.raises(ValueError, match="expected"):
        read_assemblies_pickle(tmp_path / "shape.pickle")
    with pytest.raises(ValueError, match="layout"):
        write_assemblies_pickle(tmp_path / "x.pickle", {}, layout="keras")
    with pytest.raises(ValueError, match=r"\(n_assemblies, n_bodyparts, 4\)"):
        write_assemblies_pickle(tmp_path / "x.pickle", {0: np.zeros((2, 3))})
    with pytest.raises(ValueError, match="frame indices"):
        write_assemblies_pickle(tmp_path / "x.pickle", {"frame0": np.zeros((1, 2, 4))})
    assert not (tmp_path / "x.pickle").exists()


# ---------------------------------------------------------------- tracklets

def test_tracklets_real_files_roundtrip(unittest_data, project_a, tmp_path):
    files = [unittest_data / "trimouse_tracklets.pickle", unittest_data / "montblanc_tracklets.pickle",
             *project_a.glob("*/*_el.pickle")]
    for src in files:
        raw = _raw(src)
        tr = read_tracklets_pickle(src)
        assert_same(tr, raw)
        write_tracklets_pickle(tmp_path / "t_el.pickle", tr)
        assert_same(_raw(tmp_path / "t_el.pickle"), raw)
    mb = read_tracklets_pickle(unittest_data / "montblanc_tracklets.pickle")
    assert list(mb)[0] == "single" and list(mb)[-1] == "header"
    assert [len(mb[k]) for k in ["single", *tracklet_ids(mb)]] == [78, 179, 179, 131, 45]
    assert all(type(k) is np.int64 for k in tracklet_ids(mb))
    assert all(type(k) is int for k in mb["single"])


def test_make_tracklet_header_matches_dlc(project_a, unittest_data):
    for src in [unittest_data / "montblanc_tracklets.pickle", *project_a.glob("videos/*_el.pickle")]:
        h = read_tracklets_pickle(src)["header"]
        scorer = h.get_level_values("scorer")[0]
        bpts = list(dict.fromkeys(h.get_level_values("bodyparts")))
        mine = make_tracklet_header(scorer, bpts)
        assert mine.equals(h) and list(mine.names) == ["scorer", "bodyparts", "coords"]
        assert all(lev.dtype == object for lev in mine.levels)
        assert pickle.dumps(mine) == pickle.dumps(h) or mine.equals(pickle.loads(pickle.dumps(h)))
    assert len(make_tracklet_header("s", ["head", "tail", "leftwing", "rightwing", "center"])) == 15


@pytest.mark.smoke
def test_tracklets_header_levels_become_object(tmp_path):
    # pandas 3 gives str-dtype levels; DLC (pandas < 3) needs object levels in the pickle
    p = make_example_poses(n_frames=5, n_animals=2, n_bodyparts=2, n_unique=0)
    tr = tracklets_dict(p)
    tr["header"] = pd.MultiIndex.from_arrays([["s"] * 6, ["a"] * 3 + ["b"] * 3, ["x", "y", "likelihood"] * 2],
                                             names=["scorer", "bodyparts", "coords"])
    tr[5] = {}  # python int id, empty tracklet
    write_tracklets_pickle(tmp_path / "t.pickle", tr)
    raw = _raw(tmp_path / "t.pickle")
    assert all(lev.dtype == object for lev in raw["header"].levels)
    assert type(list(raw)[-1]) is np.int64 and raw[np.int64(5)] == {}
    assert b"StringDtype" not in (tmp_path / "t.pickle").read_bytes()
    assert "single" not in raw


def test_tracklets_errors(tmp_path, unittest_data):
    with pytest.raises(ValueError, match="_assemblies.pickle"):
        read_tracklets_pickle(unittest_data / "trimouse_assemblies.pickle")
    with pytest.raises(ValueError, match="_full.pickle"):
        read_tracklets_pickle(unittest_data / "trimouse_full.pickle")
    (tmp_path / "h.pickle").write_bytes(pickle.dumps({"header": [1], 0: {}}))
    with pytest.raises(ValueError, match="MultiIndex"):
        read_tracklets_pickle(tmp_path / "h.pickle")
    with pytest.raises(ValueError, match="make_tracklet_header"):
        write_tracklets_pickle(tmp_path / "x.pickle", {0: {}})
    with pytest.raises(ValueError, match="integer id"):
        write_tracklets_pickle(tmp_path / "x.pickle", {"header": make_tracklet_header("s", ["a"]), "bad": {}})
    with pytest.raises(ValueError, match="scorer"):
        make_tracklet_header("", ["a"])
    assert not (tmp_path / "x.pickle").exists()


def test_dlc_pytorch_config_types_match_dlc(project_a, tmp_path):
    from mapose.io.meta_pickle import dlc_pytorch_config
    from mapose.io.pytorch_config import read_pytorch_config

    dlc = read_meta_pickle(next(project_a.glob("videos/*_meta.pickle")))["data"]["pytorch-config"]
    mine = dlc_pytorch_config(read_pytorch_config(
        project_a / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"))
    for key in ("net_type", "method"):
        assert type(mine[key]) is type(dlc[key]) and mine[key] == dlc[key]
    assert type(mine["metadata"]["project_path"]) is type(dlc["metadata"]["project_path"])
    assert type(mine["model"]) is dict  # plain containers, no ruamel types in the pickle
    write_meta_pickle(tmp_path / "m.pickle", {"pytorch-config": mine})
    assert b"ruamel" not in (tmp_path / "m.pickle").read_bytes()
    assert read_meta_pickle(tmp_path / "m.pickle")["data"]["pytorch-config"]["net_type"] == "resnet_50"
