"""``<video><scorer>_assemblies.pickle``: animals assembled per frame.

Format (``dlc-tracking-spec.md`` §1.3, ``dlc-inference-spec.md`` §6.4)
--------------------------------------------------------------------
Two layouts, both ``{frame_index (int): ..., ["single": {...}]}``:

* **PyTorch (DLC 3)**: ``"single"`` first and always present (``{}`` without unique
  bodyparts), then **every** frame ``0..nframes-1`` → one float64 array
  ``(n_assemblies, n_bodyparts, 4)`` with columns ``x, y, confidence, identity`` (identity
  = argmax of identity scores, or -1); padding rows (all four values < 0) are removed so
  the array may be ``(0, n_bodyparts, 4)``.
* **TensorFlow** (``Assembler.to_pickle``): only frames with at least one assembly → a
  *list* of float64 ``(n_bodyparts, 4)`` arrays; keys in completion order (scrambled by
  multiprocessing); ``"single"`` last and only if a unique bodypart was seen.

``"single"`` maps frame index → ``(n_unique, 3)`` ``[x, y, confidence]``.

:func:`read_assemblies_pickle` normalises both to ``(assemblies, single)`` with
``assemblies[frame] : ndarray (n, n_bodyparts, 4)`` sorted by frame.
"""
from __future__ import annotations

import numpy as np

import os
import pickle
import tempfile
from pathlib import Path

from mapose.io.atomic import CommitOnSuccess, atomic_open
from mapose.io.safe_pickle import read_pickle, write_pickle

__all__ = ["read_assemblies_pickle", "write_assemblies_pickle", "assemblies_layout",
           "AssembliesPickleWriter", "iter_assemblies_pickle"]

_WHAT = "_assemblies.pickle"


def assemblies_layout(obj: dict) -> str:
    """``"pytorch"`` (3-D array per frame), ``"tf"`` (list per frame), or ``"empty"``."""
    for k, v in obj.items():
        if k == "single":
            continue
        return "tf" if isinstance(v, (list, tuple)) else "pytorch"
    return "empty"


def _as_frame_array(value, key, path) -> np.ndarray:
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            return np.empty((0, 0, 4))
        arrs = [np.asarray(a, dtype=np.float64) for a in value]
        if any(a.ndim != 2 or a.shape[1] != 4 or a.shape != arrs[0].shape for a in arrs):
            raise ValueError(f"{_WHAT} file '{path}': frame {key} holds assemblies of shapes "
                             f"{[a.shape for a in arrs]}, expected equal (n_bodyparts, 4) arrays.")
        return np.stack(arrs)
    arr = np.asarray(value)
    if arr.dtype == object or arr.ndim != 3 or arr.shape[2] != 4:
        raise ValueError(f"{_WHAT} file '{path}': frame {key} holds an array of shape "
                         f"{arr.shape}, expected (n_assemblies, n_bodyparts, 4).")
    return arr


def read_assemblies_pickle(path):
    """Read an ``_assemblies.pickle`` in either DLC layout.

    Returns
    -------
    assemblies : dict[int, ndarray of shape (n_assemblies, n_bodyparts, 4)]
        Sorted by frame index; columns x, y, confidence, identity (-1 without identity).
        Frames present in the file with no assembly are ``(0, n_bodyparts, 4)``
        (or ``(0, 0, 4)`` if the bodypart count cannot be known).
    single : dict[int, ndarray of shape (n_unique, 3)]
        Unique bodyparts per frame (empty dict if none).
    """
    obj = read_pickle(path, what=_WHAT)
    if not isinstance(obj, dict):
        raise ValueError(f"{_WHAT} file '{path}' holds a {type(obj).__name__}, not DLC's "
                         "dict of frame index -> assemblies.")
    bad = [k for k in obj if k != "single" and not isinstance(k, (int, np.integer))]
    if bad:
        hint = ""
        if "metadata" in obj:
            hint = " It looks like a _full.pickle."
        elif "header" in obj:
            hint = " It looks like a tracklet pickle."
        elif "data" in obj:
            hint = " It looks like a _meta.pickle."
        raise ValueError(f"{_WHAT} file '{path}' has non-frame keys {bad[:5]}; expected int "
                         f"frame indices and 'single'.{hint}")
    single_raw = obj.get("single") or {}
    if not isinstance(single_raw, dict):
        raise ValueError(f"{_WHAT} file '{path}': 'single' must be a dict, got "
                         f"{type(single_raw).__name__}.")
    assemblies = {int(k): _as_frame_array(obj[k], k, path)
                  for k in sorted((k for k in obj if k != "single"), key=int)}
    nbpt = next((a.shape[1] for a in assemblies.values() if a.shape[1] > 0), 0)
    for k, a in assemblies.items():
        if a.shape[0] == 0 and a.shape[1] != nbpt:
            assemblies[k] = np.empty((0, nbpt, 4), dtype=a.dtype)
    single = {int(k): np.asarray(v) for k, v in sorted(single_raw.items(), key=lambda kv: int(kv[0]))}
    return assemblies, single


