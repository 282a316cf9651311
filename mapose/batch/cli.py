"""Command-line and ``analyze_videos`` front ends of the batch runner.

``add_arguments(parser)`` + ``run(args)`` implement ``mapose analyze CONFIG
VIDEOS_OR_DIRS... [options]`` (the ``mapose/commands/analyze.py`` command registers
them), and :func:`run_from_analyze_videos` is what ``analyze_videos(...,
scheduler=..., cluster=...)`` delegates to.  Exit status / return follow the batch rule:
every video is attempted, a table is printed, and success means every video succeeded.
"""
from __future__ import annotations

import argparse
import sys

# analyze_videos arguments that the runner itself consumes; everything else is passed
# through to analyze_videos for each video.
_RUNNER_ARGS = ("shuffle", "trainingsetindex", "destfolder", "modelprefix", "snapshot_index",
                "detector_snapshot_index", "overwrite", "auto_track", "save_as_csv",
                "n_tracks", "animal_names")
# analyze_videos name -> convert_detections2tracklets name
_TRACK_ARGS = {"identity_only": "identity_only", "calibrate": "calibrate",
               "inference_cfg": "inferencecfg"}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``analyze``'s arguments (DLC's ``analyze_videos`` options + batch options)."""
    parser.add_argument("config", help="path of the project's config.yaml")
    parser.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR",
                        help="video files and/or folders (scanned one level deep)")
    g = parser.add_argument_group("analyze_videos options")
    g.add_argument("--videotype", "--video-extensions", dest="video_extensions", default=None,
                   help="only videos with this extension (e.g. mp4) when folders are given")
    g.add_argument("--shuffle", type=int, default=1)
    g.add_argument("--trainingsetindex", type=int, default=0)
    g.add_argument("--snapshot-index", default=None,
                   help="snapshot index (int), 'best' or 'all' (default: config snapshotindex)")
    g.add_argument("--destfolder", default=None, help="write outputs here instead of next to videos")
    g.add_argument("--modelprefix", default="")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: config / auto)")
    g.add_argument("--engine", choices=("torch", "onnx"), default="torch")
    g.add_argument("--half", action="store_true", help="float16 network on CUDA")
    g.add_argument("--cropping", type=int, nargs=4, metavar=("X1", "X2", "Y1", "Y2"), default=None)
    g.add_argument("--save-as-csv", action="store_true", help="also write .csv next to each .h5")
    g.add_argument("--save-as-df", action="store_true",
                   help="also write the untracked detections .h5 (DLC's save_as_df)")
    g.add_argument("--use-shelve", action="store_true",
                   help="stream the _full.pickle through a shelve database (DLC's use_shelve)")
    g.add_argument("--dynamic", type=float, nargs=2, metavar=("THRESHOLD", "MARGIN"), default=None,
                   help="dynamic cropping around the animals (DLC's dynamic=(True, THRESHOLD, "
                        "MARGIN)); forces batch size 1")
    g.add_argument("--overwrite", action="store_true", help="redo videos whose outputs are complete")
    g.add_argument("--no-track", "--no-auto-track", dest="auto_track", action="store_false",
                   help="stop after the assemblies (auto_track=False): no tracklets / stitched tracks")
    g.add_argument("--track-method", default="", choices=("", "ellipse", "box", "skeleton"))
    g.add_argument("--n-tracks", type=int, default=None)
    g.add_argument("--animal-names", nargs="+", default=None)
    b = parser.add_argument_group("many videos")
    x = b.add_mutually_exclusive_group()
    x.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="Dask scheduler address (tcp://host:8786): one task per video")
    x.add_argument("--cluster", metavar="local:N", default=None,
                   help="start a local Dask cluster with N worker processes")
    b.add_argument("--post-workers", type=int, default=1,
                   help="local mode: worker processes for tracking/stitching, overlapped with "
                        "the network (0: inline)")
    b.add_argument("--retries", type=int, default=2, help="Dask: extra attempts per video")
    b.add_argument("--chunk-frames", type=int, default=None, metavar="N",
                   help="track and stitch N frames at a time: memory flat in video length, "
                        "resumable mid-video (default: whole video, as DLC)")
    b.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                   help="network stage: checkpoint the streamed outputs every N frames, so an "
                        "interrupted video resumes there (default 500; 0: never)")
    return parser


def _snapshot_index(value):
    if value is None or value in ("best", "all"):
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--snapshot-index must be an int, 'best' or 'all'; got {value!r}.") from None


def run(args: argparse.Namespace, file=None) -> int:
    """Run the batch described by parsed ``args``; print the table; return the exit code."""
    from mapose.batch.runner import run_videos

    analyze_kwargs = {"engine": args.engine}
    for name in ("batch_size", "device", "cropping"):
        if getattr(args, name, None) is not None:
            analyze_kwargs[name] = getattr(args, name)
    for name in ("half", "save_as_df", "use_shelve"):
        if getattr(args, name, False):
            analyze_kwargs[name] = True
    if getattr(args, "dynamic", None) is not None:
        threshold, margin = args.dynamic
        if margin != int(margin) or margin < 0:
            raise ValueError(f"--dynamic MARGIN must be a whole number of pixels >= 0; got {margin}.")
        analyze_kwargs["dynamic"] = (True, threshold, int(margin))
    result = run_videos(
        args.config, args.videos, video_extensions=args.video_extensions, shuffle=args.shuffle,
        trainingsetindex=args.trainingsetindex, destfolder=args.destfolder,
        modelprefix=args.modelprefix, track_method=args.track_method,
        snapshot_index=_snapshot_index(args.snapshot_index), overwrite=args.overwrite,
        auto_track=args.auto_track, save_as_csv=args.save_as_csv, n_tracks=args.n_tracks,
        animal_names=args.animal_names, scheduler=args.scheduler, cluster=args.cluster,
        post_workers=args.post_workers, retries=args.retries, chunk_frames=args.chunk_frames,
        checkpoint_every=getattr(args, "checkpoint_every", 500), analyze_kwargs=analyze_kwargs,
        print_table=True, file=file or sys.stdout,
    )
    return result.exit_code


def run_from_analyze_videos(config, videos, *, scheduler=None, cluster=None, post_workers=1,
                            video_extensions=None, videotype=None, track_method="", **kwargs) -> str:
    """``analyze_videos(config, videos, ..., scheduler=/cluster=)`` through the batch runner.

    Parameters
    ----------
    config, videos
        As in ``analyze_videos``.
    scheduler, cluster, post_workers
        See :func:`mapose.batch.run_videos`.
    **kwargs
        The remaining ``analyze_videos`` arguments: the project/output ones are used by
        the runner, ``identity_only``/``calibrate``/``inference_cfg`` go to tracking, the
        rest (``batch_size``, ``device``, ``engine``, ``cropping``...) to ``analyze_videos``
        for each video.

    Returns
    -------
    str
        The scorer, as ``analyze_videos`` returns.

    Raises
    ------
    RuntimeError
        After all videos were attempted, if any failed; the message holds the table.
    """
    from mapose.batch.runner import run_videos

    run_kw = {k: kwargs.pop(k) for k in _RUNNER_ARGS if k in kwargs}
    track_kw = {new: kwargs.pop(old) for old, new in _TRACK_ARGS.items() if old in kwargs}
    track_kw = {k: v for k, v in track_kw.items() if v is not None and v is not False}
    for k in [k for k, v in kwargs.items() if v is None]:
        del kwargs[k]
    result = run_videos(config, videos, video_extensions=video_extensions or videotype,
                        track_method=track_method, scheduler=scheduler, cluster=cluster,
                        post_workers=post_workers, analyze_kwargs=kwargs,
                        track_kwargs=track_kw, print_table=True, **run_kw)
    if not result.ok:
        raise RuntimeError(f"{len(result.failed)} of {len(result)} videos failed; the others "
                           f"finished. Re-run to retry only the failed ones.\n{result.table()}")
    return result.scorer
