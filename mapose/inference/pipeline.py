"""Pipelined video inference: decode ∥ network ∥ post-processing.

Three stages run concurrently on one video:

1. :class:`~mapose.inference.video.BatchReader` decodes frames into uint8 batches in a
   background thread (bounded queue);
2. the network runs on batch *i* (with frame-parallel workers, batch *i+1* is already
   queued behind it, so a worker that finishes its share goes on to the next batch);
3. a post-processing thread runs the predictor (peaks, PAF costs, assembly) on batch *i-1*
   and hands every frame to ``on_frame`` in order (streaming writers), so nothing
   proportional to the video length is held here.

The compiled kernels release the GIL, so stage 3 overlaps with the network even on CPU.
"""
from __future__ import annotations

import collections
import math
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["StageTimes", "run_video", "DynamicCropper", "run_video_dynamic"]


@dataclass
class StageTimes:
    """Seconds spent per stage (decode and post-processing overlap the network).

    ``setup`` is the time from opening the video until its frames go to the network
    (model load or ONNX Runtime session start for the first video, writer set-up);
    decoding already runs meanwhile.  ``total`` = setup + the pipeline's wall time +
    writing the small files after it + tracking.
    """

    setup: float = 0.0
    decode: float = 0.0
    network: float = 0.0
    postprocess: float = 0.0
    write: float = 0.0
    tracking: float = 0.0
    total: float = 0.0
    n_frames: int = 0

    @property
    def fps(self) -> float:
        return self.n_frames / self.total if self.total > 0 else 0.0

    def summary(self) -> str:
        return (f"{self.n_frames} frames in {self.total:.2f} s ({self.fps:.1f} frames/s); "
                f"setup {self.setup:.2f} s, decode {self.decode:.2f} s, network {self.network:.2f} s, "
                f"post-processing {self.postprocess:.2f} s, writing {self.write:.2f} s, "
                f"tracking {self.tracking:.2f} s")


_END = object()


def _progress_bar(info, start_frame: int):
    """A tqdm bar over the video's frames (frames/s), starting at ``start_frame``."""
    from tqdm import tqdm

    return tqdm(total=info.n_frames or None, initial=start_frame, unit="frame",
                desc=info.path.name, leave=True)


def reader_batch_size(batch_size: int, workers: int) -> int:
    """Frames per decoded batch for a runner with ``workers`` frame-parallel workers.

    A batch of 1 (DLC's default) would leave all but one worker idle, so a runner is
    handed at least one frame per worker.
    """
    return max(int(batch_size), int(workers or 1))


def run_video(runner, predictor, info, batch_size: int, on_frame, progress: bool = True,
              queue_size: int = 4, times: StageTimes | None = None,
              start_frame: int = 0, reader=None) -> StageTimes:
    """Run inference over every frame of a video.

    Parameters
    ----------
    runner : callable
        ``runner(frames uint8 (B, H, W, 3)) -> {output name: ndarray}``.
    predictor : callable
        ``predictor(outputs) -> list of FramePrediction``.
    info : VideoInfo
    batch_size : int
        Frames per forward pass.  A runner with ``workers`` > ``batch_size`` (see
        :mod:`mapose.inference.runners`) is handed ``workers`` frames at a time, which it
        splits into forward passes of at most ``batch_size`` frames each.
    on_frame : callable
        ``on_frame(frame_index, prediction)``, called in frame order from the
        post-processing thread.
    progress : bool
        Show a tqdm bar (frames/s).
    start_frame : int
        First frame to analyse (a resumed run); frame indices passed to ``on_frame`` stay
        absolute.
    reader : BatchReader, optional
        A reader of ``info`` started earlier (decoding while the runner was being set up,
        see :func:`mapose.inference.analyze.analyze_videos`); used when its batch size is
        :func:`reader_batch_size` of this runner and it starts at ``start_frame``, else
        replaced by a new one.  Closed on return either way.

    Returns
    -------
    StageTimes
    """
    from mapose.inference.video import BatchReader

    times = times or StageTimes()
    t_start = time.perf_counter()
    bar = _progress_bar(info, start_frame) if progress else None
    post_q: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []

    def post_worker():
        while True:
            item = post_q.get()
            if item is _END:
                return
            if errors:
                continue  # drain after a failure
            start, outputs = item
            try:
                t0 = time.perf_counter()
                preds = predictor(outputs)
                t1 = time.perf_counter()
                for i, pred in enumerate(preds):
                    on_frame(start + i, pred)
                times.postprocess += t1 - t0
                times.write += time.perf_counter() - t1
                times.n_frames += len(preds)
                if bar is not None:
                    bar.update(len(preds))
            except BaseException as exc:
                errors.append(exc)

    size = reader_batch_size(batch_size, getattr(runner, "workers", 1))
    if reader is not None and (reader.batch_size != size or reader.start_frame != start_frame
                               or reader.n_taken):
        reader.close()  # planned for another runner: nothing was taken from it yet
        reader = None
    if reader is None:
        reader = BatchReader(info, size, queue_size=queue_size, start_frame=start_frame)
    worker = threading.Thread(target=post_worker, name="mapose-postprocess", daemon=True)
    try:
        worker.start()
    except BaseException:
        reader.close()
        raise
    # only a runner class's own submit: a wrapper that forwards unknown attributes to the
    # runner it wraps (input transforms) must not be bypassed
    submit = runner.submit if getattr(type(runner), "submit", None) is not None else None
    in_flight: collections.deque = collections.deque()

    def collect():
        start, pending = in_flight.popleft()
        t0 = time.perf_counter()
        outputs = pending.result()
        times.network += time.perf_counter() - t0
        post_q.put((start, outputs))

    try:
        for start, frames in reader:
            if errors:
                break
            t0 = time.perf_counter()
            if submit is None:  # a plain callable
                outputs = runner(frames)
                times.network += time.perf_counter() - t0
                post_q.put((start, outputs))
                continue
            in_flight.append((start, submit(frames)))
            times.network += time.perf_counter() - t0
            # one batch queued behind the running one: workers never wait for each other
            if len(in_flight) > 1:
                collect()
        while in_flight and not errors:
            collect()
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


