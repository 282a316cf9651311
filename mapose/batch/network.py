"""The network stage of one video, resumable frame by frame.

:func:`resumable_analyze_stage` does what ``analyze_videos(auto_track=False)`` does for one
video (same model resolution, runner, predictor and per-frame records, so the files are
the same), but streams every output through persistent spools next to the video's
results and checkpoints them every ``checkpoint_every`` frames:

* ``_full.pickle``: :class:`mapose.io.full_pickle.FullPickleWriter` with ``resume=True``
  (plain pickle or shelve), whose JSON record holds ``frames_done`` and the digests of
  every spool at that frame;
* ``_assemblies.pickle``: :class:`mapose.io.assemblies_pickle.AssembliesPickleWriter`
  (so the assemblies are never held in memory either);
* with ``save_as_df``, the rows of the ``.h5``/``.csv`` table (raw float rows).

A run that dies (exception, SIGKILL, a lost Dask worker) leaves the spools and the record;
the next run verifies them, cuts off whatever was written after the last checkpoint,
seeks the video to ``frames_done`` and appends.  Checkpoints fall on batch boundaries, so
the network sees exactly the batches of an uninterrupted run and the finished files are
byte-identical to one.  A checkpoint that does not verify (corrupt or truncated spool,
other model or settings) is discarded with a :class:`~mapose.io.full_pickle.ResumeWarning`
and the video starts over.  Final files are renamed into place only when complete.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["resumable_analyze_stage", "UNRESUMABLE_OPTIONS"]

#: analyze_videos options this stage does not implement; jobs using them run the plain
#: (restart-from-frame-0) network stage instead.
UNRESUMABLE_OPTIONS = ("dynamic", "ctd_conditions", "ctd_tracking", "top_down_dynamic", "transform")


def _make_runner(pm, engine: str, device, half: bool):
    # indirection point: tests count forward passes by wrapping the runner built here
    from mapose.inference.analyze import _make_runner as make

    return make(pm, engine, device, half)


def resumable(job) -> bool:
    """True if ``job``'s network options are all supported by :func:`resumable_analyze_stage`."""
    kw = job.analyze_kwargs
    for name in UNRESUMABLE_OPTIONS:
        value = kw.get(name)
        if name == "dynamic":
            if value not in (None, False) and not (isinstance(value, (tuple, list)) and value
                                                   and not value[0]):
                return False
        elif value not in (None, False):
            return False
    return True


