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
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np

from mapose.io.atomic import atomic_open
from mapose.io.safe_pickle import UnsafePickleError, dumps, loads, read_pickle

__all__ = [
    "FullPickleWriter", "ResumableSpool", "ResumeWarning", "discard_resume_state", "frame_index",
    "frame_key", "frame_key_width", "is_pytorch_layout", "iter_frames", "iter_pickled_dict", "read_full_pickle",
    "resume_paths", "write_full_pickle", "full_pickle_exists", "pickle_fragment",
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


class ResumeWarning(UserWarning):
    """A checkpoint could not be used (corrupt, truncated, other settings): clean restart."""


def pickle_fragment(obj) -> bytes:
    """``obj`` pickled with protocol 3, without its ``PROTO`` and ``STOP`` opcodes.

    Protocol 3 matters: its memo opcodes name slots explicitly (``BINPUT n``) and every
    fragment only reads back slots it wrote itself, so fragments pickled independently
    concatenate into a valid stream (protocol 4+'s implicit ``MEMOIZE`` numbering would
    not).
    """
    return pickle.dumps(obj, protocol=3)[2:-1]


class ResumableSpool:
    """An append-only file that survives the process, with verifiable checkpoints.

    :meth:`checkpoint` flushes and fsyncs the file and returns ``{"size", "digest"}``
    (BLAKE2b of every byte up to ``size``, kept as a running hash).  :meth:`reopen`
    checks a file against such a state, cuts off whatever was appended after it (an
    interrupted run's unfinished tail) and continues appending.

    Parameters
    ----------
    path : str or os.PathLike
        The spool file (created or emptied).
    """

    def __init__(self, path, _fh=None, _hash=None, _size: int = 0):
        self.path = Path(os.fspath(path))
        if _fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _fh = open(self.path, "w+b")
        self._fh = _fh
        self._hash = _hash or hashlib.blake2b(digest_size=16)
        self.size = int(_size)

    @classmethod
    def reopen(cls, path, state: dict) -> "ResumableSpool":
        """Continue the spool at ``path`` from checkpoint ``state``.

        Raises
        ------
        ValueError
            The file is missing, shorter than the checkpoint, or its first ``size`` bytes
            do not match the checkpoint's digest (corrupt or rewritten).
        """
        path = Path(os.fspath(path))
        try:
            size, digest = int(state["size"]), str(state["digest"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"spool checkpoint {state!r} lacks size/digest.") from None
        try:
            fh = open(path, "r+b")
        except OSError as exc:
            raise ValueError(f"spool '{path}' cannot be reopened ({exc}).") from None
        try:
            h = hashlib.blake2b(digest_size=16)
            left = size
            while left:
                buf = fh.read(min(left, 1 << 20))
                if not buf:
                    raise ValueError(f"spool '{path}' is truncated: {size - left} of the "
                                     f"{size} checkpointed bytes are left.")
                h.update(buf)
                left -= len(buf)
            if h.hexdigest() != digest:
                raise ValueError(f"spool '{path}' does not match its checkpoint (corrupt or "
                                 "rewritten).")
            fh.truncate(size)
            fh.seek(size)
        except BaseException:
            fh.close()
            raise
        return cls(path, _fh=fh, _hash=h, _size=size)

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)

    def checkpoint(self) -> dict:
        """Flush and fsync; the returned state lets :meth:`reopen` resume from here."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return {"size": self.size, "digest": self._hash.hexdigest()}

    def copy_to(self, fh, start: int = 0) -> None:
        """Append the spool's bytes from ``start`` on to the open file ``fh``."""
        self._fh.flush()
        self._fh.seek(start)
        shutil.copyfileobj(self._fh, fh, 1 << 20)
        self._fh.seek(self.size)

    def close(self) -> None:
        self._fh.close()

    def discard(self) -> None:
        """Close and delete the spool."""
        try:
            self._fh.close()
        finally:
            self.path.unlink(missing_ok=True)


class _ShelfSpool:
    """A shelve database built in a side directory and moved into place on commit.

    Every file of the database (whatever the dbm backend names them) is moved next to
    ``path``; the index file (``.dir`` for dbm.dumb) moves last so readers never see a
    half-moved database as complete.  ``workdir`` names a persistent side directory
    (resumable writing); by default a temporary one is used.
    """

    def __init__(self, path, workdir=None, reopen: bool = False):
        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if workdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part",
                                                 dir=self.path.parent))
        else:
            self._tmpdir = Path(workdir)
            if not reopen:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir.mkdir(parents=True, exist_ok=True)
        self._base = self._tmpdir / self.path.name
        try:
            self._db = dbm.open(str(self._base), "w" if reopen else "n")
        except Exception as exc:  # dbm.error types differ per backend
            if not reopen:
                raise
            raise ValueError(f"shelve checkpoint in '{self._tmpdir}' cannot be opened "
                             f"({type(exc).__name__}: {exc}).") from None

    def put(self, key: str, value) -> None:
        # DLC's ShelfWriter uses shelve with pickle.DEFAULT_PROTOCOL
        self._db[str(key).encode("utf-8")] = dumps(value, protocol=pickle.DEFAULT_PROTOCOL)

    def get(self, key: str):
        return loads(self._db[str(key).encode("utf-8")])

    def verify(self, keys) -> None:
        """Raise ValueError unless every key in ``keys`` is present and unpickles."""
        for key in keys:
            try:
                self.get(key)
            except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
                raise ValueError(f"shelve checkpoint entry {key!r} is missing or corrupt "
                                 f"({type(exc).__name__}).") from None

    def checkpoint(self) -> None:
        sync = getattr(self._db, "sync", None)
        if sync is not None:
            sync()
        else:  # a backend without sync: reopening flushes it
            self._db.close()
            self._db = dbm.open(str(self._base), "w")
        for part in self._tmpdir.iterdir():
            with open(part, "rb") as fh:
                os.fsync(fh.fileno())

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

    def close(self) -> None:
        """Close, keeping the side directory (an interrupted resumable write)."""
        self._db.close()


