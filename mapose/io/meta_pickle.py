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

from pathlib import Path

from mapose.io.safe_pickle import dlc_enum_class, read_pickle, write_pickle

__all__ = ["read_meta_pickle", "write_meta_pickle", "meta_frame_size", "dlc_pytorch_config"]

_ENUMS_MODULE = "deeplabcut.pose_estimation_pytorch.config.enums"

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


def dlc_pytorch_config(cfg: dict) -> dict:
    """Copy of a model config typed the way DLC 3.0.2 stores it in ``_meta.pickle``.

    DLC's loaded config holds ``net_type`` as ``NetType``, ``method`` as ``MethodType``
    (both ``str`` enums) and ``metadata.project_path``/``pose_config_path`` as
    ``pathlib`` paths; pickled, those are the globals DLC's reader expects.  Plain
    strings load fine in DLC too; this only makes the file identical in kind.
    """
    import copy

    def plain(o):
        if isinstance(o, dict):
            return {str(k) if not isinstance(k, (int, float, bool)) else k: plain(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [plain(v) for v in o]
        if isinstance(o, str):
            return str(o)
        if isinstance(o, bool):
            return bool(o)
        if isinstance(o, int):
            return int(o)
        if isinstance(o, float):  # ruamel's ScalarFloat & co. would pickle as ruamel types
            return float(o)
        return copy.deepcopy(o)

    out = plain(cfg)
    if isinstance(out.get("net_type"), str):
        out["net_type"] = dlc_enum_class(_ENUMS_MODULE, "NetType")(out["net_type"])
    if isinstance(out.get("method"), str):
        out["method"] = dlc_enum_class(_ENUMS_MODULE, "MethodType")(out["method"].lower())
    md = out.get("metadata")
    if isinstance(md, dict):
        for key in ("project_path", "pose_config_path"):
            if isinstance(md.get(key), str) and md[key]:
                md[key] = Path(md[key])
    return out
