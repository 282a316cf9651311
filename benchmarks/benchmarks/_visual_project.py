"""Generate a small DLC-style project (config, scorer folder, video, tracks h5, _full.pickle).

Shared by ``bench_visual.py`` and ``compare_visual.py``; everything is synthetic, so the
benchmarks need no shared data.  Keypoints move on smooth random walks.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
PROJECT_A = Path(__file__).resolve().parents[3] / "shared" / "data" / "dlc-3.0.2-project-a"


def make_project(root, n_animals=3, n_bodyparts=5, n_frames=300, width=640, height=480, seed=0):
    import cv2
    import pandas as pd
    import yaml

    root = Path(root)
    vids = root / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    bpts = [f"bp{i}" for i in range(n_bodyparts)]
    inds = [f"animal{i}" for i in range(n_animals)]
    cfg = {
        "Task": "projA", "scorer": "b", "date": "Nov23", "multianimalproject": True, "identity": False,
        "project_path": str(root), "engine": "pytorch", "video_sets": {}, "bodyparts": "MULTI!",
        "individuals": inds, "uniquebodyparts": [], "multianimalbodyparts": bpts,
        "skeleton": [[bpts[i], bpts[i + 1]] for i in range(n_bodyparts - 1)], "skeleton_color": "black",
        "pcutoff": 0.6, "dotsize": 8, "alphavalue": 0.7, "colormap": "rainbow", "TrainingFraction": [0.95],
        "iteration": 0, "default_net_type": "resnet_50", "default_track_method": "ellipse",
        "snapshotindex": -1, "batch_size": 4, "cropping": False,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    # model folder and training-set metadata (the scorer name is derived from them): taken
    # from project A when present (DLC reads them), else a minimal stand-in for mapose
    import shutil

    rel = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"
    train = root / rel / "train"
    train.mkdir(parents=True, exist_ok=True)
    if PROJECT_A.is_dir():
        shutil.copy(PROJECT_A / rel / "train" / "pytorch_config.yaml", train)
        shutil.copytree(PROJECT_A / "training-datasets", root / "training-datasets", dirs_exist_ok=True)
        for sub in ("test",):
            shutil.copytree(PROJECT_A / rel / sub, root / rel / sub, dirs_exist_ok=True)
        for q in root.rglob("*"):
            q.chmod(0o755 if q.is_dir() else 0o644)
    else:
        (train / "pytorch_config.yaml").write_text(yaml.safe_dump(
            {"net_type": "resnet_50", "method": "bu", "model": {"backbone": {"type": "ResNet"}}}))
    (train / "snapshot-best-050.pt").touch()

    rng = np.random.default_rng(seed)
    video = vids / "bench.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (width, height))
    base = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    for i in range(n_frames):
        w.write(np.roll(base, i, axis=1))
    w.release()

    centre = rng.uniform([50, 50], [width - 50, height - 50], (n_animals, 2))
    steps = rng.normal(0, 2, (n_frames, n_animals, 2)).cumsum(axis=0)
    offs = rng.normal(0, 15, (n_animals, n_bodyparts, 2))
    xy = centre[None, :, None, :] + steps[:, :, None, :] + offs[None]
    xy[..., 0] = np.clip(xy[..., 0], 0, width - 1)
    xy[..., 1] = np.clip(xy[..., 1], 0, height - 1)
    p = rng.uniform(0.3, 1.0, (n_frames, n_animals, n_bodyparts, 1))
    vals = np.concatenate([xy, p], axis=-1).reshape(n_frames, -1)
    cols = pd.MultiIndex.from_product([[SCORER], inds, bpts, ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(vals, columns=cols, index=range(n_frames))
    df.to_hdf(vids / f"bench{SCORER}_el.h5", key="tracks", format="table", mode="w")

    width_key = int(np.ceil(np.log10(n_frames)))
    full = {"metadata": {"nms radius": None, "minimal confidence": None, "sigma": 1, "PAFgraph": None,
                         "PAFinds": np.arange(0), "all_joints": [[i] for i in range(n_bodyparts)],
                         "all_joints_names": bpts, "nframes": n_frames, "key_str_width": width_key}}
    for i in range(n_frames):
        full["frame" + str(i).zfill(width_key)] = {
            "coordinates": ([xy[i, :, b].astype(np.float32) for b in range(n_bodyparts)],),
            "confidence": [p[i, :, b].astype(np.float32) for b in range(n_bodyparts)],
            "costs": None,
        }
    with open(vids / f"bench{SCORER}_full.pickle", "wb") as fh:
        pickle.dump(full, fh, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {"data": {"nframes": n_frames, "frame_dimensions": (width, height), "cropping": False,
                     "cropping_parameters": [0, width, 0, height], "fps": 30.0, "pytorch-config": {},
                     "Scorer": SCORER}}
    with open(vids / f"bench{SCORER}_meta.pickle", "wb") as fh:
        pickle.dump(meta, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return root / "config.yaml", video