class _PickleSpool:
    """Stream ``key: value`` pairs into one plain pickled dict with flat memory.

    A pickled dict is ``PROTO, EMPTY_DICT, (key, value, SETITEM)*, STOP``.  Each pair is
    pickled on arrival (:func:`pickle_fragment`).  Pairs go to a spool file;
    :meth:`commit` writes the header, the first pair (``"metadata"``, known only at the
    end) and the spool into the destination, atomically.  ``spool`` may be a persistent
    :class:`ResumableSpool` (resumable writing); by default a temporary file is used.
    """

    def __init__(self, path, spool: ResumableSpool | None = None):
        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if spool is None:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".spool",
                                        dir=self.path.parent)
            os.close(fd)
            spool = ResumableSpool(name)
        self.spool = spool

    _fragment = staticmethod(pickle_fragment)

    def put(self, key, value) -> None:
        self.spool.write(pickle_fragment(key) + pickle_fragment(value) + pickle.SETITEM)

    def commit(self, first: dict) -> None:
        try:
            with atomic_open(self.path, "wb") as fh:
                fh.write(pickle.PROTO + bytes([3]) + pickle.EMPTY_DICT)
                for k, v in first.items():
                    fh.write(pickle_fragment(k) + pickle_fragment(v) + pickle.SETITEM)
                self.spool.copy_to(fh)
                fh.write(pickle.STOP)
        finally:
            self.abort()

    def abort(self) -> None:
        self.spool.discard()

    def close(self) -> None:
        self.spool.close()


