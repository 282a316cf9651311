"""``mapose export``: export a trained model to ONNX (or DLC-Live's .pt)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a trained model to ONNX or DLC-Live's .pt (export_model)",
        description=(
            "Write <project>/exported-models-pytorch/DLC_<Task>_<net>_iteration-<i>_shuffle-<s>/"
            "..._snapshot-<uid>.onnx (input: uint8 BGR frames, dynamic batch and size) or the "
            "DLC-Live .pt file."
        ),
    )
    p.add_argument("config", help="path to the project's config.yaml")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--trainingsetindex", type=int, default=0)
    p.add_argument("--snapshotindex", type=int, default=None)
    p.add_argument("--format", choices=("onnx", "pytorch"), default="onnx")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--modelprefix", default=None)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mapose.inference.export import export_model

    path = export_model(args.config, shuffle=args.shuffle, trainingsetindex=args.trainingsetindex,
                        snapshotindex=args.snapshotindex, overwrite=args.overwrite,
                        modelprefix=args.modelprefix, format=args.format)
    print(path)
    return 0
