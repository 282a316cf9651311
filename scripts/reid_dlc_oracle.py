"""DeepLabCut 3.0.2 side of the ReID parity check (runs ONLY in /work/dlcenv).

``/work/dlcenv/bin/python scripts/reid_dlc_oracle.py ...`` is called by
``scripts/compare_reid_dlc.py``; nothing here is imported by mapose.

Sub-commands:

``run WORKDIR --frames N --triplets T --epochs E --seed S``
    Copy project A into WORKDIR (its snapshot included, ``project_path`` rewritten), cut the
    first N frames of its video into ``videos/clip.avi``, run ``analyze_videos``
    (auto_track) and then the steps of ``transformer_reID`` one by one (same calls, same
    order) with ``torch.manual_seed(S)`` before training; writes ``timings.json``.
``init SEED C K OUT``
    State dict of a fresh DLC ReID model built after ``torch.manual_seed(SEED)`` (.npz).
``embed CKPT NPY OUT``
    DLC's model (as ``DLCTrans`` loads it: float64, eval) applied to every member of the
    triplet array NPY (N, 3, K, C); embeddings (N, 3, 128) saved to OUT.
``stitch CONFIG VIDEO CKPT OUTPUT``
    ``deeplabcut.stitch_tracklets(..., transformer_checkpoint=CKPT, output_name=OUTPUT)``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

PROJECT_A = Path("/work/shared/data/dlc-3.0.2-project-a")
MODEL_DIR = Path("dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1")

warnings.simplefilter("ignore")


def _copy_project(workdir: Path, n_frames: int) -> tuple[Path, Path]:
    import cv2
    import yaml

    (workdir / "videos").mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_A / MODEL_DIR, workdir / MODEL_DIR, dirs_exist_ok=True)
    for p in workdir.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    video = workdir / "videos" / "clip.avi"
    cap = cv2.VideoCapture(str(PROJECT_A / "videos" / "synthA.avi"))
    out = None
    for _ in range(n_frames):
        ok, frame = cap.read()
        if out is None:
            h, w = frame.shape[:2]
            out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
        out.write(frame)
    out.release()
    cap.release()
    cfg = yaml.safe_load((PROJECT_A / "config.yaml").read_text())
    cfg["project_path"] = str(workdir)
    cfg["video_sets"] = {str(video): {"crop": "0, 320, 0, 256"}}
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return config, video


def cmd_run(args) -> None:
    import torch

    import deeplabcut
    from deeplabcut.utils import auxiliaryfunctions

    workdir = Path(args.workdir)
    config, video = _copy_project(workdir, args.frames)
    times = {}
    t0 = time.perf_counter()
    deeplabcut.analyze_videos(str(config), [str(video)], auto_track=True, device="cpu")
    times["analyze_videos"] = time.perf_counter() - t0
    cfg = auxiliaryfunctions.read_config(str(config))
    scorer, _ = auxiliaryfunctions.GetScorerName(cfg, shuffle=1, trainFraction=cfg["TrainingFraction"][0])
    # transformer_reID's body, step by step (same calls, same order)
    t0 = time.perf_counter()
    deeplabcut.compat.create_tracking_dataset(str(config), [str(video)], "ellipse", shuffle=1,
                                              trainingsetindex=0, n_triplets=args.triplets)
    times["create_tracking_dataset"] = time.perf_counter() - t0
    _, _, snapshotfolder = deeplabcut.return_train_network_path(str(config), shuffle=1, trainingsetindex=0)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    deeplabcut.pose_tracking_pytorch.train_tracking_transformer(
        str(config), scorer, [str(video)], train_frac=0.8, train_epochs=args.epochs,
        ckpt_folder=snapshotfolder)
    times["train_tracking_transformer"] = time.perf_counter() - t0
    ckpt = Path(snapshotfolder) / f"dlc_transreid_{args.epochs}.pth"
    t0 = time.perf_counter()
    deeplabcut.stitch_tracklets(str(config), [str(video)], shuffle=1, trainingsetindex=0,
                                track_method="ellipse", transformer_checkpoint=ckpt)
    times["stitch_tracklets_tr"] = time.perf_counter() - t0
    (workdir / "timings.json").write_text(json.dumps({"times": times, "scorer": scorer,
                                                      "checkpoint": str(ckpt)}))


def cmd_init(args) -> None:
    import torch

    from deeplabcut.pose_tracking_pytorch.config import cfg
    from deeplabcut.pose_tracking_pytorch.model import make_dlc_model

    torch.manual_seed(args.seed)
    model = make_dlc_model(cfg, args.C, args.K)
    np.savez(args.out, **{k: v.numpy() for k, v in model.state_dict().items()})


def cmd_embed(args) -> None:
    import torch

    from deeplabcut.pose_tracking_pytorch.inference import DLCTrans

    trans = DLCTrans(checkpoint=args.ckpt)
    x = np.load(args.npy)
    with torch.no_grad():
        emb = [trans.model(torch.from_numpy(x[:, j]).double()).numpy() for j in range(3)]
    np.save(args.out, np.stack(emb, axis=1))


def cmd_stitch(args) -> None:
    import deeplabcut

    deeplabcut.stitch_tracklets(args.config, [args.video], shuffle=1, trainingsetindex=0,
                                track_method="ellipse", transformer_checkpoint=args.ckpt,
                                output_name=args.output)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("workdir")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--triplets", type=int, default=200)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("init")
    p.add_argument("seed", type=int)
    p.add_argument("C", type=int)
    p.add_argument("K", type=int)
    p.add_argument("out")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("embed")
    p.add_argument("ckpt")
    p.add_argument("npy")
    p.add_argument("out")
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("stitch")
    p.add_argument("config")
    p.add_argument("video")
    p.add_argument("ckpt")
    p.add_argument("output")
    p.set_defaults(func=cmd_stitch)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
