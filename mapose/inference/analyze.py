"""``analyze_videos``: DLC 3.0.2's multi-animal video analysis, pipelined and streaming.

Writes exactly DeepLabCut's files next to each video (or into ``destfolder``):
``<video><scorer>_full.pickle``, ``_meta.pickle``, ``_assemblies.pickle`` (+ ``.h5``/``.csv``
with ``save_as_df``), then, with ``auto_track=True``, the tracklet pickle and the stitched
``_el.h5`` through :func:`mapose.convert_detections2tracklets` and
:func:`mapose.stitch_tracklets`.  Each file is written atomically.
"""
from __future__ import annotations

import contextlib
import gc
import os
import time
import warnings
from pathlib import Path

import numpy as np

from mapose.inference.pipeline import DynamicCropper, StageTimes, run_video, run_video_dynamic
from mapose.inference.runners import planned_workers

__all__ = ["analyze_videos"]

_ENGINES = ("torch", "onnx")


def _full_metadata(pm, pose_cfg: dict | None, n_frames: int) -> dict:
    from mapose.io.full_pickle import frame_key_width

    names = list(pm.bodyparts) + list(pm.unique_bodyparts)
    paf_best = (pose_cfg or {}).get("paf_best")
    return {
        "nms radius": (pose_cfg or {}).get("nmsradius"),
        "minimal confidence": (pose_cfg or {}).get("minconfidence"),
        "sigma": (pose_cfg or {}).get("sigma", 1),
        "PAFgraph": (pose_cfg or {}).get("partaffinityfield_graph"),
        # DLC: paf_best, else arange(len(graph)) of pose_cfg's (absent) graph -> empty
        "PAFinds": np.asarray(paf_best if paf_best is not None else
                              np.arange(len((pose_cfg or {}).get("partaffinityfield_graph") or [])),
                              dtype=np.int64),
        "all_joints": [[i] for i in range(len(names))],
        "all_joints_names": names,
        "nframes": n_frames,
        "key_str_width": frame_key_width(n_frames),  # n_frames None -> 5, like DLC's shelf
    }


def _read_pose_cfg(pm) -> dict:
    from mapose.io.config import yaml_load

    path = pm.model_folder / "test" / "pose_cfg.yaml"
    if not path.is_file():
        return {}
    try:
        return dict(yaml_load(path, what="pose_cfg.yaml") or {})
    except (OSError, ValueError) as exc:
        warnings.warn(f"could not read {path} ({exc}); using defaults.", UserWarning, stacklevel=4)
        return {}


class _VideoSink:
    """Per-frame consumer: streams the _full.pickle and collects the small per-frame arrays."""

    def __init__(self, writer, n_unique: int, identity: bool, keep_df: bool):
        self.writer = writer
        self.n_unique = n_unique
        self.identity = identity
        self.assemblies: dict[int, np.ndarray] = {}
        self.single: dict[int, np.ndarray] = {}
        self.keep_df = keep_df
        self.df_rows: list[np.ndarray] = []
        self.df_unique: list[np.ndarray] = []

    def __call__(self, index: int, pred) -> None:
        poses = pred.poses
        N, K = poses.shape[:2]
        coords = [np.ascontiguousarray(poses[:, k, :2]) for k in range(K)]
        confs = [np.ascontiguousarray(poses[:, k, 2:3]) for k in range(K)]
        frame = {"coordinates": None, "confidence": confs, "costs": None}
        if pred.unique is not None:
            for u in range(self.n_unique):
                coords.append(np.ascontiguousarray(pred.unique[u:u + 1, :2]))
                confs.append(np.ascontiguousarray(pred.unique[u:u + 1, 2:3]))
            self.single[index] = pred.unique.astype(np.float64)
        frame["coordinates"] = (coords,)
        if self.identity and pred.identity is not None:
            ids = [np.ascontiguousarray(pred.identity[:, k, :]) for k in range(K)]
            ids += [np.full((N, pred.identity.shape[2]), -1.0, np.float32) for _ in range(self.n_unique)]
            frame["identity"] = ids
        self.writer.add(index, frame)
        arr = poses[:, :, :4].astype(np.float64)
        if self.identity and pred.identity is not None:
            arr[:, :, 3] = pred.identity.argmax(axis=2)
        else:
            arr[:, :, 3] = -1.0
        with np.errstate(invalid="ignore"):
            arr = arr[~np.all(arr < 0, axis=(1, 2))]
        self.assemblies[index] = arr
        if self.keep_df:
            self.df_rows.append(poses[:, :, :3].reshape(-1))
            if pred.unique is not None:
                self.df_unique.append(pred.unique.reshape(-1))


