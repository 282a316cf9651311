"""``mapose info FILE...``: print what DLC files hold; ``--example`` makes a demo set.

Examples
--------
::

    mapose info videos/*DLC_*_el.h5 videos/*_full.pickle
    mapose info --example            # writes ./mapose-example and describes it
    mapose info --json FILE          # machine-readable
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe DeepLabCut files (kind, frames, animals, bodyparts, missing data)",
        description="Describe DeepLabCut files: _full/_meta/_assemblies/tracklet pickles, "
                    "tracks .h5/.csv, config.yaml, inference_cfg.yaml, pytorch_config.yaml. "
                    "The kind is detected automatically.",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="DLC files to describe")
    p.add_argument("--example", nargs="?", const="mapose-example", default=None, metavar="DIR",
                   help="generate a small synthetic DLC file set in DIR (default: "
                        "./mapose-example) and describe it")
    p.add_argument("--frames", type=int, default=60, help="frames in the --example set (default 60)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.set_defaults(func=run)


def run(args) -> int:
    from mapose.io.summary import describe

    files = [Path(f) for f in args.files]
    if args.example is not None:
        from mapose.examples import write_example_set

        if args.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {args.frames}.")
        paths = write_example_set(args.example, n_frames=args.frames)
        if not args.json:
            print(f"Wrote a synthetic DeepLabCut file set to {Path(args.example).resolve()}\n")
        files += list(paths.values())
    if not files:
        raise ValueError("give at least one FILE, or --example [DIR] to generate a demo set")
    status = 0
    for i, f in enumerate(files):
        try:
            summary = describe(f)
        except (ValueError, FileNotFoundError, OSError, KeyError) as exc:
            print(f"mapose info: {f}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps(summary.to_dict(), default=str))
        else:
            if i:
                print()
            print(summary.format())
    return status
