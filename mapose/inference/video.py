"""Video decoding in a background thread with a bounded queue of frame batches."""
from __future__ import annotations

import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mapose._optional import require

__all__ = ["VideoInfo", "probe_video", "BatchReader", "normalize_cropping"]


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video (sizes after cropping)."""

    path: Path
    n_frames: int
    fps: float
    width: int
    height: int
    full_width: int
    full_height: int
    crop: tuple[int, int, int, int] | None  # x1, x2, y1, y2


def normalize_cropping(cropping, width: int, height: int):
    """Validate ``(x1, x2, y1, y2)`` against the frame; clip the ends with a warning (DLC)."""
    if cropping is None:
        return None
    try:
        x1, x2, y1, y2 = (int(v) for v in cropping)
    except (TypeError, ValueError):
        raise ValueError(f"cropping must be (x1, x2, y1, y2) integers or None; got {cropping!r}.") from None
    if x2 > width or y2 > height:
        warnings.warn(f"cropping {cropping!r} extends beyond the {width}x{height} frame; clipping it.",
                      UserWarning, stacklevel=3)
        x2, y2 = min(x2, width), min(y2, height)
    if not (0 <= x1 < x2 and 0 <= y1 < y2):
        raise ValueError(f"cropping={cropping!r} is empty or negative for a {width}x{height} video; "
                         "need 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height.")
    return x1, x2, y1, y2


def probe_video(path, cropping=None) -> VideoInfo:
    """Open a video with OpenCV and read its metadata.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        OpenCV cannot open or decode it, or it has no frames.
    """
    cv2 = require("cv2", "reading videos")
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"video not found: '{path}'.")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"OpenCV cannot open video '{path}' (corrupt file or unsupported codec).")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ValueError(f"video '{path}' has no decodable frames (empty or corrupt).")
        h, w = frame.shape[:2]
    finally:
        cap.release()
    crop = normalize_cropping(cropping, w, h)
    cw, ch = (crop[1] - crop[0], crop[3] - crop[2]) if crop else (w, h)
    return VideoInfo(path, max(n, 0), round(fps, 2), cw, ch, w, h, crop)


class BatchReader:
    """Decode a video in a daemon thread; iterate over ``(start_index, frames)`` batches.

    ``frames`` is uint8 (b, H, W, 3) BGR, already cropped, C-contiguous.  At most
    ``queue_size`` batches wait in memory, so memory stays flat in video length.  Decoding
    time is accumulated in :attr:`decode_time`.  Errors in the thread are re-raised in the
    consumer.  ``start_frame`` > 0 skips that many frames first (a resumed run): they are
    skipped with ``grab()`` rather than OpenCV's frame seek, which lands on a neighbouring
    frame for some codecs/containers (B-frames, variable frame rate), and decoding is cheap
    next to the network.
    """

    _END = object()

    def __init__(self, info: VideoInfo, batch_size: int, queue_size: int = 4,
                 start_frame: int = 0):
        if int(start_frame) < 0:
            raise ValueError(f"start_frame must be >= 0; got {start_frame!r}.")
        self.info = info
        self.batch_size = int(batch_size)
        self.start_frame = int(start_frame)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self.decode_time = 0.0
        self.n_read = 0
        self.n_taken = 0  # batches handed to the consumer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mapose-video-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        cv2 = require("cv2", "reading videos")
        cap = cv2.VideoCapture(str(self.info.path))
        try:
            t0 = time.perf_counter()
            skipped = 0
            while skipped < self.start_frame and not self._stop.is_set() and cap.grab():
                skipped += 1
            self.decode_time += time.perf_counter() - t0
            if skipped < self.start_frame and not self._stop.is_set():
                raise ValueError(f"cannot start at frame {self.start_frame} of "
                                 f"'{self.info.path}': the video has only {skipped} frames.")
            crop = self.info.crop
            buf = np.empty((self.batch_size, self.info.height, self.info.width, 3), np.uint8)
            n_in, start = 0, self.start_frame
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
            self._put(self._END)
        except BaseException as exc:  # surfaced in the consumer
            self._put(exc)
        finally:
            cap.release()

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            self.n_taken += 1
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
