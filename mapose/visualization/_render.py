"""Video rendering core: threaded decode → draw → threaded encode, frames in order.

DeepLabCut decodes, draws (scikit-image) and encodes (OpenCV) one frame after the other
on one thread.  Here a reader thread decodes ahead into a bounded queue, the calling
thread draws, and a writer thread encodes; OpenCV releases the GIL while decoding and
encoding, so the three overlap.  The output is written to a hidden temporary sibling
and renamed onto the final name only when every frame was written, so an interrupted
or failed run never leaves a truncated video behind.

The drawing primitives reproduce DeepLabCut's pixels:

* :func:`disk_slices` / :func:`draw_disk` — the filled disk of ``skimage.draw.disk``:
  pixel centres ``(r, c)`` with ``((r - y)/R)**2 + ((c - x)/R)**2 < 1``, clipped to the
  frame, blended with ``skimage.draw.set_color`` semantics (``trunc(a·color + (1-a)·img)``).
* :func:`line_aa_pixels` — the pixel set of ``skimage.draw.line_aa`` (Zingl's
  anti-aliased Bresenham variant).  DLC paints every pixel of that set with the full
  skeleton colour (it ignores the anti-aliasing weights), and so do we.

Frames are BGR ``uint8`` arrays of shape ``(height, width, 3)`` (OpenCV's layout); colours
passed to the drawing helpers are therefore BGR too.
"""
from __future__ import annotations

import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mapose._optional import require

__all__ = [
    "VideoInfo", "probe_video", "render_video", "draw_disk", "line_aa_pixels",
    "draw_line_aa", "colormap_bgr", "put_label",
]

_QUEUE_DEPTH = 32
_END = object()


