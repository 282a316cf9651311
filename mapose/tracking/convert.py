"""``convert_detections2tracklets``: assemblies next to each video -> ``_el/_bx/_sk.pickle``.

DLC 3 (PyTorch) behaviour (``dlc-tracking-spec.md`` §4.2), with these additions:

* A video with only a ``_full.pickle`` is handled too.  A classic (TensorFlow-style)
  file with PAF costs is assembled with mapose's compiled Assembler using ``greedy``,
  ``calibrate`` and ``window_size`` (DLC 3 ignores them) and the ``_assemblies.pickle``
  is written; a DLC 3 ``_full.pickle`` already holds assembled animals and is converted.
* Outputs are written atomically; an existing output is kept unless ``overwrite``.
* With a single multi-animal bodypart, ellipse/skeleton tracking is impossible (an
  ellipse needs 3 points): mapose warns and tracks boxes, as DLC's TF version does
  (without rewriting ``config.yaml``).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from mapose.tracking.tracklets import build_tracklets

__all__ = ["convert_detections2tracklets", "tracker_suffix"]


def tracker_suffix(track_method: str) -> str:
    """DLC 3's file suffix: ellipse -> ``_el``, box -> ``_bx``, anything else -> ``_sk``."""
    return {"ellipse": "_el", "box": "_bx"}.get(track_method, "_sk")


def _num_frames(stem: Path, assemblies: dict, full_meta: dict | None) -> int:
    """Video frame count: ``_meta.pickle`` ``nframes``, else the full pickle's, else the keys."""
    from mapose.io.meta_pickle import read_meta_pickle

    meta_path = Path(str(stem) + "_meta.pickle")
    for source in (meta_path, full_meta):
        try:
            if isinstance(source, Path):
                if not source.exists():
                    continue
                meta = read_meta_pickle(source)
                meta = meta.get("data", meta) if isinstance(meta, dict) else {}
            else:
                meta = source or {}
            n = int(meta.get("nframes") or 0)
        except (ValueError, TypeError, OSError):
            continue
        if n > 0:
            return n
    keys = [k for k in assemblies if k != "single"]
    return max(keys) + 1 if keys else 1


def _assemblies_from_pytorch_full(data: dict, n_multi: int) -> dict:
    """DLC 3 ``_full.pickle`` rows are assembled animals: rebuild ``_assemblies.pickle``."""
    from mapose.io.full_pickle import frame_index, iter_frames

    out: dict = {"single": {}}
    for key, frame in iter_frames(data):
        coords = frame["coordinates"][0]
        conf = frame["confidence"]
        ids = frame.get("identity")
        n_animals = max((len(c) for c in coords[:n_multi]), default=0)
        arr = np.full((n_animals, n_multi, 4), -1.0)
        for b in range(n_multi):
            c = np.asarray(coords[b], dtype=np.float64).reshape(-1, 2)
            p = np.asarray(conf[b], dtype=np.float64).reshape(-1)
            arr[: len(c), b, :2] = c
            arr[: len(p), b, 2] = p
            if ids is not None and ids[b] is not None and np.size(ids[b]):
                idb = np.asarray(ids[b], dtype=np.float64).reshape(len(c), -1)
                arr[: len(c), b, 3] = np.where(np.all(idb < 0, axis=1), -1, np.argmax(idb, axis=1))
        keep = ~np.all(arr < 0, axis=(1, 2))
        idx = frame_index(key)
        out[idx] = arr[keep]
        if len(coords) > n_multi:
            single = np.full((len(coords) - n_multi, 3), np.nan)
            for u, b in enumerate(range(n_multi, len(coords))):
                c = np.asarray(coords[b], dtype=np.float64).reshape(-1, 2)
                p = np.asarray(conf[b], dtype=np.float64).reshape(-1)
                if len(c):
                    single[u] = [c[0, 0], c[0, 1], p[0]]
            out["single"][idx] = single
    return out


