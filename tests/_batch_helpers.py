"""Helpers for the batch tests: a temp copy of DLC project A and replay stages.

The replay stages stand in for a stage by copying what DeepLabCut 3.0.2 itself wrote for
project A's video (``../shared/data/dlc-3.0.2-project-a/videos``) to the job's output
names, atomically, like a real stage.  They let the tests drive the runner's
orchestration (overlap, skip, resume, failures, killed workers) quickly and compare
outputs byte for byte with DLC's files.  Options come from the job's ``*_kwargs``:

``log``        file to append ``stage video start end pid`` lines to
``delay``      seconds of simulated work
``fail``       video stems for which the stage raises
``kill_once``  folder of markers: the first attempt per video writes a partial temp file
               and kills its own process (a crashed or killed worker)
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from mapose.batch.stages import StageReport, summarize_tracks
from mapose.io.atomic import atomic_path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))
PROJECT_A = SHARED_DATA / "dlc-3.0.2-project-a"
SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
RECORDED = PROJECT_A / "videos" / ("synthA" + SCORER)
MODEL_REL = Path("dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1")

STAGE_SUFFIXES = {
    "analyze": ["_full.pickle", "_meta.pickle", "_assemblies.pickle"],
    "track": ["_el.pickle"],
    "stitch": ["_el.h5", "_el.csv"],
}


def recorded(suffix: str) -> Path:
    """DLC's recorded output for project A's video, e.g. ``recorded("_el.h5")``."""
    return Path(str(RECORDED) + suffix)


def make_project(root, names=("v1", "v2", "v3")):
    """A temp copy of project A with videos ``names`` (symlinks to synthA.avi).

    Returns
    -------
    config : Path
    videos : list of Path
    """
    root = Path(root)
    (root / "videos").mkdir(parents=True)
    text = (PROJECT_A / "config.yaml").read_text().replace("/home/user/projA", str(root))
    (root / "config.yaml").write_text(text)
    model = root / MODEL_REL
    for sub in ("train", "test"):
        (model / sub).mkdir(parents=True)
    for rel in ("test/inference_cfg.yaml", "test/pose_cfg.yaml", "train/pytorch_config.yaml"):
        shutil.copy(PROJECT_A / MODEL_REL / rel, model / rel)
    os.symlink(PROJECT_A / MODEL_REL / "train/snapshot-best-050.pt",
               model / "train/snapshot-best-050.pt")
    videos = []
    for n in names:
        v = root / "videos" / f"{n}.avi"
        os.symlink(PROJECT_A / "videos" / "synthA.avi", v)
        videos.append(v)
    return root / "config.yaml", videos


def _opts(job, stage):
    return {"analyze": job.analyze_kwargs, "track": job.track_kwargs,
            "stitch": job.stitch_kwargs}[stage]


def _replay(job, stage):
    opts = _opts(job, stage)
    stem = Path(job.video).stem
    t0 = time.time()
    if stem in opts.get("fail", ()):
        raise RuntimeError(f"injected failure in {stage} for {stem}")
    kill_dir = opts.get("kill_once")
    if kill_dir:
        marker = Path(kill_dir) / f"{stage}-{stem}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(os.getpid()))
            # an interrupted atomic write: half a file under a temp name, then death
            target = job.path(STAGE_SUFFIXES[stage][0])
            part = target.parent / f".{target.name}.crash{os.getpid()}.part"
            data = recorded(STAGE_SUFFIXES[stage][0]).read_bytes()
            part.write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(opts.get("delay", 0)))
    for sfx in STAGE_SUFFIXES[stage]:
        if sfx.endswith(".csv") and not job.save_as_csv:
            continue
        with atomic_path(job.path(sfx)) as tmp:
            shutil.copyfile(recorded(sfx), tmp)
    if opts.get("log"):
        with open(opts["log"], "a") as fh:
            fh.write(f"{stage} {stem} {t0:.4f} {time.time():.4f} {os.getpid()}\n")
    rep = StageReport(stage, frames=150)
    if stage == "stitch":
        rep.frames, tracks = summarize_tracks(job.path("_el.h5"))
        rep.info["tracks"] = tracks
    return rep


def replay_analyze(job):
    return _replay(job, "analyze")


def replay_track(job):
    return _replay(job, "track")


def replay_stitch(job):
    return _replay(job, "stitch")


REPLAY = {"analyze": replay_analyze, "track": replay_track, "stitch": replay_stitch}


def read_log(path):
    """``[(stage, stem, start, end, pid), ...]`` from a replay log."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        stage, stem, t0, t1, pid = line.split()
        out.append((stage, stem, float(t0), float(t1), int(pid)))
    return out
