"""Project plumbing shared by the visual checks: config, scorer, videos, analysis files.

Thin wrappers over the I/O layer (:mod:`mapose.io.config`, :mod:`mapose.io.project`,
:mod:`mapose.io.tracks_h5`, :mod:`mapose.io.meta_pickle`) plus the checks that data and
video belong together:

* analysis h5: ``<stem><scorer>[<tracker>][_filtered].h5`` in ``destfolder`` or the video's folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TRACK_METHODS = {"box": "_bx", "ctd": "_ctd", "skeleton": "_sk", "ellipse": "_el", "transformer": "_tr"}


def read_config(config) -> dict:
    """Read a DLC ``config.yaml`` (``project_path`` re-pointed at its folder)."""
    from mapose.io.config import read_config as _read

    path = Path(config)
    if not path.exists():
        raise FileNotFoundError(
            f"config={str(config)!r} does not exist; pass the path of the project's config.yaml."
        )
    return _read(path)


def scorer_for(cfg: dict, shuffle: int, trainingsetindex: int, modelprefix: str, **kwargs) -> str:
    """DLC 3.0.2's scorer of a shuffle (``snapshot_index=`` / ``detector_snapshot_index=`` honoured)."""
    from mapose.io.project import get_scorer_name

    return get_scorer_name(
        cfg, shuffle, trainingsetindex, snapshot_index=kwargs.get("snapshot_index"),
        modelprefix=modelprefix, detector_snapshot_index=kwargs.get("detector_snapshot_index"),
    )


def get_track_method(cfg: dict, track_method: str = "") -> str:
    """DLC's tracker name: '' for single-animal projects, else the validated method."""
    from mapose.io.project import get_track_method as _gtm

    return _gtm(cfg, track_method)


def list_videos(videos, video_extensions=None) -> list[Path]:
    """Video files named by ``videos`` (files and/or folders), following DLC's rules."""
    from mapose.io.project import list_videos as _lv

    return _lv(videos, video_extensions)


def find_analysis_h5(folder: Path, vname: str, scorer: str, filtered: bool, track_method: str) -> Path:
    """``<vname><scorer>[tracker][_filtered].h5`` in ``folder`` (DLC's find_analyzed_data)."""
    tracker = TRACK_METHODS.get(track_method, "")
    legacy = scorer.replace("DLC", "DeepCut")
    candidates = []
    for f in sorted(Path(folder).glob("*.h5")):
        stem = f.stem.replace("_filtered", "")
        if not f.name.startswith((vname + scorer, vname + legacy)) or "skeleton" in f.name:
            continue
        if tracker:
            if not stem.endswith(tracker):
                continue
        elif any(stem.endswith(s) for s in TRACK_METHODS.values()):
            continue
        if filtered != ("filtered" in f.name):
            continue
        candidates.append(f)
    if not candidates:
        kind = "filtered " if filtered else ""
        tr = f" and tracker {track_method!r}" if track_method else ""
        hint = ("run filterpredictions first" if filtered else
                "run analyze_videos (and stitch_tracklets for multi-animal projects) first")
        raise FileNotFoundError(
            f"no {kind}analysis file {vname}{scorer}{tracker}{'_filtered' if filtered else ''}.h5 in "
            f"{folder} for video {vname!r}, scorer {scorer!r}{tr}; {hint}, or pass destfolder= where "
            "the analysis was written."
        )
    return candidates[0]


def read_tracks_h5(path: Path):
    """Final tracks / analysis ``.h5`` as a DataFrame (any of DLC's keys)."""
    from mapose.io.tracks_h5 import read_tracks

    return read_tracks(path)


def find_meta(folder: Path, vname: str, scorer: str) -> Path | None:
    for name in (f"{vname}{scorer}_meta.pickle", f"{vname}{scorer.replace('DLC', 'DeepCut')}_meta.pickle"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_meta(path: Path | None) -> dict:
    """The inner ``data`` dict of a ``_meta.pickle`` ({} when there is none)."""
    if path is None:
        return {}
    from mapose.io.meta_pickle import read_meta_pickle

    return read_meta_pickle(path)["data"]


def check_meta_matches_video(meta: dict, info, what: str) -> None:
    """Raise if the analysis metadata describe another video than ``info``."""
    if not meta:
        return
    from mapose.io.meta_pickle import meta_frame_size

    size = meta_frame_size({"data": meta})
    crop = meta.get("cropping_parameters")
    cropped = bool(meta.get("cropping")) and crop is not None
    if size is not None and not cropped and tuple(size) != (info.width, info.height):
        raise ValueError(
            f"{what} was computed on {size[0]}x{size[1]} frames, but video {str(info.path)!r} is "
            f"{info.width}x{info.height}; pass the video that was analysed."
        )
    n = meta.get("nframes")
    if n is not None and info.nframes and int(n) != int(info.nframes):
        raise ValueError(
            f"{what} was computed on a video of {int(n)} frames, but video {str(info.path)!r} has "
            f"{info.nframes}; pass the video that was analysed."
        )


def check_coordinates_fit(x: np.ndarray, y: np.ndarray, visible: np.ndarray, info, what: str) -> None:
    """Raise if most confident keypoints lie outside the frame (data of another video)."""
    vis = visible & np.isfinite(x) & np.isfinite(y)
    n = int(vis.sum())
    if n == 0:
        return
    xv, yv = x[vis], y[vis]
    margin = 0.05 * max(info.width, info.height)
    outside = (xv < -margin) | (xv > info.width + margin) | (yv < -margin) | (yv > info.height + margin)
    if outside.mean() > 0.5:
        raise ValueError(
            f"{int(outside.sum())} of {n} confident keypoints of {what} lie outside the "
            f"{info.width}x{info.height} frames of video {str(info.path)!r}; the data belong to another video."
        )
