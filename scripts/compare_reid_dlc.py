"""mapose vs DeepLabCut 3.0.2 on the ReID transformer path (transformer_reID), same input.

Runs DLC (``scripts/reid_dlc_oracle.py`` in /work/dlcenv, a separate process) on the first
N frames of project A's video: ``analyze_videos`` (auto-track), then the steps of
``transformer_reID`` (features + triplets, training with ``torch.manual_seed(S)``,
stitching).  mapose then runs the same steps in a mirror project on DLC's clip and DLC's
``_el.pickle`` (so both mine the same tracklets), and the script compares:

* the ``_bpt_features.pickle`` shelves (keys, coordinates, features);
* the ``_triplet_vector.npy`` arrays (DLC mines with NumPy's global generator seeded 0 at
  import; mapose with ``RandomState(0)``);
* a fresh model's weights after ``torch.manual_seed(S)`` and the trained checkpoints;
* embeddings with each side's checkpoint loaded into the other side's model;
* the stitched ``_el_tr.h5`` (mapose stitching with DLC's checkpoint, DLC stitching
  with mapose's);

and prints the step times of both (same machine, same run).

Usage: ``python scripts/compare_reid_dlc.py [--frames 30] [--triplets 50] [--epochs 10]
[--dlc-workdir DIR]`` (an existing DLC workdir from an earlier ``run`` is reused).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DLC_PYTHON = "/work/dlcenv/bin/python"
ORACLE = REPO / "scripts" / "reid_dlc_oracle.py"
PROJECT_A = Path("/work/shared/data/dlc-3.0.2-project-a")
SHUFFLE_DIR = Path("dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1")
SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"


def oracle(*args) -> None:
    subprocess.run([DLC_PYTHON, str(ORACLE), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mirror(dlc_dir: Path, dst: Path) -> tuple[Path, Path]:
    """mapose project: configs, symlinked snapshot, DLC's clip and DLC's tracklets."""
    (dst / "videos").mkdir(parents=True)
    shutil.copy(PROJECT_A / "config.yaml", dst / "config.yaml")
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("train/pytorch_config.yaml", "test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(PROJECT_A / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
    for p in list(dst.rglob("*")) + [dst / "config.yaml"]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.symlink(PROJECT_A / SHUFFLE_DIR / "train/snapshot-best-050.pt", dst / SHUFFLE_DIR / "train/snapshot-best-050.pt")
    shutil.copy(dlc_dir / "videos" / "clip.avi", dst / "videos" / "clip.avi")
    shutil.copy(dlc_dir / "videos" / f"clip{SCORER}_el.pickle", dst / "videos")
    return dst / "config.yaml", dst / "videos" / "clip.avi"


def nan_max_diff(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    d = np.abs(a - b)[~np.isnan(a)]
    return float(d.max()) if d.size else 0.0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--triplets", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dlc-workdir", type=Path, default=None)
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from mapose.reid.features import FeatureShelf
    from mapose.reid.model import DLCTransReID, load_checkpoint
    from mapose.reid.train import train_tracking_transformer
    from mapose.reid.triplets import as_random_state
    from mapose.reid.api import create_tracking_dataset
    from mapose.stitching.api import stitch_tracklets

    tmp = Path(tempfile.mkdtemp(prefix="compare_reid_"))
    dlc_dir = args.dlc_workdir
    if dlc_dir is None or not (dlc_dir / "timings.json").is_file():
        dlc_dir = dlc_dir or tmp / "dlc"
        print(f"running DeepLabCut 3.0.2 in {dlc_dir} ...", flush=True)
        oracle("run", dlc_dir, "--frames", args.frames, "--triplets", args.triplets,
               "--epochs", args.epochs, "--seed", args.seed)
    dlc = json.loads((dlc_dir / "timings.json").read_text())
    dlc_ckpt = Path(dlc["checkpoint"])
    epochs = int(dlc_ckpt.stem.rsplit("_", 1)[1])
    dlc_videos = dlc_dir / "videos"

    config, clip = mirror(dlc_dir, tmp / "mapose")
    times = {}
    rng = as_random_state(0)  # DLC: np.random.seed(0) when deeplabcut is imported
    t0 = time.perf_counter()
    create_tracking_dataset(config, [clip], "ellipse", n_triplets=int(np.load(
        dlc_videos / f"clip{SCORER}_triplet_vector.npy", mmap_mode="r").shape[0]) or args.triplets,
        random_state=rng, progress=False, device="cpu")
    times["create_tracking_dataset"] = time.perf_counter() - t0
    train_dir = config.parent / SHUFFLE_DIR / "train"
    split_state = rng.get_state()
    t0 = time.perf_counter()
    train_tracking_transformer(config, SCORER, [clip], train_epochs=epochs, ckpt_folder=train_dir,
                               random_state=rng, seed=args.seed, device="cpu", progress=False)
    times["train_tracking_transformer"] = time.perf_counter() - t0
    ma_ckpt = train_dir / f"dlc_transreid_{epochs}.pth"
    t0 = time.perf_counter()
    stitch_tracklets(config, [clip], track_method="ellipse", transformer_checkpoint=ma_ckpt)
    times["stitch_tracklets_tr"] = time.perf_counter() - t0

    rows = []
    # 1. features shelves
    with FeatureShelf(dlc_videos / f"clip{SCORER}_bpt_features.pickle") as a, \
            FeatureShelf(clip.parent / f"clip{SCORER}_bpt_features.pickle") as b:
        same_keys = sorted(a.keys()) == sorted(b.keys())
        dc = df = rel = 0.0
        n_rows_equal = True
        for k in a.keys():
            if k == "metadata":
                continue
            fa, fb = a[k], b[k]
            n_rows_equal &= fa["features"].shape == fb["features"].shape
            if fa["features"].shape != fb["features"].shape:
                continue
            dc = max(dc, nan_max_diff(fa["coordinates"], fb["coordinates"]))
            d = np.abs(fa["features"] - fb["features"])
            df = max(df, float(d.max()) if d.size else 0.0)
            scale = float(np.abs(fa["features"]).max()) if d.size else 1.0
            rel = max(rel, (float(d.max()) / scale) if d.size and scale else 0.0)
        meta_a, meta_b = a.metadata, b.metadata
        rows.append(("features shelve: same keys / same rows per frame", f"{same_keys} / {n_rows_equal}"))
        rows.append(("features shelve: metadata nframes, key_str_width",
                     f"DLC {meta_a.get('nframes')}, {meta_a.get('key_str_width')}; "
                     f"mapose {meta_b.get('nframes')}, {meta_b.get('key_str_width')}"))
        rows.append(("features shelve: max |coord diff| px", f"{dc:.2e}"))
        rows.append(("features shelve: max |feature diff| (rel. to max |feature|)", f"{df:.2e} ({rel:.2e})"))
    # 2. triplets
    ta = np.load(dlc_videos / f"clip{SCORER}_triplet_vector.npy")
    tb = np.load(clip.parent / f"clip{SCORER}_triplet_vector.npy")
    rows.append(("triplet_vector.npy shapes", f"DLC {ta.shape}, mapose {tb.shape}"))
    rows.append(("triplet_vector.npy max |diff| (same mined triplets?)",
                 f"{nan_max_diff(ta, tb):.2e}"))
    # 3. fresh-model weights with the same torch seed
    C, K = ta.shape[3], ta.shape[2]
    oracle("init", args.seed, C, K, tmp / "dlc_init.npz")
    ref = np.load(tmp / "dlc_init.npz")
    torch.manual_seed(args.seed)
    mine_sd = DLCTransReID(C, K).state_dict()
    init_diff = max(float(np.abs(ref[k] - mine_sd[k].numpy()).max()) for k in ref.files)
    rows.append(("fresh model, same torch seed: same keys / max |weight diff|",
                 f"{sorted(ref.files) == sorted(mine_sd)} / {init_diff:.2e}"))
    # 4. trained checkpoints
    ca = torch.load(dlc_ckpt, map_location="cpu", weights_only=True)
    cb = torch.load(ma_ckpt, map_location="cpu", weights_only=True)
    wdiff = max(float((ca["state_dict"][k].float() - cb["state_dict"][k].float()).abs().max())
                for k in ca["state_dict"])
    rows.append((f"trained {epochs} epochs (same seed, data): max |weight diff|", f"{wdiff:.2e}"))
    # training loop alone: mapose trained on DLC's own triplets (same split generator state)
    from mapose.reid.train import split_train_test, train_on_triplets

    rs = np.random.RandomState()
    rs.set_state(split_state)
    tr, te = split_train_test([dlc_videos / f"clip{SCORER}_triplet_vector.npy"], 0.8, rs)
    torch.manual_seed(args.seed)
    train_on_triplets(tr, te, tmp / "on_dlc_triplets", epochs, device="cpu")
    cc = torch.load(tmp / "on_dlc_triplets" / f"dlc_transreid_{epochs}.pth", weights_only=True)
    wdiff2 = max(float((ca["state_dict"][k].float() - cc["state_dict"][k].float()).abs().max())
                 for k in ca["state_dict"])
    rows.append((f"trained {epochs} epochs on DLC's triplets: max |weight diff|", f"{wdiff2:.2e}"))
    # 5. cross-loaded embeddings
    oracle("embed", dlc_ckpt, dlc_videos / f"clip{SCORER}_triplet_vector.npy", tmp / "emb_dlc.npy")
    emb_dlc = np.load(tmp / "emb_dlc.npy")
    model = load_checkpoint(dlc_ckpt, dtype=torch.float64)
    with torch.no_grad():
        emb_ma = np.stack([model(torch.from_numpy(ta[:, j])).numpy() for j in range(3)], axis=1)
    rows.append(("DLC checkpoint: DLC model vs mapose model embeddings, max |diff|",
                 f"{np.abs(emb_dlc - emb_ma).max():.2e}"))
    oracle("embed", ma_ckpt, clip.parent / f"clip{SCORER}_triplet_vector.npy", tmp / "emb_dlc2.npy")
    emb_dlc2 = np.load(tmp / "emb_dlc2.npy")
    model = load_checkpoint(ma_ckpt, dtype=torch.float64)
    with torch.no_grad():
        emb_ma2 = np.stack([model(torch.from_numpy(tb[:, j])).numpy() for j in range(3)], axis=1)
    rows.append(("mapose checkpoint: DLC model vs mapose model embeddings, max |diff|",
                 f"{np.abs(emb_dlc2 - emb_ma2).max():.2e}"))
    # 6. stitched tracks
    h5 = f"clip{SCORER}_el_tr.h5"
    dlc_tr = pd.read_hdf(dlc_videos / h5, "tracks")
    out = stitch_tracklets(config, [clip], track_method="ellipse", transformer_checkpoint=dlc_ckpt,
                           output_name=str(tmp / "mapose_with_dlc_ckpt.h5"))
    ours = pd.read_hdf(out[0], "tracks")
    rows.append(("_el_tr.h5, DLC ckpt: DLC stitch vs mapose stitch (shape, max |diff|)",
                 f"{dlc_tr.shape} vs {ours.shape}, {nan_max_diff(dlc_tr.to_numpy(), ours.to_numpy()):.2e}"))
    oracle("stitch", dlc_dir / "config.yaml", dlc_videos / "clip.avi", ma_ckpt, tmp / "dlc_with_mapose_ckpt.h5")
    dlc2 = pd.read_hdf(tmp / "dlc_with_mapose_ckpt.h5", "tracks")
    ours2 = pd.read_hdf(clip.parent / h5, "tracks")
    rows.append(("_el_tr.h5, mapose ckpt: DLC stitch vs mapose stitch (shape, max |diff|)",
                 f"{dlc2.shape} vs {ours2.shape}, {nan_max_diff(dlc2.to_numpy(), ours2.to_numpy()):.2e}"))
    rows.append(("_el_tr.h5 columns identical (DLC vs mapose)", str(dlc_tr.columns.equals(ours.columns))))

    width = max(len(r[0]) for r in rows)
    print("\nParity (DLC 3.0.2 vs mapose), project A clip:")
    for name, val in rows:
        print(f"  {name:<{width}}  {val}")
    print(f"\nStep times, seconds (same machine, same run; DLC {args.frames}-frame clip):")
    print(f"  {'step':<30} {'DLC 3.0.2':>10} {'mapose':>10} {'ratio':>8}")
    for step, t in times.items():
        d = dlc["times"].get(step, float("nan"))
        print(f"  {step:<30} {d:>10.2f} {t:>10.2f} {d / t:>7.1f}x")
    print(f"\n(work folder: {tmp})")


if __name__ == "__main__":
    main()
