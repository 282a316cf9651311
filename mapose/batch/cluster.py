"""Dask submission: one task per video on a ``dask.distributed`` cluster.

Dask is imported only here and only when a scheduler or cluster is requested (extra
``mapose[dask]``).  Each task runs :func:`mapose.batch.video.process_video` on a worker,
which writes the video's outputs and progress record into the output folder; with many
machines that folder must be shared storage (NFS, Lustre, ...), exactly like the
video folder DLC writes into.

Fault tolerance comes from two layers:

* Dask reruns a task whose worker died (up to ``retries`` + the scheduler's
  ``allowed-failures``) on another worker;
* the rerun resumes from the video's progress record: finished stages are skipped and
  temp files of the interrupted write are removed, so nothing is lost and no partial
  file is ever mistaken for a finished one.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from mapose._optional import require
from mapose.batch.video import VideoReport, failed_report, process_network, process_video

# How long to wait for a remote scheduler before giving up with a clear error.
CONNECT_TIMEOUT = "30s"


def _client(scheduler=None, n_local=None):
    """(client, owned objects to close)."""
    distributed = require("distributed", "running videos on a Dask cluster")
    if n_local is not None:
        # ":0" = any free port: several mapose jobs on one machine must not fight over 8787.
        cluster = distributed.LocalCluster(n_workers=n_local, threads_per_worker=1,
                                           processes=True, dashboard_address=":0")
        client = distributed.Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if not isinstance(scheduler, str) or not scheduler:
        raise ValueError(f"scheduler must be a Dask scheduler address such as "
                         f"'tcp://host:8786' or a distributed.Client; got {scheduler!r}.")
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise OSError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}). Start it "
                      "with `dask scheduler` (or dask-jobqueue) and pass its address.") from exc
    return client, [client]


def chunk_task_safe(job, i, *deps):
    """One chunk of a long video; errors become warnings (the join recomputes and reports)."""
    from mapose.batch.chunked import chunk_task

    try:
        return chunk_task(job, i)
    except Exception as exc:  # noqa: BLE001
        return [f"chunk {i}: {type(exc).__name__}: {exc}"]


def post_after(job, report, *deps):
    """The post-network stages of ``job`` once its chunk tasks (``deps``) are done."""
    from mapose.batch.video import process_post

    return process_post(job, report)


def run_jobs_dask(jobs, scheduler=None, n_local=None, retries=2) -> list[VideoReport]:
    """Submit one :func:`process_video` task per job and gather the reports in order.

    Jobs with ``chunk_frames`` are split: a network task, then one task per chunk of
    frames (tracking + stitching of that chunk, in parallel across workers), then a task
    that joins the chunks into the tracks file.

    Parameters
    ----------
    jobs : list of VideoJob
    scheduler : str or distributed.Client, optional
    n_local : int, optional
        Start a ``LocalCluster`` of this many single-threaded worker processes instead.
    retries : int
        Extra attempts per task (on top of the scheduler rescheduling tasks of dead
        workers).

    Returns
    -------
    list of VideoReport
        A task that failed for good (``KilledWorker``: its worker kept dying) becomes a
        failed report; the others are unaffected.
    """
    distributed = require("distributed", "running videos on a Dask cluster")
    client, owned = _client(scheduler, n_local)
    try:
        token = uuid.uuid4().hex[:8]

        def key(kind, i, job):
            return f"mapose-{kind}-{Path(job.video).stem}-{i}-{token}"

        split = [bool(job.chunk_frames and job.auto_track and "stitch" not in job.stage_funcs)
                 for job in jobs]
        futures = {}
        for i, job in enumerate(jobs):
            fn = process_network if split[i] else process_video
            futures[i] = client.submit(fn, job, key=key("video", i, job), pure=False,
                                       retries=retries)
        reports: dict[int, VideoReport] = {}
        n_chunk_tasks: dict[int, int] = {}
        # network tasks of split jobs finish first: fan their chunks out as they do
        pending = {fut: i for i, fut in futures.items()}
        for fut in distributed.as_completed(list(pending)):
            i = pending[fut]
            job = jobs[i]
            try:
                rep = fut.result()
            except distributed.KilledWorker as exc:
                reports[i] = failed_report(job, f"Dask worker died on every attempt ({exc})")
                continue
            except Exception as exc:  # noqa: BLE001 - one video's failure is not the batch's
                reports[i] = failed_report(job, f"Dask task failed: {type(exc).__name__}: {exc}")
                continue
            if not split[i] or not rep.ok:
                reports[i] = rep
                continue
            from mapose.batch.chunked import n_chunks

            try:
                n = n_chunks(job)
            except Exception as exc:  # noqa: BLE001
                n = 0  # the join task will compute (and report on) every chunk itself
                rep.stages["analyze"].warnings.append(f"cannot plan chunks: {exc}")
            deps = [client.submit(chunk_task_safe, job, c, key=key(f"chunk{c}", i, job),
                                  pure=False, retries=retries) for c in range(n)]
            n_chunk_tasks[i] = n
            futures[i] = client.submit(post_after, job, rep, *deps, key=key("join", i, job),
                                       pure=False, retries=retries)
        for i, n in n_chunk_tasks.items():
            job = jobs[i]
            try:
                reports[i] = futures[i].result()
                st = reports[i].stages.get("stitch")
                if st is not None:
                    st.info["chunk_tasks"] = n
            except distributed.KilledWorker as exc:
                reports[i] = failed_report(job, f"Dask worker died on every attempt ({exc})")
            except Exception as exc:  # noqa: BLE001
                reports[i] = failed_report(job, f"Dask task failed: {type(exc).__name__}: {exc}")
        return [reports[i] for i in range(len(jobs))]
    finally:
        for obj in owned:
            obj.close()
