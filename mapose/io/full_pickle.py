"""``<video><scorer>_full.pickle``: per-frame detections written by ``analyze_videos``.

Format (DeepLabCut 3.0.2, see ``dlc-tracking-spec.md`` §1.1 and ``dlc-inference-spec.md`` §6.4)
------------------------------------------------------------------------------------------------
A ``dict`` pickled with ``HIGHEST_PROTOCOL``:

``"metadata"`` (first key)
    ``{"nms radius", "minimal confidence", "sigma", "PAFgraph", "PAFinds", "all_joints",
    "all_joints_names", "nframes"}``; DLC 3 (PyTorch) adds ``"key_str_width"``, older TF
    files have ``"c_engine"`` and may lack ``"sigma"``.
``"frame" + str(i).zfill(W)`` for each frame, in temporal order, ``W = ceil(log10(nframes))``
    ``{"coordinates": ([ (n_det, 2) per bodypart ],), "confidence": [ (n_det, 1) ],
    "costs": ...[, "identity": [ (n_det, n_ids) ]][, "bboxes", "bbox_scores"]}``.

Two layouts share these keys:

* **classic / TensorFlow**: raw heatmap peaks per bodypart (any count, possibly 0) and
  ``"costs" = {edge_index: {"m1": (n_s, n_t), "distance": (n_s, n_t)}}`` for the PAF edges;
  TF batched analysis may omit frames without any peak.
* **PyTorch (DLC 3)**: assembled animals, each bodypart has exactly ``max_individuals``
  rows (``-1`` padding rows, NaN/0 for keypoints missing inside an animal), unique
  bodyparts appended with one row, ``"costs" = None``, ``metadata["PAFgraph"] = None``.

With ``use_shelve=True`` DLC writes the same keys into a :mod:`shelve` database named
``..._full.pickle`` (the dbm backend decides the real file names: ``dbm.dumb`` adds
``.dat``/``.dir``/``.bak``).  Its metadata is written when the shelf opens, with
``key_str_width`` 5 when the frame count is unknown, and ``nframes`` is updated to the
number of frames written when it closes.

This module reads both layouts and both containers, always through the restricted
unpickler, and writes them atomically.
"""
from __future__ import annotations

import dbm
import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mapose.io.atomic import atomic_open
from mapose.io.safe_pickle import UnsafePickleError, dumps, loads, read_pickle

__all__ = [
    "FullPickleWriter", "frame_index", "frame_key", "frame_key_width", "is_pytorch_layout",
    "iter_frames", "read_full_pickle", "write_full_pickle", "full_pickle_exists",
]

_FRAME_RE = re.compile(r"^frame(\d+)$")
_WHAT = "_full.pickle"


def frame_key_width(n_frames) -> int:
    """Zero padding of frame keys for a video of ``n_frames`` frames.

    DLC uses ``int(ceil(log10(n_frames)))``: 9 → 1, 10 → 1, 100 → 2, 180 → 3,
    2330 → 4.  For 1 frame that is 0 (key ``"frame0"``).  DLC crashes on 0 frames;
    mapose returns 0 there.  ``None`` (unknown count, shelve writer) gives DLC's default 5.
    """
    if n_frames is None:
        return 5
    n = int(n_frames)
    if n < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames!r}.")
    if n <= 1:
        return 0
    return int(np.ceil(np.log10(n)))


def frame_key(index: int, n_frames) -> str:
    """DLC's key of frame ``index``: ``"frame" + str(index).zfill(frame_key_width(n_frames))``."""
    if int(index) < 0:
        raise ValueError(f"frame index must be >= 0, got {index!r}.")
    return "frame" + str(int(index)).zfill(frame_key_width(n_frames))


def frame_index(key) -> int:
    """Frame number of a frame key (``"frame012"`` → 12); ints pass through."""
    if isinstance(key, (int, np.integer)):
        return int(key)
    m = _FRAME_RE.match(str(key))
    if m is None:
        raise ValueError(f"{key!r} is not a DLC frame key (expected 'frame' followed by digits).")
    return int(m.group(1))


