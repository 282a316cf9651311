"""config.yaml / inference_cfg.yaml / pytorch_config.yaml, model folders, snapshots, scorer."""
from __future__ import annotations

import shutil
import warnings

import pytest

from mapose.io.config import config_get, read_config, write_config
from mapose.io.inference_cfg import (INFERENCE_CFG_TEMPLATE, check_inferencecfg_sanity,
                                     form_default_inferencecfg, read_inference_cfg)
from mapose.io.project import (TRACK_METHODS, Snapshot, get_model_folder, get_scorer_name,
                               get_scorer_uid, get_track_method, list_snapshots, list_videos,
                               output_stem, select_snapshot)
from mapose.io.pytorch_config import read_pytorch_config

SCORER_A = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"


@pytest.fixture()
def proj(tmp_path, project_a):
    """A moved copy of project A's config + model folder (no weights: an empty snapshot file)."""
    root = tmp_path / "moved_project"
    shutil.copytree(project_a / "dlc-models-pytorch", root / "dlc-models-pytorch",
                    ignore=shutil.ignore_patterns("*.pt"))
    shutil.copy(project_a / "config.yaml", root / "config.yaml")
    train = root / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"
    (train / "snapshot-best-050.pt").touch()
    (root / "videos").mkdir()
    return root


def test_config_roundtrip_keeps_comments_and_order(unittest_data, project_a, tmp_path):
    for src in (unittest_data / "config.yaml", project_a / "config.yaml"):
        cfg = read_config(src, fix_project_path=False)
        write_config(tmp_path / "config.yaml", cfg)
        assert (tmp_path / "config.yaml").read_text() == src.read_text()
    cfg = read_config(unittest_data / "config.yaml", fix_project_path=False)
    cfg["batch_size"] = 16
    write_config(tmp_path / "c.yaml", cfg)
    text = (tmp_path / "c.yaml").read_text()
    assert "# Project definitions (do not edit)" in text and "batch_size: 16" in text
    assert list(read_config(tmp_path / "c.yaml", fix_project_path=False)) == list(cfg)


def test_config_project_path_follows_the_file(proj):
    cfg = read_config(proj / "config.yaml")
    assert cfg["project_path"] == str(proj.resolve())
    assert "/home/user/projA" in (proj / "config.yaml").read_text()  # reading never writes
    assert read_config(proj)["Task"] == "projA"  # a folder works too
    assert config_get(cfg, "batch_size") == 4 and config_get({}, "batch_size") == 1
    assert config_get({}, "engine") == "pytorch"


@pytest.mark.smoke
def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        read_config(tmp_path / "config.yaml")
    with pytest.raises(TypeError):
        write_config(tmp_path / "x.yaml", [1])


def test_inference_cfg(project_a, proj):
    cfg = read_config(project_a / "config.yaml")
    path = get_model_folder(cfg, 1, 0) / "test" / "inference_cfg.yaml"
    inf = read_inference_cfg(path, cfg)
    assert inf == {"variant": 0, "pafthreshold": 0.1, "method": "m1", "minimalnumberofconnections": 2,
                   "pcutoff": 0.1, "topktoretain": 3, "withid": False, "boundingboxslack": 0,
                   "iou_threshold": 0.6, "max_age": 1, "min_hits": 1}
    assert list(inf) == list(INFERENCE_CFG_TEMPLATE)
    # missing file: DLC's defaults (float n/2) are returned and written
    missing = proj / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/test/inference_cfg.yaml"
    missing.unlink()
    inf2 = read_inference_cfg(missing, cfg)
    assert inf2["minimalnumberofconnections"] == 2.5 and inf2["topktoretain"] == 3
    assert missing.exists() and read_inference_cfg(missing, cfg) == inf2
    assert form_default_inferencecfg(cfg) == inf2
    assert read_inference_cfg(None, cfg) == inf2


@pytest.mark.smoke
def test_inference_cfg_sanity():
    cfg = {"multianimalbodyparts": ["a", "b"], "individuals": ["i"]}
    bad = dict(form_default_inferencecfg(cfg))
    del bad["pcutoff"], bad["max_age"]
    with pytest.raises(KeyError, match="pcutoff, max_age"):
        check_inferencecfg_sanity(cfg, bad)
    with pytest.raises(KeyError):
        read_inference_cfg(bad, cfg)
    with pytest.raises(ValueError, match="topktoretain"):
        read_inference_cfg({**form_default_inferencecfg(cfg), "topktoretain": 0}, cfg)
    with pytest.raises(ValueError, match="pcutoff must be a number"):
        read_inference_cfg({**form_default_inferencecfg(cfg), "pcutoff": "high"}, cfg)


def test_pytorch_config(project_a, tmp_path):
    train = project_a / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"
    pc = read_pytorch_config(train)
    assert pc["net_type"] == "resnet_50" and pc["method"] == "bu"
    pred = pc["model"]["heads"]["bodypart"]["predictor"]
    assert pred["type"] == "PartAffinityFieldPredictor" and pred["num_animals"] == 3
    assert len(pred["graph"]) == 10 and pred["nms_radius"] == 5
    (tmp_path / "pytorch_config.yaml").write_text("net_type: dlcrnet_ms5\nmodel: {}\n")
    assert read_pytorch_config(tmp_path)["net_type"] == "dlcrnet_stride16_ms5"
    (tmp_path / "pytorch_config.yaml").write_text("net_type: x\n")
    with pytest.raises(ValueError, match="no 'model' section"):
        read_pytorch_config(tmp_path)


