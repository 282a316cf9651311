"""Batch analysis of many videos: checkpoints, pipelined stages, Dask submission.

``run_videos(config, videos, ...)`` analyses, tracks and stitches every video, skipping
finished ones and resuming interrupted ones from ``<stem><scorer>_progress.json``; it
overlaps the network of one video with the post-processing of the previous one, or
submits one task per video to a Dask cluster (``scheduler=`` / ``cluster="local:N"``).
``mapose.batch.chunked`` processes detections in bounded chunks so that memory stays
flat however long a video is.
"""
from __future__ import annotations

from mapose.batch.progress import ProgressRecord
from mapose.batch.report import format_table
from mapose.batch.runner import BatchResult, make_jobs, parse_cluster, run_videos
from mapose.batch.stages import StageReport, VideoJob
from mapose.batch.video import VideoReport, process_video

__all__ = ["run_videos", "BatchResult", "VideoReport", "StageReport", "VideoJob",
           "ProgressRecord", "format_table", "make_jobs", "parse_cluster", "process_video"]
