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
import queue
import threading
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["resumable_analyze_stage", "SeekingBatchReader", "UNRESUMABLE_OPTIONS"]

#: analyze_videos options this stage does not implement; jobs using them run the plain
#: (restart-from-frame-0) network stage instead.
UNRESUMABLE_OPTIONS = ("dynamic", "ctd_conditions", "ctd_tracking", "top_down_dynamic", "transform")

_END = object()


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


class SeekingBatchReader:
    """:class:`mapose.inference.video.BatchReader` that starts at frame ``start``.

    Decodes in a daemon thread into a bounded queue of ``(start_index, frames)`` batches
    (uint8 (b, H, W, 3), cropped, C-contiguous).  The seek uses OpenCV's frame position
    and is verified; if the container cannot report it, the video is reopened and the
    first ``start`` frames are skipped with ``grab()`` (exact for every codec).
    """

    def __init__(self, info, batch_size: int, start: int = 0, queue_size: int = 4):
        self.info = info
        self.batch_size = int(batch_size)
        self.start = int(start)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self.decode_time = 0.0
        self.n_read = 0
        self.seek_method = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mapose-seek-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _open(self, cv2):
        cap = cv2.VideoCapture(str(self.info.path))
        if not self.start:
            return cap
        if cap.set(cv2.CAP_PROP_POS_FRAMES, self.start) \
                and int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == self.start:
            self.seek_method = "seek"
            return cap
        cap.release()
        cap = cv2.VideoCapture(str(self.info.path))
        for _ in range(self.start):
            if not cap.grab():
                break
        self.seek_method = "grab"
        return cap

    def _run(self):
        from mapose._optional import require

        cv2 = require("cv2", "reading videos")
        t0 = time.perf_counter()
        cap = self._open(cv2)
        self.decode_time += time.perf_counter() - t0
        try:
            crop = self.info.crop
            buf = np.empty((self.batch_size, self.info.height, self.info.width, 3), np.uint8)
            n_in, start = 0, self.start
            while not self._stop.is_set():
                t0 = time.perf_counter()
                ok, frame = cap.read()
                if not ok or frame is None:
                    self.decode_time += time.perf_counter() - t0
                    break
                if crop is not None:
                    frame = frame[crop[2]:crop[3], crop[0]:crop[1]]
                if frame.shape[:2] != buf.shape[1:3]:
                    raise ValueError(f"frame {start + n_in} of '{self.info.path}' has size "
                                     f"{frame.shape[1]}x{frame.shape[0]}; expected "
                                     f"{buf.shape[2]}x{buf.shape[1]} (all frames must be equal).")
                buf[n_in] = frame
                n_in += 1
                self.decode_time += time.perf_counter() - t0
                if n_in == self.batch_size:
                    if not self._put((start, buf)):
                        return
                    start += n_in
                    self.n_read += n_in
                    n_in = 0
                    buf = np.empty_like(buf)
            if n_in and not self._stop.is_set():
                self._put((start, buf[:n_in]))
                self.n_read += n_in
            self._put(_END)
        except BaseException as exc:  # surfaced in the consumer
            self._put(exc)
        finally:
            cap.release()

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def run_video_from(runner, predictor, info, batch_size: int, on_frame, start: int = 0,
                   progress: bool = True, times=None):
    """:func:`mapose.inference.pipeline.run_video` from frame ``start`` on.

    Decoding, the network (calling thread) and post-processing (a worker thread handing
    frames to ``on_frame`` in order) overlap exactly as there.
    """
    from mapose.inference.pipeline import StageTimes

    times = times or StageTimes()
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.n_frames or None, initial=start, unit="frame",
                   desc=info.path.name, leave=True)
    post_q: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []

    def post_worker():
        while True:
            item = post_q.get()
            if item is _END:
                return
            if errors:
                continue
            first, outputs = item
            try:
                t0 = time.perf_counter()
                preds = predictor(outputs)
                t1 = time.perf_counter()
                for i, pred in enumerate(preds):
                    on_frame(first + i, pred)
                times.postprocess += t1 - t0
                times.write += time.perf_counter() - t1
                times.n_frames += len(preds)
                if bar is not None:
                    bar.update(len(preds))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)

    worker = threading.Thread(target=post_worker, name="mapose-postprocess", daemon=True)
    worker.start()
    reader = SeekingBatchReader(info, batch_size, start=start)
    try:
        for first, frames in reader:
            if errors:
                break
            t0 = time.perf_counter()
            outputs = runner(frames)
            times.network += time.perf_counter() - t0
            post_q.put((first, outputs))
    finally:
        reader.close()
        post_q.put(_END)
        worker.join()
        if bar is not None:
            bar.close()
    times.decode += reader.decode_time
    times.total += time.perf_counter() - t_start
    if errors:
        raise errors[0]
    return times


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
        times = run_video_from(runner, predictor, info, batch_size, sink, start=start,
                               progress=progress)
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