def is_pytorch_layout(data) -> bool:
    """True if ``data`` is DLC 3's PyTorch layout (assembled animals, ``costs=None``).

    Decided by ``metadata["key_str_width"]`` (written only by DLC 3) or, failing that,
    by the first frame's ``"costs"`` being ``None``.
    """
    meta = data.get("metadata", {}) if isinstance(data, dict) else {}
    if isinstance(meta, dict) and "key_str_width" in meta:
        return True
    for key, frame in iter_frames(data):
        return isinstance(frame, dict) and "costs" in frame and frame["costs"] is None
    return False


def iter_frames(data):
    """Yield ``(key, frame_dict)`` for every frame key of a full-pickle dict, in order."""
    for key in data:
        if key != "metadata" and _FRAME_RE.match(str(key)):
            yield key, data[key]


def _shelve_files(path: Path) -> list[Path]:
    """Files that make up a shelve database named ``path`` (any dbm backend)."""
    out = []
    if path.exists():
        out.append(path)
    for ext in (".dat", ".dir", ".bak", ".db", ".pag"):
        p = path.with_name(path.name + ext)
        if p.exists():
            out.append(p)
    return out


def full_pickle_exists(path) -> bool:
    """True if ``path`` exists as a pickle or as a shelve database (``.dat``/``.dir``...).

    Use this, not ``Path.exists``, to decide whether a video was already analysed: DLC's
    own check misses shelves written with suffix-adding backends.
    """
    path = Path(path)
    return path.exists() or bool(_whichdb(path))


def _whichdb(path: Path) -> str:
    try:
        kind = dbm.whichdb(str(path))
    except OSError:
        return ""
    return kind or ""


def _sorted_full(data: dict, path) -> dict:
    """Plain dict, "metadata" first, then frame keys in temporal order, then the rest."""
    if not isinstance(data, dict):
        raise ValueError(
            f"{_WHAT} file '{path}' holds a {type(data).__name__}, not DLC's dict of frames. "
            "Is it another kind of DLC file?"
        )
    if "metadata" not in data:
        hint = ""
        if "header" in data:
            hint = " It looks like a tracklet pickle (_el/_bx/_sk.pickle): use read_tracklets_pickle."
        elif data and all(isinstance(k, (int, np.integer)) or k == "single" for k in data):
            hint = " It looks like an _assemblies.pickle: use read_assemblies_pickle."
        elif "data" in data:
            hint = " It looks like a _meta.pickle: use read_meta_pickle."
        raise ValueError(f"{_WHAT} file '{path}' has no 'metadata' entry, so it is not a "
                         f"DLC _full.pickle.{hint}")
    frames = sorted((k for k in data if k != "metadata" and _FRAME_RE.match(str(k))),
                    key=frame_index)
    out = {"metadata": data["metadata"]}
    for k in frames:
        out[k] = data[k]
    for k in data:
        if k not in out:
            out[k] = data[k]
    return out


def _read_shelve(path: Path) -> dict:
    try:
        db = dbm.open(str(path), "r")
    except Exception as exc:  # dbm.error types differ per backend
        raise ValueError(f"{_WHAT} shelve database '{path}' cannot be opened "
                         f"({type(exc).__name__}: {exc}). It is corrupt or incomplete.") from exc
    try:
        data = {}
        for raw_key in db.keys():
            key = raw_key.decode("utf-8") if isinstance(raw_key, bytes) else str(raw_key)
            try:
                data[key] = loads(db[raw_key])
            except UnsafePickleError:
                raise
            except Exception as exc:
                raise ValueError(f"{_WHAT} shelve database '{path}': entry {key!r} is "
                                 f"truncated or corrupt ({type(exc).__name__}: {exc}).") from exc
    finally:
        db.close()
    return data


