"""Analyse many videos: pipelined on one machine, or one task per video on Dask.

:func:`run_videos` is the library entry point behind ``analyze_videos(...,
scheduler=...)`` and ``mapose analyze --scheduler/--cluster``.

One machine (the default)
    The network stage runs in the calling process, video after video.  As soon as video
    *k*'s detections are written, its assembly → tracking → stitching is handed to a
    worker process (``post_workers``, default 1), so while the network works on video
    *k + 1* the worker finishes video *k*: the slower of the two sets the pace.  Workers
    are forked on Linux before the network loads torch (see :func:`_start_method`).

Many machines
    ``scheduler="tcp://host:8786"`` (or a ``distributed.Client``), or
    ``cluster="local:N"`` for a local process cluster, submits one task per video
    (:func:`mapose.batch.video.process_video`).  Workers write to the output folder
    exactly as a local run does, so that folder must be shared storage.  A worker that
    dies mid-task makes Dask rerun the task elsewhere; the rerun resumes from the
    video's progress record, and atomic writes mean no half-written output survives.

Either way every video has a ``<stem><scorer>_progress.json`` checkpoint: finished videos
are skipped, interrupted ones resume at the first unfinished stage, and a failure in one
video is reported in the final table while the others go on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from mapose.batch.progress import ProgressRecord
from mapose.batch.report import format_table
from mapose.batch.stages import STAGES, VideoJob
from mapose.batch.video import (VideoReport, failed_report, process_network, process_post,
                                process_video)


@dataclass
class BatchResult:
    """Reports of a :func:`run_videos` call, in input order.

    Attributes
    ----------
    reports : list of VideoReport
    scorer : str
    seconds : float
        Wall time of the whole batch.
    """

    reports: list = field(default_factory=list)
    scorer: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every video succeeded (skipped counts as success)."""
        return all(r.ok for r in self.reports)

    @property
    def exit_code(self) -> int:
        """Console exit status: 0 only when every video succeeded."""
        return 0 if self.ok else 1

    @property
    def failed(self) -> list:
        return [r for r in self.reports if not r.ok]

    def table(self) -> str:
        """The per-video summary table (see :func:`mapose.batch.report.format_table`)."""
        return format_table(self.reports, seconds=self.seconds)

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)


def make_jobs(config, videos, video_extensions=None, shuffle=1, trainingsetindex=0,
              destfolder=None, modelprefix="", track_method="", snapshot_index=None,
              detector_snapshot_index=None, overwrite=False, auto_track=True,
              save_as_csv=False, n_tracks=None, animal_names=None, scorer=None,
              analyze_kwargs=None, track_kwargs=None, stitch_kwargs=None,
              stage_funcs=None, chunk_frames=None, chunk_overlap=50,
              checkpoint_every=500) -> tuple[list[VideoJob], str]:
    """Resolve the project once and describe each video as a :class:`VideoJob`.

    Returns
    -------
    jobs : list of VideoJob
        One per video, in DLC's order (sorted within folders).
    scorer : str
    """
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
            or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be an int >= 0 (frames between network-stage "
                         f"checkpoints, 0 = none); got {checkpoint_every!r}.")
    config_path = Path(os.fspath(config)).expanduser()
    if not config_path.is_file():
        raise FileNotFoundError(
            f"config '{config_path}' not found: pass the path of the project's config.yaml."
        )
    config_path = Path(os.path.abspath(config_path))
    read_config, get_track_method, list_videos = _project_api()
    cfg = read_config(config_path)
    if scorer is None:
        from mapose.io.project import get_scorer_name
        scorer = get_scorer_name(cfg, shuffle, trainingsetindex, snapshot_index=snapshot_index,
                                 modelprefix=modelprefix)
    if chunk_frames is not None:
        from mapose.batch.chunked import ChunkOptions
        ChunkOptions(chunk_frames=chunk_frames, overlap=chunk_overlap)  # validate early
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    video_paths = list_videos(list(videos), video_extensions)
    if not video_paths:
        raise FileNotFoundError(
            f"no videos found in {[str(v) for v in videos]} (video_extensions="
            f"{video_extensions!r}). Pass video files or folders holding .avi/.mp4/... files."
        )
    method = get_track_method(cfg, track_method) if auto_track else (track_method or "ellipse")
    analyze_kwargs = dict(analyze_kwargs or {})
    if snapshot_index is not None:
        analyze_kwargs.setdefault("snapshot_index", snapshot_index)
    if detector_snapshot_index is not None:
        analyze_kwargs.setdefault("detector_snapshot_index", detector_snapshot_index)
    jobs = []
    for v in video_paths:
        # abspath, not resolve(): a symlinked video keeps its own folder and name, as in DLC
        v = Path(os.path.abspath(v))
        dest = Path(os.path.abspath(Path(destfolder).expanduser())) if destfolder else v.parent
        jobs.append(VideoJob(
            config=str(config_path), video=str(v), scorer=scorer, destfolder=str(dest),
            track_method=method or "ellipse", shuffle=shuffle, trainingsetindex=trainingsetindex,
            modelprefix=modelprefix, overwrite=bool(overwrite), auto_track=bool(auto_track),
            save_as_csv=bool(save_as_csv), n_tracks=n_tracks,
            animal_names=list(animal_names) if animal_names else None,
            analyze_kwargs=analyze_kwargs, track_kwargs=dict(track_kwargs or {}),
            stitch_kwargs=dict(stitch_kwargs or {}), stage_funcs=dict(stage_funcs or {}),
            chunk_frames=chunk_frames, chunk_overlap=chunk_overlap,
            checkpoint_every=checkpoint_every,
        ))
    return jobs, scorer


