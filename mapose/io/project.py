"""DLC project layout: model folders, snapshots, scorer names, video lists, output names.

Rules (``dlc-inference-spec.md`` §1, ``dlc-tracking-spec.md`` §0)
---------------------------------------------------------------
* Model folder: ``<project>/[<modelprefix>/]dlc-models-pytorch/iteration-<it>/``
  ``<Task><date>-trainset<int(frac*100)>shuffle<S>`` (``int`` truncates: 0.57 → 56).
  TensorFlow models live under ``dlc-models/``.
* Snapshots: ``snapshot-<N>.pt`` / ``snapshot-best-<N>.pt`` (detectors:
  ``snapshot-detector-...``), ordered by ``(is_best, epochs)`` so the best one is last and
  ``snapshotindex: -1`` selects it.
* Scorer: ``DLC_<Net>_<Task><date>shuffle<S>_snapshot_<uid>`` where ``<Net>`` capitalises
  each ``_``-part of ``net_type`` and ``uid`` is ``<epochs>`` or ``best-<epochs>``
  (unpadded); top-down adds ``detector_<duid>_`` before ``snapshot_``.
* Output files: ``<destfolder or video folder>/<video stem><scorer><suffix>``.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_EXCLUDE_PATTERNS", "SUPPORTED_VIDEOS", "Snapshot", "TRACK_METHODS",
    "get_model_folder", "get_scorer_name", "get_scorer_uid", "get_track_method",
    "list_snapshots", "list_videos", "model_folder_name", "output_stem", "select_snapshot",
    "training_fraction",
]

TRACK_METHODS = {"box": "_bx", "ctd": "_ctd", "skeleton": "_sk", "ellipse": "_el",
                 "transformer": "_tr"}
SUPPORTED_VIDEOS = ("avi", "mp4", "mov", "mpeg", "mpg", "mpv", "mkv", "flv", "qt", "yuv")
DEFAULT_EXCLUDE_PATTERNS = ("*_labeled.*", "*_full.*")


def get_track_method(cfg, track_method: str = "") -> str:
    """DLC's tracker choice: ``""`` for single-animal projects, else a TRACK_METHODS name.

    An empty ``track_method`` uses ``cfg["default_track_method"]``; if that is empty too,
    warns, sets ``"ellipse"`` and (as DLC) writes it into the project's ``config.yaml``.
    """
    if not cfg.get("multianimalproject", False):
        return ""
    if track_method:
        if track_method not in TRACK_METHODS:
            raise ValueError(f"Invalid track_method {track_method!r}. Only "
                             f"{', '.join(TRACK_METHODS)} are supported.")
        return track_method
    method = cfg.get("default_track_method") or ""
    if not method:
        warnings.warn("`default_track_method` is undefined in the config.yaml file and will "
                      "be set to `ellipse`.", UserWarning, stacklevel=2)
        method = "ellipse"
        cfg["default_track_method"] = method
        cfg_file = Path(str(cfg.get("project_path") or "")) / "config.yaml"
        if cfg.get("project_path") and cfg_file.exists():
            from mapose.io.config import write_config

            write_config(cfg_file, cfg)
    if method not in TRACK_METHODS:
        raise ValueError(f"config.yaml default_track_method {method!r} is invalid; use one "
                         f"of {', '.join(TRACK_METHODS)}.")
    return method


def model_folder_name(engine: str = "pytorch") -> str:
    engine = str(getattr(engine, "value", engine)).lower()
    if engine in ("pytorch", "torch", "pt"):
        return "dlc-models-pytorch"
    if engine in ("tensorflow", "tf"):
        return "dlc-models"
    raise ValueError(f"engine must be 'pytorch' or 'tensorflow', got {engine!r}.")


def training_fraction(cfg, trainingsetindex: int = 0) -> float:
    """``cfg["TrainingFraction"][trainingsetindex]`` with a clear error."""
    fracs = cfg.get("TrainingFraction")
    if not fracs:
        raise ValueError("config.yaml has no TrainingFraction list; it is not a DLC project config.")
    if isinstance(trainingsetindex, bool) or not isinstance(trainingsetindex, int):
        raise TypeError(f"trainingsetindex must be an int, got {trainingsetindex!r}.")
    try:
        return float(fracs[trainingsetindex])
    except IndexError:
        raise ValueError(f"trainingsetindex={trainingsetindex} is out of range: config.yaml "
                         f"TrainingFraction has {len(fracs)} entries {list(fracs)}.") from None


def _project_path(cfg) -> Path:
    pp = cfg.get("project_path")
    if not pp:
        raise ValueError("cfg has no project_path; read it with mapose.io.config.read_config(path).")
    return Path(str(pp))


def get_model_folder(cfg, shuffle: int = 1, trainingsetindex: int = 0, modelprefix: str = "",
                     engine: str = "pytorch") -> Path:
    """Absolute model folder of a shuffle (``<project>/[prefix/]dlc-models-pytorch/...``).

    ``trainset`` uses ``int(fraction * 100)`` (truncation, as DLC: 0.57 → 56).
    """
    frac = training_fraction(cfg, trainingsetindex)
    rel = Path(modelprefix or "", model_folder_name(engine), f"iteration-{cfg['iteration']}",
               f"{cfg['Task']}{cfg['date']}-trainset{int(frac * 100)}shuffle{int(shuffle)}")
    return _project_path(cfg) / rel


@dataclass(frozen=True)
class Snapshot:
    """A snapshot file; path-like (``os.fspath(snapshot)`` is its path)."""

    best: bool
    epochs: int
    path: Path

    def uid(self) -> str:
        """``"best-50"`` or ``"50"`` (unpadded), the scorer suffix."""
        return f"best-{self.epochs}" if self.best else str(self.epochs)

    @property
    def name(self) -> str:
        return self.path.name

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def from_path(cls, path) -> Snapshot:
        path = Path(path)
        m = re.search(r"-(\d+)\.pt$", path.name)
        if m is None:
            raise ValueError(f"'{path.name}' is not a DLC snapshot name (snapshot-<epochs>.pt).")
        return cls(best="-best" in path.stem, epochs=int(m.group(1)), path=path)


def list_snapshots(train_dir, snapshot_prefix: str = "snapshot", best_in_last: bool = True) -> list[Snapshot]:
    """Snapshots in ``train_dir`` ordered by epochs, the best one(s) last.

    ``snapshot_prefix="snapshot-detector"`` lists detector snapshots.
    """
    train_dir = Path(os.fspath(train_dir))
    if not train_dir.is_dir():
        raise FileNotFoundError(f"Model train folder not found: '{train_dir}'. Train the "
                                "shuffle first or check shuffle/trainingsetindex/modelprefix.")
    pattern = re.compile(r"^(" + re.escape(snapshot_prefix) + r"(-best)?-\d+\.pt)$")
    snaps = [Snapshot.from_path(f) for f in train_dir.iterdir() if pattern.match(f.name)]
    snaps.sort(key=(lambda s: (1 if s.best else 0, s.epochs)) if best_in_last else (lambda s: s.epochs))
    return snaps


def _resolve_index(index, name: str):
    if isinstance(index, str):
        low = index.lower()
        if low == "all":
            warnings.warn(f"{name} is 'all': analysing with every snapshot is very costly; "
                          "using -1 (the last/best snapshot).", UserWarning, stacklevel=3)
            return -1
        if low == "best":
            return "best"
        try:
            return int(index)
        except ValueError:
            raise ValueError(f"Invalid {name} {index!r}: use an int, 'best' or 'all'.") from None
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f"Invalid {name} {index!r}: use an int, 'best' or 'all'.")
    return index


def select_snapshot(cfg, train_dir, snapshot_index=None, snapshot_prefix: str = "snapshot") -> Path:
    """The snapshot file to use (DLC's rules).

    Parameters
    ----------
    snapshot_index : int, "best", "all" or None
        None → ``cfg["snapshotindex"]`` (default -1); ``"all"`` → warning and -1;
        ``"best"`` → the best snapshot (error if none); int → Python indexing into
        :func:`list_snapshots` (so -1 is the best snapshot when one exists).
    """
    name = "snapshotindex" if snapshot_prefix == "snapshot" else "detector_snapshotindex"
    if snapshot_index is None:
        snapshot_index = cfg.get(name, -1)
        if snapshot_index is None:
            snapshot_index = -1
    index = _resolve_index(snapshot_index, name)
    snaps = list_snapshots(train_dir, snapshot_prefix)
    if index == "best":
        best = [s for s in snaps if s.best]
        if not best:
            raise ValueError(f"No best snapshot found in {train_dir} (files "
                             f"{[s.name for s in snaps]}); use an index instead of 'best'.")
        return best[-1].path
    n = len(snaps)
    if n == 0 or index >= n or index < -n:
        raise ValueError(f"Found {n} snapshots in {train_dir} (with names {[s.name for s in snaps]}) "
                         f"with prefix {snapshot_prefix}. Could not return snapshot with index "
                         f"{snapshot_index}. Train the model or change {name}.")
    return snaps[index].path


def get_scorer_uid(snapshot, detector_snapshot=None) -> str:
    """``snapshot_<uid>`` or ``detector_<duid>_snapshot_<uid>``."""
    snap = snapshot if isinstance(snapshot, Snapshot) else Snapshot.from_path(snapshot)
    uid = f"snapshot_{snap.uid()}"
    if detector_snapshot is not None:
        det = detector_snapshot if isinstance(detector_snapshot, Snapshot) else Snapshot.from_path(detector_snapshot)
        uid = f"detector_{det.uid()}_{uid}"
    return uid


def get_scorer_name(cfg, shuffle: int = 1, trainingsetindex: int = 0, snapshot_index=None,
                    modelprefix: str = "", detector_snapshot_index=None) -> str:
    """DLC 3 (PyTorch) scorer name, e.g. ``DLC_Resnet50_projANov23shuffle1_snapshot_best-50``.

    Reads ``train/pytorch_config.yaml`` (``net_type``, ``method``) and the snapshots of the
    shuffle's model folder.
    """
    from mapose.io.pytorch_config import read_pytorch_config

    train_dir = get_model_folder(cfg, shuffle, trainingsetindex, modelprefix) / "train"
    model_cfg = read_pytorch_config(train_dir / "pytorch_config.yaml")
    snapshot = select_snapshot(cfg, train_dir, snapshot_index)
    return scorer_name_from(cfg, shuffle, model_cfg, train_dir, snapshot, detector_snapshot_index)


def scorer_name_from(cfg, shuffle: int, model_cfg: dict, train_dir, snapshot,
                     detector_snapshot_index=None) -> str:
    """:func:`get_scorer_name` from an already parsed ``pytorch_config.yaml`` (``model_cfg``)
    of the model folder's ``train_dir`` and its selected ``snapshot``."""
    train_dir = Path(train_dir)
    net_type = str(model_cfg.get("net_type") or "")
    if not net_type:
        raise ValueError(f"{train_dir / 'pytorch_config.yaml'} has no net_type.")
    detector = None
    if str(model_cfg.get("method", "bu")).lower() == "td":
        try:
            detector = select_snapshot(cfg, train_dir, detector_snapshot_index,
                                       snapshot_prefix="snapshot-detector")
        except ValueError:
            detector = None
    net = "".join(p.capitalize() for p in net_type.split("_"))
    return f"DLC_{net}_{cfg['Task']}{cfg['date']}shuffle{int(shuffle)}_{get_scorer_uid(snapshot, detector)}"


def list_videos(videos, video_extensions=None, shuffle: bool = False,
                exclude_patterns=DEFAULT_EXCLUDE_PATTERNS) -> list[Path]:
    """Videos to analyse, with DLC's rules.

    Files are taken as given unless ``video_extensions`` is set; directories are scanned
    one level deep for :data:`SUPPORTED_VIDEOS` (or ``video_extensions``); names matching
    ``*_labeled.*`` / ``*_full.*`` (DLC's own outputs) are skipped.  Absolute paths,
    duplicates removed, sorted (shuffled with ``shuffle=True``).

    Raises
    ------
    FileNotFoundError
        A given path does not exist.
    """
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    if video_extensions in ("", ("",), [""]):
        video_extensions = None
    if video_extensions is None:
        explicit = None
    elif isinstance(video_extensions, str):
        explicit = {"." + video_extensions.lstrip(".").lower()}
    else:
        exts = list(video_extensions)
        if not exts:
            raise ValueError("video_extensions must be a non-empty sequence, a string or None.")
        explicit = {"." + str(e).lstrip(".").lower() for e in exts}
    implicit = {"." + e for e in SUPPORTED_VIDEOS}
    found: list[Path] = []
    for v in videos:
        p = Path(os.fspath(v))
        if not p.exists():
            raise FileNotFoundError(f"Could not find video or folder: '{p}'. Check the path and access rights.")
        if p.is_dir():
            allowed = explicit or implicit
            found.extend(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in allowed
                         and not any(f.match(pat) for pat in exclude_patterns))
        elif explicit is None or p.suffix.lower() in explicit:
            if not any(p.match(pat) for pat in exclude_patterns):
                found.append(p)
    unique = list(dict.fromkeys(f.absolute() for f in found))
    if shuffle:
        import random

        random.shuffle(unique)
    else:
        unique.sort()
    return unique


def output_stem(video, scorer: str, destfolder=None) -> Path:
    """``<destfolder or video folder>/<video stem><scorer>``; outputs append their suffix."""
    video = Path(os.fspath(video))
    folder = Path(os.fspath(destfolder)) if destfolder else video.parent
    return folder / (video.stem + str(scorer))
