"""mapose vs DeepLabCut 3.0.2: end-to-end ``analyze_videos`` frames/s on the same clip.

Usage::

    python benchmarks/compare_inference.py [--frames 40] [--dlc-python /work/dlcenv/bin/python]
                                           [--project ../shared/data/dlc-3.0.2-project-a]
                                           [--auto-track] [--repeats 1]

A temporary copy of the project (config, model configs, snapshot symlink) gets an
n-frame clip of its video; DLC runs in a subprocess with its own interpreter (it writes
into the project, hence the copy), mapose runs torch and ONNX engines in subprocesses too,
so every contender pays the same start-up and none shares warm caches.  Times exclude
interpreter start-up and imports, include model loading, and are wall-clock seconds of the
``analyze_videos`` call (libraries preloaded on both sides).  Outputs are checked against each other (max |Δxy| over frames).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHUFFLE_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"

RUNNER = r"""
import json, sys, time, warnings, pickle
warnings.simplefilter("ignore")
kind, config, video, dest, auto_track = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
t_import = time.perf_counter()
if kind == "dlc":
    import deeplabcut as lib
    kw = {}
else:
    sys.path.insert(0, sys.argv[6])
    import mapose as lib
    # `import deeplabcut` loads torch, cv2 & co. before the clock starts; preload what
    # mapose imports lazily so both calls are timed from the same point
    import cv2, torch, mapose.inference.analyze  # noqa: F401
    if kind == "onnx":
        import onnxruntime  # noqa: F401
    kw = {"engine": kind, "progress": False}
t0 = time.perf_counter()
scorer = lib.analyze_videos(config, [video], auto_track=auto_track, destfolder=dest, **kw)
t1 = time.perf_counter()
stages = None
if kind != "dlc":
    st = lib.analyze_videos.last_times
    stages = {k: getattr(st, k) for k in ("decode", "network", "postprocess", "write", "tracking", "total")}
print("RESULT" + json.dumps({"seconds": t1 - t0, "import": t0 - t_import, "scorer": scorer, "stages": stages}))
"""


def make_project(src: Path, dst: Path, n_frames: int) -> tuple[Path, Path]:
    import cv2

    (dst / "videos").mkdir(parents=True)
    shutil.copy(src / "config.yaml", dst / "config.yaml")
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("train/pytorch_config.yaml", "test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(src / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
    os.symlink(src / SHUFFLE_DIR / "train/snapshot-best-050.pt", dst / SHUFFLE_DIR / "train/snapshot-best-050.pt")
    for p in dst.rglob("*"):
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    cap = cv2.VideoCapture(str(src / "videos/synthA.avi"))
    frames = []
    while len(frames) < n_frames:
        ok, f = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(src / "videos/synthA.avi"))  # loop the 150-frame video
            continue
        frames.append(f)
    cap.release()
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst / "videos/clip.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return dst / "config.yaml", dst / "videos/clip.avi"


def run(python, kind, config, video, dest, auto_track):
    cmd = [python, "-c", RUNNER, kind, str(config), str(video), str(dest), "1" if auto_track else "0", str(REPO)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"{kind} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[len("RESULT"):])


def max_diff(a_path, b_path):
    import pickle

    import numpy as np

    with open(a_path, "rb") as fh:
        a = pickle.load(fh)
    with open(b_path, "rb") as fh:
        b = pickle.load(fh)
    keys = [k for k in a if k != "metadata"]
    d = 0.0
    for k in keys:
        for x, y in zip(a[k]["coordinates"][0], b[k]["coordinates"][0]):
            if x.shape == y.shape and len(x):
                d = max(d, float(np.nanmax(np.abs(x - y))) if np.isfinite(x - y).any() else 0.0)
    return d


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--project", default=str(REPO.parent / "shared/data/dlc-3.0.2-project-a"))
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--auto-track", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-dlc", action="store_true")
    args = ap.parse_args(argv)
    kinds = ["torch", "onnx"] + ([] if args.skip_dlc else ["dlc"])
    with tempfile.TemporaryDirectory(prefix="mapose_cmp_") as tmp:
        tmp = Path(tmp)
        config, video = make_project(Path(args.project), tmp / "proj", args.frames)
        results = {k: [] for k in kinds}
        # warm the ONNX export once (cached next to the project, like a user's second run)
        run(sys.executable, "onnx", config, video, tmp / "warm", False)
        for r in range(args.repeats):
            for k in kinds:
                py = args.dlc_python if k == "dlc" else sys.executable
                results[k].append(run(py, k, config, video, tmp / f"out_{k}_{r}", args.auto_track))
        best = {k: min(v, key=lambda d: d["seconds"]) for k, v in results.items()}
        scorer = best["torch"]["scorer"]
        print(f"\nanalyze_videos on a {args.frames}-frame 320x256 clip of project A "
              f"(ResNet-50-GN + DLCRNet PAF head, batch_size 4, auto_track={args.auto_track}), "
              f"{os.cpu_count()} CPUs, best of {args.repeats}")
        print(f"{'engine':<16}{'seconds':>9}{'frames/s':>10}{'vs DLC':>8}   stages (s)")
        ref = best.get("dlc", {}).get("seconds")
        for k in kinds:
            s = best[k]["seconds"]
            st = best[k]["stages"]
            stages = "" if not st else ", ".join(f"{n} {v:.2f}" for n, v in st.items())
            ratio = f"{ref / s:7.2f}x" if ref else "    n/a"
            name = "DLC 3.0.2" if k == "dlc" else f"mapose {k}"
            print(f"{name:<16}{s:9.2f}{args.frames / s:10.2f}{ratio:>8}   {stages}")
        if "dlc" in best:
            for k in ("torch", "onnx"):
                d = max_diff(tmp / f"out_{k}_0/clip{scorer}_full.pickle", tmp / f"out_dlc_0/clip{scorer}_full.pickle")
                print(f"max |xy difference| mapose {k} vs DLC: {d:.2e} px")


if __name__ == "__main__":
    main()
