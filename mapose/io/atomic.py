"""Atomic file writes: write to a temporary sibling, then rename over the target.

An interrupted run therefore never leaves a truncated file that a later run could
mistake for finished output.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Use for writers that need a file name (``DataFrame.to_hdf``, ``shelve``...).  On an
    exception the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.
    suffix : str, optional
        Suffix of the temporary name (defaults to the target's, so libraries that look at
        the extension behave the same).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=(path.suffix if suffix is None else suffix) + ".part",
        dir=path.parent,
    )
    os.close(fd)
    os.unlink(tmp)  # let the writer create it (HDF5 dislikes an existing empty file)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", **kwargs):
    """Open a temporary sibling of ``path`` for writing; rename onto ``path`` on success."""
    if not any(m in mode for m in "wx"):
        raise ValueError(f"atomic_open is for writing; got mode={mode!r}. Use 'w' or 'wb'.")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


class CommitOnSuccess:
    """``with Writer(...) as w:`` commits (``close()``) on success, ``abort()``s on error.

    For streaming writers whose ``close()`` renames the finished file into place and whose
    ``abort()`` deletes the partial one, so a failed run leaves no output behind.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