def write_assemblies_pickle(path, assemblies, single=None, layout: str = "pytorch") -> None:
    """Write assemblies in DLC's PyTorch or TF layout, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``..._assemblies.pickle``.
    assemblies : dict[int, array-like of shape (n, n_bodyparts, 4)]
        Per-frame assemblies (a list of ``(n_bodyparts, 4)`` arrays is accepted too).
    single : dict[int, array-like of shape (n_unique, 3)], optional
        Unique bodyparts per frame.
    layout : {"pytorch", "tf"}
        ``"pytorch"``: ``"single"`` first (always, ``{}`` if None), every frame as a float64
        3-D array.  ``"tf"``: only frames with >= 1 assembly, each a list of float64
        ``(n_bodyparts, 4)`` arrays; ``"single"`` last and only if non-empty.
    """
    if layout not in ("pytorch", "tf"):
        raise ValueError(f"layout must be 'pytorch' or 'tf', got {layout!r}.")
    if not isinstance(assemblies, dict):
        raise TypeError(f"assemblies must be a dict frame index -> array, got {type(assemblies).__name__}.")
    if single is not None and not isinstance(single, dict):
        raise TypeError(f"single must be a dict frame index -> (n_unique, 3) array or None, "
                        f"got {type(single).__name__}.")
    frames = {}
    for k, v in assemblies.items():
        if not isinstance(k, (int, np.integer)) or int(k) < 0:
            raise ValueError(f"assemblies keys must be frame indices (int >= 0), got {k!r}.")
        arr = np.stack([np.asarray(a, np.float64) for a in v]) if isinstance(v, (list, tuple)) and len(v) else np.asarray(v, np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, arr.shape[1] if arr.ndim == 3 else 0, 4)
        if arr.ndim != 3 or arr.shape[2] != 4:
            raise ValueError(f"assemblies[{k}] has shape {arr.shape}; expected (n_assemblies, n_bodyparts, 4).")
        frames[int(k)] = arr
    single = {int(k): np.asarray(v, np.float64) for k, v in (single or {}).items()}
    if layout == "pytorch":
        out = {"single": single}
        out.update(frames)
    else:
        out = {k: [row for row in a] for k, a in frames.items() if len(a)}
        if single:
            out["single"] = single
    write_pickle(path, out)


def _frame_array(frame_index, assemblies) -> np.ndarray:
    if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)) \
            or int(frame_index) < 0:
        raise ValueError(f"frame_index must be an int >= 0; got {frame_index!r}.")
    arr = np.asarray(assemblies, np.float64)
    if arr.size == 0:
        arr = arr.reshape(0, arr.shape[1] if arr.ndim == 3 else 0, 4)
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise ValueError(f"assemblies of frame {frame_index} have shape {arr.shape}; expected "
                         "(n_assemblies, n_bodyparts, 4).")
    return arr


