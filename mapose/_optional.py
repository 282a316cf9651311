"""Lazy imports of optional dependencies with an error that names the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

# import name -> (pip extra, pip package)
_EXTRAS = {
    "torch": ("torch", "torch"),
    "timm": ("torch", "timm"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "onnx": ("onnx", "onnx"),
    "matplotlib": ("gui", "matplotlib"),
    "dask": ("dask", "dask[distributed]"),
    "distributed": ("dask", "dask[distributed]"),
    "motmetrics": ("eval", "motmetrics"),
    "cv2": ("", "opencv-python-headless"),
}


def require(name: str, purpose: str = "") -> ModuleType:
    """Import an optional dependency, or raise an ImportError naming the extra.

    Parameters
    ----------
    name : str
        Importable module name, e.g. ``"torch"`` or ``"matplotlib.pyplot"``.
    purpose : str, optional
        What the caller needs it for; included in the message.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra, package = _EXTRAS.get(top, ("", top))
        how = f"pip install 'mapose[{extra}]'" if extra else f"pip install {package}"
        why = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"mapose needs the optional dependency '{package}'{why}, which is not installed "
            f"({exc}). Install it with: {how}"
        ) from exc
