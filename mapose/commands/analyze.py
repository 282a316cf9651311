"""``mapose analyze``: analyse many videos with checkpoints (the batch runner's front end).

Runs DLC's ``analyze_videos`` per video, then tracking and stitching (unless
``--no-track``), through :func:`mapose.batch.run_videos`: finished videos are skipped,
interrupted ones resume from their ``_progress.json`` record, one failing video does not
stop the others, and a per-video table is printed.  The exit status is 0 only when every
video succeeded.  ``--scheduler``/``--cluster`` run one task per video on Dask.
"""
from __future__ import annotations


def register(subparsers) -> None:
    from mapose.batch import cli

    p = subparsers.add_parser(
        "analyze", help="run a trained DLC 3 multi-animal model on videos (analyze_videos), "
                        "track and stitch; many videos, resumable, optionally on Dask",
        description=(
            "Analyse videos with a trained DeepLabCut 3 (PyTorch) multi-animal project and write "
            "DLC's files (_full.pickle, _meta.pickle, _assemblies.pickle and, with tracking, "
            "the tracklet pickle and the stitched .h5). Videos whose outputs are complete are "
            "skipped, interrupted ones resume; the exit status is 0 only when every video "
            "succeeded."
        ),
    )
    cli.add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mapose.batch import cli

    return cli.run(args)
