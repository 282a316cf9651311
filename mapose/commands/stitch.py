"""``mapose stitch``: run ``stitch_tracklets`` on videos or folders of videos."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stitch", help="stitch tracklets into tracks (stitch_tracklets)",
        description=(
            "Stitch each video's tracklet pickle (<video><scorer>_el/_bx/_sk.pickle) into "
            "n_tracks complete tracks and write <video><scorer>_el.h5 (key 'tracks'), as "
            "DeepLabCut's stitch_tracklets does."
        ),
    )
    p.add_argument("config", help="path to the project's config.yaml")
    p.add_argument("videos", nargs="+", help="video files or folders")
    p.add_argument("--videotype", default=None, help="extension filter, e.g. .mp4")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--trainingsetindex", type=int, default=0)
    p.add_argument("--n-tracks", type=int, default=None, help="number of animals (default: config individuals)")
    p.add_argument("--animal-names", nargs="+", default=None, help="column names of the tracks")
    p.add_argument("--min-length", type=int, default=10)
    p.add_argument("--no-split", action="store_true", help="do not split tracklets at frame jumps")
    p.add_argument("--no-prestitch", action="store_true", help="do not chain short residuals first")
    p.add_argument("--max-gap", type=int, default=None, help="largest gap a link may bridge (frames)")
    p.add_argument("--track-method", default="", choices=("", "ellipse", "box", "skeleton"))
    p.add_argument("--destfolder", default=None)
    p.add_argument("--modelprefix", default="")
    p.add_argument("--output-name", default="")
    p.add_argument("--save-as-csv", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mapose.stitching.api import stitch_tracklets

    written = stitch_tracklets(
        args.config, args.videos, video_extensions=args.videotype, shuffle=args.shuffle,
        trainingsetindex=args.trainingsetindex, n_tracks=args.n_tracks, animal_names=args.animal_names,
        min_length=args.min_length, split_tracklets=not args.no_split,
        prestitch_residuals=not args.no_prestitch, max_gap=args.max_gap, destfolder=args.destfolder,
        modelprefix=args.modelprefix, track_method=args.track_method, output_name=args.output_name,
        save_as_csv=args.save_as_csv,
    )
    for path in written:
        print(path)
    return 0 if written else 1