def run_videos(config, videos, video_extensions=None, shuffle=1, trainingsetindex=0,
               destfolder=None, modelprefix="", track_method="", snapshot_index=None,
               detector_snapshot_index=None, overwrite=False, auto_track=True,
               save_as_csv=False, n_tracks=None, animal_names=None, *, scheduler=None,
               cluster=None, post_workers=1, retries=2, chunk_frames=None, chunk_overlap=50,
               checkpoint_every=500, scorer=None, analyze_kwargs=None, track_kwargs=None,
               stitch_kwargs=None, stage_funcs=None, print_table=True, file=None) -> BatchResult:
    """Analyse, track and stitch many videos with checkpoints; never stop at one failure.

    Parameters
    ----------
    config : str or os.PathLike
        The project's ``config.yaml``.
    videos : str, os.PathLike or list of them
        Video files and/or folders (scanned one level, DLC's extension rules).
    video_extensions, shuffle, trainingsetindex, destfolder, modelprefix, track_method,
    snapshot_index, detector_snapshot_index, save_as_csv, n_tracks, animal_names
        As in ``analyze_videos`` / ``convert_detections2tracklets`` / ``stitch_tracklets``.
    overwrite : bool, default False
        Redo every stage even when the outputs are complete.
    auto_track : bool, default True
        Also run tracking and stitching (else only the network stage).
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``"tcp://host:8786"``) or a client: one task per video.
    cluster : str, optional
        ``"local:N"`` starts a local Dask cluster of N single-threaded worker processes.
    post_workers : int, default 1
        Local mode: worker processes for the post-network stages; 0 runs them inline
        after each video's network stage (no overlap).
    retries : int, default 2
        Dask mode: extra attempts for a task whose worker died.
    chunk_frames : int, optional
        Track and stitch in chunks of this many frames (memory flat in video length,
        checkpoint per chunk; see :mod:`mapose.batch.chunked` for how results can differ
        from the whole-video stitch).  Default None: DLC's whole-video stages.
    chunk_overlap : int, default 50
        Frames shared by consecutive chunks to join their tracks.
    checkpoint_every : int, default 500
        Network stage: make the streamed outputs durable and record ``frames_done`` every
        this many frames (rounded up to the batch size), so an interrupted video resumes
        there (:mod:`mapose.batch.network`).  0 checkpoints only at the start.
    scorer : str, optional
        Use this scorer instead of deriving it from the model folder.
    analyze_kwargs, track_kwargs, stitch_kwargs : dict, optional
        Extra keyword arguments for ``analyze_videos`` (e.g. ``batch_size``, ``device``),
        ``convert_detections2tracklets`` and ``stitch_tracklets``.
    stage_funcs : dict, optional
        Replace a stage's function (``{"analyze": f}``); ``f(job) -> StageReport``.
    print_table : bool, default True
        Print the per-video table when done.
    file : file-like, optional
        Where to print (default ``sys.stdout``).

    Returns
    -------
    BatchResult
        ``.ok`` / ``.exit_code`` tell whether every video succeeded; ``.table()``.

    Raises
    ------
    ValueError
        For contradictory options (both ``scheduler`` and ``cluster``, a bad
        ``cluster`` string, negative ``post_workers``).
    FileNotFoundError
        If the config or every video is missing.
    """
    if scheduler is not None and cluster is not None:
        raise ValueError("pass either scheduler= (an existing Dask scheduler) or cluster= "
                         "('local:N'), not both.")
    if isinstance(post_workers, bool) or not isinstance(post_workers, int) or post_workers < 0:
        raise ValueError(f"post_workers must be an int >= 0; got {post_workers!r}. Use 0 to run "
                         "tracking inline, 1 (default) to overlap it with the network.")
    n_local = parse_cluster(cluster) if cluster is not None else None
    t0 = time.perf_counter()
    jobs, scorer = make_jobs(
        config, videos, video_extensions=video_extensions, shuffle=shuffle,
        trainingsetindex=trainingsetindex, destfolder=destfolder, modelprefix=modelprefix,
        track_method=track_method, snapshot_index=snapshot_index,
        detector_snapshot_index=detector_snapshot_index, overwrite=overwrite,
        auto_track=auto_track, save_as_csv=save_as_csv, n_tracks=n_tracks,
        animal_names=animal_names, scorer=scorer, analyze_kwargs=analyze_kwargs,
        track_kwargs=track_kwargs, stitch_kwargs=stitch_kwargs, stage_funcs=stage_funcs,
        chunk_frames=chunk_frames, chunk_overlap=chunk_overlap, checkpoint_every=checkpoint_every,
    )
    if scheduler is not None or n_local is not None:
        from mapose.batch.cluster import run_jobs_dask
        reports = run_jobs_dask(jobs, scheduler=scheduler, n_local=n_local, retries=retries)
    else:
        reports = run_jobs_local(jobs, post_workers=post_workers)
    result = BatchResult(reports=reports, scorer=scorer, seconds=time.perf_counter() - t0)
    if print_table:
        print(result.table(), file=file or sys.stdout)
    return result


