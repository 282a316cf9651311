"""``mapose evaluate PREDICTED_H5 GROUND_TRUTH_H5``: MOTA, IDF1, ID switches, RMSE, OKS mAP."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score tracks against ground truth (evaluate_tracks)",
        description=(
            "Compare a tracks .h5 (mapose or DeepLabCut, e.g. <video><scorer>_el.h5) with ground "
            "truth: another tracks .h5 or DLC labelled data (CollectedData_<scorer>.h5, frame "
            "numbers read from the image names). Prints MOTA, IDF1, ID switches, "
            "fragmentations, per-body-part RMSE and OKS mAP."
        ),
    )
    p.add_argument("predicted_h5", help="tracks .h5 to score")
    p.add_argument("ground_truth_h5", help="ground-truth tracks .h5 or CollectedData_*.h5")
    p.add_argument("--max-dist", type=float, default=None,
                   help="largest mean keypoint distance (px) of a match (default: 0.3 x median animal size)")
    p.add_argument("--pcutoff", type=float, default=0.0, help="ignore predicted keypoints below this likelihood")
    p.add_argument("--oks-sigma", type=float, default=0.072, help="OKS keypoint sigma for mAP (DLC default 0.072)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the metrics to this JSON file")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import json

    from mapose.evaluation.tracks import evaluate_tracks, format_summary
    from mapose.io.atomic import atomic_open

    result = evaluate_tracks(args.predicted_h5, args.ground_truth_h5, max_dist=args.max_dist,
                             pcutoff=args.pcutoff, oks_sigma=args.oks_sigma)
    print(format_summary(result))
    if args.json_out:
        with atomic_open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"metrics written to {args.json_out}")
    return 0
