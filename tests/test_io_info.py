"""``mapose info`` and the synthetic example set."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mapose.cli import main
from mapose.examples import make_example_poses, write_example_set
from mapose.io.summary import describe, detect_kind


@pytest.mark.smoke
def test_example_poses_are_deterministic_and_shaped():
    a = make_example_poses(n_frames=20, n_animals=3, n_bodyparts=4, n_unique=2, missing=0.1, seed=3)
    b = make_example_poses(n_frames=20, n_animals=3, n_bodyparts=4, n_unique=2, missing=0.1, seed=3)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert a.xy.shape == (20, 3, 4, 2) and a.xy.dtype == np.float32 and a.unique_xy.shape == (20, 2, 2)
    gone = np.isnan(a.xy[..., 0])
    assert 0 < gone.mean() < 0.3 and np.all(a.conf[gone] == 0)
    w, h = a.frame_size
    ok = a.xy[~gone]
    assert np.all((ok[:, 0] > -20) & (ok[:, 0] < w + 20) & (ok[:, 1] > -20) & (ok[:, 1] < h + 20))
    assert make_example_poses(n_frames=0).xy.shape[0] == 0
    with pytest.raises(ValueError, match="n_animals"):
        make_example_poses(n_animals=0)


@pytest.mark.smoke
def test_example_set_summaries_match_ground_truth(tmp_path):
    paths = write_example_set(tmp_path, n_frames=30, n_animals=2, n_bodyparts=3, n_unique=1, seed=1)
    p = make_example_poses(30, 2, 3, 1, seed=1)
    truth_missing = float(np.isnan(p.xy[..., 0]).mean())
    for kind, path in paths.items():
        s = describe(path)
        assert s.frames == 30, kind
        if kind in ("full", "full_shelve", "meta", "tracks_h5", "tracks_csv", "tracklets"):
            assert s.bodyparts == p.bodyparts and s.unique_bodyparts == p.unique_bodyparts, kind
        if kind in ("full", "full_shelve", "assemblies"):
            assert s.animals == 2 and s.missing_fraction == pytest.approx(truth_missing), kind
        if kind == "tracklets":
            assert s.missing_fraction == pytest.approx(truth_missing)
    assert describe(paths["full"]).layout == "pytorch, pickle"
    assert describe(paths["full_shelve"]).layout == "pytorch, shelve"
    assert describe(paths["full_tf"]).layout == "tensorflow, pickle"
    assert describe(paths["tracks_h5"]).individuals == p.individuals


def test_describe_real_files(unittest_data, project_a):
    s = describe(next(project_a.glob("videos/*_el.h5")))
    assert (s.kind, s.frames, s.animals, len(s.bodyparts)) == ("tracks_h5", 150, 3, 5)
    assert s.scorer == "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
    s = describe(unittest_data / "montblanc_tracks.h5")
    assert s.unique_bodyparts == ["center"] and s.individuals == ["bird1", "bird2", "bird3"]
    s = describe(unittest_data / "montblanc_tracklets.pickle")
    assert s.animals == 4 and s.unique_bodyparts == ["center"] and s.bodyparts == ["head", "tail", "leftwing", "rightwing"]
    s = describe(unittest_data / "trimouse_full.pickle")
    assert s.frames == 50 and s.layout == "tensorflow, pickle" and len(s.bodyparts) == 12
    s = describe(next(project_a.glob("videos/*_full.pickle")))
    assert (s.animals, s.frames, s.layout) == (3, 150, "pytorch, pickle")
    s = describe(next(project_a.glob("videos/*_meta.pickle")))
    assert s.individuals == ["animal0", "animal1", "animal2"]
    assert detect_kind(project_a / "config.yaml") == "config_yaml"
    assert describe(project_a / "config.yaml").animals == 3


@pytest.mark.smoke
def test_detect_kind_by_content(tmp_path):
    (tmp_path / "mystery.pickle").write_bytes(pickle.dumps({"metadata": {}, "frame0": {}}))
    assert detect_kind(tmp_path / "mystery.pickle") == "full_pickle"
    (tmp_path / "data.bin").write_bytes(pickle.dumps({0: np.zeros((1, 2, 4)), "single": {}}))
    assert detect_kind(tmp_path / "data.bin") == "assemblies_pickle"
    (tmp_path / "other.pickle").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not a DLC file kind"):
        detect_kind(tmp_path / "other.pickle")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="Cannot tell"):
        detect_kind(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError):
        detect_kind(tmp_path / "nope_full.pickle")


@pytest.mark.smoke
def test_cli_info_example(tmp_path, capsys):
    assert main(["info", "--example", str(tmp_path / "ex"), "--frames", "12"]) == 0
    out = capsys.readouterr().out
    assert "Wrote a synthetic DeepLabCut file set" in out
    assert out.count("kind:") == 8 and "full_pickle (pytorch, shelve)" in out and "tracks_csv" in out
    assert main(["info", "--json", str(next((tmp_path / "ex").glob("*_el.h5")))]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "tracks_h5" and d["frames"] == 12 and d["animals"] == 3


@pytest.mark.smoke
def test_cli_info_errors(tmp_path, capsys):
    assert main(["info"]) == 1
    assert "give at least one FILE" in capsys.readouterr().err
    (tmp_path / "bad_full.pickle").write_bytes(b"\x80\x05garbage")
    assert main(["info", str(tmp_path / "bad_full.pickle"), str(tmp_path / "missing.h5")]) == 1
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "No such file" in err
    assert "Traceback" not in err


@pytest.mark.smoke
def test_console_entry_point_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mapose", "info", "--example", str(tmp_path / "e"), "--frames", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "tracklets_pickle" in r.stdout
