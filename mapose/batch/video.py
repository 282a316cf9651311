"""Per-video driver: run a job's stages in order, with checkpoints, never raising.

:func:`process_network` and :func:`process_post` split the work the way the local runner
overlaps it (the network stage of video *k* in the main process while a worker runs the
post-network stages of video *k − 1*); :func:`process_video` runs everything and is the
task a Dask worker executes.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from mapose.batch.progress import ProgressRecord
from mapose.batch.stages import StageReport, VideoJob, remove_stale_parts, run_stage


@dataclass
class VideoReport:
    """Outcome for one video: one :class:`~mapose.batch.stages.StageReport` per stage.

    Attributes
    ----------
    video : str
    stages : dict of str to StageReport
    error : str
        First failure, ``"<stage>: <message>"``; empty when the video succeeded.
    attempts : int
        Runs started on this video so far (from its progress record).
    worker : str
        ``host:pid`` of the process that ran the post-network stages.
    """

    video: str
    stages: dict = field(default_factory=dict)
    error: str = ""
    attempts: int = 0
    worker: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        states = {r.status for r in self.stages.values()}
        if states <= {"skipped", "adopted"}:
            return "skipped"
        if states & {"skipped", "adopted"}:
            return "resumed"
        return "done"

    @property
    def frames(self) -> int | None:
        for name in ("stitch", "analyze", "track"):
            r = self.stages.get(name)
            if r is not None and r.frames:
                return r.frames
        return None

    @property
    def tracks(self) -> int | None:
        r = self.stages.get("stitch")
        return None if r is None else r.info.get("tracks")

    @property
    def warnings(self) -> list[str]:
        out = []
        for r in self.stages.values():
            out.extend(f"{r.stage}: {w}" for w in r.warnings)
        return out

    @property
    def outputs(self) -> list[str]:
        out = []
        for r in self.stages.values():
            out.extend(r.outputs)
        return out


def _begin(job: VideoJob) -> ProgressRecord:
    os.makedirs(job.destfolder, exist_ok=True)
    record = ProgressRecord.load(job.progress_path, video=job.video)
    record.video = job.video
    record.attempts += 1
    if job.overwrite:
        record.invalidate(*record.stages)
    record.save()
    remove_stale_parts(job)
    return record


def _here() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_network(job: VideoJob) -> VideoReport:
    """Run (or skip) the network stage of ``job``; never raises."""
    report = VideoReport(video=job.video, worker=_here())
    try:
        record = _begin(job)
    except OSError as exc:
        report.error = f"analyze: cannot write to {job.destfolder!r} ({exc})"
        return report
    report.attempts = record.attempts
    rep = run_stage(job, "analyze", record, force=job.overwrite)
    report.stages["analyze"] = rep
    if rep.status == "failed":
        report.error = f"analyze: {rep.error}"
    return report


def process_post(job: VideoJob, report: VideoReport | None = None) -> VideoReport:
    """Run (or skip) the stages after the network for ``job``; never raises.

    Parameters
    ----------
    job : VideoJob
    report : VideoReport, optional
        The network stage's report.  A network stage that ran now forces the later
        stages to rerun, since their inputs changed.
    """
    if report is None:
        report = VideoReport(video=job.video)
    report.worker = _here()
    if report.error:
        return report
    record = ProgressRecord.load(job.progress_path, video=job.video)
    record.post_attempts += 1
    try:
        record.save()
        remove_stale_parts(job)  # a previous worker may have died mid-write
    except OSError as exc:
        report.error = f"track: cannot write to {job.destfolder!r} ({exc})"
        return report
    report.attempts = max(report.attempts, record.attempts)
    prev = report.stages.get("analyze")
    force = job.overwrite or (prev is not None and prev.status == "done")
    for stage in job.stages()[1:]:
        rep = run_stage(job, stage, record, force=force)
        report.stages[stage] = rep
        if rep.status == "failed":
            report.error = f"{stage}: {rep.error}"
            break
        force = force or rep.status == "done"
    return report


def process_video(job: VideoJob) -> VideoReport:
    """All stages of ``job`` in this process (the unit of work of a Dask task)."""
    return process_post(job, process_network(job))


def failed_report(job: VideoJob, message: str, attempts: int = 0) -> VideoReport:
    """A report for a video whose worker died or whose task could not run."""
    rep = VideoReport(video=job.video, error=message, attempts=attempts)
    rep.stages["analyze"] = StageReport("analyze", status="failed", error=message)
    return rep