def _write_df(stem: Path, scorer, pm, sink: _VideoSink, save_as_csv: bool) -> None:
    import pandas as pd

    from mapose.io.tracks_h5 import write_tracks_csv, write_tracks_h5

    cols = pd.MultiIndex.from_product(
        [[scorer], list(pm.individuals), list(pm.bodyparts), ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"])
    data = np.stack(sink.df_rows) if sink.df_rows else np.empty((0, len(cols)), np.float32)
    df = pd.DataFrame(data, columns=cols, index=np.arange(len(data)))
    if pm.unique_bodyparts and sink.df_unique:
        ucols = pd.MultiIndex.from_product(
            [[scorer], ["single"], list(pm.unique_bodyparts), ["x", "y", "likelihood"]],
            names=cols.names)
        df = df.join(pd.DataFrame(np.stack(sink.df_unique), columns=ucols, index=df.index))
    write_tracks_h5(str(stem) + ".h5", df, key="df_with_missing")
    if save_as_csv:
        write_tracks_csv(str(stem) + ".csv", df)


def _make_runner(pm, engine: str, device, half: bool):
    if engine == "torch":
        from mapose.inference.runners import TorchRunner

        return TorchRunner(pm.build_model(), device=device, half=half)
    from mapose.inference.export import export_onnx, onnx_path_for
    from mapose.inference.runners import OnnxRunner

    path = onnx_path_for(pm)
    if not path.is_file() or path.stat().st_mtime < pm.snapshot.stat().st_mtime:
        export_onnx(pm.build_model(), path)
    return OnnxRunner(path, device=device)


def analyze_videos(
    config,
    videos,
    videotype=None,
    shuffle: int = 1,
    trainingsetindex: int = 0,
    save_as_csv: bool = False,
    in_random_order: bool = False,
    snapshot_index=None,
    detector_snapshot_index=None,
    device=None,
    destfolder=None,
    batch_size: int | None = None,
    detector_batch_size: int | None = None,
    dynamic=(False, 0.5, 10),
    ctd_conditions=None,
    ctd_tracking: bool = False,
    top_down_dynamic=None,
    modelprefix: str = "",
    use_shelve: bool = False,
    robust_nframes: bool = False,
    transform=None,
    auto_track: bool = True,
    n_tracks: int | None = None,
    animal_names=None,
    calibrate: bool = False,
    identity_only: bool = False,
    overwrite: bool = False,
    cropping=None,
    save_as_df: bool = False,
    show_gpu_memory: bool = False,
    inference_cfg=None,
    *,
    video_extensions=None,
    gputouse=None,
    allow_growth: bool = False,
    engine: str = "torch",
    half: bool = False,
    progress: bool = True,
    scheduler=None,
    cluster=None,
    **kwargs,
) -> str:
    """Analyse videos with a trained DLC 3 multi-animal model (DLC 3.0.2 compatible).

    Parameters follow ``deeplabcut.analyze_videos`` (PyTorch engine); ``videotype`` and
    ``video_extensions`` are aliases, ``gputouse`` is an alias of ``device`` (an int picks
    ``cuda:<n>``), ``allow_growth`` is accepted for TF-era scripts and ignored.

    Additional keyword-only parameters:

    engine : {"torch", "onnx"}, default "torch"
        ``"onnx"`` exports the snapshot once to ONNX (next to DLC's exported models) and
        runs it with ONNX Runtime (CUDA provider when available).
    half : bool, default False
        float16 network on CUDA (torch engine).
    progress : bool, default True
        Progress bars with frames/s and a per-video stage summary.
    scheduler : str or distributed.Client, optional
        Run through the batch runner (:func:`mapose.batch.run_videos`) with one Dask task
        per video on this scheduler (``"tcp://host:8786"``); outputs are the same files,
        written with per-video checkpoints.  Needs the ``dask`` extra.
    cluster : str, optional
        ``"local:N"``: the same on a local Dask cluster of N worker processes.

    Returns
    -------
    str
        The DLC scorer name, e.g. ``"DLC_Resnet50_projANov23shuffle1_snapshot_best-50"``.

    Notes
    -----
    * A video whose ``_full.pickle`` exists is skipped unless ``overwrite=True`` (DLC).
    * Predictions are in cropped-frame coordinates (DLC); the crop is in ``_meta.pickle``.
    * ``dynamic=(True, threshold, margin)`` crops each frame around the previous frame's
      keypoints (DLC's bottom-up dynamic cropping, batch size 1, see
      :class:`mapose.inference.pipeline.DynamicCropper`); predictions are in full-frame
      (after ``cropping``) coordinates.
    * HRNet models (``data.inference.auto_padding``) get each frame padded to the
      divisors; DLC's ``position: random`` is replaced by the deterministic ``top_left``
      (padding at the bottom/right, see :mod:`mapose.inference.transforms`).  Other
      inference transforms (``resize``, ``longest_max_size``, augmentations) raise a
      ValueError naming the key.
    * Top-down/CTD models and single-animal projects are not supported yet and raise a
      ValueError instead of producing different results.
    """
    unknown = set(kwargs) - {"TFGPUinference", "return_detections"}
    if unknown:
        raise TypeError(f"analyze_videos() got unexpected keyword argument(s) {sorted(unknown)}.")
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}; got {engine!r}.")
    if video_extensions is None:
        video_extensions = videotype
    if device is None and gputouse is not None:
        device = gputouse
    dynamic_crop = _dynamic_cropper(dynamic)
    if ctd_tracking or ctd_conditions is not None or top_down_dynamic is not None:
        raise ValueError("conditional top-down (CTD) models are not supported by mapose yet.")
    if transform is not None:
        raise ValueError("custom `transform` pipelines are not supported by mapose; the model's "
                         "own inference transform (normalisation) is applied.")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) != batch_size
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}.")
    if dynamic_crop is not None and batch_size not in (None, 1):
        raise ValueError(f"dynamic cropping works one frame at a time (DLC); got batch_size="
                         f"{batch_size}. Pass batch_size=1 (or None).")
    if scheduler is not None or cluster is not None:
        from mapose.batch.cli import run_from_analyze_videos

        return run_from_analyze_videos(
            config, videos, scheduler=scheduler, cluster=cluster,
            video_extensions=video_extensions, shuffle=shuffle,
            trainingsetindex=trainingsetindex, save_as_csv=save_as_csv,
            in_random_order=in_random_order, snapshot_index=snapshot_index,
            detector_snapshot_index=detector_snapshot_index, device=device,
            destfolder=destfolder, batch_size=batch_size, dynamic=dynamic,
            modelprefix=modelprefix, use_shelve=use_shelve, robust_nframes=robust_nframes,
            auto_track=auto_track, n_tracks=n_tracks, animal_names=animal_names,
            calibrate=calibrate, identity_only=identity_only, overwrite=overwrite,
            cropping=cropping, save_as_df=save_as_df, inference_cfg=inference_cfg,
            engine=engine, half=half, progress=progress,
        )

    with _old_objects_frozen():
        return _analyze(config, videos, video_extensions, shuffle, trainingsetindex, save_as_csv,
                        in_random_order, snapshot_index, device, destfolder, batch_size,
                        dynamic_crop, modelprefix, use_shelve, auto_track, n_tracks, animal_names,
                        calibrate, identity_only, overwrite, cropping, save_as_df, engine, half,
                        progress)


