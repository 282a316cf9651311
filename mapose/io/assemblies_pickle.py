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

from mapose.io.safe_pickle import read_pickle, write_pickle

__all__ = ["read_assemblies_pickle", "write_assemblies_pickle", "assemblies_layout"]

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
