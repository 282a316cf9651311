"""``mapose analyze``: run ``analyze_videos`` on videos or folders of videos."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="run a trained DLC 3 multi-animal model on videos (analyze_videos)",
        description=(
            "Analyse videos with a trained DeepLabCut 3 (PyTorch) multi-animal project and write "
            "DLC's files (_full.pickle, _meta.pickle, _assemblies.pickle and, with tracking, "
            "the tracklet pickle and the stitched .h5)."
        ),
    )
    p.add_argument("config", help="path to the project's config.yaml")
    p.add_argument("videos", nargs="+", help="video files or folders")
    p.add_argument("--videotype", default=None, help="extension filter for folders, e.g. .mp4")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--trainingsetindex", type=int, default=0)
    p.add_argument("--snapshot-index", default=None,
                   help="snapshot index (int), 'best', or omit for config.yaml's snapshotindex")
    p.add_argument("--engine", choices=("torch", "onnx"), default="torch")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: automatic)")
    p.add_argument("--half", action="store_true", help="float16 network on CUDA")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--destfolder", default=None)
    p.add_argument("--no-track", action="store_true", help="stop after the assemblies (auto_track=False)")
    p.add_argument("--n-tracks", type=int, default=None)
    p.add_argument("--save-as-csv", action="store_true")
    p.add_argument("--save-as-df", action="store_true", help="also write the untracked .h5")
    p.add_argument("--use-shelve", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--modelprefix", default="")
    p.set_defaults(func=_run)


def _snapshot_index(value):
    if value is None or value in ("best", "all"):
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--snapshot-index must be an int, 'best' or 'all'; got {value!r}.") from None


def _run(args) -> int:
    from mapose.inference.analyze import analyze_videos

    analyze_videos(
        args.config, args.videos, videotype=args.videotype, shuffle=args.shuffle,
        trainingsetindex=args.trainingsetindex, snapshot_index=_snapshot_index(args.snapshot_index),
        device=args.device, destfolder=args.destfolder, batch_size=args.batch_size,
        auto_track=not args.no_track, n_tracks=args.n_tracks, save_as_csv=args.save_as_csv,
        save_as_df=args.save_as_df, use_shelve=args.use_shelve, overwrite=args.overwrite,
        modelprefix=args.modelprefix, engine=args.engine, half=args.half,
    )
    return 0