def _cv2():
    return require("cv2", "reading and writing videos")


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports about a video before decoding it."""

    path: Path
    width: int
    height: int
    fps: float
    nframes: int  # CAP_PROP_FRAME_COUNT; may be approximate for some containers


def probe_video(video) -> VideoInfo:
    """Open ``video`` with OpenCV and return its size, frame rate and frame count.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If OpenCV cannot open it as a video.
    """
    cv2 = _cv2()
    path = Path(video)
    if not path.is_file():
        raise FileNotFoundError(f"video={str(video)!r} does not exist; pass the path of a video file.")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(
                f"video={str(video)!r} could not be opened by OpenCV; is it a video file "
                "(avi, mp4, mov, mkv...) with a codec your OpenCV build can decode?"
            )
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        nframes = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise ValueError(f"video={str(video)!r} reports a frame size of {width}x{height}; it is not a readable video.")
    return VideoInfo(path, width, height, fps if fps > 0 else 30.0, max(nframes, 0))


class _Reader(threading.Thread):
    """Decode frames ahead of the consumer into a bounded queue (order preserved)."""

    def __init__(self, path: Path, stop: threading.Event):
        super().__init__(daemon=True, name="mapose-decode")
        self.path, self.stop = path, stop
        self.q: queue.Queue = queue.Queue(maxsize=_QUEUE_DEPTH)
        self.error: BaseException | None = None

    def run(self):
        cv2 = _cv2()
        cap = cv2.VideoCapture(str(self.path))
        try:
            while not self.stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    break
                while not self.stop.is_set():
                    try:
                        self.q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # re-raised in the consumer thread
            self.error = exc
        finally:
            cap.release()
            while True:
                try:
                    self.q.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    if self.stop.is_set():
                        break

    def frames(self):
        while True:
            item = self.q.get()
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item


class _Writer(threading.Thread):
    """Encode frames handed over through a bounded queue with ``cv2.VideoWriter``."""

    def __init__(self, path: Path, fourcc: str, fps: float, size: tuple[int, int]):
        super().__init__(daemon=True, name="mapose-encode")
        cv2 = _cv2()
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size, True)
        if not self.writer.isOpened():
            self.writer.release()
            raise ValueError(
                f"OpenCV cannot write a {Path(path).suffix!r} video with codec={fourcc!r}; "
                "use codec='mp4v' (mp4/avi/mov) or 'MJPG' (avi)."
            )
        self.q: queue.Queue = queue.Queue(maxsize=_QUEUE_DEPTH)
        self.error: BaseException | None = None
        self.count = 0

    def run(self):
        try:
            while True:
                frame = self.q.get()
                if frame is _END:
                    break
                if self.error is None:
                    self.writer.write(frame)
                    self.count += 1
        except BaseException as exc:
            self.error = exc
            while self.q.get() is not _END:  # drain so the producer never blocks
                pass
        finally:
            self.writer.release()

    def put(self, frame):
        if self.error is not None:
            raise self.error
        self.q.put(frame)


def _temp_sibling(path: Path) -> Path:
    # The container is chosen from the extension, so the temporary name keeps it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def render_video(
    video,
    output,
    paint: Callable[[int, np.ndarray], np.ndarray | None],
    *,
    codec: str = "mp4v",
    fps: float | None = None,
    crop: tuple[int, int, int, int] | None = None,
    n_required: int = 0,
    on_frame: Callable[[int, np.ndarray], None] | None = None,
) -> int:
    """Decode ``video``, call ``paint(index, frame)`` on every frame, encode to ``output``.

    Parameters
    ----------
    video : path
        Input video.
    output : path
        Output video; written atomically (temporary sibling, then rename).
    paint : callable
        ``paint(index, frame_bgr)`` draws in place on the ``(h, w, 3)`` uint8 frame (or
        returns a replacement frame of the same size).
    codec : str
        FourCC handed to ``cv2.VideoWriter``.
    fps : float, optional
        Output frame rate (default: the input's).
    crop : (x1, x2, y1, y2), optional
        Crop every decoded frame to ``[y1:y2, x1:x2]`` before painting.
    n_required : int
        The data refer to frames ``0 .. n_required-1``; fewer decoded frames is an error
        (raised after decoding, before the output is renamed into place).
    on_frame : callable, optional
        ``on_frame(index, painted_frame)`` after painting (used to save PNG frames).

    Returns
    -------
    int
        Number of frames written.
    """
    info = probe_video(video)
    width, height = info.width, info.height
    if crop is not None:
        x1, x2, y1, y2 = (int(v) for v in crop)
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            raise ValueError(
                f"crop (x1, x2, y1, y2)={crop!r} does not lie inside the {width}x{height} frames of "
                f"{str(video)!r}; fix x1/x2/y1/y2 in config.yaml or the analysis metadata."
            )
        width, height = x2 - x1, y2 - y1
    output = Path(output)
    tmp = _temp_sibling(output)
    stop = threading.Event()
    reader = _Reader(info.path, stop)
    writer = None
    n = 0
    try:
        writer = _Writer(tmp, codec, fps or info.fps, (width, height))
        reader.start()
        writer.start()
        for frame in reader.frames():
            if crop is not None:
                frame = np.ascontiguousarray(frame[y1:y2, x1:x2])
            out = paint(n, frame)
            if out is not None:
                frame = out
            if on_frame is not None:
                on_frame(n, frame)
            writer.put(frame)
            n += 1
        writer.put(_END)
        writer.join()
        if writer.error is not None:
            raise writer.error
        if n == 0:
            raise ValueError(f"video={str(video)!r} has no decodable frame.")
        if n < n_required:
            raise ValueError(
                f"the data hold frames up to index {n_required - 1}, but video={str(video)!r} has only "
                f"{n} frames; is this the video the data were computed from?"
            )
        os.replace(tmp, output)
    finally:
        stop.set()
        if writer is not None and writer.is_alive():
            try:
                writer.q.put_nowait(_END)
            except queue.Full:
                pass
            writer.join(timeout=5)
        if reader.is_alive():
            reader.join(timeout=5)
        if tmp.exists():
            tmp.unlink()
    return n


# --------------------------------------------------------------------------- drawing

# Compiled, scikit-image-identical primitives; their NumPy statements live in
# mapose.kernels.draw_ref (line_aa_pixels is re-exported for tests).
from mapose.kernels.draw import draw_disk, draw_line_aa  # noqa: E402
from mapose.kernels.draw_ref import line_aa_pixels  # noqa: E402


def colormap_bgr(name: str, n: int) -> np.ndarray:
    """``n`` colours sampled evenly from matplotlib colormap ``name``, as BGR uint8.

    Matches DLC's ``(ScalarMappable(cmap).to_rgba(linspace(0, 1, n))[:, :3] * 255).astype(uint8)``.

    Returns
    -------
    ndarray of shape (n, 3), uint8
    """
    mpl = require("matplotlib", "colormaps of labeled videos")
    try:
        cmap = mpl.colormaps[name]
    except KeyError:
        raise ValueError(
            f"colormap={name!r} is not a matplotlib colormap; use e.g. 'rainbow', 'viridis', "
            "'jet' or 'plasma' (config.yaml key 'colormap')."
        ) from None
    if n <= 0:
        return np.zeros((0, 3), dtype=np.uint8)
    rgb = (cmap(np.linspace(0, 1, n))[:, :3] * 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[:, ::-1])


def named_color_bgr(color) -> np.ndarray:
    """A matplotlib colour spec ('black', '#ff0000', (r, g, b) in 0..1) as BGR uint8."""
    mcolors = require("matplotlib.colors", "skeleton colours")
    try:
        rgba = mcolors.to_rgba(color)
    except ValueError:
        raise ValueError(
            f"skeleton_color={color!r} is not a colour matplotlib understands; use a name such as "
            "'black' or 'white', or a hex string like '#ff8800'."
        ) from None
    rgb = (np.array(rgba)[:3] * 255).astype(np.uint8)
    return rgb[::-1].copy()


def put_label(img: np.ndarray, text: str, x: float, y: float, color, scale: float = 0.5) -> None:
    """Write ``text`` with its lower-left corner near ``(x, y)``, outlined for contrast."""
    cv2 = _cv2()
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    h, w = img.shape[:2]
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (int(np.clip(x, 0, max(w - tw, 0))), int(np.clip(y, th, h - 1)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(v) for v in color), 1, cv2.LINE_AA)
