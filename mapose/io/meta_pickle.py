"""``<video><scorer>_meta.pickle``: run metadata written next to the ``_full.pickle``.

Format
------
``{"data": dict}`` pickled with ``HIGHEST_PROTOCOL``.

* DLC 3 (PyTorch): ``start``, ``stop``, ``run_duration``, ``Scorer``, ``pytorch-config``
  (the whole model config; holds ``pathlib`` paths and DLC enums ``NetType``/``MethodType``),
  ``fps``, ``batch_size``, ``frame_dimensions=(w, h)``, ``nframes``,
  ``"iteration (active-learning)"``, ``"training set fraction"``, ``cropping``,
  ``cropping_parameters=[x1, x2, y1, y2]``, ``individuals``, ``bodyparts``,
  ``unique_bodyparts``.
* TensorFlow: ``"DLC-model-config file"`` (ruamel objects) instead of ``pytorch-config``
  and ``frame_dimensions=(ny, nx)``.
* Evaluation metadata (DLC's ``trimouse_meta.pickle``): ``Scorer``,
  ``"DLC-model-config file"``, ``trainIndices``, ``testIndices``, ``trainFraction``.

DLC enums load as :class:`mapose.io.safe_pickle.DLCEnum` stand-ins (their string value)
without DeepLabCut installed, and are written back under DLC's class names.
"""
from __future__ import annotations

from mapose.io.safe_pickle import read_pickle, write_pickle

__all__ = ["read_meta_pickle", "write_meta_pickle", "meta_frame_size"]

_WHAT = "_meta.pickle"


def read_meta_pickle(path) -> dict:
    """Read a ``_meta.pickle``; returns the whole ``{"data": {...}}`` dict.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, empty, truncated, or not a meta pickle (no ``"data"`` dict).
    """
    obj = read_pickle(path, what=_WHAT)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), dict):
        kind = type(obj).__name__
        keys = list(obj)[:5] if isinstance(obj, dict) else []
        raise ValueError(f"{_WHAT} file '{path}' is not DLC metadata: expected "
                         f"{{'data': dict}}, found a {kind} with keys {keys}.")
    return obj


def write_meta_pickle(path, data: dict) -> None:
    """Write ``data`` (either ``{"data": {...}}`` or the inner dict) atomically.

    The inner dict is wrapped as ``{"data": ...}`` like DLC does.
    """
    if not isinstance(data, dict):
        raise TypeError(f"data must be a dict, got {type(data).__name__}.")
    if set(data) != {"data"} or not isinstance(data.get("data"), dict):
        data = {"data": data}
    write_pickle(path, data)


def meta_frame_size(meta: dict) -> tuple[int, int] | None:
    """``(width, height)`` of the analysed frames, handling TF's ``(ny, nx)`` order."""
    d = meta.get("data", meta)
    dims = d.get("frame_dimensions")
    if dims is None or len(dims) != 2:
        return None
    if "pytorch-config" in d:
        return int(dims[0]), int(dims[1])
    return int(dims[1]), int(dims[0])