@dataclass
class DynamicCropper:
    """DLC's bottom-up dynamic cropping: the next frame is cropped around this frame's animals.

    The window starts as the full frame.  After each frame, every keypoint row of the
    frame's poses (in full-frame coordinates) that has no NaN is considered -- including
    the -1 rows that pad ``poses`` to ``num_animals`` (DLC shifts them by the window
    origin like real keypoints, and mapose reproduces that so the windows are DLC's) and
    low-score keypoints.  If there is none, or none scores ``>= threshold``, the next
    frame is uncropped; else the window is ``[floor(min x - margin), ceil(max x +
    margin)]`` by the same in y, clipped to the frame, and uncropped if it is empty.

    Parameters
    ----------
    threshold : float
        Score a keypoint must reach for the animals to count as detected.
    margin : int
        Pixels added on each side of the keypoints' bounding box.
    width, height : int
        Frame size (after any static ``cropping``).

    Attributes
    ----------
    window : tuple of int (x0, y0, x1, y1) or None
        Crop applied to the next frame; None for the full frame.
    """

    threshold: float
    margin: int
    width: int
    height: int
    window: tuple[int, int, int, int] | None = field(default=None)

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """Crop uint8 frames ``(1, H, W, 3)`` to :attr:`window` (a view when uncropped)."""
        if frames.shape[0] != 1:
            raise ValueError(f"dynamic cropping needs batch size 1; got a batch of {frames.shape[0]}.")
        if frames.shape[1:3] != (self.height, self.width):
            raise ValueError(f"frame size {frames.shape[2]}x{frames.shape[1]} differs from the "
                             f"video's {self.width}x{self.height}.")
        if self.window is None:
            return frames
        x0, y0, x1, y1 = self.window
        return np.ascontiguousarray(frames[:, y0:y1, x0:x1])

    def update(self, pred) -> None:
        """Shift ``pred`` (predicted in the cropped frame) to full-frame coordinates, in
        place, and compute the window for the next frame.

        The -1 padding rows of ``pred.poses`` stay -1 in the outputs (DLC shifts them too,
        which turns them into bogus low-score "animals" in its assemblies file), but take
        part in the window update at their shifted position, as in DLC.  Unique body parts
        are shifted as well (DLC leaves them in cropped coordinates).
        """
        ox, oy = (self.window[0], self.window[1]) if self.window is not None else (0, 0)
        poses = pred.poses
        kps = poses[..., :3].reshape(-1, 3).astype(np.float64)
        kps[:, 0] += ox
        kps[:, 1] += oy
        if ox or oy:
            real = ~np.all(poses[..., :3] == -1.0, axis=-1)
            poses[..., 0][real] += ox
            poses[..., 1][real] += oy
            if pred.unique is not None:
                pred.unique[:, 0] += ox
                pred.unique[:, 1] += oy
        kps = kps[~np.isnan(kps).any(axis=1)]
        if len(kps) == 0 or not np.any(kps[:, 2] >= self.threshold):
            self.window = None
            return
        x0 = self._clip(math.floor(kps[:, 0].min() - self.margin), self.width)
        x1 = self._clip(math.ceil(kps[:, 0].max() + self.margin), self.width)
        y0 = self._clip(math.floor(kps[:, 1].min() - self.margin), self.height)
        y1 = self._clip(math.ceil(kps[:, 1].max() + self.margin), self.height)
        self.window = None if (x1 == x0 or y1 == y0) else (x0, y0, x1, y1)

    @staticmethod
    def _clip(value: int, maximum: int) -> int:
        return min(max(int(value), 0), maximum)


def run_video_dynamic(runner, predictor, info, cropper: DynamicCropper, on_frame,
                      progress: bool = True, queue_size: int = 4,
                      times: StageTimes | None = None) -> StageTimes:
    """Like :func:`run_video` with dynamic cropping: one frame at a time.

    Each frame's crop depends on the previous frame's predictions, so the network and
    post-processing cannot overlap here; decoding still runs in the background.
    Predictions handed to ``on_frame`` are in full-frame coordinates.
    """
    from mapose.inference.video import BatchReader

    times = times or StageTimes()
    t_start = time.perf_counter()
    bar = _progress_bar(info, 0) if progress else None
    reader = BatchReader(info, 1, queue_size=queue_size)
    try:
        for start, frames in reader:
            t0 = time.perf_counter()
            outputs = runner(cropper.crop(frames))
            t1 = time.perf_counter()
            pred = predictor(outputs)[0]
            cropper.update(pred)
            t2 = time.perf_counter()
            on_frame(start, pred)
            times.network += t1 - t0
            times.postprocess += t2 - t1
            times.write += time.perf_counter() - t2
            times.n_frames += 1
            if bar is not None:
                bar.update(1)
    finally:
        reader.close()
        if bar is not None:
            bar.close()
    times.decode += reader.decode_time
    times.total += time.perf_counter() - t_start
    return times
