"""One video's pipeline as resumable stages: network → tracking → stitching.

Each stage is a plain function ``stage(job) -> StageReport`` that calls mapose's DLC-named
API for a single video (``analyze_videos(auto_track=False)``,
``convert_detections2tracklets``, ``stitch_tracklets``) and names the files it produced.
:func:`run_stage` wraps a stage with the checkpoint logic: skip it when the progress
record says it is finished and its outputs are intact, adopt outputs that an earlier
tool (DeepLabCut itself, or a run without a record) left complete and readable, and
otherwise run it and record the result.

Everything here is picklable (module-level functions and dataclasses), because the
same code runs in the local post-processing worker and on Dask workers.
"""
from __future__ import annotations

import contextlib
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mapose.batch.progress import stored_file, PROGRESS_SUFFIX, ProgressRecord

STAGES = ("analyze", "track", "stitch")

# track_method -> tracklet/tracks suffix, as DLC 3's convert_detections2tracklets names
# them (ellipse -> el, box -> bx, anything else -> sk).
_TRACK_SUFFIX = {"ellipse": "_el", "box": "_bx", "skeleton": "_sk"}


def track_suffix(track_method: str) -> str:
    """File suffix DLC uses for ``track_method`` (``"ellipse"`` → ``"_el"``)."""
    return _TRACK_SUFFIX.get(track_method, "_sk")


@dataclass
class StageReport:
    """What one stage did for one video.

    Attributes
    ----------
    stage : str
        ``"analyze"``, ``"track"`` or ``"stitch"``.
    status : str
        ``"done"`` (ran now), ``"skipped"`` (finished earlier, outputs intact),
        ``"adopted"`` (complete outputs found without a record) or ``"failed"``.
    seconds : float
        Wall time of this run of the stage (0 when skipped).
    frames : int or None
        Frames the stage processed, when known.
    outputs : list of str
        Files the stage is responsible for.
    info : dict
        Stage facts for the final table (``tracks`` found, ``tracklets``...).
    warnings : list of str
        Warnings raised while the stage ran.
    error : str
        One-line error for a failed stage.
    """

    stage: str
    status: str = "done"
    seconds: float = 0.0
    frames: int | None = None
    outputs: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    error: str = ""

    @property
    def fps(self) -> float | None:
        if self.status != "done" or not self.frames or self.seconds <= 0:
            return None
        return self.frames / self.seconds


@dataclass
class VideoJob:
    """Everything a worker needs to process one video (picklable).

    ``config``/``video``/``destfolder`` are absolute path strings; ``scorer`` and
    ``track_method`` are resolved once by the submitting process so that every worker
    names files identically.  ``chunk_frames`` switches tracking + stitching to the
    bounded-memory chunked mode of :mod:`mapose.batch.chunked`.  ``checkpoint_every``
    is the network stage's checkpoint interval in frames (:mod:`mapose.batch.network`).  ``stage_funcs`` maps a stage name to the function that
    runs it (the defaults are :func:`analyze_stage` and the streamed
    :func:`mapose.batch.streaming.streaming_track_stage` /
    :func:`~mapose.batch.streaming.streaming_stitch_stage`, which fall back to
    :func:`track_stage` / :func:`stitch_stage` for options only DLC's functions handle;
    tests and plug-ins may substitute their own).
    """

    config: str
    video: str
    scorer: str
    destfolder: str
    track_method: str = "ellipse"
    shuffle: int = 1
    trainingsetindex: int = 0
    modelprefix: str = ""
    overwrite: bool = False
    auto_track: bool = True
    save_as_csv: bool = False
    n_tracks: int | None = None
    animal_names: list | None = None
    analyze_kwargs: dict = field(default_factory=dict)
    track_kwargs: dict = field(default_factory=dict)
    stitch_kwargs: dict = field(default_factory=dict)
    stage_funcs: dict = field(default_factory=dict)
    chunk_frames: int | None = None
    chunk_overlap: int = 50
    checkpoint_every: int = 500

    # -- file names ----------------------------------------------------------------
    @property
    def stem(self) -> Path:
        """``<destfolder>/<video stem><scorer>``: every output appends a suffix to it."""
        return Path(self.destfolder) / (Path(self.video).stem + self.scorer)

    def path(self, suffix: str) -> Path:
        return Path(str(self.stem) + suffix)

    @property
    def progress_path(self) -> Path:
        return self.path(PROGRESS_SUFFIX)

    def stage_outputs(self, stage: str) -> list[Path]:
        """Files ``stage`` must leave behind for the video to count as done."""
        sfx = track_suffix(self.track_method)
        if stage == "analyze":
            return [self.path("_full.pickle"), self.path("_meta.pickle"),
                    self.path("_assemblies.pickle")]
        if stage == "track":
            return [self.path(sfx + ".pickle")]
        if stage == "stitch":
            out = [self.path(sfx + ".h5")]
            if self.save_as_csv:
                out.append(self.path(sfx + ".csv"))
            return out
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}.")

    def stages(self) -> tuple[str, ...]:
        if not self.auto_track:
            return STAGES[:1]
        # chunked mode: one stage from assemblies straight to the tracks file
        return ("analyze", "stitch") if self.chunk_frames else STAGES

    def func(self, stage: str) -> Callable:
        if stage in self.stage_funcs:
            return self.stage_funcs[stage]
        if stage == "stitch" and self.chunk_frames:
            from mapose.batch.chunked import chunked_stitch_stage
            return chunked_stitch_stage
        if stage in ("track", "stitch"):
            # DLC's whole-video tracking and stitching, streamed (mapose.batch.streaming)
            from mapose.batch import streaming
            return {"track": streaming.streaming_track_stage,
                    "stitch": streaming.streaming_stitch_stage}[stage]
        return _DEFAULT_FUNCS[stage]


