"""``mapose track CONFIG VIDEOS...``: assemblies -> tracklet pickles (``convert_detections2tracklets``)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "track",
        help="link assembled animals into tracklets (_el/_bx/_sk.pickle)",
        description="Run convert_detections2tracklets on videos analysed by analyze_videos.",
    )
    p.add_argument("config", help="project config.yaml")
    p.add_argument("videos", nargs="+", help="videos or folders of videos")
    p.add_argument("--video-extensions", nargs="*", default=None, metavar="EXT")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--trainingsetindex", type=int, default=0)
    p.add_argument("--track-method", default="", choices=["", "ellipse", "box", "skeleton"])
    p.add_argument("--destfolder", default=None)
    p.add_argument("--modelprefix", default="")
    p.add_argument("--snapshot-index", default=None)
    p.add_argument("--identity-only", action="store_true")
    p.add_argument("--greedy", action="store_true", help="greedy assembly (classic _full.pickle inputs)")
    p.add_argument("--calibrate", action="store_true", help="calibrated assembly (classic inputs)")
    p.add_argument("--window-size", type=int, default=0)
    p.add_argument("--ignore-bodyparts", nargs="*", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from mapose.tracking.convert import convert_detections2tracklets

    snap = args.snapshot_index
    if snap is not None and snap != "all":
        snap = int(snap)
    out = convert_detections2tracklets(
        args.config, args.videos, video_extensions=args.video_extensions or None,
        shuffle=args.shuffle, trainingsetindex=args.trainingsetindex, overwrite=args.overwrite,
        destfolder=args.destfolder, ignore_bodyparts=args.ignore_bodyparts,
        modelprefix=args.modelprefix, greedy=args.greedy, calibrate=args.calibrate,
        window_size=args.window_size, identity_only=args.identity_only,
        track_method=args.track_method, snapshot_index=snap,
    )
    for path in out:
        print(path)
    return 0
