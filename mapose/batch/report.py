"""The final per-video table of a batch run.

One row per video: status, frames, frames/s of each stage that ran (``-`` when it was
skipped because its outputs were complete), tracks found, number of warnings, and the
final output file; failed videos get their error on the line below.
"""
from __future__ import annotations

from pathlib import Path

_STAGE_COLS = (("analyze", "net fps"), ("track", "track fps"), ("stitch", "stitch fps"))


def _fps(rep) -> str:
    if rep is None:
        return ""
    if rep.status in ("skipped", "adopted"):
        return "-"
    fps = rep.fps
    return "" if fps is None else (f"{fps:.0f}" if fps >= 100 else f"{fps:.1f}")


def format_table(reports, seconds: float | None = None) -> str:
    """Render ``reports`` (list of :class:`~mapose.batch.video.VideoReport`) as text.

    Parameters
    ----------
    reports : list of VideoReport
    seconds : float, optional
        Total wall time, printed in the footer.

    Returns
    -------
    str
        The table, ending with a summary line (``3 videos: 2 ok, 1 failed``).
    """
    header = ["video", "status", "frames"] + [c for _, c in _STAGE_COLS] + \
             ["tracks", "warnings", "output"]
    rows = []
    errors = {}
    for r in reports:
        final = ""
        outs = [o for o in r.outputs if o.endswith(".h5")] or r.outputs
        if outs and r.ok:
            final = Path(outs[-1]).name
        row = [Path(r.video).name, r.status, "" if r.frames is None else str(r.frames)]
        row += [_fps(r.stages.get(s)) for s, _ in _STAGE_COLS]
        row += ["" if r.tracks is None else str(r.tracks), str(len(r.warnings)), final]
        rows.append(row)
        if r.error:
            errors[len(rows) - 1] = r.error
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    numeric = {2, 3, 4, 5, 6, 7}

    def fmt(row):
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])]
    for i, row in enumerate(rows):
        lines.append(fmt(row))
        if i in errors:
            lines.append(f"    error: {errors[i]}")
    n_fail = sum(not r.ok for r in reports)
    n_skip = sum(r.ok and r.status == "skipped" for r in reports)
    summary = f"{len(reports)} video{'s' if len(reports) != 1 else ''}: " \
              f"{len(reports) - n_fail} ok ({n_skip} already complete), {n_fail} failed"
    if seconds is not None:
        summary += f", {seconds:.1f} s"
    lines.append(summary)
    return "\n".join(lines)