def _assemble_classic_full(data, cfg, inference_cfg, n_multi, greedy, calibrate, window_size,
                           identity_only, training_h5):
    from mapose.assembly.assembler import Assembler

    ass = Assembler(
        data,
        max_n_individuals=int(inference_cfg["topktoretain"]),
        n_multibodyparts=n_multi,
        greedy=greedy,
        pcutoff=inference_cfg.get("pcutoff", 0.1),
        min_affinity=inference_cfg.get("pafthreshold", 0.05),
        window_size=window_size,
        identity_only=identity_only,
        min_n_links=inference_cfg["minimalnumberofconnections"],
    )
    if calibrate:
        if training_h5 is None or not Path(training_h5).exists():
            raise FileNotFoundError(
                f"calibrate=True needs the training data file {training_h5}; create the "
                "training dataset first or call with calibrate=False."
            )
        ass.calibrate(str(training_h5))
    ass.assemble(chunk_size=0 if window_size else 1)
    return ass


def _training_h5(cfg, trainingsetindex):
    """``<project>/training-datasets/iteration-N/UnaugmentedDataSet_<Task><date>/CollectedData_<scorer>.h5``."""
    try:
        folder = Path(str(cfg["project_path"])) / "training-datasets" / f"iteration-{cfg['iteration']}" / (
            f"UnaugmentedDataSet_{cfg['Task']}{cfg['date']}"
        )
        return folder / f"CollectedData_{cfg['scorer']}.h5"
    except (KeyError, TypeError):
        return None


def convert_detections2tracklets(
    config,
    videos,
    video_extensions=None,
    shuffle=1,
    trainingsetindex=0,
    overwrite=False,
    destfolder=None,
    ignore_bodyparts=None,
    inferencecfg=None,
    modelprefix="",
    greedy=False,
    calibrate=False,
    window_size=0,
    identity_only=False,
    track_method="",
    snapshot_index=None,
    detector_snapshot_index=None,
    engine=None,
    **kwargs,
):
    """Track the animals assembled in each video and write ``<video><scorer>_<el|bx|sk>.pickle``.

    Parameters
    ----------
    config : str or os.PathLike
        The project's ``config.yaml``.
    videos : str, os.PathLike or list
        Videos, or folders scanned for videos.
    video_extensions : str or list of str, optional
        Only these extensions (DLC's old ``videotype`` keyword is accepted too).
    shuffle, trainingsetindex, modelprefix, snapshot_index, detector_snapshot_index
        Select the model, hence the scorer name of the analysis files.
    overwrite : bool, default False
        Re-create existing tracklet pickles (and re-assemble a classic ``_full.pickle``).
    destfolder : str, optional
        Folder of the analysis files (default: each video's folder).
    ignore_bodyparts : list of str, optional
        Multi-animal bodyparts left out of the tracker input.
    inferencecfg : dict, optional
        Replaces ``<model folder>/test/inference_cfg.yaml`` (checked for DLC's keys).
    greedy, calibrate, window_size
        Assembly options for classic ``_full.pickle`` inputs (see
        :class:`mapose.Assembler`).
    identity_only : bool, default False
        Assign animals by predicted identity instead of tracking.
    track_method : str, default ""
        ``"ellipse"``, ``"box"`` or ``"skeleton"``; empty uses the config's
        ``default_track_method``.
    engine : optional
        Accepted for DLC compatibility; mapose reads the files of either engine.

    Returns
    -------
    list of pathlib.Path
        The tracklet pickles written or found up to date, in video order.

    Raises
    ------
    FileNotFoundError
        Config, video or analysis files (``_assemblies.pickle`` / ``_full.pickle``) missing.
    ValueError
        Single-animal project, ``track_method="ctd"``, bad ``inferencecfg`` values.
    """
    from mapose.io.config import multianimal_bodyparts, read_config, unique_bodyparts
    from mapose.io.inference_cfg import read_inference_cfg
    from mapose.io.project import get_model_folder, get_scorer_name, get_track_method, list_videos, output_stem
    from mapose.io.tracklets_pickle import write_tracklets_pickle

    if "videotype" in kwargs and video_extensions is None:
        video_extensions = kwargs.pop("videotype")
    kwargs.pop("videotype", None)
    if kwargs:
        raise TypeError(
            f"convert_detections2tracklets() got unexpected keyword arguments {sorted(kwargs)}."
        )
    cfg = read_config(config)
    if not cfg.get("multianimalproject", False):
        raise ValueError(
            "convert_detections2tracklets is for multi-animal projects; config.yaml has "
            "multianimalproject: false. Single-animal analyses need no tracking."
        )
    track_method = get_track_method(cfg, track_method)
    if track_method == "ctd":
        raise ValueError(
            "track_method='ctd' is for CTD models, which track during analysis; use "
            "'ellipse', 'box' or 'skeleton' here."
        )
    multi = multianimal_bodyparts(cfg)
    unique = unique_bodyparts(cfg)
    if not multi:
        raise ValueError("config.yaml lists no multianimalbodyparts; nothing to track.")
    if len(multi) == 1 and track_method != "box":
        warnings.warn(
            f"There is a single multi-animal bodypart ({multi[0]}): an ellipse or skeleton cannot "
            "be fitted to one point, so track_method is switched to 'box'.",
            UserWarning,
            stacklevel=2,
        )
        track_method = "box"
    if window_size is None or int(window_size) < 0:
        raise ValueError(f"window_size must be an integer >= 0; got {window_size!r}.")

    model_folder = get_model_folder(cfg, shuffle, trainingsetindex, modelprefix)
    if inferencecfg is None:
        inference_cfg = read_inference_cfg(model_folder / "test" / "inference_cfg.yaml", cfg)
    else:
        if not isinstance(inferencecfg, dict):
            raise TypeError(f"inferencecfg must be a dict; got {type(inferencecfg).__name__}.")
        inference_cfg = read_inference_cfg(dict(inferencecfg), cfg)
    scorer = get_scorer_name(cfg, shuffle, trainingsetindex, snapshot_index, modelprefix,
                             detector_snapshot_index)
    suffix = tracker_suffix(track_method)
    video_list = list_videos(videos, video_extensions)
    if not video_list:
        print(f"No videos found in {videos!r} (extensions {video_extensions!r}).")
    written = []
    for video in video_list:
        stem = output_stem(video, scorer, destfolder)
        out = Path(str(stem) + suffix + ".pickle")
        if out.exists() and not overwrite:
            print(f"Tracklets already computed: {out}. Set overwrite=True to redo them.")
            written.append(out)
            continue
        print(f"Tracking {video.name} ({track_method})...")
        assemblies, full_meta = _load_assemblies(stem, cfg, inference_cfg, multi, overwrite, greedy,
                                                 calibrate, int(window_size), identity_only,
                                                 _training_h5(cfg, trainingsetindex))
        num_frames = _num_frames(stem, assemblies, full_meta)
        tracklets = build_tracklets(
            assemblies,
            track_method,
            inference_cfg,
            multi + unique,
            scorer,
            num_frames,
            ignore_bodyparts=ignore_bodyparts,
            unique_bodyparts=unique or None,
            identity_only=identity_only,
            progress=video.name,
        )
        write_tracklets_pickle(out, tracklets)
        written.append(out)
    return written


