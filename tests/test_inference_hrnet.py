"""HRNet projects through analyze_videos: DLC's ``auto_padding`` made deterministic.

The HRNet project is built at test time: project A's config and model folder with the
``hrnet_w18`` + PAF model section DLC 3.0.2's own config builder writes for it
(``tests/data/hrnet_keys_hrnet_w18.json``, from ``benchmarks/compare_hrnet.py``) and a
DLC-format snapshot whose weights come from numpy-seeded rules (no large files).

References are independent of the padding code under test: frames padded by hand with
``np.pad(mode="reflect")`` (numpy's "reflect" is OpenCV's BORDER_REFLECT_101), run through
the same network and predictor, then shifted back by hand.
(``scripts/compare_hrnet_dlc.py`` checks the same path against DeepLabCut itself.)
"""
from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from _fixture_helpers import fill_rule

from mapose.inference.transforms import (OFFSET_KEY, AutoPadding, InferenceTransform,
                                         PaddingPredictor, PaddingRunner)

DATA = Path(__file__).parent / "data"
SHUFFLE_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"
SCORER = "DLC_HrnetW18_projANov23shuffle1_snapshot_3"
DLC_INFERENCE = {  # data.inference of DLC 3.0.2's hrnet_w18 preset (from the fixture)
    "resize": None, "longest_max_size": None, "hflip": None, "affine": None,
    "random_bbox_transform": None, "crop_sampling": None, "hist_eq": False,
    "motion_blur": False, "covering": None, "elastic_transform": None, "grayscale": None,
    "gaussian_noise": None, "auto_padding": {"pad_width_divisor": 32, "pad_height_divisor": 32},
    "normalize_images": True, "scale_to_unit_range": False, "top_down_crop": None,
    "collate": None,
}


# --- padding arithmetic (no torch) -------------------------------------------------------

def _albumentations_pads(rows, cols, div, position):
    """Straight transcription of PadIfNeeded's documented rule: centred split, then move."""
    ph = (div - rows % div) % div
    pw = (div - cols % div) % div
    if position == "center":
        return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2
    top = ph if position in ("bottom_left", "bottom_right") else 0
    left = pw if position in ("top_right", "bottom_right") else 0
    return top, ph - top, left, pw - left


@pytest.mark.smoke
@pytest.mark.parametrize("position", ["top_left", "center", "top_right", "bottom_left", "bottom_right"])
def test_pads_match_padifneeded_rule(position):
    pad = AutoPadding(32, 32, position=position)
    for h, w in [(256, 320), (250, 300), (1, 1), (31, 33), (64, 65), (480, 640), (479, 641)]:
        pads = pad.pads(h, w)
        assert pads == _albumentations_pads(h, w, 32, position)
        assert (h + pads[0] + pads[1]) % 32 == 0 and (w + pads[2] + pads[3]) % 32 == 0
    assert pad.pads(256, 320) == (0, 0, 0, 0)  # already divisible: no padding


@pytest.mark.smoke
def test_random_position_becomes_top_left_and_min_size():
    pad = AutoPadding.from_config({"pad_width_divisor": 32, "pad_height_divisor": 32})
    assert pad.position == "top_left" and pad.border_mode == "reflect_101"
    assert pad.pads(250, 300) == (0, 6, 0, 20)
    explicit = AutoPadding.from_config({"pad_width_divisor": 32, "pad_height_divisor": 32,
                                        "position": "center"})
    assert explicit.pads(250, 300) == (3, 3, 10, 10)
    # min_height / min_width: pad up to a size, int((min - n) / 2) before (albumentations)
    mins = AutoPadding.from_config({"min_height": 64, "min_width": 40, "pad_height_divisor": None,
                                    "pad_width_divisor": None, "position": "center"})
    assert mins.pads(51, 50) == (6, 7, 0, 0)