def test_model_folder_and_scorer(project_a, proj):
    cfg = read_config(project_a / "config.yaml")
    folder = get_model_folder(cfg, 1, 0)
    assert folder == project_a.resolve() / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"
    assert folder.is_dir()
    assert get_scorer_name(cfg, 1, 0) == SCORER_A
    assert get_scorer_name(read_config(proj / "config.yaml"), shuffle=1) == SCORER_A
    # DLC's truncation: int(frac * 100)
    c = {"Task": "t", "date": "d", "iteration": 2, "TrainingFraction": [0.57, 0.29, 0.58, 0.7],
         "project_path": "/p"}
    assert [get_model_folder(c, 3, i).name for i in range(4)] == [
        "td-trainset56shuffle3", "td-trainset28shuffle3", "td-trainset57shuffle3", "td-trainset70shuffle3"]
    assert str(get_model_folder(c, 1, 0, modelprefix="pre", engine="tensorflow")).startswith("/p/pre/dlc-models/iteration-2/")
    with pytest.raises(ValueError, match="out of range"):
        get_model_folder(c, 1, 4)
    with pytest.raises(ValueError, match="engine"):
        get_model_folder(c, 1, 0, engine="jax")


@pytest.mark.smoke
def test_snapshot_ordering_and_selection(tmp_path):
    for name in ["snapshot-010.pt", "snapshot-best-070.pt", "snapshot-100.pt", "snapshot-020.pt",
                 "snapshot-detector-050.pt", "notes.txt", "snapshot-5.pth"]:
        (tmp_path / name).touch()
    snaps = list_snapshots(tmp_path)
    assert [s.name for s in snaps] == ["snapshot-010.pt", "snapshot-020.pt", "snapshot-100.pt", "snapshot-best-070.pt"]
    assert [s.uid() for s in snaps] == ["10", "20", "100", "best-70"]
    cfg = {"snapshotindex": -1}
    assert select_snapshot(cfg, tmp_path).name == "snapshot-best-070.pt"
    assert select_snapshot(cfg, tmp_path, 0).name == "snapshot-010.pt"
    assert select_snapshot(cfg, tmp_path, "best").name == "snapshot-best-070.pt"
    with pytest.warns(UserWarning, match="all"):
        assert select_snapshot({"snapshotindex": "all"}, tmp_path).name == "snapshot-best-070.pt"
    with pytest.raises(ValueError, match="Could not return snapshot with index 4"):
        select_snapshot(cfg, tmp_path, 4)
    with pytest.raises(ValueError, match="Invalid snapshotindex"):
        select_snapshot(cfg, tmp_path, 1.5)
    assert [s.name for s in list_snapshots(tmp_path, "snapshot-detector")] == ["snapshot-detector-050.pt"]
    assert get_scorer_uid(snaps[-1]) == "snapshot_best-70"
    assert get_scorer_uid(snaps[0], tmp_path / "snapshot-detector-050.pt") == "detector_50_snapshot_10"
    assert Snapshot.from_path("snapshot-best-050.pt").uid() == "best-50"
    (tmp_path / "snapshot-best-070.pt").unlink()
    with pytest.raises(ValueError, match="No best snapshot"):
        select_snapshot(cfg, tmp_path, "best")
    with pytest.raises(FileNotFoundError, match="train folder"):
        list_snapshots(tmp_path / "nope")


@pytest.mark.smoke
def test_track_method(tmp_path):
    assert get_track_method({"multianimalproject": False}) == ""
    assert get_track_method({"multianimalproject": True}, "box") == "box"
    assert TRACK_METHODS["ellipse"] == "_el" and TRACK_METHODS["skeleton"] == "_sk"
    with pytest.raises(ValueError, match="Invalid track_method"):
        get_track_method({"multianimalproject": True}, "kalman")
    (tmp_path / "config.yaml").write_text("# keep me\nmultianimalproject: true\nTask: x\n")
    cfg = read_config(tmp_path / "config.yaml")
    with pytest.warns(UserWarning, match="ellipse"):
        assert get_track_method(cfg) == "ellipse"
    text = (tmp_path / "config.yaml").read_text()
    assert "default_track_method: ellipse" in text and "# keep me" in text  # written as DLC does


@pytest.mark.smoke
def test_list_videos_rules(tmp_path):
    for n in ["b.mp4", "a.AVI", "x_labeled.mp4", "vDLC_full.mp4", "notes.txt", "c.mkv"]:
        (tmp_path / n).touch()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.mp4").touch()
    assert [p.name for p in list_videos(tmp_path)] == ["a.AVI", "b.mp4", "c.mkv"]
    assert [p.name for p in list_videos(str(tmp_path), "mp4")] == ["b.mp4"]
    assert [p.name for p in list_videos(tmp_path, [".MKV", "avi"])] == ["a.AVI", "c.mkv"]
    # files are accepted as given unless extensions are set; DLC outputs always excluded
    assert [p.name for p in list_videos([tmp_path / "notes.txt", tmp_path / "b.mp4", tmp_path / "b.mp4"])] == ["b.mp4", "notes.txt"]
    assert list_videos(tmp_path / "notes.txt", "mp4") == []
    assert list_videos(tmp_path / "x_labeled.mp4") == []
    assert all(p.is_absolute() for p in list_videos(tmp_path))
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        list_videos(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match="non-empty"):
        list_videos(tmp_path, [])


def test_output_stem_matches_dlc_names(project_a):
    cfg = read_config(project_a / "config.yaml")
    (video,) = list_videos(project_a / "videos")
    stem = output_stem(video, get_scorer_name(cfg))
    for suffix in ("_full.pickle", "_meta.pickle", "_assemblies.pickle", "_el.pickle", "_el.h5", "_el.csv"):
        assert (stem.parent / (stem.name + suffix)).exists(), suffix
    assert output_stem(video, SCORER_A, destfolder="/out") .as_posix() == "/out/synthA" + SCORER_A
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output_stem("v.avi", "S")
