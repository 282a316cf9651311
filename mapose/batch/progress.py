"""The progress record kept beside each video's outputs.

``<stem><scorer>_progress.json`` says which stages of a video are finished and which files
each one produced, with their size and modification time.  A stage counts as finished
only when its record entry exists *and* every output it lists is still on disk with the
recorded size: a file that is missing, truncated or rewritten by something else makes the
stage (and the stages after it) run again.  Outputs are renamed into place only when
complete (:mod:`mapose.io.atomic`), and the record is updated after the rename, so an
interrupted run never leaves a partial file that this record calls finished.

The record is plain JSON, written atomically (temp file + rename), small, and safe to
delete: a missing record only means finished outputs are re-verified by reading them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mapose.io.atomic import atomic_open

RECORD_VERSION = 1
PROGRESS_SUFFIX = "_progress.json"
_EDGE = 1 << 16


def stored_file(path) -> Path:
    """The file that holds ``path``'s data on disk.

    ``path`` itself, except for a ``_full.pickle`` written with ``use_shelve=True``: a
    suffix-adding dbm backend stores it as ``<name>.dat`` (dbm.dumb) or ``<name>.db``.
    """
    path = Path(path)
    if path.exists():
        return path
    for suffix in (".dat", ".db"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return path


def fingerprint(path) -> dict:
    """Size, modification time and a head/tail digest of ``path``.

    The digest (BLAKE2b of the first and last 64 KiB) lets a file copied to shared
    storage, whose mtime changed, still be recognised, while a rewritten file of the same
    size is not.

    Parameters
    ----------
    path : str or os.PathLike
        An existing file.
    """
    path = stored_file(path)
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns), "digest": _digest(path, st.st_size)}


def _digest(path, size: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        h.update(fh.read(_EDGE))
        if size > 2 * _EDGE:
            fh.seek(size - _EDGE)
            h.update(fh.read(_EDGE))
        elif size > _EDGE:
            h.update(fh.read())
    return h.hexdigest()


def _matches(path: Path, recorded: dict) -> bool:
    path = stored_file(path)
    try:
        st = os.stat(path)
    except OSError:
        return False
    if int(st.st_size) != recorded.get("size"):
        return False  # missing, truncated or regrown: never finished
    if int(st.st_mtime_ns) == recorded.get("mtime_ns"):
        return True
    try:
        return _digest(path, st.st_size) == recorded.get("digest")
    except OSError:
        return False


@dataclass
class ProgressRecord:
    """What is finished for one video.

    Parameters
    ----------
    path : pathlib.Path
        Location of the JSON file (``<stem><scorer>_progress.json``).
    video : str
        The video this record belongs to.
    stages : dict
        ``stage name -> {"outputs": {file name: fingerprint}, "seconds": float,
        "frames": int | None, "info": dict}`` for finished stages.
    chunks : dict
        ``stage name -> {chunk index (str): {...}}`` for stages that checkpoint chunk by
        chunk (see :mod:`mapose.batch.chunked`).
    attempts : int
        How many runs started on this video (a crash or a killed worker shows as > 1).
    post_attempts : int
        How many times a worker started its post-network stages.
    """

    path: Path
    video: str = ""
    stages: dict = field(default_factory=dict)
    chunks: dict = field(default_factory=dict)
    attempts: int = 0
    post_attempts: int = 0
    warnings: list = field(default_factory=list)

    # -- persistence ---------------------------------------------------------------
    @classmethod
    def load(cls, path, video: str = "") -> "ProgressRecord":
        """Read the record at ``path``; a missing or unreadable file gives an empty record.

        An unreadable record (e.g. edited by hand) is not an error: it only costs
        re-verifying the outputs, never trusting them blindly.
        """
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
        except (OSError, ValueError):
            return cls(path=path, video=str(video))
        if not isinstance(raw, dict) or raw.get("version") != RECORD_VERSION:
            return cls(path=path, video=str(video))
        return cls(
            path=path,
            video=str(raw.get("video", video)),
            stages=dict(raw.get("stages", {})),
            chunks=dict(raw.get("chunks", {})),
            attempts=int(raw.get("attempts", 0)),
            post_attempts=int(raw.get("post_attempts", 0)),
            warnings=list(raw.get("warnings", [])),
        )

    def save(self) -> None:
        """Write the record atomically."""
        payload = {
            "version": RECORD_VERSION,
            "video": self.video,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "attempts": self.attempts,
            "post_attempts": self.post_attempts,
            "stages": self.stages,
            "chunks": self.chunks,
            "warnings": self.warnings[-50:],
        }
        with atomic_open(self.path, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, sort_keys=False)

    # -- stages --------------------------------------------------------------------
    def stage_done(self, stage: str, folder) -> bool:
        """True if ``stage`` is recorded and all its outputs are intact in ``folder``."""
        entry = self.stages.get(stage)
        if not entry:
            return False
        folder = Path(folder)
        return all(_matches(folder / name, fp) for name, fp in entry.get("outputs", {}).items())

    def mark_done(self, stage: str, outputs, *, seconds: float = 0.0,
                  frames: int | None = None, info: dict | None = None) -> None:
        """Record ``stage`` as finished with ``outputs`` (existing files) and save."""
        self.stages[stage] = {
            "outputs": {Path(p).name: fingerprint(p) for p in outputs},
            "seconds": float(seconds),
            "frames": None if frames is None else int(frames),
            "info": dict(info or {}),
        }
        self.save()

    def invalidate(self, *stages: str) -> None:
        """Forget ``stages`` (their outputs will be rebuilt); does not save."""
        for s in stages:
            self.stages.pop(s, None)
            self.chunks.pop(s, None)

    # -- chunks --------------------------------------------------------------------
    def chunk_done(self, stage: str, index: int, folder) -> bool:
        entry = self.chunks.get(stage, {}).get(str(index))
        if not entry:
            return False
        folder = Path(folder)
        return all(_matches(folder / name, fp) for name, fp in entry.get("outputs", {}).items())

    def mark_chunk(self, stage: str, index: int, outputs, info: dict | None = None) -> None:
        self.chunks.setdefault(stage, {})[str(index)] = {
            "outputs": {Path(p).name: fingerprint(p) for p in outputs},
            "info": dict(info or {}),
        }
        self.save()