@contextlib.contextmanager
def _old_objects_frozen():
    """Keep the cyclic garbage collector off the objects that existed before the call.

    With torch, OpenCV and ONNX Runtime imported, one full collection walks the whole
    heap -- 0.2 s on this project's 2-core test VM, holding the GIL -- and one is usually
    due right after those imports, i.e. early in the first call.  ``gc.freeze()`` moves
    the existing objects out of the collector's reach for the call (young objects are
    collected as usual, so memory stays flat), ``gc.unfreeze()`` puts them back after it.
    A caller that froze objects itself, or disabled the collector, is left alone.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _analyze(config, videos, video_extensions, shuffle, trainingsetindex, save_as_csv,
             in_random_order, snapshot_index, device, destfolder, batch_size, dynamic_crop,
             modelprefix, use_shelve, auto_track, n_tracks, animal_names, calibrate,
             identity_only, overwrite, cropping, save_as_df, engine, half, progress) -> str:
    from mapose.inference.pipeline import reader_batch_size
    from mapose.inference.project_model import _plain, find_project_model
    from mapose.inference.video import BatchReader, probe_video
    from mapose.io.config import config_get
    from mapose.io.full_pickle import FullPickleWriter, full_pickle_exists
    from mapose.io.project import list_videos, output_stem

    pm = find_project_model(config, shuffle, trainingsetindex, snapshot_index, modelprefix)
    inference_transform = _check_transform(pm)
    cfg = pm.cfg
    if batch_size is None:
        batch_size = int(config_get(cfg, "batch_size", 1) or 1)
        if dynamic_crop is not None and batch_size != 1:
            warnings.warn(f"dynamic cropping runs one frame at a time; ignoring the config's "
                          f"batch_size={batch_size}.", UserWarning, stacklevel=3)
            batch_size = 1
    if cropping is None and cfg.get("cropping", False):
        cropping = [cfg.get("x1"), cfg.get("x2"), cfg.get("y1"), cfg.get("y2")]
    scorer = pm.scorer
    if destfolder is not None:
        Path(destfolder).mkdir(parents=True, exist_ok=True)
    video_list = list_videos(videos, video_extensions, shuffle=in_random_order)
    if not video_list:
        warnings.warn(f"No videos found in {videos!r} (video_extensions={video_extensions!r}).",
                      UserWarning, stacklevel=3)
        return scorer
    pose_cfg = _read_pose_cfg(pm)
    runner = predictor = None
    n_unique = len(pm.unique_bodyparts)
    for video in video_list:
        stem = output_stem(video, scorer, destfolder)
        full_path = Path(str(stem) + "_full.pickle")
        if full_pickle_exists(full_path) and not overwrite:
            print(f"Video {video} already analyzed at {full_path}; skipping (overwrite=True re-runs it).")
            continue
        t_setup = time.perf_counter()
        start = time.time()
        info = probe_video(video, cropping)
        reader = None
        if dynamic_crop is None:
            # decoding starts now and runs while the model loads (OpenCV releases the GIL;
            # the model load and ONNX Runtime's session start hold it, so a thread for
            # them would gain nothing); run_video replaces the reader if the runner turns
            # out to want another batch size
            workers = runner.workers if runner is not None else planned_workers(engine, device)
            reader = BatchReader(info, reader_batch_size(batch_size, workers))
        try:
            if runner is None:
                runner = _make_runner(pm, engine, device, half)
                from mapose.inference.predictor import BottomUpPredictor

                predictor = BottomUpPredictor(runner_head_specs(runner, pm))
                # HRNet's auto_padding: pad before the network, map predictions back after
                runner, predictor = inference_transform.wrap(runner, predictor)
            if progress:
                print(f"Analyzing {video}: {info.n_frames} frames, {info.fps} fps, "
                      f"{info.width}x{info.height} px (engine={engine}, batch_size={batch_size})")
            identity = predictor.identity is not None
            # containers without a frame count (0) get DLC's unknown-length key width
            n_expected = info.n_frames or None
            with FullPickleWriter(full_path, _full_metadata(pm, pose_cfg, n_expected),
                                  n_frames=n_expected, use_shelve=use_shelve) as writer:
                sink = _VideoSink(writer, n_unique, identity, keep_df=save_as_df)
                times = StageTimes(setup=time.perf_counter() - t_setup)
                times.total = times.setup
                if dynamic_crop is None:
                    times = run_video(runner, predictor, info, batch_size, sink, progress=progress,
                                      reader=reader, times=times)
                else:
                    cropper = DynamicCropper(dynamic_crop[0], dynamic_crop[1], info.width, info.height)
                    times = run_video_dynamic(runner, predictor, info, cropper, sink,
                                              progress=progress, times=times)
                if times.n_frames == 0:
                    raise ValueError(f"video '{video}' produced no frames.")
                if times.n_frames != info.n_frames:
                    warnings.warn(f"{video}: {times.n_frames} frames were analysed but the "
                                  f"container reports {info.n_frames}.", UserWarning, stacklevel=3)
        finally:
            if reader is not None:
                reader.close()  # a failed model load must not leave the decoder running
        stop = time.time()
        t0 = time.perf_counter()
        crop = info.crop or (0, info.width, 0, info.height)
        from mapose.io.meta_pickle import write_meta_pickle

        write_meta_pickle(str(stem) + "_meta.pickle", {"data": {
            "start": start, "stop": stop, "run_duration": stop - start, "Scorer": scorer,
            "pytorch-config": _plain(pm.pytorch_cfg), "fps": info.fps, "batch_size": batch_size,
            "frame_dimensions": (info.width, info.height), "nframes": times.n_frames,
            "iteration (active-learning)": cfg.get("iteration"),
            "training set fraction": pm.train_fraction, "cropping": info.crop is not None,
            "cropping_parameters": list(crop), "individuals": list(pm.individuals),
            "bodyparts": list(pm.bodyparts), "unique_bodyparts": list(pm.unique_bodyparts),
        }})
        if save_as_df:
            _write_df(stem, scorer, pm, sink, save_as_csv)
        from mapose.io.assemblies_pickle import write_assemblies_pickle

        write_assemblies_pickle(str(stem) + "_assemblies.pickle", sink.assemblies,
                                single=sink.single if n_unique else None)
        times.write += time.perf_counter() - t0
        times.total += time.perf_counter() - t0
        if auto_track:
            t0 = time.perf_counter()
            _track(config, video, shuffle, trainingsetindex, destfolder, modelprefix, overwrite,
                   n_tracks, animal_names, save_as_csv, identity_only, calibrate, snapshot_index)
            times.tracking = time.perf_counter() - t0
            times.total += times.tracking
        if progress:
            print(f"{Path(video).name}: {times.summary()}")
        # per-video stage times of the last run, for benchmarks
        analyze_videos.last_times = times
    if progress:
        print("The videos are analyzed. Results are next to the videos"
              + (f" in {destfolder}." if destfolder else "."))
    return scorer


def _dynamic_cropper(dynamic):
    """``(threshold, margin)`` from DLC's ``dynamic=(state, threshold, margin)``, or None."""
    if dynamic is None or dynamic is False:
        return None
    try:
        state, threshold, margin = dynamic
    except (TypeError, ValueError):
        raise ValueError(f"dynamic must be a (state, detection threshold, margin) triple such as "
                         f"(True, 0.5, 10); got {dynamic!r}.") from None
    if not state:
        return None
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"dynamic=(True, threshold, margin): threshold must be a number; got "
                         f"{threshold!r}.") from None
    if isinstance(margin, bool) or not isinstance(margin, (int, np.integer, float)) \
            or margin != int(margin) or margin < 0:
        raise ValueError(f"dynamic=(True, threshold, margin): margin must be a whole number of "
                         f"pixels >= 0; got {margin!r}.")
    if not np.isfinite(threshold):
        raise ValueError(f"dynamic=(True, threshold, margin): threshold must be finite; got "
                         f"{threshold!r}.")
    return threshold, int(margin)


