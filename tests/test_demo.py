"""The offline demo: renderer ground truth, project layout, shipped model, stored-metrics regression."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mapose.demo.render import (BODYPARTS, PART_COLORS, GroundTruth, SceneConfig, animal_keypoints,
                                make_background, render_frame, render_video)

METRICS_FILE = Path(__file__).parent / "data" / "demo_metrics.json"


# --------------------------------------------------------------------------- renderer


@pytest.mark.smoke
def test_render_frame_visibility_and_colours():
    bg = np.zeros((100, 160, 3), np.uint8)
    a = animal_keypoints((50, 50), 0.0, 46, 20)
    b = animal_keypoints((120, 50), math.pi, 46, 20)
    img, vis = render_frame(bg, [(a, 0.0, 46, 20), (b, math.pi, 46, 20)], occluders=[(110, 0, 160, 100)])
    assert vis[0].all()                      # first animal fully in view
    assert not vis[1, 3]                     # second animal's spine is behind the pillar
    for k, (x, y) in enumerate(a):           # each visible disc has its colour at its centre
        assert np.abs(img[int(round(y)), int(round(x))].astype(int) - PART_COLORS[k]).max() <= 2
    # an animal drawn on top hides the one below
    c = animal_keypoints((50, 50), 0.0, 46, 20)
    _, vis2 = render_frame(bg, [(a, 0.0, 46, 20), (c + [4, 0], 0.0, 46, 20)])
    assert not vis2[0].any() and vis2[1].all()


@pytest.mark.smoke
def test_keypoints_out_of_frame_are_hidden():
    bg = np.zeros((64, 64, 3), np.uint8)
    kps = animal_keypoints((2, 30), 0.0, 46, 20)
    _, vis = render_frame(bg, [(kps, 0.0, 46, 20)])
    inside = np.round(kps[:, 0]) >= 0
    assert inside.any() and not inside.all()
    assert not vis[0][~inside].any() and vis[0][inside].all()


def test_render_video_ground_truth(tmp_path):
    import cv2

    cfg = SceneConfig(n_animals=2, n_frames=40, seed=3, noise_std=0.0)
    gt = render_video(tmp_path / "v.avi", cfg)
    assert gt.keypoints.shape == (40, 2, 5, 2) and gt.visible.shape == (40, 2, 5)
    assert 0.7 < gt.visible.mean() <= 1.0
    # smooth motion: no key point jumps more than a few pixels between frames
    assert np.abs(np.diff(gt.keypoints, axis=0)).max() < 12
    # the decoded video shows the part colours at the visible key points
    cap = cv2.VideoCapture(str(tmp_path / "v.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    ok, frame = cap.read()
    cap.release()
    assert ok
    hits = [np.abs(frame[int(round(y)), int(round(x))].astype(int) - PART_COLORS[k]).max() <= 12
            for i in range(2) for k, (x, y) in enumerate(gt.keypoints[0, i]) if gt.visible[0, i, k]]
    assert hits and all(hits)
    # files beside the video; the h5 is in DLC tracks layout and matches the arrays
    again = GroundTruth.load(tmp_path / "v_gt.npz")
    np.testing.assert_array_equal(again.keypoints, gt.keypoints)
    from mapose.evaluation.tracks import load_keypoints_h5

    table = load_keypoints_h5(tmp_path / "v_gt.h5")
    assert table.bodyparts == list(BODYPARTS) and table.individuals == ["animal0", "animal1"]
    np.testing.assert_allclose(table.xy, gt.visible_keypoints())
    assert not list(tmp_path.glob(".*part*"))  # no temporary files left behind


def test_render_is_deterministic(tmp_path):
    cfg = SceneConfig(n_animals=3, n_frames=15, seed=11)
    a = render_video(tmp_path / "a.avi", cfg)
    b = render_video(tmp_path / "b.avi", cfg)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.visible, b.visible)
    assert (tmp_path / "a.avi").read_bytes() == (tmp_path / "b.avi").read_bytes()


def test_scene_has_close_encounters():
    from mapose.demo.render import simulate_motion

    cfg = SceneConfig(n_animals=3, n_frames=300, seed=7)
    centers, _, _, _ = simulate_motion(cfg, np.random.default_rng(0))
    d = np.linalg.norm(centers[:, :, None] - centers[:, None], axis=-1)
    d[:, np.arange(3), np.arange(3)] = np.inf
    closest = d.min(axis=(1, 2))
    assert closest.min() < 1.2 * cfg.body_length   # animals do meet
    assert closest.min() >= 0.5 * cfg.body_length   # but never merge completely


@pytest.mark.parametrize("kwargs, match", [
    ({"n_animals": 0}, "n_animals"),
    ({"n_frames": 0}, "n_frames"),
    ({"width": 32}, "frame size"),
    ({"n_animals": 40}, "do not fit"),
])
def test_scene_config_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        render_video(tmp_path / "x.avi", SceneConfig(**kwargs))


def test_render_video_needs_avi(tmp_path):
    with pytest.raises(ValueError, match=r"\.avi"):
        render_video(tmp_path / "x.mp4", SceneConfig(n_frames=2))


def test_background_is_dark_texture():
    bg = make_background(64, 48, np.random.default_rng(0))
    assert bg.shape == (48, 64, 3) and bg.dtype == np.uint8 and 5 < bg.mean() < 60 and bg.std() > 1


# --------------------------------------------------------------------------- model and project


def test_tiny_backbone_shapes_and_errors():
    torch = pytest.importorskip("torch")
    from mapose.models.tiny import build_backbone

    module, c, stride = build_backbone({"backbone": {"channels": [8, 16, 24]}, "backbone_output_channels": 24})
    assert (c, stride) == (24, 8.0)
    out = module.eval()(torch.zeros(2, 3, 50, 67))
    assert tuple(out.shape) == (2, 24, math.ceil(50 / 8), math.ceil(67 / 8))
    with pytest.raises(ValueError, match="channels"):
        build_backbone({"backbone": {"channels": [8]}})
    with pytest.raises(ValueError, match="backbone_output_channels"):
        build_backbone({"backbone": {"channels": [8, 16]}, "backbone_output_channels": 32})
    with pytest.raises(TypeError, match="model_cfg"):
        build_backbone(["not", "a", "dict"])


def test_shipped_model_is_small_and_loads_strictly(tmp_path):
    pytest.importorskip("torch")
    from mapose.demo.project import demo_model_dir, shipped_snapshot, write_demo_project
    from mapose.inference.project_model import find_project_model
    from mapose.models import load_pose_model

    snap = shipped_snapshot()
    assert snap.stat().st_size < 4_000_000  # "a few MB at most" in the wheel
    config = write_demo_project(tmp_path / "p", n_animals=4)
    pm = find_project_model(config)
    assert pm.snapshot.name == snap.name and pm.individuals == [f"animal{i}" for i in range(4)]
    assert pm.scorer.startswith("DLC_MaposeTiny_demoJan1shuffle1_snapshot_best-")
    assert pm.pytorch_cfg["model"]["heads"]["bodypart"]["predictor"]["num_animals"] == 4
    model = load_pose_model(pm.pytorch_cfg, pm.snapshot)  # strict state-dict load
    assert not model.training
    assert (demo_model_dir() / "pytorch_config.yaml").is_file()


def test_write_demo_project_errors(tmp_path):
    from mapose.demo.project import write_demo_project

    with pytest.raises(ValueError, match="n_animals"):
        write_demo_project(tmp_path / "p", n_animals=0)
    with pytest.raises(FileNotFoundError, match="snapshot"):
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "pytorch_config.yaml").write_text("net_type: mapose_tiny\n")
        write_demo_project(tmp_path / "p", model_dir=tmp_path / "m")


def _stored():
    return json.loads(METRICS_FILE.read_text())


@pytest.mark.torch
def test_model_detects_without_ground_truth(tmp_path):
    """Network + assembly only (no tracking): OKS mAP of untracked poses on an unseen video."""
    pytest.importorskip("torch")
    import mapose
    from mapose.demo.project import write_demo_project
    from mapose.evaluation.tracks import oks_map
    from mapose.io.safe_pickle import read_pickle

    ref = _stored()["detection"]
    video = tmp_path / "p" / "videos" / "v.avi"
    gt = render_video(video, SceneConfig(n_frames=ref["frames"], seed=ref["seed"]),
                      gt_path=tmp_path / "gt.npz", gt_h5_path=tmp_path / "gt.h5")
    config = write_demo_project(tmp_path / "p", n_animals=3, video_sets=[(video, 320, 256)])
    scorer = mapose.analyze_videos(str(config), [str(video)], auto_track=False, progress=False)
    ass = read_pickle(video.parent / f"v{scorer}_assemblies.pickle")
    pred = np.full((ref["frames"], 3, 5, 2), np.nan)
    score = np.zeros((ref["frames"], 3))
    for f in range(ref["frames"]):
        arr = np.asarray(ass.get(f, np.zeros((0, 5, 4))))[:3]
        xy = arr[..., :2].copy()
        xy[arr[..., 2] < 0.1] = np.nan
        pred[f, : len(arr)] = xy
        conf = np.where(arr[..., 2] > 0, arr[..., 2], 0.0)
        score[f, : len(arr)] = conf.sum(axis=1) / np.maximum((conf > 0).sum(axis=1), 1)
    res = oks_map(pred, score, gt.visible_keypoints())
    assert res["mAP"] >= ref["oks_map"] - 0.05, res["mAP"]


@pytest.mark.slow
@pytest.mark.torch
def test_demo_end_to_end_regression(tmp_path, capsys):
    """Short `mapose demo`: tracking quality must not drop below the stored level minus a margin."""
    pytest.importorskip("torch")
    pytest.importorskip("motmetrics")
    pytest.importorskip("mapose.tracking.convert")
    pytest.importorskip("mapose.stitching.api")
    from mapose.cli import main

    ref = _stored()["demo"]
    rc = main(["demo", "--frames", str(ref["frames"]), "--animals", str(ref["animals"]), "--seed",
               str(ref["seed"]), "--out", str(tmp_path), "--no-video"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "MOTA" in printed and "IDF1" in printed and "frames/s" in printed
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    m = summary["metrics"]
    margin = ref["margin"]
    assert m["mota"] >= ref["mota"] - margin, m
    assert m["idf1"] >= ref["idf1"] - margin, m
    assert m["id_switches"] <= ref["id_switches"] + ref["id_switch_slack"], m
    assert m["rmse"] <= ref["rmse"] * 1.25 + 0.25, m
    assert m["num_objects"] > 0.8 * ref["frames"] * ref["animals"]
    # the project's tracks are DLC's layout and live outside the ground-truth folder
    tracks = Path(summary["files"]["tracks"])
    assert tracks.parent.name == "videos" and "ground_truth" not in str(tracks)


@pytest.mark.parametrize("kwargs, match", [
    ({"animals": 0}, "animals"), ({"animals": 7}, "1 to 6"), ({"frames": 5}, "frames >= 10"),
    ({"batch_size": True}, "batch_size"),
])
def test_demo_settings_errors(tmp_path, kwargs, match):
    from mapose.demo.runner import DemoSettings, run_demo

    with pytest.raises(ValueError, match=match):
        run_demo(DemoSettings(out=str(tmp_path), **kwargs), verbose=False)
    assert not any(tmp_path.iterdir())  # nothing written before validation


def test_demo_cli_reports_bad_arguments(tmp_path, capsys):
    from mapose.cli import main

    assert main(["demo", "--animals", "0", "--out", str(tmp_path)]) == 1
    assert "animals must be a positive int" in capsys.readouterr().err


def test_encounter_still_is_the_closest_frame(tmp_path):
    import cv2

    from mapose.demo.runner import _write_encounter_still

    kps = np.zeros((6, 2, 5, 2))
    kps[:, 1, :, 0] = [[60 + 10 * abs(t - 4)] * 5 for t in range(6)]  # closest at frame 4
    gt = GroundTruth(kps, np.ones((6, 2, 5), bool), list(BODYPARTS), ["a", "b"], 25.0, 64, 48)
    gt.save(tmp_path / "gt.npz")
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for t in range(6):
        writer.write(np.full((48, 64, 3), 40 * t, np.uint8))
    writer.release()
    png = _write_encounter_still(tmp_path / "v.avi", tmp_path / "gt.npz", tmp_path / "still.png")
    img = cv2.imread(str(png))
    assert img.shape == (96, 128, 3) and abs(int(img.mean()) - 160) <= 4
