"""A DeepLabCut-format project around the shipped demo model.

:func:`write_demo_project` lays out exactly what DLC 3 users have after training::

    <project>/config.yaml
    <project>/videos/
    <project>/dlc-models-pytorch/iteration-0/demoJan1-trainset95shuffle1/
        train/pytorch_config.yaml       (from mapose/data/demo_model, paths filled in)
        train/snapshot-best-<N>.pt      (the shipped weights)
        test/pose_cfg.yaml
        test/inference_cfg.yaml

so ``analyze_videos(config, ...)`` loads the model through the same code path as any DLC
model.  Nothing about the rendered ground truth goes into the project.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from mapose.demo.render import BODYPARTS, SKELETON
from mapose.io.atomic import atomic_open

TASK = "demo"
DATE = "Jan1"
TRAIN_FRACTION = 0.95
SHUFFLE = 1


def demo_model_dir() -> Path:
    """Folder of the shipped demo model (``pytorch_config.yaml`` + ``snapshot-*.pt``)."""
    return Path(__file__).resolve().parents[1] / "data" / "demo_model"


def shipped_snapshot(model_dir=None) -> Path:
    model_dir = demo_model_dir() if model_dir is None else Path(model_dir)
    snaps = sorted(model_dir.glob("snapshot-*.pt"))
    if not snaps:
        raise FileNotFoundError(
            f"no demo model snapshot (snapshot-*.pt) in {str(model_dir)!r}; reinstall mapose or train "
            f"one with scripts/train_demo_model.py."
        )
    return snaps[-1]


def _dump(path: Path, data: dict) -> None:
    with atomic_open(path, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False, default_flow_style=None)


def write_demo_project(project_dir, n_animals: int = 3, model_dir=None, video_sets=()) -> Path:
    """Create a DLC-format multi-animal project that uses the demo model.

    Parameters
    ----------
    project_dir : str or os.PathLike
        Project folder (created).
    n_animals : int
        Number of individuals (``individuals`` in config.yaml, ``num_animals`` of the
        PAF predictor, ``topktoretain`` of tracking).
    model_dir : str or os.PathLike, optional
        Folder holding ``pytorch_config.yaml`` and a ``snapshot-*.pt``; default: the model
        shipped in ``mapose/data/demo_model``.
    video_sets : iterable of (path, width, height)
        Videos listed in ``config.yaml``.

    Returns
    -------
    pathlib.Path
        Path of ``config.yaml``.
    """
    if isinstance(n_animals, bool) or int(n_animals) != n_animals or n_animals < 1:
        raise ValueError(f"n_animals must be a positive int; got {n_animals!r}.")
    n_animals = int(n_animals)
    project = Path(project_dir).resolve()
    model_dir = demo_model_dir() if model_dir is None else Path(model_dir)
    snapshot = shipped_snapshot(model_dir)
    pcfg = yaml.safe_load((model_dir / "pytorch_config.yaml").read_text())
    individuals = [f"animal{i}" for i in range(n_animals)]
    bodyparts = list(BODYPARTS)

    (project / "videos").mkdir(parents=True, exist_ok=True)
    folder = (project / "dlc-models-pytorch" / "iteration-0"
              / f"{TASK}{DATE}-trainset{int(TRAIN_FRACTION * 100)}shuffle{SHUFFLE}")
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "test").mkdir(parents=True, exist_ok=True)

    cfg = {
        "Task": TASK, "scorer": "mapose", "date": DATE, "multianimalproject": True, "identity": False,
        "project_path": str(project), "engine": "pytorch",
        "video_sets": {str(p): {"crop": f"0, {w}, 0, {h}"} for p, w, h in video_sets},
        "bodyparts": "MULTI!", "individuals": individuals, "uniquebodyparts": [],
        "multianimalbodyparts": bodyparts, "skeleton": [list(e) for e in SKELETON],
        "skeleton_color": "white", "pcutoff": 0.6, "dotsize": 4, "alphavalue": 0.8,
        "colormap": "rainbow", "start": 0, "stop": 1, "numframes2pick": 20,
        "TrainingFraction": [TRAIN_FRACTION], "iteration": 0, "default_net_type": pcfg.get("net_type"),
        "default_augmenter": "albumentations", "default_track_method": "ellipse",
        "snapshotindex": -1, "detector_snapshotindex": -1, "batch_size": 8, "detector_batch_size": 1,
        "cropping": False, "x1": 0, "x2": 640, "y1": 0, "y2": 480, "corner2move2": [50, 50],
        "move2corner": True,
    }
    config_path = project / "config.yaml"
    _dump(config_path, cfg)

    pred = pcfg["model"]["heads"]["bodypart"]["predictor"]
    pred["num_animals"] = n_animals
    pcfg["metadata"] = {
        "project_path": str(project), "pose_config_path": str(folder / "train" / "pytorch_config.yaml"),
        "bodyparts": bodyparts, "unique_bodyparts": [], "individuals": individuals, "with_identity": False,
    }
    _dump(folder / "train" / "pytorch_config.yaml", pcfg)
    shutil.copyfile(snapshot, folder / "train" / snapshot.name)
    _dump(folder / "test" / "pose_cfg.yaml", {
        "dataset": str(project), "num_joints": len(bodyparts),
        "all_joints": [[i] for i in range(len(bodyparts))], "all_joints_names": bodyparts,
        "net_type": pcfg.get("net_type"), "dataset_type": "multi-animal-imgaug", "global_scale": 1.0,
        "scoremap_dir": "test",
    })
    _dump(folder / "test" / "inference_cfg.yaml", {
        "variant": 0, "pafthreshold": 0.1, "method": "m1",
        "minimalnumberofconnections": len(bodyparts) // 2, "pcutoff": 0.1, "topktoretain": n_animals,
        "withid": False, "boundingboxslack": 0, "iou_threshold": 0.6, "max_age": 1, "min_hits": 1,
    })
    return config_path