class _StreamingUnpickler(pickle._Unpickler):
    """Pure-Python unpickler that hands out the top-level dict's items as they complete.

    The restricted allow-list of :class:`mapose.io.safe_pickle.SafeUnpickler` applies.
    After each batch of top-level items, memo entries holding per-item data (arrays,
    raw buffers, containers) are dropped so memory stays bounded by one item; a file
    that refers back to such an entry later raises :class:`_NotStreamable`.
    """

    def __init__(self, fh):
        super().__init__(fh)
        from mapose.io.safe_pickle import SafeUnpickler

        self._safe = SafeUnpickler(io.BytesIO(b""))
        self._root = None
        self._out: list = []
        self._n_pruned = 0

    def find_class(self, module, name):
        return self._safe.find_class(module, name)

    def _load_empty_dictionary(self):
        d = {}
        if self._root is None and not self.stack and not self.metastack:
            self._root = d
        self.append(d)

    def _load_setitem(self):
        stack = self.stack
        value = stack.pop()
        key = stack.pop()
        d = stack[-1]
        if d is self._root:
            self._out.append((key, value))
        else:
            d[key] = value

    def _load_setitems(self):
        items = self.pop_mark()
        d = self.stack[-1]
        if d is self._root:
            self._out.extend(zip(items[0::2], items[1::2]))
        else:
            for i in range(0, len(items), 2):
                d[items[i]] = items[i + 1]

    def _get(self, idx):
        try:
            self.append(self.memo[idx])
        except KeyError:
            if self._n_pruned:
                raise _NotStreamable(f"the pickle refers back to memo entry {idx} of an earlier "
                                     "item (or is corrupt)") from None
            raise pickle.UnpicklingError(f"Memo value not found at index {idx}") from None

    def _load_get(self):
        self._get(int(self.readline()[:-1]))

    def _load_binget(self):
        self._get(self.read(1)[0])

    def _load_long_binget(self):
        self._get(int.from_bytes(self.read(4), "little"))

    def _put(self, idx):
        self.memo[idx] = self.stack[-1]

    def _load_put(self):
        self._put(int(self.readline()[:-1]))

    def _load_binput(self):
        self._put(self.read(1)[0])

    def _load_long_binput(self):
        self._put(int.from_bytes(self.read(4), "little"))

    def _load_memoize(self):
        # protocol 4+ numbers memo entries implicitly by their count: pruned ones included
        self._put(len(self.memo) + self._n_pruned)

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.PUT[0]] = _load_put
    dispatch[pickle.BINPUT[0]] = _load_binput
    dispatch[pickle.LONG_BINPUT[0]] = _load_long_binput
    dispatch[pickle.MEMOIZE[0]] = _load_memoize
    dispatch[pickle.EMPTY_DICT[0]] = _load_empty_dictionary
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.GET[0]] = _load_get
    dispatch[pickle.BINGET[0]] = _load_binget
    dispatch[pickle.LONG_BINGET[0]] = _load_long_binget

    _PRUNE = (np.ndarray, bytearray, dict, list, tuple, set)

    def _prune(self):
        memo = self.memo
        for k in [k for k, v in memo.items() if isinstance(v, self._PRUNE)
                  or (isinstance(v, bytes) and len(v) >= 64)]:
            del memo[k]
            self._n_pruned += 1

    def items(self):
        if not hasattr(self, "_file_read"):
            raise pickle.UnpicklingError("Unpickler.__init__() was not called")
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack = []
        self.stack = []
        self.append = self.stack.append
        self.proto = 0
        read = self.read
        dispatch = self.dispatch
        out = self._out
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                dispatch[key[0]](self)
                if out:
                    self._prune()
                    batch = out[:]
                    out.clear()
                    yield from batch
        except pickle._Stop as stop:
            if stop.value is not self._root or self._root is None:
                raise _NotStreamable("the pickle does not hold a dict at its top level") from None


class _NotStreamable(ValueError):
    """The pickle cannot be read item by item (not a top-level dict, shared objects)."""


def iter_pickled_dict(path, what: str = "pickle"):
    """Yield ``(key, value)`` of a pickled top-level dict one item at a time.

    Memory is bounded by the largest item, not the file: use it for large DLC pickles
    (``_assemblies.pickle``, tracklet pickles) written by DLC or by mapose's streamed
    writers.  Objects go through the same allow-list as :func:`read_pickle`.

    Raises
    ------
    FileNotFoundError
        ``path`` is missing.
    ValueError
        Truncated or corrupt file (possibly after some items were yielded), or a pickle
        that is not a top-level dict or shares objects between items (``_NotStreamable``,
        a ValueError subclass: read such a file whole instead).
    UnsafePickleError
        The file references globals outside the allow-list.
    """
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: '{path}'. Check the path and file name.")
    with open(path, "rb") as fh:
        unp = _StreamingUnpickler(fh)
        try:
            yield from unp.items()
        except (UnsafePickleError, _NotStreamable):
            raise
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, MemoryError, UnicodeDecodeError, ImportError,
                OverflowError, struct.error) as exc:
            raise ValueError(f"{what} file '{path}' is truncated or corrupt and cannot be read "
                             f"({type(exc).__name__}: {exc}).") from exc


