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

from _fixture_helpers import write_clip
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


# -- a cheap, deterministic stand-in for the network (real predictor, fake head outputs) ----
def make_clip(path, n_frames: int) -> Path:
    """The first ``n_frames`` of project A's video as an FFV1 (intra-only) clip."""
    return write_clip(PROJECT_A / "videos" / "synthA.avi", path, n_frames)


#: project A's head outputs for a 320x256 frame, ``{name: (C, h, w)}`` (checked against the
#: real network by a slow test)
PROJECT_A_HEADS = {"bodypart/heatmap": (5, 65, 81), "bodypart/locref": (10, 65, 81),
                   "bodypart/paf": (20, 65, 81)}


def head_shapes(config) -> dict:
    """``{output name: (C, h, w)}`` of project A's network, from one real forward pass."""
    import numpy as np

    from mapose.inference.analyze import _make_runner
    from mapose.inference.project_model import find_project_model

    pm = find_project_model(config)
    runner = _make_runner(pm, "torch", "cpu", False)
    out = runner(np.zeros((1, 256, 320, 3), np.uint8))
    return {k: tuple(int(s) for s in v.shape[1:]) for k, v in out.items()}


class FakeRunner:
    """Head outputs computed from the frame pixels alone (so batch-independent).

    Heat maps peak where the frame is bright, shifted per channel; every batch's frames
    are appended to ``log`` (one line per batch: its size) and, with ``kill_after``, the
    process kills itself (SIGKILL) or raises once that many frames were run.
    """

    def __init__(self, shapes, log=None, kill_after=None, mode="kill"):
        self.shapes = {k: tuple(v) for k, v in shapes.items()}
        self.log = log
        self.kill_after = kill_after
        self.mode = mode
        self.frames = 0

    def __call__(self, frames):
        import numpy as np

        if self.kill_after is not None and self.frames >= self.kill_after:
            if self.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure after {self.frames} frames")
        self.frames += len(frames)
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(f"{len(frames)}\n")
        gray = frames.astype(np.float32).mean(axis=3) / 255.0  # (B, H, W)
        out = {}
        for name, (c, h, w) in self.shapes.items():
            sy, sx = gray.shape[1] // h, gray.shape[2] // w
            small = gray[:, : h * sy, : w * sx].reshape(len(frames), h, sy, w, sx).mean(axis=(2, 4))
            chans = np.stack([np.roll(small, k, axis=2) for k in range(c)], axis=1)
            if "heatmap" in name:
                chans = chans ** 4
            elif "locref" in name:
                chans = (chans - 0.5) * 0.2
            out[name] = np.ascontiguousarray(chans, dtype=np.float32)
        return out


def forward_frames(log) -> int:
    """Frames the fake network ran on, from its log."""
    p = Path(log)
    return sum(int(x) for x in p.read_text().split()) if p.exists() else 0


def fake_network_stage(job):
    """The real resumable network stage with :class:`FakeRunner` (options in analyze_kwargs:
    ``fake_shapes`` (default :data:`PROJECT_A_HEADS`), ``fake_log``, ``kill_after`` + ``kill_marker``: kill only
    while the marker file does not exist yet)."""
    import mapose.batch.network as net
    from mapose.batch.stages import analyze_stage

    opts = job.analyze_kwargs
    shapes = opts.get("fake_shapes") or PROJECT_A_HEADS
    kill = opts.get("kill_after")
    marker = opts.get("kill_marker")
    if marker:
        if Path(marker).exists():
            kill = None
        else:
            Path(marker).write_text(str(os.getpid()))
    runner = FakeRunner(shapes, opts.get("fake_log"), kill, opts.get("kill_mode", "kill"))
    net._make_runner = lambda *a, **k: runner
    return analyze_stage(job)
