"""DeepLabCut 3.0.2 oracle runs for the HRNet and identity parity checks (DLC side only).

Runs ONLY in the DLC virtualenv (``/work/dlcenv/bin/python scripts/dlc_oracle.py ...``);
``scripts/compare_hrnet_dlc.py`` and ``scripts/compare_identity_dlc.py`` call it in a
subprocess and compare its files with mapose's.  Nothing here is imported by mapose.

Sub-commands (all paths are created/overwritten inside ``workdir``):

``hrnet-project WORKDIR --epochs E``
    Copy project A's config, labelled data and video into WORKDIR, create a PAF training
    set with ``net_type=hrnet_w18`` and train it on CPU for E epochs (random
    initialisation: there is no network here for ImageNet weights).
``identity-project WORKDIR --seed S --scale A``
    Copy project A (its trained ResNet-50 snapshot included) with ``identity: true``; the
    identity head section comes from DLC's own config builder and its weights are
    ``A * N(0, 1) / sqrt(fan_in)`` from numpy's ``default_rng(S)`` (see
    :func:`identity_head_weights`, repeated in the tests), appended to the snapshot.
``rescale-heads CONFIG VIDEO``
    Rescale the PAF head's output layers of the last snapshot so that a barely trained
    network gives a manageable number of peaks (see :func:`rescale_heads`); writes the
    next snapshot.
``analyze CONFIG VIDEO DEST [--position P] [--auto-track] [--record-pads FILE]``
    ``deeplabcut.analyze_videos`` on VIDEO into DEST (``save_as_df=True``, batch size 1,
    CPU).  ``--position`` overrides ``data.inference.auto_padding.position`` for this
    run (DLC's default is ``random``); ``--record-pads`` stores the pads albumentations
    drew for each frame (so mapose can be run with the same ones).
``track CONFIG VIDEO DEST [--identity-only]``
    ``convert_detections2tracklets`` + ``stitch_tracklets`` on the analysis files in DEST.
``raw CONFIG VIDEO OUT --frames 0,1``
    DLC's ``PoseModel`` outputs (every head) for those frames, preprocessed by DLC's own
    inference transform with ``position`` forced to ``top_left``, saved to OUT (.npz).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

PROJECT_A = Path("/work/shared/data/dlc-3.0.2-project-a")
MODEL_DIR = Path("dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1")

warnings.simplefilter("ignore")


def identity_head_weights(seed: int, scale: float, c_in: int = 2048, n_ids: int = 3):
    """Seeded identity-head ConvTranspose weights, (c_in, n_ids, 3, 3) and (n_ids,)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_in, n_ids, 3, 3)) * (scale / np.sqrt(c_in * 9))
    b = 0.1 * rng.standard_normal(n_ids)
    return w.astype(np.float32), b.astype(np.float32)


def _no_pretrained_weights():
    # no internet here: timm must not try to download ImageNet weights
    import timm

    create = timm.create_model

    def create_model(*args, **kwargs):
        kwargs["pretrained"] = False
        return create(*args, **kwargs)

    timm.create_model = create_model


def _copy_project(workdir: Path, with_model: bool) -> Path:
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_A / "labeled-data", workdir / "labeled-data", dirs_exist_ok=True)
    (workdir / "videos").mkdir(exist_ok=True)
    shutil.copy(PROJECT_A / "videos" / "synthA.avi", workdir / "videos" / "synthA.avi")
    if with_model:
        shutil.copytree(PROJECT_A / "training-datasets", workdir / "training-datasets",
                        dirs_exist_ok=True)
        shutil.copytree(PROJECT_A / MODEL_DIR, workdir / MODEL_DIR, dirs_exist_ok=True)
    for p in workdir.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    cfg = yaml.safe_load((PROJECT_A / "config.yaml").read_text())
    cfg["project_path"] = str(workdir)
    cfg["video_sets"] = {str(workdir / "videos" / "synthA.avi"): {"crop": "0, 320, 0, 256"}}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def hrnet_project(workdir: Path, epochs: int) -> None:
    import deeplabcut
    import torch
    import yaml
    from deeplabcut.core.engine import Engine

    _no_pretrained_weights()
    torch.manual_seed(0)
    config = _copy_project(workdir, with_model=False)
    deeplabcut.create_multianimaltraining_dataset(str(config), net_type="hrnet_w18",
                                                  engine=Engine.PYTORCH, userfeedback=False)
    pcfg_path = next(workdir.glob("dlc-models-pytorch/iteration-0/*/train/pytorch_config.yaml"))
    pcfg = yaml.safe_load(pcfg_path.read_text())
    pcfg["train_settings"]["dataloader_workers"] = 0
    pcfg_path.write_text(yaml.safe_dump(pcfg, sort_keys=False))
    deeplabcut.train_network(str(config), shuffle=1, epochs=epochs, save_epochs=1, batch_size=4,
                             device="cpu", display_iters=5)