def resume_paths(path) -> dict:
    """Where a resumable ``_full.pickle`` writer keeps its checkpoint beside ``path``.

    ``record``: the JSON progress record (``frames_done``, spool states);
    ``spool``: the plain layout's frame spool; ``shelf``: the shelve layout's side
    directory.  Names start with ``.`` and do not end in ``.part``, so the batch runner's
    clean-up of interrupted atomic writes keeps them.
    """
    path = Path(os.fspath(path))
    return {"record": path.with_name(f".{path.name}.resume.json"),
            "spool": path.with_name(f".{path.name}.resume.spool"),
            "shelf": path.with_name(f".{path.name}.resume.shelf")}


def discard_resume_state(path) -> None:
    """Delete a resumable writer's checkpoint for ``path`` (record, spool, side directory)."""
    rp = resume_paths(path)
    rp["record"].unlink(missing_ok=True)
    rp["spool"].unlink(missing_ok=True)
    shutil.rmtree(rp["shelf"], ignore_errors=True)


def _json_digest(obj) -> str:
    return hashlib.blake2b(pickle.dumps(obj, protocol=3), digest_size=16).hexdigest()


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
    resume : bool, default False
        Keep the partial output in a persistent spool (plain layout) or side directory
        (shelve layout) next to ``path`` with a small JSON progress record
        (:func:`resume_paths`), and continue from an earlier interrupted writer's last
        checkpoint if one is there.  Frames must then be added in order ``0, 1, 2, ...``;
        after opening, :attr:`frames_done` says which frame comes next.
    checkpoint_every : int, default 0
        With ``resume``: write a checkpoint (fsync + record) before adding every frame
        whose index is a multiple of this (0: only explicit :meth:`checkpoint` calls).
    run_key : json-serialisable, optional
        Identifies the computation (video, model, settings).  A checkpoint made with
        another key, other metadata or another frame count is discarded with a
        :class:`ResumeWarning`, as is a corrupt or truncated spool: a clean restart.

    Notes
    -----
    Memory stays flat in both modes: each frame is pickled when added and spooled to a
    file next to ``path`` (see :class:`_PickleSpool`; DLC instead holds every frame in
    memory).  The plain pickle is a protocol-3 stream of the same dict DLC writes; any
    unpickler (DLC's ``pickle.load`` included) returns identical data, and a resumed
    writer produces the same bytes as an uninterrupted one.

    Use as a context manager: an exception inside the ``with`` block discards the
    partial output (a resumable writer keeps its last checkpoint instead), so an
    interrupted run never leaves a file that looks finished.

    Attributes
    ----------
    frames_done : int
        Frames already written by an earlier, interrupted writer (0 without ``resume``).
    resumed_extra : dict
        The ``extra`` state stored with that checkpoint (see :meth:`checkpoint`).
    checkpoint_extra : callable or None
        Called with no argument at each automatic checkpoint; its dict is stored as
        ``extra`` (companion spools of the caller, written at the same frame).
    """

    def __init__(self, path, metadata: dict, n_frames=None, use_shelve: bool = False, *,
                 resume: bool = False, checkpoint_every: int = 0, run_key=None):
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}.")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
                or checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be an int >= 0 (frames between "
                             f"checkpoints, 0 = manual); got {checkpoint_every!r}.")
        self.path = Path(os.fspath(path))
        self.n_frames = None if n_frames is None else int(n_frames)
        self.width = frame_key_width(self.n_frames)
        self.metadata = dict(metadata)
        self.metadata.setdefault("nframes", self.n_frames)
        self.metadata.setdefault("key_str_width", self.width)
        self.use_shelve = bool(use_shelve)
        self.resume = bool(resume)
        self.checkpoint_every = int(checkpoint_every)
        self.run_key = run_key
        self.checkpoint_extra = None
        self.frames_done = 0
        self.resumed_extra: dict = {}
        self._count = 0
        self._last_checkpoint = 0
        self._closed = False
        self._paths = resume_paths(self.path) if self.resume else None
        self._identity = None
        if self.resume:
            self._identity = {"layout": "shelve" if self.use_shelve else "plain",
                              "n_frames": self.n_frames, "width": self.width,
                              "metadata": _json_digest(self.metadata),
                              "run_key": json.loads(json.dumps(run_key, default=str))}
            if self._try_resume():
                return
            discard_resume_state(self.path)
        if self.use_shelve:
            self._spool = _ShelfSpool(self.path, workdir=self._paths["shelf"] if self.resume else None)
            self._spool.put("metadata", self.metadata)
        else:
            self._spool = _PickleSpool(
                self.path, ResumableSpool(self._paths["spool"]) if self.resume else None)
        if self.resume:
            self.checkpoint()  # a record from the start: later runs know the spool is ours

    # -- resuming ----------------------------------------------------------------------
    def _try_resume(self) -> bool:
        rec_path = self._paths["record"]
        if not rec_path.exists():
            return False
        try:
            with open(rec_path, encoding="utf-8") as fh:
                rec = json.load(fh)
            if not isinstance(rec, dict) or rec.get("version") != 1:
                raise ValueError("unknown record format")
            if rec.get("identity") != self._identity:
                warnings.warn(f"{self.path.name}: the checkpoint of an interrupted run was made "
                              "for other inputs or settings; starting over.", ResumeWarning,
                              stacklevel=3)
                return False
            done = int(rec["frames_done"])
            if self.use_shelve:
                spool = _ShelfSpool(self.path, workdir=self._paths["shelf"], reopen=True)
                try:
                    spool.verify(["metadata"] + [self._key(i) for i in range(done)])
                except BaseException:
                    spool.close()
                    raise
            else:
                spool = _PickleSpool(self.path, ResumableSpool.reopen(self._paths["spool"], rec["spool"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"{self.path.name}: the checkpoint of an interrupted run is unusable "
                          f"({exc}); starting over from frame 0.", ResumeWarning, stacklevel=3)
            return False
        self._spool = spool
        self.frames_done = self._count = self._last_checkpoint = done
        self.resumed_extra = dict(rec.get("extra") or {})
        return True

    def checkpoint(self, extra: dict | None = None) -> None:
        """Make everything added so far durable and record it (resumable writers only).

        Parameters
        ----------
        extra : dict, optional
            Json-serialisable state saved with the record (e.g. companion spools' states),
            returned as :attr:`resumed_extra` by the writer that resumes from it.
        """
        if not self.resume:
            raise ValueError("checkpoint() needs a writer created with resume=True.")
        if self._closed:
            raise ValueError(f"FullPickleWriter for '{self.path}' is closed.")
        if self.use_shelve:
            self._spool.checkpoint()
            state = None
        else:
            state = self._spool.spool.checkpoint()
        rec = {"version": 1, "identity": self._identity, "frames_done": self._count,
               "spool": state, "extra": extra or {}}
        with atomic_open(self._paths["record"], "w", encoding="utf-8") as fh:
            json.dump(rec, fh)
        self._last_checkpoint = self._count

    # -- writing -----------------------------------------------------------------------
    def _key(self, frame_index) -> str:
        return "frame" + str(int(frame_index)).zfill(self.width)

    @property
    def n_written(self) -> int:
        """Number of frames added so far (including those of a resumed run)."""
        return self._count

    def add(self, frame_index: int, frame: dict) -> str:
        """Add one frame's dict under ``frame_key(frame_index)``; returns the key."""
        if self._closed:
            raise ValueError(f"FullPickleWriter for '{self.path}' is closed; create a new one.")
        if not isinstance(frame, dict):
            raise TypeError(f"frame must be a dict with 'coordinates' and 'confidence', "
                            f"got {type(frame).__name__}.")
        if self.resume:
            if int(frame_index) != self._count:
                raise ValueError(f"a resumable FullPickleWriter takes frames in order: expected "
                                 f"frame {self._count}, got {frame_index!r}.")
            if self.checkpoint_every and self._count % self.checkpoint_every == 0 \
                    and self._count > self._last_checkpoint:
                # before this frame: the caller finished every earlier frame everywhere
                self.checkpoint(self.checkpoint_extra() if self.checkpoint_extra else None)
        key = self._key(frame_index)
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
        if self.resume:
            discard_resume_state(self.path)

    def abort(self) -> None:
        """Discard everything written; the destination is left untouched."""
        self._closed = True
        self._spool.abort()
        if self.resume:
            discard_resume_state(self.path)

    def suspend(self) -> None:
        """Stop without finishing, keeping the last checkpoint for a later ``resume``."""
        if self._closed:
            return
        self._closed = True
        self._spool.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self.resume:
            self.suspend()
        else:
            self.abort()
        return False