def runner_head_specs(runner, pm):
    """Head specs of the project's model (the ONNX runner has no torch module to ask)."""
    net = getattr(runner, "net", None)
    if net is not None:
        return net.model.head_specs
    from mapose.inference.project_model import _plain
    from mapose.models.specs import head_specs_from_config

    cfg = _plain(pm.pytorch_cfg)
    specs = head_specs_from_config(cfg)
    if specs is None:  # plugin backbone: ask the module (no weights needed)
        from mapose._optional import require
        from mapose.models.pose_model import PoseModel

        with require("torch", "plugin backbones").device("meta"):
            specs = PoseModel.from_config(cfg).head_specs
    return specs


def _check_transform(pm):
    """The model's inference transform; a ValueError naming the key mapose cannot apply."""
    from mapose.inference.transforms import InferenceTransform

    try:
        return InferenceTransform.from_config(pm.pytorch_cfg)
    except ValueError as exc:
        raise ValueError(f"{exc} (model: {pm.model_folder / 'train' / 'pytorch_config.yaml'})") from None


def _call_compatible(func, *args, **kwargs):
    """Call ``func`` with the keyword arguments its signature accepts (DLC renamed some)."""
    import inspect

    params = inspect.signature(func).parameters
    return func(*args, **{k: v for k, v in kwargs.items() if k in params})