@pytest.mark.smoke
@pytest.mark.parametrize("position", ["top_left", "center", "bottom_right"])
def test_reflect_101_and_constant_borders_equal_numpy(position):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 37, 45, 3), dtype=np.uint8)
    pad = AutoPadding(16, 16, position=position)
    t, b, l, r = pad.pads(37, 45)
    got = pad.apply(frames, (t, b, l, r))
    want = np.pad(frames, ((0, 0), (t, b), (l, r), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(got, want)
    const = AutoPadding(16, 16, position=position, border_mode="constant", border_value=[10, 20, 30])
    got = const.apply(frames, (t, b, l, r), bgr=True)
    want = np.stack([np.pad(frames[..., c], ((0, 0), (t, b), (l, r)), constant_values=v)
                     for c, v in zip(range(3), [30, 20, 10])], axis=-1)  # RGB value, BGR frames
    np.testing.assert_array_equal(got, want)


@pytest.mark.smoke
@pytest.mark.parametrize("key, value, match", [
    ("resize", {"height": 256, "width": 256}, "resize"),
    ("longest_max_size", 512, "longest_max_size"),
    ("hflip", 0.5, "hflip"),
    ("affine", {"p": 0.5}, "affine"),
    ("normalize_images", False, "normalize_images"),
    ("scale_to_unit_range", True, "scale_to_unit_range"),
    ("mystery", {"a": 1}, "mystery"),
])
def test_unsupported_inference_transforms_name_the_key(key, value, match):
    inf = dict(DLC_INFERENCE, **{key: value})
    with pytest.raises(ValueError, match=match):
        InferenceTransform.from_config({"data": {"inference": inf}})


@pytest.mark.smoke
@pytest.mark.parametrize("pad, match", [
    ({"pad_width_divisor": 32, "pad_height_divisor": 32, "position": "middle"}, "position"),
    ({"pad_width_divisor": 32, "pad_height_divisor": 32, "border_mode": "wrap"}, "border_mode"),
    ({"pad_width_divisor": 0, "pad_height_divisor": 32}, "pad_width_divisor"),
    ({"pad_width_divisor": 32, "pad_height_divisor": 32, "min_height": 64}, "min_height"),
    ({"pad_width_divisor": 32, "pad_height_divisor": 32, "colour": 1}, "colour"),
    ([32, 32], "mapping"),
])
def test_bad_auto_padding(pad, match):
    with pytest.raises(ValueError, match=match):
        InferenceTransform.from_config({"data": {"inference": dict(DLC_INFERENCE, auto_padding=pad)}})


@pytest.mark.smoke
def test_transform_from_dlc_presets():
    assert InferenceTransform.from_config({}).padding is None  # DLC default: normalise only
    resnet = dict(DLC_INFERENCE, auto_padding=None)
    t = InferenceTransform.from_config({"data": {"inference": resnet}})
    runner, predictor = object(), object()
    assert t.padding is None and t.wrap(runner, predictor) == (runner, predictor)
    t = InferenceTransform.from_config({"data": {"inference": DLC_INFERENCE}})
    assert t.padding == AutoPadding(32, 32, position="top_left")


@pytest.mark.smoke
def test_padding_runner_and_predictor_map_back():
    """A fake runner sees the padded frames; poses, unique body parts (and -1 rows, as DLC's
    RescaleAndOffset does) are shifted back by the offset carried with the batch."""
    from mapose.inference.predictor import FramePrediction

    seen = []

    def runner(frames):
        seen.append(frames)
        return {"bodypart/heatmap": np.zeros((len(frames), 1, 1, 1), np.float32)}

    poses = np.full((2, 3, 5), -1.0, np.float32)
    poses[0, :, :3] = [[20.5, 10.25, 0.9], [np.nan, np.nan, 0.0], [3.0, 4.0, 0.5]]

    def predictor(outputs):
        assert OFFSET_KEY not in outputs
        return [FramePrediction(poses=poses.copy(), unique=np.float32([[7.0, 8.0, 0.4]]))]

    frames = np.zeros((1, 50, 60, 3), np.uint8)
    pr = PaddingRunner(runner, AutoPadding(32, 32, position="center"))
    pp = PaddingPredictor(predictor)
    out = pr(frames)
    assert seen[0].shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(out[OFFSET_KEY], [2.0, 7.0])  # (left, top)
    (pred,) = pp(out)
    np.testing.assert_array_equal(pred.poses[0, :, :2], [[18.5, 3.25], [np.nan, np.nan], [1.0, -3.0]])
    np.testing.assert_array_equal(pred.poses[1, :, :2], [[-3.0, -8.0]] * 3)
    np.testing.assert_array_equal(pred.poses[..., 2:], poses[..., 2:])
    np.testing.assert_array_equal(pred.unique, np.float32([[5.0, 1.0, 0.4]]))
    # divisible frames: passed through untouched (same array), zero offset, poses unchanged
    seen.clear()
    frames = np.zeros((2, 64, 96, 3), np.uint8)
    out = pr(frames)
    assert seen[0] is frames and not out[OFFSET_KEY].any()
    np.testing.assert_array_equal(pp(out)[0].poses, poses)


# --- HRNet-w18 project end to end (torch) --------------------------------------------------

def make_hrnet_project(project_a: Path, dst: Path, clips: dict, position: str | None = None) -> Path:
    """Project A's config + an hrnet_w18 PAF shuffle with a seeded snapshot-003.pt.

    ``clips``: name -> (first frame, n frames, (x0, x1, y0, y1)) cut from project A's video.
    """
    torch = pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    from mapose.io.config import read_config, write_config
    from mapose.models import build_pose_model

    doc = json.loads((DATA / "hrnet_keys_hrnet_w18.json").read_text())
    (dst / "videos").mkdir(parents=True)
    cfg = read_config(project_a / "config.yaml")
    write_config(dst / "config.yaml", cfg)
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(project_a / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
        os.chmod(dst / SHUFFLE_DIR / f, 0o644)
    from mapose.io.config import yaml_dump, yaml_load

    pcfg = dict(yaml_load(project_a / SHUFFLE_DIR / "train/pytorch_config.yaml"))
    pcfg["net_type"] = "hrnet_w18"
    pcfg["model"] = copy.deepcopy(doc["model"])
    pcfg["data"] = dict(pcfg["data"], inference=copy.deepcopy(doc["data_inference"]))
    if position is not None:
        pcfg["data"]["inference"]["auto_padding"]["position"] = position
    yaml_dump(pcfg, dst / SHUFFLE_DIR / "train/pytorch_config.yaml")
    with torch.device("meta"):
        model = build_pose_model({"net_type": "hrnet_w18", "model": pcfg["model"]})
    model = model.to_empty(device="cpu")
    sd = model.state_dict()
    with torch.no_grad():
        for i, (k, shape) in enumerate(doc["keys"]):
            w = fill_rule(i, k, shape)
            sd[k].copy_(torch.from_numpy(w) if w is not None else torch.zeros(()))
        # tame the random heads: sparse heatmap peaks, locref offsets of a few pixels, PAFs
        # of order 1, so that the predictor assembles a few animals per frame
        for head, scale, bias in (("heatmap", 4e-3, -10.0), ("locref", 1e-4, 0.0), ("paf", 3e-4, 0.0)):
            sd[f"heads.bodypart.{head}_head.deconv_layers.0.weight"].mul_(scale)
            sd[f"heads.bodypart.{head}_head.deconv_layers.0.bias"].fill_(bias)
    torch.save({"model": sd, "metadata": {"epoch": 3}}, dst / SHUFFLE_DIR / "train/snapshot-003.pt")
    cap = cv2.VideoCapture(str(project_a / "videos/synthA.avi"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    for name, (start, n, (x0, x1, y0, y1)) in clips.items():
        out = cv2.VideoWriter(str(dst / "videos" / name), cv2.VideoWriter_fourcc(*"FFV1"), 25,
                              (x1 - x0, y1 - y0))
        for f in frames[start:start + n]:
            out.write(np.ascontiguousarray(f[y0:y1, x0:x1]))
        out.release()
    return dst / "config.yaml"


N_FRAMES = 2
CLIPS = {
    "div.avi": (40, N_FRAMES, (128, 192, 80, 144)),    # 64 x 64: divisible, no padding
    "pad.avi": (40, N_FRAMES, (130, 180, 90, 130)),    # 50 x 40: padded to 64 x 64
    "long.avi": (0, 11, (130, 180, 90, 130)),          # for tracking (tracklets >= 10 frames)
}


def _read(video):
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return np.stack(frames)


def _load(p):
    with open(p, "rb") as fh:
        return pickle.load(fh)


@pytest.fixture(scope="module")
def hrnet_project(project_a, tmp_path_factory):
    root = tmp_path_factory.mktemp("hrnet")
    return make_hrnet_project(project_a, root, CLIPS)


def _variant(config: Path, dst: Path, position: str, **inference) -> Path:
    """The same project (snapshot and videos linked) with another auto_padding position
    (and other ``data.inference`` keys)."""
    from mapose.io.config import yaml_dump, yaml_load

    src = config.parent
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("*.pt", "*.avi"))
    for p in list((src / SHUFFLE_DIR / "train").glob("*.pt")) + list((src / "videos").glob("*.avi")):
        os.symlink(p, dst / p.relative_to(src))
    path = dst / SHUFFLE_DIR / "train/pytorch_config.yaml"
    pcfg = yaml_load(path)
    pcfg["data"]["inference"]["auto_padding"]["position"] = position
    pcfg["data"]["inference"].update(inference)
    yaml_dump(pcfg, path)
    return dst / "config.yaml"


def _reference_poses(config, frames, pads):
    """Poses of frames padded by hand (numpy reflect), shifted back by hand."""
    from mapose.inference.predictor import BottomUpPredictor
    from mapose.inference.project_model import find_project_model
    from mapose.inference.runners import TorchRunner

    pm = find_project_model(config)
    runner = TorchRunner(pm.build_model(), device="cpu")
    predictor = BottomUpPredictor(runner.net.model.head_specs)
    t, b, l, r = pads
    padded = np.pad(frames, ((0, 0), (t, b), (l, r), (0, 0)), mode="reflect")
    assert padded.shape[1] % 32 == 0 and padded.shape[2] % 32 == 0
    preds = predictor(runner(padded))
    poses = np.stack([p.poses for p in preds])
    poses[..., 0] -= l
    poses[..., 1] -= t
    return poses


def _full_poses(path, n):
    full = _load(path)
    out = []
    for i in range(n):
        fr = full[f"frame{i}"]
        xy = np.stack(fr["coordinates"][0], axis=1)          # (N, K, 2)
        conf = np.stack(fr["confidence"], axis=1)            # (N, K, 1)
        out.append(np.concatenate([xy, conf], axis=2))
    return np.stack(out)


@pytest.mark.torch
@pytest.mark.parametrize("clip, pads", [("div.avi", (0, 0, 0, 0)), ("pad.avi", (0, 24, 0, 14))])
def test_analyze_videos_hrnet_equals_manually_padded_frames(hrnet_project, tmp_path, clip, pads):
    import mapose

    video = hrnet_project.parent / "videos" / clip
    scorer = mapose.analyze_videos(hrnet_project, [video], auto_track=False, save_as_df=True,
                                   destfolder=tmp_path, batch_size=N_FRAMES, progress=False)
    assert scorer == SCORER
    stem = tmp_path / (video.stem + scorer)
    got = _full_poses(str(stem) + "_full.pickle", N_FRAMES)
    want = _reference_poses(hrnet_project, _read(video), pads)[..., :3]
    assert np.isfinite(want).any()  # some animals are assembled
    np.testing.assert_array_equal(got, want)
    asm = _load(str(stem) + "_assemblies.pickle")
    assert sorted(k for k in asm if k != "single") == list(range(N_FRAMES))
    import pandas as pd

    df = pd.read_hdf(str(stem) + ".h5", "df_with_missing")
    np.testing.assert_array_equal(df.to_numpy().reshape(N_FRAMES, 3, 5, 3), got)
    meta = _load(str(stem) + "_meta.pickle")["data"]
    h, w = _read(video).shape[1:3]
    assert meta["frame_dimensions"] == (w, h)  # the video's size, not the padded one


@pytest.mark.torch
def test_center_position_is_mapped_back(hrnet_project, tmp_path):
    import mapose

    config = _variant(hrnet_project, tmp_path / "p", "center")
    video = tmp_path / "p/videos/pad.avi"
    mapose.analyze_videos(config, [video], auto_track=False, progress=False, destfolder=tmp_path,
                          batch_size=N_FRAMES)
    got = _full_poses(tmp_path / f"pad{SCORER}_full.pickle", N_FRAMES)
    want = _reference_poses(config, _read(video), (12, 12, 7, 7))[..., :3]
    np.testing.assert_allclose(got, want, rtol=0, atol=0)


@pytest.mark.torch
@pytest.mark.slow
def test_hrnet_auto_track_and_dynamic(hrnet_project, tmp_path):
    """auto_track=True writes tracklets (or DLC's "Tracklets are empty" OSError for a
    random network); dynamic cropping pads each cropped window (DLC's HRNet would fail on
    windows that are not multiples of 32)."""
    import mapose

    config = hrnet_project
    video = config.parent / "videos/long.avi"
    stem = tmp_path / f"long{SCORER}"
    try:
        mapose.analyze_videos(config, [video], auto_track=True, progress=False, batch_size=4,
                              destfolder=tmp_path)
    except OSError as exc:
        assert "empty" in str(exc).lower()
    tracklets = _load(str(stem) + "_el.pickle")
    asm = _load(str(stem) + "_assemblies.pickle")
    assert "header" in tracklets and len(asm) == 12
    # every tracked key point is one of the frame's assembled key points
    for tid, track in tracklets.items():
        if isinstance(tid, str):  # "header", "single"; ids are numpy ints (DLC)
            continue
        for key, arr in track.items():
            frame = int(key[len("frame"):])
            xy = arr[:, :2][np.isfinite(arr[:, :2]).all(1)]
            cand = asm[frame][..., :2].reshape(-1, 2)
            for p in xy:
                assert np.isclose(cand, p).all(1).any()
    dest = tmp_path / "dyn"
    mapose.analyze_videos(config, [config.parent / "videos/pad.avi"], auto_track=False,
                          progress=False, dynamic=(True, 0.0, 5), destfolder=dest, batch_size=1)
    full = _load(dest / f"pad{SCORER}_full.pickle")
    assert full["metadata"]["nframes"] == N_FRAMES


@pytest.mark.torch
@pytest.mark.parametrize("position, inference, match", [
    ("random", {"resize": {"height": 64, "width": 64, "keep_ratio": True}}, "data.inference.resize"),
    ("random", {"longest_max_size": 64}, "data.inference.longest_max_size"),
    ("sideways", {}, "position"),
])
def test_unsupported_transform_fails_before_writing(hrnet_project, tmp_path, position, inference, match):
    import mapose

    config = _variant(hrnet_project, tmp_path / "p", position, **inference)
    dest = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        mapose.analyze_videos(config, [tmp_path / "p/videos/pad.avi"], destfolder=dest, progress=False)
    assert not dest.exists() or not list(dest.iterdir())