# -- the real stages -------------------------------------------------------------------
def analyze_stage(job: VideoJob) -> StageReport:
    """Network inference for one video: ``_full``, ``_meta`` and ``_assemblies`` pickles.

    Resumable frame by frame (:func:`mapose.batch.network.resumable_analyze_stage`)
    unless the job uses an option that stage does not implement (dynamic cropping,
    top-down models), which restart from frame 0 through ``analyze_videos``.
    """
    from mapose.batch.network import resumable, resumable_analyze_stage

    if resumable(job):
        return resumable_analyze_stage(job)
    from mapose.inference.analyze import analyze_videos

    kwargs = dict(job.analyze_kwargs)
    kwargs.update(shuffle=job.shuffle, trainingsetindex=job.trainingsetindex,
                  destfolder=job.destfolder, modelprefix=job.modelprefix,
                  auto_track=False, overwrite=True)
    analyze_videos(job.config, [job.video], **kwargs)
    return StageReport("analyze", frames=read_n_frames(job))


def track_stage(job: VideoJob) -> StageReport:
    """Assemblies → tracklets (``<stem><scorer>_el.pickle``)."""
    from mapose.tracking.convert import convert_detections2tracklets

    # The runner only calls this stage when the tracklets are missing or stale: remove
    # them rather than pass overwrite=True, which would also rebuild the assemblies
    # from the _full.pickle (redoing the assembly stage for nothing).
    for p in job.stage_outputs("track"):
        p.unlink(missing_ok=True)
    kwargs = dict(job.track_kwargs)
    kwargs.update(shuffle=job.shuffle, trainingsetindex=job.trainingsetindex,
                  destfolder=job.destfolder, modelprefix=job.modelprefix,
                  track_method=job.track_method, overwrite=job.overwrite)
    convert_detections2tracklets(job.config, [job.video], **kwargs)
    return StageReport("track", frames=read_n_frames(job))


def stitch_stage(job: VideoJob) -> StageReport:
    """Tracklets → tracks (``<stem><scorer>_el.h5`` and optional ``.csv``)."""
    from mapose.stitching.api import stitch_tracklets

    kwargs = dict(job.stitch_kwargs)
    kwargs.update(shuffle=job.shuffle, trainingsetindex=job.trainingsetindex,
                  destfolder=job.destfolder, modelprefix=job.modelprefix,
                  track_method=job.track_method, save_as_csv=job.save_as_csv,
                  n_tracks=job.n_tracks, animal_names=job.animal_names)
    stitch_tracklets(job.config, [job.video], **kwargs)
    frames, tracks = summarize_tracks(job.stage_outputs("stitch")[0])
    return StageReport("stitch", frames=frames, info={"tracks": tracks})


_DEFAULT_FUNCS = {"analyze": analyze_stage, "track": track_stage, "stitch": stitch_stage}


# -- reading facts back from outputs -----------------------------------------------------
def read_n_frames(job: VideoJob) -> int | None:
    """Number of frames from the video's ``_meta.pickle`` (None if unreadable)."""
    meta_path = job.path("_meta.pickle")
    if not meta_path.exists():
        return None
    try:
        try:
            from mapose.io.meta_pickle import read_meta_pickle
            meta = read_meta_pickle(meta_path)
        except ImportError:
            from mapose.io.safe_pickle import read_pickle
            meta = read_pickle(meta_path, what="_meta.pickle")
        data = meta.get("data", meta) if isinstance(meta, dict) else {}
        n = data.get("nframes")
        return None if n is None else int(n)
    except Exception:  # noqa: BLE001 - facts for the table must never fail a video
        return None


def summarize_tracks(h5_path) -> tuple[int | None, int | None]:
    """``(frames, tracks found)`` of a tracks ``.h5``.

    A track is an individual other than ``"single"`` with at least one finite x.
    """
    df = read_tracks_frame(h5_path)
    if df is None:
        return None, None
    n_frames = int(len(df))
    if not hasattr(df.columns, "names") or "individuals" not in (df.columns.names or []):
        return n_frames, None
    tracks = 0
    for ind in df.columns.get_level_values("individuals").unique():
        if ind == "single":
            continue
        sub = df.xs(ind, axis=1, level="individuals")
        xs = sub.xs("x", axis=1, level="coords") if "coords" in sub.columns.names else sub
        if xs.notna().to_numpy().any():
            tracks += 1
    return n_frames, tracks


