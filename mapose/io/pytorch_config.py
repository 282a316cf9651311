"""``<model folder>/train/pytorch_config.yaml``: the PyTorch model configuration.

Sections used by inference (``dlc-inference-spec.md`` §2): ``net_type``, ``method``
(``bu``/``td``/``ctd``), ``model`` (``backbone``, ``heads`` with ``predictor`` such as
``PartAffinityFieldPredictor(num_animals, graph, edges_to_keep, nms_radius, sigma,
locref_stdev, ...)``), ``data`` (``inference`` transforms), ``metadata``
(``bodyparts``, ``unique_bodyparts``, ``individuals``, ``with_identity``,
``project_path``, ``pose_config_path``), ``runner``, ``detector``.

Older configs use ``dlcrnet_ms5`` which DLC canonicalises to ``dlcrnet_stride16_ms5``.
"""
from __future__ import annotations

import os
from pathlib import Path

from mapose.io.config import yaml_dump, yaml_load

__all__ = ["NET_TYPE_ALIASES", "canonical_net_type", "read_pytorch_config", "write_pytorch_config"]

NET_TYPE_ALIASES = {"dlcrnet_ms5": "dlcrnet_stride16_ms5"}


def canonical_net_type(net_type: str) -> str:
    """DLC's canonical ``net_type`` (``dlcrnet_ms5`` → ``dlcrnet_stride16_ms5``)."""
    return NET_TYPE_ALIASES.get(str(net_type), str(net_type))


def read_pytorch_config(path, roundtrip: bool = False) -> dict:
    """Read ``pytorch_config.yaml`` (path to the file or to its ``train`` folder).

    Returns plain dicts (``roundtrip=True``: a comment-keeping map to write back);
    ``net_type`` is canonicalised and ``method`` is lower-cased (``"bu"`` when absent).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, invalid YAML, or a mapping without ``model``.
    """
    p = Path(os.fspath(path))
    if p.is_dir():
        p = p / "pytorch_config.yaml"
    cfg = yaml_load(p, what="PyTorch model config", roundtrip=roundtrip)
    if "model" not in cfg:
        raise ValueError(f"PyTorch model config '{p}' has no 'model' section; is it a "
                         "DLC 3 pytorch_config.yaml?")
    if "net_type" in cfg and cfg["net_type"] is not None:
        cfg["net_type"] = canonical_net_type(cfg["net_type"])
    cfg["method"] = str(cfg.get("method") or "bu").lower()
    return cfg


def write_pytorch_config(path, cfg) -> None:
    """Write a model config atomically (comments kept for a round-trip mapping)."""
    if not isinstance(cfg, dict):
        raise TypeError(f"cfg must be a dict, got {type(cfg).__name__}.")
    yaml_dump(cfg, path)
