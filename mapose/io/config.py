"""Project ``config.yaml``: read and write without losing comments or key order.

DLC reads the project config with ruamel.yaml and writes it back with a round-trip
dumper (very wide lines so long video paths stay on one line, ``Path`` and enum values
written as strings).  mapose reads with ruamel's round-trip loader so that a
read → modify → :func:`write_config` cycle keeps the user's comments, key order and
quoting.

``project_path`` repair: DLC rewrites ``project_path`` to the folder that holds
``config.yaml`` when the project was moved (and writes the file back immediately).
:func:`read_config` applies the same repair *in memory only* (reading never writes),
so every path derived from the config points into the real project folder.
"""
from __future__ import annotations

import enum
import io
import os
from pathlib import Path, PurePath

from mapose.io.atomic import atomic_open

__all__ = ["config_get", "read_config", "write_config", "yaml_dump", "yaml_load", "multianimal_bodyparts",
           "unique_bodyparts", "individuals", "is_multianimal"]

# DLC 3.0.2 fills these in when absent (ProjectConfig defaults)
CONFIG_DEFAULTS = {"engine": "pytorch", "detector_snapshotindex": -1, "batch_size": 1}


def _rt_yaml():
    from ruamel.yaml import YAML

    from mapose.io.safe_pickle import DLCEnum

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 1_000_000  # as DLC: long paths must not wrap into complex keys
    rep = yaml.representer
    rep.add_multi_representer(PurePath, lambda r, p: r.represent_str(str(p)))
    rep.add_multi_representer(enum.Enum, lambda r, e: r.represent_str(str(e.value)))
    rep.add_representer(DLCEnum, lambda r, e: r.represent_str(str(e)))
    rep.add_multi_representer(DLCEnum, lambda r, e: r.represent_str(str(e)))
    try:
        import numpy as np

        rep.add_multi_representer(np.integer, lambda r, v: r.represent_int(int(v)))
        rep.add_multi_representer(np.floating, lambda r, v: r.represent_float(float(v)))
        rep.add_multi_representer(np.bool_, lambda r, v: r.represent_bool(bool(v)))
        rep.add_multi_representer(np.ndarray, lambda r, v: r.represent_list(v.tolist()))
    except ImportError:  # pragma: no cover
        pass
    return yaml


def yaml_load(path, what: str = "YAML file", roundtrip: bool = True):
    """Load a YAML file with clear errors.

    ``roundtrip=True`` keeps comments and order (ruamel round-trip map, for files that
    are written back); ``roundtrip=False`` returns plain dicts/lists with ruamel's safe
    loader, the one DLC uses for reading (several times faster).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: '{path}'. Check the path.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} path '{path}' is a directory, not a file.")
    try:
        with open(path, encoding="utf-8") as fh:
            data = (_rt_yaml() if roundtrip else YAML(typ="safe", pure=True)).load(fh)
    except (YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} '{path}' is not valid YAML: {exc}") from exc
    if data is None:
        raise ValueError(f"{what} '{path}' is empty or null.")
    if not isinstance(data, dict):
        raise ValueError(f"{what} '{path}' must be a YAML mapping at the top level, "
                         f"got {type(data).__name__}.")
    return data


def yaml_dump(data, path) -> None:
    """Write ``data`` with the round-trip dumper (DLC's settings), atomically."""
    buf = io.StringIO()
    _rt_yaml().dump(data, buf)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(buf.getvalue())


def read_config(path, fix_project_path: bool = True):
    """Read a DLC project ``config.yaml``.

    Parameters
    ----------
    path : str or os.PathLike
        The project's ``config.yaml``.
    fix_project_path : bool, default True
        Point ``project_path`` at the folder holding ``config.yaml`` when it differs
        (the project was moved), as DLC does; in memory only.

    Returns
    -------
    ruamel.yaml.comments.CommentedMap
        A dict subclass keeping comments and key order.  Nothing else is added, so
        :func:`write_config` reproduces the file; use :func:`config_get` for keys that
        DLC 3.0.2 defaults when absent (``engine``, ``detector_snapshotindex``,
        ``batch_size``).
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        cand = path / "config.yaml"
        if cand.exists():
            path = cand
    cfg = yaml_load(path, what="Project config")
    if fix_project_path:
        real = str(path.resolve().parent)
        stored = cfg.get("project_path")
        if not stored or Path(str(stored)).resolve() != Path(real):
            cfg["project_path"] = real
    return cfg


def config_get(cfg, key: str, default=None):
    """``cfg[key]``, falling back to DLC 3.0.2's default for absent/empty keys."""
    value = cfg.get(key)
    if value is None:
        return CONFIG_DEFAULTS.get(key, default)
    return value


def write_config(path, cfg) -> None:
    """Write ``cfg`` to ``path`` (comments and order kept for a :func:`read_config` map), atomically."""
    if not isinstance(cfg, dict):
        raise TypeError(f"cfg must be a dict (e.g. from read_config), got {type(cfg).__name__}.")
    yaml_dump(cfg, path)


def is_multianimal(cfg) -> bool:
    return bool(cfg.get("multianimalproject", False))


def multianimal_bodyparts(cfg) -> list[str]:
    """Bodyparts of each animal (``multianimalbodyparts``, or ``bodyparts`` single-animal)."""
    if is_multianimal(cfg):
        return [str(b) for b in (cfg.get("multianimalbodyparts") or [])]
    return [str(b) for b in (cfg.get("bodyparts") or [])]


def unique_bodyparts(cfg) -> list[str]:
    return [str(b) for b in (cfg.get("uniquebodyparts") or [])] if is_multianimal(cfg) else []


def individuals(cfg) -> list[str]:
    return [str(i) for i in (cfg.get("individuals") or [])] if is_multianimal(cfg) else ["single"]
