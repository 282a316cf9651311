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
from mapose.batch.video import VideoReport, failed_report, process_video

# How long to wait for a remote scheduler before giving up with a clear error.
CONNECT_TIMEOUT = "30s"


def _client(scheduler=None, n_local=None):
    """(client, owned objects to close)."""
    distributed = require("distributed", "running videos on a Dask cluster")
    if n_local is not None:
        cluster = distributed.LocalCluster(n_workers=n_local, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
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


def run_jobs_dask(jobs, scheduler=None, n_local=None, retries=2) -> list[VideoReport]:
    """Submit one :func:`process_video` task per job and gather the reports in order.

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
        futures = [
            client.submit(process_video, job, key=f"mapose-{Path(job.video).stem}-{i}-{token}",
                          pure=False, retries=retries)
            for i, job in enumerate(jobs)
        ]
        reports: list[VideoReport] = []
        for job, fut in zip(jobs, futures):
            try:
                reports.append(fut.result())
            except distributed.KilledWorker as exc:
                reports.append(failed_report(job, f"Dask worker died on every attempt ({exc})"))
            except Exception as exc:  # noqa: BLE001 - one video's failure is not the batch's
                reports.append(failed_report(job, f"Dask task failed: {type(exc).__name__}: {exc}"))
        return reports
    finally:
        for obj in owned:
            obj.close()