def identity_project(workdir: Path, seed: int, scale: float) -> None:
    import torch
    import yaml
    from deeplabcut.pose_estimation_pytorch.config.make_pose_config import make_pytorch_pose_config

    config = _copy_project(workdir, with_model=True)
    cfg = yaml.safe_load(config.read_text())
    cfg["identity"] = True
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    train = workdir / MODEL_DIR / "train"
    pcfg = yaml.safe_load((train / "pytorch_config.yaml").read_text())
    built = make_pytorch_pose_config(cfg, str(train / "pytorch_config.yaml"), net_type="resnet_50")
    plain = lambda o: o.to_dict() if hasattr(o, "to_dict") else str(o)  # noqa: E731
    built = json.loads(json.dumps(plain(built), default=plain))
    pcfg["model"]["heads"]["identity"] = built["model"]["heads"]["identity"]
    pcfg["metadata"]["with_identity"] = True
    pcfg["metadata"]["project_path"] = str(workdir)
    (train / "pytorch_config.yaml").write_text(yaml.safe_dump(pcfg, sort_keys=False))
    snap_path = train / "snapshot-best-050.pt"
    snap = torch.load(snap_path, weights_only=False)
    w, b = identity_head_weights(seed, scale)
    snap["model"]["heads.identity.heatmap_head.deconv_layers.0.weight"] = torch.from_numpy(w)
    snap["model"]["heads.identity.heatmap_head.deconv_layers.0.bias"] = torch.from_numpy(b)
    torch.save(snap, snap_path)
    print(json.dumps(built["model"]["heads"]["identity"]))


def _set_position(config: Path, position: str | None):
    """Rewrite the shuffle's auto_padding position; returns a function restoring it."""
    import yaml

    path = next(config.parent.glob("dlc-models-pytorch/iteration-0/*/train/pytorch_config.yaml"))
    text = path.read_text()
    if position is None:
        return lambda: None
    pcfg = yaml.safe_load(text)
    pad = (pcfg.get("data", {}).get("inference") or {}).get("auto_padding")
    if not pad:
        return lambda: None
    pad["position"] = position
    path.write_text(yaml.safe_dump(pcfg, sort_keys=False))
    return lambda: path.write_text(text)


def analyze(config: Path, video: Path, dest: Path, position: str | None, auto_track: bool,
            record_pads: Path | None, seed: int = 0) -> None:
    import random

    import albumentations as A
    import deeplabcut

    _no_pretrained_weights()
    random.seed(seed)  # albumentations draws the random padding position with `random`
    pads = []
    if record_pads is not None:
        update = A.PadIfNeeded.update_params

        def update_params(self, params, **kwargs):
            out = update(self, params, **kwargs)
            pads.append([out["pad_top"], out["pad_bottom"], out["pad_left"], out["pad_right"]])
            return out

        A.PadIfNeeded.update_params = update_params
    import time

    restore = _set_position(config, position)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        deeplabcut.analyze_videos(str(config), [str(video)], shuffle=1, destfolder=str(dest),
                                  batch_size=1, device="cpu", save_as_df=True,
                                  auto_track=auto_track)
        seconds = time.perf_counter() - t0
    finally:
        restore()
    (dest / "timing.json").write_text(json.dumps({"analyze_videos_s": seconds}))
    if record_pads is not None:
        record_pads.write_text(json.dumps(pads))


def track(config: Path, video: Path, dest: Path, identity_only: bool) -> None:
    """DLC's tracking alone on analysis files already in DEST."""
    import deeplabcut

    deeplabcut.convert_detections2tracklets(str(config), [str(video)], shuffle=1, destfolder=str(dest),
                                            identity_only=identity_only, overwrite=True)
    try:
        deeplabcut.stitch_tracklets(str(config), [str(video)], shuffle=1, destfolder=str(dest))
    except OSError as exc:  # "Tracklets are empty." on short clips: recorded for the comparison
        (dest / "stitch_error.txt").write_text(str(exc))