_VIDEO_EXTS = ("avi", "mp4", "mov", "mpeg", "mpg", "mpv", "mkv", "flv", "qt", "yuv")


def _project_api():
    """``(read_config, get_track_method, list_videos)`` from :mod:`mapose.io`.

    Falls back to minimal local versions (plain YAML read, the config's
    ``default_track_method``, DLC's one-level folder scan) while those modules are absent.
    """
    try:
        from mapose.io.config import read_config
        from mapose.io.project import get_track_method, list_videos
        return read_config, get_track_method, list_videos
    except ImportError:
        pass

    def read_config(path):
        import yaml
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}

    def get_track_method(cfg, track_method=""):
        return track_method or cfg.get("default_track_method") or "ellipse"

    def list_videos(videos, video_extensions=None):
        exts = ([video_extensions] if isinstance(video_extensions, str) else video_extensions) \
            or _VIDEO_EXTS
        exts = tuple(e.lstrip(".").lower() for e in exts)
        out = []
        for v in videos:
            v = Path(v)
            if v.is_dir():
                out += sorted(f for f in v.iterdir() if f.is_file()
                              and f.suffix.lstrip(".").lower() in exts
                              and not f.stem.endswith(("_labeled", "_full")))
            elif v.is_file():
                out.append(v)
        return out

    return read_config, get_track_method, list_videos