def _track(config, video, shuffle, trainingsetindex, destfolder, modelprefix, overwrite,
           n_tracks, animal_names, save_as_csv, identity_only, calibrate, snapshot_index):
    try:
        from mapose.stitching.api import stitch_tracklets
        from mapose.tracking.convert import convert_detections2tracklets
    except ImportError as exc:
        raise ImportError(f"auto_track=True needs mapose's tracking and stitching modules ({exc}); "
                          "pass auto_track=False to stop after the assemblies.") from exc
    # DLC 3.0.2 passes `overwrite` on, so existing tracklets are regenerated
    _call_compatible(
        convert_detections2tracklets, config, [str(video)], shuffle=shuffle,
        trainingsetindex=trainingsetindex, overwrite=overwrite, destfolder=destfolder,
        modelprefix=modelprefix, identity_only=identity_only, calibrate=calibrate,
        snapshot_index=snapshot_index,
    )
    _call_compatible(
        stitch_tracklets, config, [str(video)], shuffle=shuffle, trainingsetindex=trainingsetindex,
        n_tracks=n_tracks, animal_names=animal_names, destfolder=destfolder,
        modelprefix=modelprefix, save_as_csv=save_as_csv, snapshot_index=snapshot_index,
    )


analyze_videos.last_times = None
