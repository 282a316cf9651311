"""Pipelined video inference: decode ∥ network ∥ post-processing.

Three stages run concurrently on one video:

1. :class:`~mapose.inference.video.BatchReader` decodes frames into uint8 batches in a
   background thread (bounded queue);
2. the calling thread runs the network on batch *i*;
3. a post-processing thread runs the predictor (peaks, PAF costs, assembly) on batch *i-1*
   and hands every frame to ``on_frame`` in order (streaming writers), so nothing
   proportional to the video length is held here.

The compiled kernels release the GIL, so stage 3 overlaps with the network even on CPU.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

__all__ = ["StageTimes", "run_video"]


@dataclass
class StageTimes:
    """Seconds spent per stage (decode and post-processing overlap the network)."""

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
                f"decode {self.decode:.2f} s, network {self.network:.2f} s, "
                f"post-processing {self.postprocess:.2f} s, writing {self.write:.2f} s, "
                f"tracking {self.tracking:.2f} s")


_END = object()


def run_video(runner, predictor, info, batch_size: int, on_frame, progress: bool = True,
              queue_size: int = 4, times: StageTimes | None = None) -> StageTimes:
    """Run inference over every frame of a video.

    Parameters
    ----------
    runner : callable
        ``runner(frames uint8 (B, H, W, 3)) -> {output name: ndarray}``.
    predictor : callable
        ``predictor(outputs) -> list of FramePrediction``.
    info : VideoInfo
    batch_size : int
    on_frame : callable
        ``on_frame(frame_index, prediction)``, called in frame order from the
        post-processing thread.
    progress : bool
        Show a tqdm bar (frames/s).

    Returns
    -------
    StageTimes
    """
    from mapose.inference.video import BatchReader

    times = times or StageTimes()
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.n_frames or None, unit="frame", desc=info.path.name, leave=True)
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

    worker = threading.Thread(target=post_worker, name="mapose-postprocess", daemon=True)
    worker.start()
    reader = BatchReader(info, batch_size, queue_size=queue_size)
    try:
        for start, frames in reader:
            if errors:
                break
            t0 = time.perf_counter()
            outputs = runner(frames)
            times.network += time.perf_counter() - t0
            post_q.put((start, outputs))
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
