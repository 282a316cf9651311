"""Locate a DLC 3 project's trained bottom-up model (config, pytorch_config, snapshot)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProjectModel", "find_project_model"]


@dataclass
class ProjectModel:
    """Everything analyze_videos / export_model need to know about a trained shuffle."""

    cfg: dict
    config_path: Path
    pytorch_cfg: dict
    model_folder: Path
    snapshot: Path
    scorer: str
    shuffle: int
    trainingsetindex: int
    train_fraction: float
    bodyparts: list
    unique_bodyparts: list
    individuals: list

    @property
    def net_type(self) -> str:
        return str(self.pytorch_cfg.get("net_type") or "")

    def build_model(self):
        """The PoseModel with the snapshot's weights (eval mode)."""
        from mapose.models.snapshot import load_pose_model

        return load_pose_model(_plain(self.pytorch_cfg), self.snapshot)


def _plain(obj):
    """ruamel CommentedMap/Seq → plain dict/list (for torch modules and pickling)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    # ruamel's ScalarInt / ScalarFloat / ScalarString subclasses -> builtins, so the
    # config pickles without ruamel (torch.load(weights_only=True) rejects them)
    if isinstance(obj, bool) or obj is None:
        return obj
    for kind in (int, float, str):
        if isinstance(obj, kind):
            return kind(obj)
    return obj


def find_project_model(config, shuffle: int = 1, trainingsetindex: int = 0, snapshot_index=None,
                       modelprefix: str = "") -> ProjectModel:
    """Resolve config.yaml → model folder → pytorch_config.yaml → snapshot → scorer.

    Raises
    ------
    FileNotFoundError
        No config, model folder, pytorch_config.yaml or snapshot.
    ValueError
        Single-animal or top-down projects (not supported yet), body parts in config.yaml
        that differ from the model's, an invalid snapshot index.
    """
    from mapose.io.config import read_config
    from mapose.io.project import (get_model_folder, scorer_name_from, select_snapshot,
                                   training_fraction)
    from mapose.io.pytorch_config import read_pytorch_config

    config_path = Path(os.fspath(config))
    if config_path.is_dir():
        config_path = config_path / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"config={str(config)!r}: project config.yaml not found.")
    cfg = read_config(config_path)
    if not cfg.get("multianimalproject", False):
        raise ValueError(
            f"{config_path} is a single-animal project (multianimalproject: false); mapose "
            "analyses multi-animal (bottom-up PAF) projects only for now. Use DeepLabCut for "
            "single-animal projects."
        )
    if isinstance(shuffle, bool) or not isinstance(shuffle, int) or shuffle < 0:
        raise ValueError(f"shuffle must be a non-negative int; got {shuffle!r}.")
    frac = training_fraction(cfg, trainingsetindex)
    folder = get_model_folder(cfg, shuffle, trainingsetindex, modelprefix)
    train_dir = folder / "train"
    if not (train_dir / "pytorch_config.yaml").is_file():
        raise FileNotFoundError(
            f"No trained PyTorch model for shuffle {shuffle} (trainingsetindex {trainingsetindex}"
            f"{', modelprefix ' + repr(modelprefix) if modelprefix else ''}): "
            f"'{train_dir / 'pytorch_config.yaml'}' does not exist. Create the training set and "
            "train the network first, or pass the right shuffle."
        )
    pcfg = read_pytorch_config(train_dir / "pytorch_config.yaml")
    if str(pcfg.get("method", "bu")).lower() != "bu":
        raise ValueError(f"net_type {pcfg.get('net_type')!r} is a top-down model (method "
                         f"{pcfg.get('method')!r}); mapose supports bottom-up models only.")
    meta = pcfg.get("metadata") or {}
    bodyparts = list(cfg.get("multianimalbodyparts") or [])
    unique = list(cfg.get("uniquebodyparts") or [])
    individuals = list(cfg.get("individuals") or [])
    model_bpts = list(meta.get("bodyparts") or bodyparts)
    model_unique = list(meta.get("unique_bodyparts") or [])
    if model_bpts != bodyparts or model_unique != unique:
        raise ValueError(
            f"The body parts in {config_path} ({bodyparts} + unique {unique}) differ from the "
            f"ones the model was trained with ({model_bpts} + unique {model_unique}, "
            f"{train_dir / 'pytorch_config.yaml'}). Restore config.yaml's body parts or create "
            "a new training set and retrain."
        )
    snapshot = select_snapshot(cfg, train_dir, snapshot_index)
    # the config parsed above, not get_scorer_name, which would read it a second time
    scorer = scorer_name_from(cfg, shuffle, pcfg, train_dir, snapshot)
    return ProjectModel(cfg=cfg, config_path=config_path, pytorch_cfg=pcfg, model_folder=folder,
                        snapshot=Path(snapshot), scorer=scorer, shuffle=int(shuffle),
                        trainingsetindex=int(trainingsetindex), train_fraction=frac,
                        bodyparts=bodyparts, unique_bodyparts=unique,
                        individuals=list(meta.get("individuals") or individuals))