def read_tracks_frame(h5_path):
    try:
        try:
            from mapose.io.tracks_h5 import read_tracks
        except ImportError:
            import pandas as pd
            read_tracks = pd.read_hdf
        return read_tracks(h5_path)
    except Exception:  # noqa: BLE001
        return None


def outputs_readable(stage: str, paths) -> bool:
    """Fully read ``paths``: used to adopt outputs that have no progress record.

    A finished-looking file from another tool is trusted only if it parses completely,
    so a truncated file left by an interrupted non-atomic writer is never adopted.
    """
    from mapose.io.safe_pickle import read_pickle

    for p in paths:
        p = Path(p)
        if p.name.endswith("_full.pickle") and not p.exists() and stored_file(p) != p:
            # a shelve database (use_shelve=True): readable if every frame unpickles
            try:
                from mapose.io.full_pickle import read_full_pickle
                read_full_pickle(p)
                continue
            except Exception:  # noqa: BLE001 - unreadable means "not finished"
                return False
        if not p.is_file() or p.stat().st_size == 0:
            return False
        try:
            if p.suffix == ".pickle":
                if p.name.endswith("_meta.pickle"):
                    try:
                        from mapose.io.meta_pickle import read_meta_pickle
                        read_meta_pickle(p)
                        continue
                    except ImportError:
                        pass
                read_pickle(p, what=p.name)
            elif p.suffix == ".h5":
                if read_tracks_frame(p) is None:
                    return False
            elif p.suffix == ".csv":
                with open(p, "rb") as fh:
                    if fh.read(1) == b"":
                        return False
        except Exception:  # noqa: BLE001 - unreadable means "not finished"
            return False
    return True


# -- checkpointed execution --------------------------------------------------------------
def remove_stale_parts(job: VideoJob) -> list[str]:
    """Delete temp files that an interrupted atomic write left beside this video's outputs.

    :mod:`mapose.io.atomic` names them ``.<final name>.<random><suffix>.part``; only those
    whose final name starts with this video's stem are touched.
    """
    folder = Path(job.destfolder)
    prefix = "." + job.stem.name
    removed = []
    if not folder.is_dir():
        return removed
    for entry in os.scandir(folder):
        if entry.name.startswith(prefix) and entry.name.endswith(".part") and entry.is_file():
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def run_stage(job: VideoJob, stage: str, record: ProgressRecord, *, force: bool = False) -> StageReport:
    """Run ``stage`` for ``job`` unless it is already finished; keep the record current.

    Parameters
    ----------
    job : VideoJob
    stage : str
        One of :data:`STAGES`.
    record : ProgressRecord
        The video's record; updated and saved when the stage finishes.
    force : bool
        Run even if finished (``overwrite=True``, or an earlier stage was redone).

    Returns
    -------
    StageReport
        ``status="failed"`` with ``error`` set instead of raising, so one bad video never
        stops the batch.
    """
    folder = Path(job.destfolder)
    outputs = job.stage_outputs(stage)
    if not force:
        if record.stage_done(stage, folder):
            entry = record.stages[stage]
            return StageReport(stage, status="skipped", frames=entry.get("frames"),
                               outputs=[str(p) for p in outputs], info=dict(entry.get("info", {})))
        if stage not in record.stages and outputs_readable(stage, outputs):
            rep = StageReport(stage, status="adopted", outputs=[str(p) for p in outputs])
            rep.frames, rep.info = _facts(job, stage)
            record.mark_done(stage, outputs, frames=rep.frames, info=rep.info)
            return rep
    record.invalidate(stage)
    t0 = time.perf_counter()
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rep = job.func(stage)(job)
    except Exception as exc:  # noqa: BLE001 - reported per video, batch goes on
        return StageReport(stage, status="failed", seconds=time.perf_counter() - t0,
                           outputs=[str(p) for p in outputs],
                           warnings=_warning_lines(caught),
                           error=f"{type(exc).__name__}: {exc}",
                           info={"traceback": traceback.format_exc(limit=8)})
    rep.stage = stage
    rep.status = "done"
    rep.seconds = time.perf_counter() - t0
    rep.outputs = [str(p) for p in outputs]
    rep.warnings = _warning_lines(caught) + rep.warnings
    missing = [p.name for p in outputs if not stored_file(p).is_file()]
    if missing:
        rep.status = "failed"
        rep.error = (f"stage {stage!r} finished without writing {', '.join(missing)} "
                     f"in {folder}; see its warnings and printed messages.")
        return rep
    record.warnings += [f"{stage}: {w}" for w in rep.warnings]
    record.mark_done(stage, outputs, seconds=rep.seconds, frames=rep.frames, info=rep.info)
    return rep


def _facts(job: VideoJob, stage: str):
    if stage == "stitch":
        frames, tracks = summarize_tracks(job.stage_outputs("stitch")[0])
        return frames, ({"tracks": tracks} if tracks is not None else {})
    return read_n_frames(job), {}


def _warning_lines(caught) -> list[str]:
    out = []
    for w in caught or ():
        line = f"{w.category.__name__}: {w.message}"
        if line not in out:
            out.append(line)
    return out