def parse_cluster(cluster) -> int:
    """``"local:N"`` → N (the number of local Dask worker processes)."""
    text = str(cluster).strip()
    head, _, n = text.partition(":")
    if head != "local" or not n.isdigit() or int(n) < 1:
        raise ValueError(f"cluster must look like 'local:N' with N >= 1 worker processes; got "
                         f"{cluster!r}. For a remote cluster pass scheduler='tcp://host:8786'.")
    return int(n)


def run_jobs_local(jobs: list[VideoJob], post_workers: int = 1) -> list[VideoReport]:
    """Network stages in this process; post-network stages overlapped in worker processes.

    A worker process that dies (segfault, out of memory) loses only its current videos:
    they are retried once in a fresh worker, resuming from their checkpoints, and
    reported as failed if that dies too.
    """
    if post_workers == 0 or not any(j.auto_track for j in jobs):
        return [process_video(j) for j in jobs]
    reports: list[VideoReport | None] = [None] * len(jobs)
    ctx = mp.get_context(_start_method())
    pool = _new_pool(post_workers, ctx)
    futures: dict = {}
    base = [0] * len(jobs)
    try:
        for i, job in enumerate(jobs):
            net = process_network(job)
            if not net.ok:
                reports[i] = net
                continue
            base[i] = ProgressRecord.load(job.progress_path).post_attempts
            pool = _submit(pool, futures, i, job, net, post_workers, ctx)
        while futures:
            i, fut = next(iter(futures.items()))
            job, net = fut.job, fut.net
            del futures[i]
            try:
                reports[i] = fut.result()
            except BrokenProcessPool:
                # Only a video whose post stages had actually started in the dead worker
                # uses up an attempt; the others were just queued behind it.
                started = ProgressRecord.load(job.progress_path).post_attempts - base[i]
                if started >= 2:
                    reports[i] = failed_report(job, "post-network worker process died twice "
                                                    "(crash or out of memory)", started)
                    reports[i].stages["analyze"] = net.stages.get("analyze",
                                                                  reports[i].stages["analyze"])
                else:
                    pool = _submit(pool, futures, i, job, net, post_workers, ctx)
            except Exception as exc:  # noqa: BLE001 - e.g. unpicklable result
                reports[i] = failed_report(job, f"post-network worker error: {exc}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return reports


def _start_method() -> str:
    """``fork`` on Linux, else ``spawn``.

    ``spawn`` and ``forkserver`` re-import the user's ``__main__``, which re-runs scripts
    written without an ``if __name__ == "__main__":`` guard (most DLC analysis scripts).
    The pool is created, and its workers forked, before the network stage first loads
    torch, and the workers never touch torch or CUDA, so forking is safe here.
    ``MAPOSE_MP_START`` overrides the choice.
    """
    env = os.environ.get("MAPOSE_MP_START")
    if env:
        if env not in mp.get_all_start_methods():
            raise ValueError(f"MAPOSE_MP_START={env!r} is not a start method here; use one of "
                             f"{mp.get_all_start_methods()}.")
        return env
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _warm_up() -> None:
    """Import the post-network stages in a fresh worker while the network runs."""
    import importlib

    for name in ("mapose.tracking.convert", "mapose.stitching.api", "pandas"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _new_pool(post_workers, ctx) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=post_workers, mp_context=ctx)
    # Spawning and importing take a second or more; start now, not when video 1 is done.
    # (With fork, the workers are created here, synchronously.)  Python >= 3.12 warns
    # about forking a multi-threaded process; the workers only run NumPy/Cython code and
    # never use a lock another thread could hold (torch, CUDA), so the warning is moot.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*multi-threaded.*fork", category=DeprecationWarning)
        for _ in range(post_workers):
            pool.submit(_warm_up)
    return pool


def _submit(pool, futures, i, job, net, post_workers, ctx):
    for _ in range(2):
        try:
            fut = pool.submit(process_post, job, net)
            break
        except BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            pool = _new_pool(post_workers, ctx)
    fut.job, fut.net = job, net
    futures[i] = fut
    return pool


__all__ = ["BatchResult", "run_videos", "make_jobs", "run_jobs_local", "parse_cluster", "STAGES"]
