"""Videos of tracklets (``_el/_bx/_sk.pickle``) or assemblies (``_assemblies.pickle``).

DLC's ``create_video_from_pickled_tracks`` renders one matplotlib PNG per frame and calls
the ``ffmpeg`` executable (``-r 30``, so a 25 fps video gains duplicated frames).  Here
frames are drawn with OpenCV in the threaded pipeline and written at the input frame
rate, one output frame per input frame; no ``ffmpeg`` binary and no PNG round trip.

Each tracklet gets a fixed colour from a 20-colour qualitative palette (``tab20``
order, by tracklet id) and its id is written next to it; keypoints with likelihood
``> pcutoff`` are drawn as dots.  Assemblies have no tracklet id: they are numbered
by their position in the frame (or by their identity column when the model predicts
identity), unique body parts are drawn as ``single``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mapose.visualization import _project as proj
from mapose.visualization._render import draw_disk, probe_video, put_label, render_video

__all__ = ["create_video_from_pickled_tracks", "load_pickled_tracks"]

# matplotlib's tab20 (RGB), stored here so no matplotlib import is needed
_TAB20_RGB = np.array([
    (31, 119, 180), (174, 199, 232), (255, 127, 14), (255, 187, 120), (44, 160, 44),
    (152, 223, 138), (214, 39, 40), (255, 152, 150), (148, 103, 189), (197, 176, 213),
    (140, 86, 75), (196, 156, 148), (227, 119, 194), (247, 182, 210), (127, 127, 127),
    (199, 199, 199), (188, 189, 34), (219, 219, 141), (23, 190, 207), (158, 218, 229),
], dtype=np.uint8)
_PALETTE_BGR = np.ascontiguousarray(_TAB20_RGB[:, ::-1])
_SINGLE_BGR = np.array([255, 255, 255], dtype=np.uint8)


def track_color(track_id) -> np.ndarray:
    """BGR colour of a tracklet id (stable across runs and videos)."""
    if isinstance(track_id, str):
        return _SINGLE_BGR
    # even ids take the saturated half of tab20, odd ids the pale half, so neighbours differ
    k = int(track_id)
    return _PALETTE_BGR[(2 * k) % 20 if (k // 10) % 2 == 0 else (2 * k + 1) % 20]


def _as_xyp(value) -> np.ndarray:
    """(n_bodyparts, 3) x, y, likelihood from a tracklet/assembly entry of any DLC layout."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        # skeleton-tracker quirk: a predicted state flattened as [x0, y0, 1, x1, y1, 1, ...]
        if arr.size % 3:
            raise ValueError(f"a flat tracklet entry must hold x, y, likelihood triples; got {arr.size} values.")
        return arr.reshape(-1, 3)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"a tracklet entry must be (n_bodyparts, 3 or 4); got shape {arr.shape}.")
    return arr[:, :3]


def load_pickled_tracks(pickle_file) -> dict:
    """Read tracklets or assemblies into ``{frame: [(label, track_key, xyp (n, 3)), ...]}``.

    ``track_key`` is the tracklet id (int), the assembly number, or ``"single"``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or a pickle that is neither tracklets nor assemblies.
    """
    from mapose.io.full_pickle import frame_index
    from mapose.io.safe_pickle import read_pickle

    path = Path(pickle_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"pickle_file={str(pickle_file)!r} does not exist; pass a tracklet pickle "
            "(<video><scorer>_el.pickle / _bx / _sk) or an _assemblies.pickle."
        )
    raw = read_pickle(path, what="tracklet or assemblies pickle")
    if not isinstance(raw, dict):
        raise ValueError(f"pickle_file={str(path)!r} holds a {type(raw).__name__}, not tracklets or assemblies.")
    frames: dict[int, list] = {}
    if "header" in raw:
        from mapose.io.tracklets_pickle import read_tracklets_pickle, tracklet_ids

        tracks = read_tracklets_pickle(path)
        for tid in tracklet_ids(tracks):
            for key, value in tracks[tid].items():
                frames.setdefault(frame_index(key), []).append((str(int(tid)), int(tid), _as_xyp(value)))
        for key, value in (tracks.get("single") or {}).items():
            frames.setdefault(frame_index(key), []).append(("single", "single", _as_xyp(value)))
        return frames
    if "metadata" in raw:
        raise ValueError(
            f"pickle_file={str(path)!r} is a _full.pickle; use create_video_with_all_detections for raw "
            "detections, or pass the _el/_bx/_sk.pickle or _assemblies.pickle."
        )
    from mapose.io.assemblies_pickle import read_assemblies_pickle

    assemblies, single = read_assemblies_pickle(path)
    for idx, arr in assemblies.items():
        arr = np.asarray(arr, dtype=np.float64)
        for n, animal in enumerate(arr):
            group = animal[:, 3] if animal.shape[1] > 3 else np.full(len(animal), -1.0)
            ids = group[np.isfinite(group) & (group >= 0)]
            key = int(ids[0]) if ids.size else n
            frames.setdefault(int(idx), []).append((str(key), key, animal[:, :3]))
    for idx, arr in single.items():
        frames.setdefault(int(idx), []).append(("single", "single", _as_xyp(arr)))
    return frames


