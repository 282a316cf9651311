"""``<model folder>/test/inference_cfg.yaml``: assembly and tracking parameters.

DLC's template (``deeplabcut/inference_cfg.yaml``) has these keys, in this order::

    variant: 0
    pafthreshold: 0.1
    method: 'm1'
    minimalnumberofconnections: <len(multianimalbodyparts) / 2>
    pcutoff: 0.1
    topktoretain: <len(individuals)>
    withid: False
    boundingboxslack: 0
    iou_threshold: .6
    max_age: 1
    min_hits: 1

``create_training_dataset`` writes ``minimalnumberofconnections = int(n/2)``; when the
file is missing DLC's ``read_inferencecfg`` builds the template with ``n / 2`` (a
**float**) and writes it.  ``check_inferencecfg_sanity`` raises ``KeyError`` when a key
of the template is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

from mapose.io.config import yaml_dump, yaml_load

__all__ = ["INFERENCE_CFG_TEMPLATE", "check_inferencecfg_sanity", "form_default_inferencecfg",
           "read_inference_cfg", "read_inferencecfg"]

INFERENCE_CFG_TEMPLATE = {
    "variant": 0,
    "pafthreshold": 0.1,
    "method": "m1",
    "minimalnumberofconnections": None,
    "pcutoff": 0.1,
    "topktoretain": None,
    "withid": False,
    "boundingboxslack": 0,
    "iou_threshold": 0.6,
    "max_age": 1,
    "min_hits": 1,
}


def form_default_inferencecfg(cfg) -> dict:
    """DLC's defaults for a project: template + project-specific counts.

    ``minimalnumberofconnections = len(multianimalbodyparts) / 2`` (float, as DLC),
    ``topktoretain = len(individuals)``.
    """
    inf = dict(INFERENCE_CFG_TEMPLATE)
    inf["minimalnumberofconnections"] = len(cfg.get("multianimalbodyparts") or []) / 2
    inf["topktoretain"] = len(cfg.get("individuals") or [])
    return inf


def check_inferencecfg_sanity(cfg, inferencecfg) -> None:
    """Raise ``KeyError`` naming the template keys missing from ``inferencecfg`` (as DLC)."""
    missing = [k for k in form_default_inferencecfg(cfg) if k not in inferencecfg]
    if missing:
        raise KeyError(f"Keys {', '.join(missing)} are missing in the inferencecfg. "
                       "Add them (DLC defaults: mapose.io.inference_cfg.INFERENCE_CFG_TEMPLATE) "
                       "or delete the file to regenerate it.")


def _validate_values(inf: dict, where: str) -> None:
    def num(key, lo=None, integer=False):
        v = inf.get(key)
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where}: {key} must be a number, got {v!r}.")
        if integer and float(v) != int(v):
            raise ValueError(f"{where}: {key} must be a whole number, got {v!r}.")
        if lo is not None and v < lo:
            raise ValueError(f"{where}: {key} must be >= {lo}, got {v!r}.")

    num("pafthreshold", 0)
    num("pcutoff", 0)
    num("iou_threshold", 0)
    num("minimalnumberofconnections", 0)
    num("topktoretain", 1, integer=True)
    num("max_age", 0, integer=True)
    num("min_hits", 0, integer=True)
    num("boundingboxslack", None)


def read_inference_cfg(path, cfg, write_missing: bool = True) -> dict:
    """Load ``inference_cfg.yaml``, or build DLC's defaults when it does not exist.

    Parameters
    ----------
    path : str, os.PathLike, dict or None
        The file (``<model folder>/test/inference_cfg.yaml``), a ready dict (validated
        like DLC's ``inference_cfg=`` argument), or None for the project defaults.
    cfg : dict
        Project config (for ``multianimalbodyparts`` and ``individuals``).
    write_missing : bool, default True
        Like DLC, write the defaults to ``path`` when it is missing.

    Returns
    -------
    dict
        Plain dict of parameters.

    Raises
    ------
    KeyError
        A template key is missing (DLC's sanity check).
    ValueError
        Unreadable YAML or a parameter of the wrong type/range.
    """
    if isinstance(path, dict):
        inf, where = dict(path), "inference_cfg"
    elif path is None:
        inf, where = form_default_inferencecfg(cfg), "default inference_cfg"
    else:
        p = Path(os.fspath(path))
        where = f"inference config '{p}'"
        if p.exists():
            inf = dict(yaml_load(p, what="Inference config", roundtrip=False))
        else:
            inf = form_default_inferencecfg(cfg)
            if write_missing:
                yaml_dump(inf, p)
    check_inferencecfg_sanity(cfg, inf)
    _validate_values(inf, where)
    return inf


# DLC's name
read_inferencecfg = read_inference_cfg