def rescale_heads(config: Path, video: Path) -> None:
    """Make a few-iteration, randomly initialised HRNet usable for a parity check.

    Its output layers give logits of order 1e5 (thousands of peaks per frame, for which
    DLC's Python assembler does not finish).  Rescale the last layer of each PAF-head
    output from DLC's own outputs on the video's frame 0: heatmap channel k becomes
    ``30 (H_k - q_k) / std(H_k) + 1`` (q_k: its 99.95 % quantile, so ~0.05 % of the pixels
    score above 0.7, about 50 peaks per body part), locref and PAF maps get standard deviations 0.3 and 1.  The result is
    saved as the next snapshot (a plain DLC snapshot; both sides load the same file).
    """
    import torch

    _no_pretrained_weights()
    raw_path = config.parent / "rescale_raw.npz"
    raw(config, video, raw_path, [0])
    ref = np.load(raw_path)
    train = next(config.parent.glob("dlc-models-pytorch/iteration-0/*/train"))
    snaps = sorted(train.glob("snapshot-*.pt"))
    snap = torch.load(snaps[-1], weights_only=False)
    epoch = int(snap.get("metadata", {}).get("epoch", len(snaps)))
    sd = snap["model"]
    for name, key in (("heatmap", "heatmap_head"), ("locref", "locref_head"), ("paf", "paf_head")):
        y = ref[f"0/bodypart/{name}"][0].astype(np.float64)
        flat = y.reshape(y.shape[0], -1)
        w = sd[f"heads.bodypart.{key}.deconv_layers.0.weight"]   # (R, C, 3, 3)
        b = sd[f"heads.bodypart.{key}.deconv_layers.0.bias"]     # (C,)
        if name == "heatmap":
            scale = 30.0 / flat.std(1)
            shift = -scale * np.quantile(flat, 0.9995, axis=1) + 1.0
        else:
            scale = np.full(len(flat), (0.3 if name == "locref" else 1.0) / flat.std())
            shift = np.zeros(len(flat))
        scale_t = torch.from_numpy(scale.astype(np.float32))
        w.mul_(scale_t.view(1, -1, 1, 1))
        b.copy_(b * scale_t + torch.from_numpy(shift.astype(np.float32)))
    snap["metadata"] = dict(snap.get("metadata", {}), epoch=epoch + 1)
    torch.save(snap, train / f"snapshot-{epoch + 1:03d}.pt")
    raw_path.unlink()


def raw(config: Path, video: Path, out: Path, frames: list[int]) -> None:
    import cv2
    import torch
    import yaml
    from deeplabcut.pose_estimation_pytorch.data.transforms import build_transforms
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    _no_pretrained_weights()
    train = next(config.parent.glob("dlc-models-pytorch/iteration-0/*/train"))
    pcfg = yaml.safe_load((train / "pytorch_config.yaml").read_text())
    inf = dict(pcfg["data"]["inference"])
    if inf.get("auto_padding"):
        inf["auto_padding"] = dict(inf["auto_padding"], position="top_left")
    transform = build_transforms(inf)
    model = PoseModel.build(pcfg["model"]).eval()
    snap = sorted(train.glob("snapshot-*.pt"))[-1]  # the one analyze_videos uses (no best)
    model.load_state_dict(torch.load(snap, weights_only=False)["model"])
    cap = cv2.VideoCapture(str(video))
    result = {}
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index in frames:
            rgb = frame[:, :, ::-1].copy()
            h, w = rgb.shape[:2]
            t = transform(image=rgb, keypoints=[], class_labels=[], bboxes=[[0, 0, w, h]],
                          bbox_labels=[0])
            x = torch.from_numpy(t["image"].transpose(2, 0, 1).copy())[None]
            with torch.no_grad():
                y = model(x)
            result[f"{index}/input"] = x.numpy()
            for head, d in y.items():
                for key, v in d.items():
                    result[f"{index}/{head}/{key}"] = v.numpy()
        index += 1
    result["snapshot"] = np.array(snap.name)
    np.savez_compressed(out, **result)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("hrnet-project")
    p.add_argument("workdir", type=Path)
    p.add_argument("--epochs", type=int, default=3)
    p = sub.add_parser("identity-project")
    p.add_argument("workdir", type=Path)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--scale", type=float, default=8.0)
    p = sub.add_parser("analyze")
    p.add_argument("config", type=Path)
    p.add_argument("video", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--position")
    p.add_argument("--auto-track", action="store_true")
    p.add_argument("--record-pads", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("rescale-heads")
    p.add_argument("config", type=Path)
    p.add_argument("video", type=Path)
    p = sub.add_parser("track")
    p.add_argument("config", type=Path)
    p.add_argument("video", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--identity-only", action="store_true")
    p = sub.add_parser("raw")
    p.add_argument("config", type=Path)
    p.add_argument("video", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", default="0")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.cmd == "hrnet-project":
        hrnet_project(args.workdir, args.epochs)
    elif args.cmd == "identity-project":
        identity_project(args.workdir, args.seed, args.scale)
    elif args.cmd == "analyze":
        analyze(args.config, args.video, args.dest, args.position, args.auto_track, args.record_pads,
                args.seed)
    elif args.cmd == "rescale-heads":
        rescale_heads(args.config, args.video)
    elif args.cmd == "track":
        track(args.config, args.video, args.dest, args.identity_only)
    else:
        raw(args.config, args.video, args.out, [int(f) for f in args.frames.split(",")])


if __name__ == "__main__":
    sys.exit(main())
