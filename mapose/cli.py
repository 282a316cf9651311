"""The ``mapose`` console script.

Each sub-command lives in ``mapose/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from mapose import __version__

# Order shown in --help.
_COMMANDS = ["demo", "analyze", "track", "stitch", "export", "label", "info", "evaluate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mapose",
        description="Fast drop-in replacement for DeepLabCut's multi-animal pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"mapose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        module_name = f"mapose.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue  # command not shipped in this version
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        # user errors: one readable line, no traceback
        print(f"mapose {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