def _load_assemblies(stem, cfg, inference_cfg, multi, overwrite, greedy, calibrate, window_size,
                     identity_only, training_h5):
    from mapose.io.assemblies_pickle import read_assemblies_pickle, write_assemblies_pickle
    from mapose.io.full_pickle import full_pickle_exists, is_pytorch_layout, read_full_pickle

    ass_path = Path(str(stem) + "_assemblies.pickle")
    full_path = Path(str(stem) + "_full.pickle")
    have_full = full_pickle_exists(full_path)
    if ass_path.exists() and not (overwrite and have_full):
        assemblies, single = read_assemblies_pickle(ass_path)
        assemblies = dict(assemblies)
        assemblies["single"] = single
        return assemblies, None
    if not have_full:
        raise FileNotFoundError(
            f"No assemblies for this video: neither '{ass_path}' nor '{full_path}' exists. "
            "Run analyze_videos first (check shuffle, snapshot_index and destfolder)."
        )
    data = read_full_pickle(full_path)
    meta = data.get("metadata", {})
    if is_pytorch_layout(data):
        assemblies = _assemblies_from_pytorch_full(data, len(multi))
        write_assemblies_pickle(ass_path, {k: v for k, v in assemblies.items() if k != "single"},
                                assemblies["single"])
        return assemblies, meta
    ass = _assemble_classic_full(data, cfg, inference_cfg, len(multi), greedy, calibrate,
                                 window_size, identity_only, training_h5)
    ass.to_pickle(str(ass_path))
    assemblies, single = read_assemblies_pickle(ass_path)
    assemblies = dict(assemblies)
    assemblies["single"] = single
    return assemblies, meta
