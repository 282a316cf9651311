"""Helpers for the ReID tests: a light copy of DLC's project A with a short clip and DLC's
own tracklets cut to that clip (so no pose analysis has to run first)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from _fixture_helpers import write_clip

SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
SHUFFLE_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"


def read_frames(video, n):
    """First n frames, RGB uint8 (n, H, W, 3)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    for _ in range(n):
        ok, frame = cap.read()
        assert ok
        frames.append(frame[..., ::-1])
    cap.release()
    return np.stack(frames)


def make_reid_project(src: Path, dst: Path, n_frames: int) -> tuple[Path, Path]:
    """Project A mirrored into dst: configs, a symlinked snapshot, an n-frame clip and DLC's
    ``_el.pickle`` restricted to those frames.  Returns (config.yaml, clip)."""
    from mapose.io.tracklets_pickle import read_tracklets_pickle, write_tracklets_pickle
    from mapose.stitching.stitcher import TrackletStitcher

    (dst / "videos").mkdir(parents=True)
    shutil.copy(src / "config.yaml", dst / "config.yaml")
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("train/pytorch_config.yaml", "test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(src / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
    for p in list(dst.rglob("*")) + [dst / "config.yaml"]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.symlink(src / SHUFFLE_DIR / "train/snapshot-best-050.pt", dst / SHUFFLE_DIR / "train/snapshot-best-050.pt")
    clip = dst / "videos" / "clip.avi"
    write_clip(src / "videos" / "synthA.avi", clip, n_frames)
    full = read_tracklets_pickle(src / "videos" / f"synthA{SCORER}_el.pickle")
    cut = {"header": full["header"]}
    for tid, frames in full.items():
        if tid in ("header", "single"):
            continue
        kept = {k: v for k, v in frames.items() if TrackletStitcher.get_frame_ind(k) < n_frames}
        if kept:
            cut[tid] = kept
    write_tracklets_pickle(dst / "videos" / f"clip{SCORER}_el.pickle", cut)
    return dst / "config.yaml", clip
