"""``mapose label CONFIG VIDEOS...``: labeled videos (and optionally detections / plots)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "label", help="draw tracked keypoints on videos (create_labeled_video)",
        description="Create <video><scorer>[_el]_(id|bp)_p<pcutoff>_labeled.mp4 for analysed videos.",
    )
    p.add_argument("config", help="project config.yaml")
    p.add_argument("videos", nargs="+", help="video files or folders")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--trainingsetindex", type=int, default=0)
    p.add_argument("--destfolder", default=None, help="where the analysis files are (default: video folder)")
    p.add_argument("--track-method", default="", help="ellipse, box or skeleton (default: config)")
    p.add_argument("--color-by", default="bodypart", choices=["bodypart", "individual"])
    p.add_argument("--filtered", action="store_true", help="use the _filtered.h5")
    p.add_argument("--draw-skeleton", action="store_true")
    p.add_argument("--trailpoints", type=int, default=0)
    p.add_argument("--pcutoff", type=float, default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--detections", action="store_true",
                   help="also draw every raw detection (<video><scorer>_full.mp4)")
    p.add_argument("--plots", action="store_true", help="also write plot-poses/ trajectory plots")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mapose.visualization.videos import create_labeled_video, create_video_with_all_detections

    ok = create_labeled_video(
        args.config, args.videos, shuffle=args.shuffle, trainingsetindex=args.trainingsetindex,
        destfolder=args.destfolder, track_method=args.track_method, color_by=args.color_by,
        filtered=args.filtered, draw_skeleton=args.draw_skeleton, trailpoints=args.trailpoints,
        pcutoff=args.pcutoff, overwrite=args.overwrite,
    )
    if args.detections:
        create_video_with_all_detections(args.config, args.videos, shuffle=args.shuffle,
                                         trainingsetindex=args.trainingsetindex, destfolder=args.destfolder)
    if args.plots:
        from mapose.visualization.plots import plot_trajectories

        plot_trajectories(args.config, args.videos, shuffle=args.shuffle,
                          trainingsetindex=args.trainingsetindex, destfolder=args.destfolder,
                          track_method=args.track_method, filtered=args.filtered)
    print(f"labeled {sum(bool(r) for r in ok)} of {len(ok)} video(s)")
    return 0 if all(ok) else 1