def read_full_pickle(path) -> dict:
    """Read a ``_full.pickle`` (plain pickle or DLC's ``use_shelve=True`` shelve).

    Parameters
    ----------
    path : str or os.PathLike
        The ``..._full.pickle`` path DLC names (for a ``dbm.dumb`` shelve, the files are
        ``path + ".dat"``/``".dir"``; pass the name without those suffixes).

    Returns
    -------
    dict
        Plain dict: ``"metadata"`` first, then the frame keys in temporal order.

    Raises
    ------
    FileNotFoundError, ValueError, UnsafePickleError
        Missing, empty/truncated/wrong-kind, or crafted files.
    """
    path = Path(os.fspath(path))
    if path.is_file() and path.stat().st_size > 0:
        try:
            data = read_pickle(path, what=_WHAT)
        except ValueError as exc:
            # a single-file dbm backend (gdbm, sqlite3) stores the shelf under this name
            if _whichdb(path):
                data = _read_shelve(path)
            else:
                raise exc
        return _sorted_full(data, path)
    if not path.exists() and _whichdb(path):
        return _sorted_full(_read_shelve(path), path)
    if not path.exists():
        parts = [p.name for p in _shelve_files(path)]
        extra = f" (found incomplete shelve parts {parts})" if parts else ""
        raise FileNotFoundError(f"{_WHAT} file not found: '{path}'{extra}. Run analyze_videos "
                                "first or check the video name, scorer and destfolder.")
    return _sorted_full(read_pickle(path, what=_WHAT), path)  # empty file / directory errors


def _check_full_dict(data) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict with 'metadata' and frame keys, got {type(data).__name__}.")
    if "metadata" not in data:
        raise ValueError("data has no 'metadata' key; DLC's readers need it "
                         "(see mapose.io.full_pickle module docs for its fields).")


def write_full_pickle(path, data: dict, use_shelve: bool = False) -> None:
    """Write ``data`` as a ``_full.pickle`` exactly as DLC does, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``..._full.pickle``).
    data : dict
        ``"metadata"`` plus frame keys; written in the order given.
    use_shelve : bool, default False
        Write a :mod:`shelve` database (DLC's ``use_shelve=True``) instead of one pickle.
    """
    _check_full_dict(data)
    if not use_shelve:
        with atomic_open(path, "wb") as fh:
            # streamed, not dumps(): no second copy of a large file in memory
            pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return
    writer = _ShelfSpool(path)
    try:
        for key, value in data.items():
            writer.put(key, value)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


class _ShelfSpool:
    """A shelve database built under a temporary directory and moved into place on commit.

    Every file of the database (whatever the dbm backend names them) is moved next to
    ``path``; the index file (``.dir`` for dbm.dumb) moves last so readers never see a
    half-moved database as complete.
    """

    def __init__(self, path):
        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part",
                                             dir=self.path.parent))
        self._base = self._tmpdir / self.path.name
        self._db = dbm.open(str(self._base), "n")

    def put(self, key: str, value) -> None:
        # DLC's ShelfWriter uses shelve with pickle.DEFAULT_PROTOCOL
        self._db[str(key).encode("utf-8")] = dumps(value, protocol=pickle.DEFAULT_PROTOCOL)

    def get(self, key: str):
        return loads(self._db[str(key).encode("utf-8")])

    def commit(self) -> None:
        self._db.close()
        # remove any previous database of that name (pickle or other backend) first
        for old in _shelve_files(self.path):
            old.unlink()
        parts = sorted(self._tmpdir.iterdir(), key=lambda p: p.suffix == ".dir")
        for part in parts:
            os.replace(part, self.path.parent / part.name)
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def abort(self) -> None:
        try:
            self._db.close()
        finally:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