class _RowSpool:
    """Fixed-width float rows appended to a :class:`ResumableSpool` (the df table rows)."""

    def __init__(self, spool, dtype=None, width=None):
        self.spool = spool
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.width = width

    def append(self, row) -> None:
        row = np.ascontiguousarray(row).reshape(-1)
        if self.dtype is None:
            self.dtype, self.width = row.dtype, row.size
        self.spool.write(row.astype(self.dtype, copy=False).tobytes())

    def checkpoint(self) -> dict:
        return {"spool": self.spool.checkpoint(),
                "dtype": None if self.dtype is None else self.dtype.str, "width": self.width}

    def rows(self) -> list:
        if self.dtype is None or not self.spool.size:
            return []
        self.spool._fh.flush()
        data = np.fromfile(self.spool.path, dtype=self.dtype, count=self.spool.size // self.dtype.itemsize)
        return list(data.reshape(-1, self.width))


class _Forward:
    """Dict/list stand-in whose writes go to a callback (``sink.assemblies[i] = a``)."""

    def __init__(self, setitem=None, append=None):
        self._setitem = setitem
        self._append = append

    def __setitem__(self, key, value):
        self._setitem(key, value)

    def append(self, value):
        self._append(value)


def _companion_paths(full_path: Path) -> dict:
    base = full_path.with_name(f".{full_path.name}.resume")
    return {name: Path(f"{base}.{name}.spool")
            for name in ("asm-frames", "asm-single", "df-rows", "df-unique")}


def _discard_companions(full_path: Path) -> None:
    for p in _companion_paths(full_path).values():
        p.unlink(missing_ok=True)


def _video_key(path) -> dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def resumable_analyze_stage(job):
    """Network stage of ``job`` with frame-level checkpoints (see the module docstring).

    ``job.analyze_kwargs`` takes ``analyze_videos``'s options (``batch_size``, ``device``,
    ``engine``, ``half``, ``cropping``, ``use_shelve``, ``save_as_df``, ``save_as_csv``,
    ``snapshot_index``, ``progress``); ``job.checkpoint_every`` sets the checkpoint
    interval (rounded up to a multiple of the batch size).

    Returns
    -------
    StageReport
        ``frames`` analysed in total, ``info["resumed_from"]`` (first frame run now) and
        ``info["forward_frames"]`` (frames the network ran on in this call).
    """
    from mapose.batch.stages import StageReport
    from mapose.inference import analyze as A
    from mapose.inference.pipeline import run_video
    from mapose.inference.predictor import BottomUpPredictor
    from mapose.inference.project_model import find_project_model
    from mapose.inference.video import probe_video
    from mapose.io.assemblies_pickle import AssembliesPickleWriter
    from mapose.io.config import config_get
    from mapose.io.full_pickle import (FullPickleWriter, ResumableSpool, ResumeWarning,
                                       discard_resume_state)

    kw = dict(job.analyze_kwargs)
    device = kw.get("device", kw.get("gputouse"))
    engine = kw.get("engine", "torch")
    half = bool(kw.get("half", False))
    use_shelve = bool(kw.get("use_shelve", False))
    save_as_df = bool(kw.get("save_as_df", False))
    progress = bool(kw.get("progress", False))
    if engine not in A._ENGINES:
        raise ValueError(f"engine must be one of {A._ENGINES}; got {engine!r}.")
    pm = find_project_model(job.config, job.shuffle, job.trainingsetindex,
                            kw.get("snapshot_index"), job.modelprefix)
    # InferenceTransform: pads HRNet frames (auto_padding); wrap() is a no-op otherwise
    transform = A._check_transform(pm)
    cfg = pm.cfg
    batch_size = kw.get("batch_size")
    if batch_size is None:
        batch_size = int(config_get(cfg, "batch_size", 1) or 1)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}.")
    batch_size = int(batch_size)
    cropping = kw.get("cropping")
    if cropping is None and cfg.get("cropping", False):
        cropping = [cfg.get("x1"), cfg.get("x2"), cfg.get("y1"), cfg.get("y2")]
    info = probe_video(job.video, cropping)
    every = int(job.checkpoint_every)
    every = -(-every // batch_size) * batch_size if every > 0 else 0  # batch boundaries
    n_expected = info.n_frames or None
    full_path = job.path("_full.pickle")
    snap = os.stat(pm.snapshot)
    run_key = {"video": _video_key(job.video), "snapshot": str(pm.snapshot),
               "snapshot_size": int(snap.st_size), "snapshot_mtime_ns": int(snap.st_mtime_ns),
               "engine": engine, "half": half, "device": str(device), "batch_size": batch_size,
               "crop": list(info.crop) if info.crop else None, "use_shelve": use_shelve,
               "save_as_df": save_as_df, "scorer": job.scorer, "every": every}
    pose_cfg = A._read_pose_cfg(pm)
    metadata = A._full_metadata(pm, pose_cfg, n_expected)
    n_unique = len(pm.unique_bodyparts)
    spools = _companion_paths(full_path)

    def open_writer():
        return FullPickleWriter(full_path, metadata, n_frames=n_expected, use_shelve=use_shelve,
                                resume=True, checkpoint_every=every, run_key=run_key)

    writer = open_writer()
    start = writer.frames_done
    extra = writer.resumed_extra
    asm = rows = uniq = None
    if start:
        try:
            asm = AssembliesPickleWriter.reopen(
                job.path("_assemblies.pickle"), (spools["asm-frames"], spools["asm-single"]),
                extra["assemblies"])
            if save_as_df:
                rows = _RowSpool(ResumableSpool.reopen(spools["df-rows"], extra["df_rows"]["spool"]),
                                 extra["df_rows"]["dtype"], extra["df_rows"]["width"])
                uniq = _RowSpool(ResumableSpool.reopen(spools["df-unique"], extra["df_unique"]["spool"]),
                                 extra["df_unique"]["dtype"], extra["df_unique"]["width"])
        except (KeyError, TypeError, ValueError, OSError) as exc:
            warnings.warn(f"{full_path.name}: the assemblies/table checkpoint of the interrupted "
                          f"run is unusable ({exc}); starting over from frame 0.", ResumeWarning,
                          stacklevel=2)
            writer.suspend()
            discard_resume_state(full_path)
            writer = open_writer()
            start, extra = 0, {}
    if not start:
        _discard_companions(full_path)
        asm = AssembliesPickleWriter(job.path("_assemblies.pickle"),
                                     (ResumableSpool(spools["asm-frames"]),
                                      ResumableSpool(spools["asm-single"])))
        if save_as_df:
            rows = _RowSpool(ResumableSpool(spools["df-rows"]))
            uniq = _RowSpool(ResumableSpool(spools["df-unique"]))
    t_begin = float(extra.get("start_time", time.time()))
    elapsed_before = float(extra.get("elapsed", 0.0))
    t_run = time.time()

    def checkpoint_state():
        state = {"assemblies": asm.checkpoint(), "start_time": t_begin,
                 "elapsed": elapsed_before + time.time() - t_run}
        if save_as_df:
            state["df_rows"] = rows.checkpoint()
            state["df_unique"] = uniq.checkpoint()
        return state

    writer.checkpoint_extra = checkpoint_state
    try:
        runner = _make_runner(pm, engine, device, half)
        predictor = BottomUpPredictor(A.runner_head_specs(runner, pm))
        if hasattr(transform, "wrap"):
            runner, predictor = transform.wrap(runner, predictor)
        identity = predictor.identity is not None
        sink = A._VideoSink(writer, n_unique, identity, keep_df=save_as_df)
        pending: dict = {}
        sink.single = _Forward(setitem=pending.__setitem__)
        sink.assemblies = _Forward(setitem=lambda i, a: asm.add(i, a, pending.pop(i, None)))
        if save_as_df:
            sink.df_rows = _Forward(append=rows.append)
            sink.df_unique = _Forward(append=uniq.append)
        if progress:
            print(f"Analyzing {job.video}: {info.n_frames} frames"
                  + (f", resuming at frame {start}" if start else ""))
        times = run_video(runner, predictor, info, batch_size, sink, progress=progress,
                          start_frame=start)
        total = start + times.n_frames
        if total == 0:
            raise ValueError(f"video '{job.video}' produced no frames.")
        if total != info.n_frames:
            warnings.warn(f"{job.video}: {total} frames were analysed but the container "
                          f"reports {info.n_frames}.", UserWarning, stacklevel=2)
        # everything durable before any file is committed: a crash while committing
        # resumes at the end instead of starting over
        writer.checkpoint(checkpoint_state())
    except BaseException:
        _suspend_all(writer, asm, rows, uniq)
        raise
    try:
        _commit(job, pm, cfg, info, batch_size, total, t_begin, elapsed_before + time.time() - t_run,
                save_as_df, kw, sink, rows, uniq, asm, writer)
    except BaseException:
        _suspend_all(writer, asm, rows, uniq)
        raise
    _discard_companions(full_path)
    return StageReport("analyze", frames=total,
                       info={"resumed_from": start, "forward_frames": times.n_frames})


def _suspend_all(writer, asm, rows, uniq) -> None:
    """Close every spool, keeping the last checkpoint (an interrupted run)."""
    writer.suspend()
    asm.suspend()
    for r in (rows, uniq):
        if r is not None:
            r.spool.close()


def _commit(job, pm, cfg, info, batch_size, total, t_begin, duration, save_as_df, kw, sink,
            rows, uniq, asm, writer) -> None:
    """Write ``_meta``, the table, ``_assemblies`` and finally ``_full`` (removing the record)."""
    from mapose.inference import analyze as A
    from mapose.inference.project_model import _plain
    from mapose.io.meta_pickle import write_meta_pickle

    crop = info.crop or (0, info.width, 0, info.height)
    write_meta_pickle(job.path("_meta.pickle"), {"data": {
        "start": t_begin, "stop": t_begin + duration, "run_duration": duration,
        "Scorer": job.scorer, "pytorch-config": _plain(pm.pytorch_cfg), "fps": info.fps,
        "batch_size": batch_size, "frame_dimensions": (info.width, info.height),
        "nframes": total, "iteration (active-learning)": cfg.get("iteration"),
        "training set fraction": pm.train_fraction, "cropping": info.crop is not None,
        "cropping_parameters": list(crop), "individuals": list(pm.individuals),
        "bodyparts": list(pm.bodyparts), "unique_bodyparts": list(pm.unique_bodyparts),
    }})
    if save_as_df:
        sink.df_rows, sink.df_unique = rows.rows(), uniq.rows()
        A._write_df(job.stem, job.scorer, pm, sink, bool(kw.get("save_as_csv", job.save_as_csv)))
        rows.spool.close()
        uniq.spool.close()
    # spools kept until the record is gone: a crash in between resumes at the end
    asm.close(keep_spools=True)
    writer.close()  # removes the checkpoint record