class AssembliesPickleWriter(CommitOnSuccess):
    """Stream DLC 3's ``_assemblies.pickle`` frame by frame (flat memory), atomically.

    The file equals :func:`write_assemblies_pickle` of the same frames (PyTorch layout:
    ``"single"`` first, then every frame in the order added), as a protocol-3 stream
    built from independently pickled fragments (see
    :func:`mapose.io.full_pickle.pickle_fragment`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``..._assemblies.pickle``.
    spools : tuple of two ResumableSpool, optional
        Persistent spools for the frames and the unique body parts (resumable writing:
        their :meth:`checkpoint` states go into the caller's progress record, and
        :meth:`reopen` continues them); default: temporary files.
    """

    def __init__(self, path, spools=None):
        from mapose.io.full_pickle import ResumableSpool

        self.path = Path(os.fspath(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if spools is None:
            spools = []
            for tag in ("frames", "single"):
                fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".{tag}.spool",
                                            dir=self.path.parent)
                os.close(fd)
                spools.append(ResumableSpool(name))
        self._frames, self._single = spools
        self._closed = False

    @classmethod
    def reopen(cls, path, spool_paths, state: dict) -> "AssembliesPickleWriter":
        """Continue from :meth:`checkpoint`'s ``state`` (ValueError if the spools don't match)."""
        from mapose.io.full_pickle import ResumableSpool

        frames = ResumableSpool.reopen(spool_paths[0], state["frames"])
        try:
            single = ResumableSpool.reopen(spool_paths[1], state["single"])
        except BaseException:
            frames.close()
            raise
        return cls(path, (frames, single))

    def add(self, frame_index: int, assemblies, single=None) -> None:
        """Add frame ``frame_index``: assemblies ``(n, n_bodyparts, 4)``, unique ``(n_unique, 3)``."""
        from mapose.io.full_pickle import pickle_fragment

        if self._closed:
            raise ValueError(f"AssembliesPickleWriter for '{self.path}' is closed.")
        arr = _frame_array(frame_index, assemblies)
        key = pickle_fragment(int(frame_index))
        self._frames.write(key + pickle_fragment(arr) + pickle.SETITEM)
        if single is not None:
            self._single.write(key + pickle_fragment(np.asarray(single, np.float64)) + pickle.SETITEM)

    def checkpoint(self) -> dict:
        """Flush + fsync both spools; the state for :meth:`reopen`."""
        return {"frames": self._frames.checkpoint(), "single": self._single.checkpoint()}

    def close(self, keep_spools: bool = False) -> None:
        """Write the file (atomic rename) and delete the spools (``keep_spools``: close them)."""
        from mapose.io.full_pickle import pickle_fragment

        if self._closed:
            return
        self._closed = True
        try:
            with atomic_open(self.path, "wb") as fh:
                fh.write(pickle.PROTO + bytes([3]) + pickle.EMPTY_DICT)
                fh.write(pickle_fragment("single") + pickle.EMPTY_DICT)
                self._single.copy_to(fh)
                fh.write(pickle.SETITEM)
                self._frames.copy_to(fh)
                fh.write(pickle.STOP)
        except BaseException:
            self.abort()
            raise
        if keep_spools:
            self.suspend()
        else:
            self.abort()

    def suspend(self) -> None:
        """Stop without writing, keeping the spools (resumable writing)."""
        self._closed = True
        self._frames.close()
        self._single.close()

    def abort(self) -> None:
        """Delete the spools; the destination is untouched."""
        self._closed = True
        try:
            self._frames.discard()
        finally:
            self._single.discard()


def iter_assemblies_pickle(path):
    """Yield ``(frame index, ndarray (n, n_bodyparts, 4))`` one frame at a time, then ``"single"``.

    For DLC 3's (PyTorch) layout, whose frames are stored in order, memory stays flat in
    the video length; ``("single", dict)`` comes first, as it is stored first.  Files in
    the TF layout (lists, frames in completion order) are read whole and yielded sorted,
    with ``"single"`` last.  Values are normalised like :func:`read_assemblies_pickle`.

    Raises
    ------
    FileNotFoundError, ValueError, UnsafePickleError
        As :func:`read_assemblies_pickle` (a ValueError can come after some frames).
    """
    from mapose.io.full_pickle import _NotStreamable, iter_pickled_dict

    nbpt = None
    prev = -1
    try:
        it = iter_pickled_dict(path, what=_WHAT)
        for key, value in it:
            if key == "single":
                if not isinstance(value, dict):
                    raise ValueError(f"{_WHAT} file '{path}': 'single' must be a dict, got "
                                     f"{type(value).__name__}.")
                yield "single", {int(k): np.asarray(v) for k, v in
                                 sorted(value.items(), key=lambda kv: int(kv[0]))}
                continue
            if isinstance(value, (list, tuple)) and prev < 0:
                raise _NotStreamable("TF layout")
            if not isinstance(key, (int, np.integer)) or int(key) <= prev:
                raise ValueError(f"{_WHAT} file '{path}': frame key {key!r} after frame "
                                     f"{prev}; expected increasing int frame indices.")
            arr = _as_frame_array(value, key, path)
            if nbpt is None and arr.shape[1] > 0:
                nbpt = arr.shape[1]
            if arr.shape[0] == 0 and nbpt is not None and arr.shape[1] != nbpt:
                arr = np.empty((0, nbpt, 4), dtype=arr.dtype)
            prev = int(key)
            yield prev, arr
    except _NotStreamable:
        if prev >= 0:
            raise ValueError(f"{_WHAT} file '{path}' cannot be read frame by frame after frame "
                             f"{prev}.") from None
        assemblies, single = read_assemblies_pickle(path)
        yield from assemblies.items()
        yield "single", single