class _PickleSpool:
    """Stream ``key: value`` pairs into one plain pickled dict with flat memory.

    A pickled dict is ``PROTO, EMPTY_DICT, (key, value, SETITEM)*, STOP``.  Each pair is
    pickled on arrival with protocol 3 and its ``PROTO``/``STOP`` bytes stripped.
    Protocol 3 matters: its memo opcodes name slots explicitly (``BINPUT n``) and every
    fragment only reads back slots it wrote itself, so fragments pickled independently
    concatenate into a valid stream (protocol 4+'s implicit ``MEMOIZE`` numbering would
    not).  Pairs go to a temporary spool; :meth:`commit` writes the header, the first
    pair (``"metadata"``, known only at the end) and the spool into the destination,
    atomically.
    """

    def __init__(self, path):
        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._spool = tempfile.NamedTemporaryFile(prefix=f".{self.path.name}.", suffix=".spool",
                                                  dir=self.path.parent, delete=False)

    @staticmethod
    def _fragment(obj) -> bytes:
        data = pickle.dumps(obj, protocol=3)
        return data[2:-1]  # strip PROTO 3 and STOP

    def put(self, key, value) -> None:
        self._spool.write(self._fragment(key) + self._fragment(value) + pickle.SETITEM)

    def commit(self, first: dict) -> None:
        self._spool.flush()
        self._spool.seek(0)
        try:
            with atomic_open(self.path, "wb") as fh:
                fh.write(pickle.PROTO + bytes([3]) + pickle.EMPTY_DICT)
                for k, v in first.items():
                    fh.write(self._fragment(k) + self._fragment(v) + pickle.SETITEM)
                shutil.copyfileobj(self._spool, fh, 1 << 20)
                fh.write(pickle.STOP)
        finally:
            self.abort()

    def abort(self) -> None:
        try:
            self._spool.close()
        finally:
            Path(self._spool.name).unlink(missing_ok=True)


class FullPickleWriter:
    """Write a ``_full.pickle`` frame by frame (for inference), atomically on :meth:`close`.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``..._full.pickle``.
    metadata : dict
        The ``"metadata"`` entry.  ``"nframes"`` and ``"key_str_width"`` are set from
        ``n_frames`` if absent; on close ``"nframes"`` becomes the number of frames added
        when it differs (DLC's shelve behaviour; for plain pickles DLC writes the number
        of predictions, which is the same thing).
    n_frames : int or None
        Expected frame count; fixes the key width (``None`` → width 5, as DLC's shelf).
    use_shelve : bool, default False
        Stream frames into a shelve database instead of one pickle.

    Notes
    -----
    Memory stays flat in both modes: each frame is pickled when added and spooled to a
    temporary file next to ``path`` (see :class:`_PickleSpool`; DLC instead holds every
    frame in memory).  The plain pickle is a protocol-3 stream of the same dict DLC
    writes; any unpickler (DLC's ``pickle.load`` included) returns identical data.

    Notes
    -----
    Use as a context manager: an exception inside the ``with`` block discards the
    partial output, so an interrupted run never leaves a file that looks finished.
    """

    def __init__(self, path, metadata: dict, n_frames=None, use_shelve: bool = False):
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}.")
        self.path = Path(os.fspath(path))
        self.n_frames = None if n_frames is None else int(n_frames)
        self.width = frame_key_width(self.n_frames)
        self.metadata = dict(metadata)
        self.metadata.setdefault("nframes", self.n_frames)
        self.metadata.setdefault("key_str_width", self.width)
        self.use_shelve = bool(use_shelve)
        self._count = 0
        self._closed = False
        if self.use_shelve:
            self._spool = _ShelfSpool(self.path)
            self._spool.put("metadata", self.metadata)
        else:
            self._spool = _PickleSpool(self.path)

    @property
    def n_written(self) -> int:
        """Number of frames added so far."""
        return self._count

    def add(self, frame_index: int, frame: dict) -> str:
        """Add one frame's dict under ``frame_key(frame_index)``; returns the key."""
        if self._closed:
            raise ValueError(f"FullPickleWriter for '{self.path}' is closed; create a new one.")
        if not isinstance(frame, dict):
            raise TypeError(f"frame must be a dict with 'coordinates' and 'confidence', "
                            f"got {type(frame).__name__}.")
        key = "frame" + str(int(frame_index)).zfill(self.width)
        self._spool.put(key, frame)
        self._count += 1
        return key

    def close(self) -> None:
        """Finish the file (atomic rename).  Closing twice is a no-op."""
        if self._closed:
            return
        self._closed = True
        if self.metadata.get("nframes") != self._count and (self._count > 0 or self.n_frames is None):
            self.metadata["nframes"] = self._count
        if self.use_shelve:
            self._spool.put("metadata", self.metadata)
            self._spool.commit()
        else:
            self._spool.commit({"metadata": self.metadata})

    def abort(self) -> None:
        """Discard everything written; the destination is left untouched."""
        self._closed = True
        self._spool.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