def create_video_from_pickled_tracks(video, pickle_file, destfolder="", output_name="", pcutoff=0.6):
    """Draw tracklets or assemblies from a pickle on ``video``, one colour and label per id.

    Parameters
    ----------
    video : str or Path
        The analysed video.
    pickle_file : str or Path
        ``<video><scorer>_el.pickle`` (or ``_bx``/``_sk``, any DLC layout) or
        ``<video><scorer>_assemblies.pickle``.
    destfolder : str, optional
        Output folder; default: the video's path without extension (a folder), as DLC.
    output_name : str, optional
        Output file name (relative to ``destfolder``); default ``<stem>DLClabeled<ext>``.
    pcutoff : float
        Keypoints with likelihood ``> pcutoff`` are drawn.

    Returns
    -------
    Path
        The written video.

    Raises
    ------
    FileNotFoundError
        Missing video or pickle.
    ValueError
        The pickle refers to frames beyond the video, or its keypoints do not fit the frame.
    """
    video = Path(video)
    info = probe_video(video)
    frames = load_pickled_tracks(pickle_file)
    if not destfolder:
        destfolder = str(video.with_suffix(""))
    if not output_name:
        output_name = video.stem + "DLClabeled" + video.suffix
    output = Path(destfolder) / output_name
    if not output.suffix:
        raise ValueError(f"output_name={output_name!r} needs a video extension such as '.mp4' or '.avi'.")

    n_required = max(frames, default=-1) + 1
    if info.nframes and n_required > info.nframes:
        raise ValueError(
            f"pickle_file={str(pickle_file)!r} holds frame {n_required - 1}, but video {str(video)!r} has "
            f"{info.nframes} frames; pass the video the tracks were computed from."
        )
    xs = [xyp[:, 0] for items in frames.values() for _, _, xyp in items]
    ys = [xyp[:, 1] for items in frames.values() for _, _, xyp in items]
    ps = [xyp[:, 2] for items in frames.values() for _, _, xyp in items]
    if xs:
        with np.errstate(invalid="ignore"):
            proj.check_coordinates_fit(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps) > pcutoff,
                                       info, f"pickle {Path(pickle_file).name}")
    radius = max(2.0, 0.01 * max(info.width, info.height))

    def paint(index, img):
        for label, key, xyp in frames.get(index, ()):
            with np.errstate(invalid="ignore"):
                vis = (xyp[:, 2] > pcutoff) & np.isfinite(xyp[:, 0]) & np.isfinite(xyp[:, 1])
            if not vis.any():
                continue
            color = track_color(key)
            for x, y in xyp[vis, :2]:
                draw_disk(img, x, y, radius, color)
            # the label sits above the animal's topmost visible keypoint
            top = int(np.argmin(xyp[vis, 1]))
            put_label(img, label, xyp[vis, 0][top] + radius, xyp[vis, 1][top] - radius - 2, color)
        return None

    render_video(video, output, paint, codec="mp4v", n_required=n_required)
    return output
