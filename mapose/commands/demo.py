"""``mapose demo``: render a synthetic video, run the whole pipeline, score it against ground truth."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="offline end-to-end demo with ground truth (no download, CPU is fine)",
        description=(
            "Render a synthetic multi-animal video with exact ground truth, write a DeepLabCut "
            "project around the small model shipped with mapose, run analyze_videos(auto_track=True), "
            "write the labeled video and print MOTA / IDF1 / ID switches / keypoint error and "
            "frames/s per stage."
        ),
    )
    p.add_argument("--animals", type=int, default=3, help="number of animals (1-6, default 3)")
    p.add_argument("--frames", type=int, default=300, help="video length in frames (default 300)")
    p.add_argument("--out", default="mapose-demo", help="output folder (default ./mapose-demo)")
    p.add_argument("--seed", type=int, default=11, help="scene seed (default 11)")
    p.add_argument("--no-video", action="store_true", help="skip the labeled video")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mapose.demo.runner import DemoSettings, run_demo

    run_demo(DemoSettings(animals=args.animals, frames=args.frames, out=args.out, seed=args.seed,
                          labeled_video=not args.no_video))
    return 0
