"""Labeled videos: final tracks (``create_labeled_video``) and raw detections.

Both functions keep DeepLabCut 3.0.2's names, arguments, defaults, output names and
pixels (disks of ``skimage.draw.disk``, DLC's colour sampling, ``>``/``>=`` cut-offs), and
render with :func:`mapose.visualization._render.render_video`: decoding and encoding run
in background threads while the caller thread draws, frames stay in order.

Differences from DLC, all deliberate:

* every frame of the video is written (DLC stops at ``min(video frames, data rows)``, so
  stitched tracks that end early truncate its video); frames without data are copied;
* data that do not fit the video (more frames than the video, another frame size in the
  ``_meta.pickle``, keypoints mostly outside the frame) raise ``ValueError`` instead of
  producing a silently wrong video; a missing analysis file raises ``FileNotFoundError``
  (DLC prints it and returns ``False``);
* ``dotsize``, ``colormap``, ``alphavalue``, ``skeleton`` and ``skeleton_color`` default
  to ``None`` = "take it from config.yaml" (DLC ignores these arguments outside the
  SuperAnimal path and always uses the config); an explicit value overrides the config.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mapose.visualization import _project as proj
from mapose.visualization._render import (
    colormap_bgr, draw_disk, draw_line_aa, named_color_bgr, probe_video, render_video,
)

__all__ = ["create_labeled_video", "create_video_with_all_detections"]

_BOX_COLOR_BGR = (0, 0, 255)  # DLC draws detector boxes in red


def _alpha_function(confidence_to_alpha, pcutoff: float) -> Callable[[float], float] | None:
    if confidence_to_alpha is None or confidence_to_alpha is False:
        return None
    if confidence_to_alpha is True:
        if pcutoff == 0:
            return lambda p: float(np.clip(p, 0, 1))
        return lambda p: float(np.clip((p - pcutoff) / (1 - pcutoff), 0, 1))
    if callable(confidence_to_alpha):
        return confidence_to_alpha
    raise TypeError(
        f"confidence_to_alpha must be a bool or a function confidence -> alpha, got "
        f"{type(confidence_to_alpha).__name__}."
    )


def _resolve_extensions(video_extensions, kwargs: dict):
    # DLC 3 renamed ``videotype`` to ``video_extensions``; the old keyword still works.
    if "videotype" in kwargs:
        old = kwargs.pop("videotype")
        if video_extensions not in (None, "") and old not in (None, ""):
            raise TypeError("pass either video_extensions= or its old name videotype=, not both.")
        video_extensions = video_extensions if video_extensions not in (None, "") else old
    return video_extensions


def _draw_box(img: np.ndarray, x: float, y: float, w: float, h: float) -> None:
    import cv2

    if not all(np.isfinite(v) for v in (x, y, w, h)):
        return
    # skimage.draw.rectangle_perimeter(start=(y, x), extent=(h, w)) hugs the box from outside
    x0, y0 = int(np.floor(x)) - 1, int(np.floor(y)) - 1
    x1, y1 = int(np.ceil(x + w)), int(np.ceil(y + h))
    cv2.rectangle(img, (x0, y0), (x1, y1), _BOX_COLOR_BGR, 1, cv2.LINE_8)


# --------------------------------------------------------------------------- labeled video

class _TrackPainter:
    """Draws one row of a tracks table per frame exactly like DLC's ``CreateVideo``."""

    def __init__(self, x, y, p, rows, colors, dotsize, pcutoff, segments, skeleton_bgr,
                 trailpoints, alpha_fn, keypoints_only, boxes=None, bboxes_pcutoff=0.6):
        self.x, self.y, self.p = x, y, p            # (n_rows, n_kpts) float64
        self.rows = rows                            # frame index -> row (or -1)
        self.colors = colors                        # (n_kpts, 3) BGR, uint8
        self.dotsize = float(dotsize)
        self.pcutoff = float(pcutoff)
        self.segments = segments                    # list of (i, j) keypoint columns
        self.skeleton_bgr = skeleton_bgr
        self.trailpoints = int(trailpoints)
        self.alpha_fn = alpha_fn
        self.keypoints_only = keypoints_only
        self.boxes = boxes or {}
        self.bboxes_pcutoff = bboxes_pcutoff

    def __call__(self, index: int, img: np.ndarray):
        if self.keypoints_only:
            img[...] = 0
        row = self.rows[index] if index < len(self.rows) else -1
        if index in self.boxes:
            bboxes, scores = self.boxes[index]
            for k, box in enumerate(bboxes):
                if scores is not None and scores[k] < self.bboxes_pcutoff:
                    continue
                _draw_box(img, *box[:4])
        if row < 0:
            return None
        x, y, p = self.x[row], self.y[row], self.p[row]
        with np.errstate(invalid="ignore"):
            for i, j in self.segments:
                if p[i] > self.pcutoff and p[j] > self.pcutoff and np.isfinite(x[[i, j]]).all() \
                        and np.isfinite(y[[i, j]]).all():
                    draw_line_aa(img, x[i], y[i], x[j], y[j], self.skeleton_bgr)
            visible = np.flatnonzero(p > self.pcutoff)
        for k in visible:
            color = self.colors[k]
            if self.trailpoints > 0:
                # DLC paints the previous positions without looking at their likelihood
                for t in range(1, min(self.trailpoints, row + 1)):
                    draw_disk(img, self.x[row - t, k], self.y[row - t, k], self.dotsize, color)
            alpha = 1.0 if self.alpha_fn is None else float(self.alpha_fn(p[k]))
            draw_disk(img, x[k], y[k], self.dotsize, color, alpha)
        return None


def _frame_rows(index, n_rows: int) -> np.ndarray:
    """Map frame number -> table row: integer indexes by value, anything else by position."""
    values = np.asarray(index)
    if n_rows == 0:
        return np.zeros(0, dtype=np.intp)
    if values.dtype.kind in "iu" and values.min() >= 0:
        rows = np.full(int(values.max()) + 1, -1, dtype=np.intp)
        rows[values.astype(np.intp)] = np.arange(n_rows)
        return rows
    return np.arange(n_rows, dtype=np.intp)


def _prepare_tracks(df, displayedindividuals, bodyparts2plot, color_by: str, colormap: str):
    """Columns, colours and keypoint order of DLC's CreateVideo for a tracks DataFrame."""
    cols = df.columns
    if cols.nlevels not in (3, 4) or list(cols.names[-2:]) != ["bodyparts", "coords"]:
        raise ValueError(
            "the tracks table must have DLC's column levels (scorer, [individuals,] bodyparts, coords); "
            f"found {list(cols.names)}."
        )
    if cols.nlevels == 4 and displayedindividuals != "all":
        wanted = [displayedindividuals] if isinstance(displayedindividuals, str) else list(displayedindividuals)
        present = list(dict.fromkeys(cols.get_level_values("individuals")))
        unknown = [a for a in wanted if a not in present]
        if unknown:
            raise ValueError(
                f"displayedindividuals={wanted!r} names {unknown}, which are not in the tracks "
                f"(individuals there: {present})."
            )
        df = df.loc[:, cols.get_level_values("individuals").isin(wanted)]
        cols = df.columns
    coords = list(cols.get_level_values("coords"))
    if coords != ["x", "y", "likelihood"] * (len(coords) // 3) or len(coords) % 3:
        raise ValueError("the tracks table columns must come in (x, y, likelihood) triples per keypoint.")
    values = df.to_numpy(dtype=np.float64, copy=True).reshape(len(df), -1, 3)
    bpts = cols.get_level_values("bodyparts")
    all_bpts = list(bpts[::3])
    bplist = list(dict.fromkeys(bpts))
    if cols.nlevels == 3:
        nind = len(all_bpts) // max(len(set(all_bpts)), 1)
        map2bp = [bplist.index(bp) for bp in all_bpts]
        map2id = [0] * len(all_bpts)
    else:
        inds = list(cols.get_level_values("individuals")[::3])
        nind = len(set(inds))
        map2bp = [bplist.index(bp) for bp in all_bpts]
        # DLC counts keypoints per individual in sorted-name (groupby) order and then
        # numbers the columns block after block in that order, whatever their real order.
        sizes = [inds.count(a) for a in sorted(set(inds))]
        map2id = [i for i, n in enumerate(sizes) for _ in range(n)]
    keep = np.flatnonzero(np.isin(all_bpts, list(bodyparts2plot)))
    if color_by == "bodypart":
        palette = colormap_bgr(colormap, len(bplist))
        colors = palette[[map2bp[k] for k in keep]] if len(keep) else np.zeros((0, 3), np.uint8)
    else:
        palette = colormap_bgr(colormap, nind)
        colors = palette[[map2id[k] for k in keep]] if len(keep) else np.zeros((0, 3), np.uint8)
    return values, all_bpts, keep, colors, df


def create_labeled_video(
    config,
    videos,
    video_extensions=None,
    shuffle: int = 1,
    trainingsetindex: int = 0,
    filtered: bool = False,
    fastmode: bool = True,
    save_frames: bool = False,
    keypoints_only: bool = False,
    Frames2plot=None,
    displayedbodyparts="all",
    displayedindividuals="all",
    codec: str = "mp4v",
    outputframerate=None,
    destfolder=None,
    draw_skeleton: bool = False,
    trailpoints: int = 0,
    displaycropped: bool = False,
    color_by: str = "bodypart",
    modelprefix: str = "",
    init_weights: str = "",
    track_method: str = "",
    superanimal_name: str = "",
    pcutoff: float | None = None,
    skeleton: list | None = None,
    skeleton_color: str | None = None,
    dotsize: float | None = None,
    colormap: str | None = None,
    alphavalue: float | None = None,
    overwrite: bool = False,
    confidence_to_alpha: bool | Callable[[float], float] = False,
    plot_bboxes: bool = True,
    bboxes_pcutoff: float | None = None,
    max_workers: int | None = None,
    **kwargs,
) -> list[bool]:
    """Draw the tracked keypoints of analysed videos (DLC's ``create_labeled_video``).

    Reads ``<video><scorer>[_el|_bx|_sk][_filtered].h5`` (the final tracks for
    multi-animal projects) from ``destfolder`` or the video's folder and writes
    ``<that name minus .h5>[_id|_bp]_p<100·pcutoff>_labeled.mp4`` next to it, e.g.
    ``synthADLC_Resnet50_projANov23shuffle1_snapshot_best-50_el_id_p60_labeled.mp4``.
    A keypoint is drawn when its likelihood is ``> pcutoff``, as a filled disk of radius
    ``dotsize`` coloured by body part or individual from ``colormap``.

    Parameters
    ----------
    config : str or Path
        The project's ``config.yaml`` (``pcutoff``, ``dotsize``, ``colormap``,
        ``skeleton``, ``skeleton_color``, ``alphavalue`` are read from it).
    videos : path or list of paths
        Video files and/or folders (scanned one level).
    video_extensions : str or list of str, optional
        Keep only these extensions (``videotype=`` is accepted as the old name).
    filtered : bool
        Use the ``_filtered.h5`` of ``filterpredictions``.
    save_frames, Frames2plot
        Also save the labeled frames (all, or those in ``Frames2plot``) as
        ``file<index>.png`` in ``<video folder>/temp-<video name>/``.
    keypoints_only : bool
        Draw on a black background.
    displayedbodyparts, displayedindividuals : "all" or list of str
        Subsets to draw; unknown names raise ``ValueError``.
    codec : str
        FourCC of the output (``"mp4v"``).
    outputframerate : float, optional
        Output fps (default: the input video's).
    draw_skeleton : bool
        Connect the ``skeleton`` pairs (config) when both ends are ``> pcutoff``.
    trailpoints : int
        Also draw the previous ``trailpoints - 1`` positions.
    displaycropped : bool
        Crop frames to the analysis crop (``cropping_parameters`` in ``_meta.pickle``).
    color_by : {"bodypart", "individual"}
    confidence_to_alpha : bool or callable
        ``True``: opacity ``clip((p - pcutoff)/(1 - pcutoff), 0, 1)``; or a function of ``p``.
    overwrite : bool
        Re-create existing labeled videos.
    fastmode, init_weights, superanimal_name, plot_bboxes, bboxes_pcutoff, max_workers
        As in DLC; ``fastmode``/``max_workers`` only exist for compatibility (rendering is
        always the fast threaded path), ``init_weights`` names the scorer ``DLC_<stem>``.

    Returns
    -------
    list of bool
        One entry per video: ``True`` when its labeled video exists afterwards.
    """
    video_extensions = _resolve_extensions(video_extensions, kwargs)
    if color_by not in ("bodypart", "individual"):
        raise ValueError(f"color_by={color_by!r} is not supported; use 'bodypart' or 'individual'.")
    if int(trailpoints) < 0:
        raise ValueError(f"trailpoints={trailpoints!r} must be >= 0.")
    cfg = proj.read_config(config)
    if pcutoff is None:
        pcutoff = float(cfg.get("pcutoff", 0.6))
    if bboxes_pcutoff is None:
        bboxes_pcutoff = float(cfg.get("bboxes_pcutoff", 0.6) or 0.6)
    dotsize = float(cfg.get("dotsize", 8) if dotsize is None else dotsize)
    colormap = str(cfg.get("colormap", "rainbow") if colormap is None else colormap)
    alphavalue = float(cfg.get("alphavalue", 0.5) if alphavalue is None else alphavalue)
    track_method = proj.get_track_method(cfg, track_method)
    if init_weights:
        scorer = "DLC_" + Path(init_weights).stem
    else:
        scorer = proj.scorer_for(cfg, shuffle, trainingsetindex, modelprefix, **kwargs)

    config_bpts = list(cfg.get("multianimalbodyparts") or []) + list(cfg.get("uniquebodyparts") or [])
    if not cfg.get("multianimalproject", False):
        config_bpts = list(cfg.get("bodyparts") or [])
    if displayedbodyparts == "all":
        bodyparts = config_bpts
    else:
        wanted = [displayedbodyparts] if isinstance(displayedbodyparts, str) else list(displayedbodyparts)
        unknown = [b for b in wanted if b not in config_bpts]
        if unknown:
            raise ValueError(
                f"displayedbodyparts={wanted!r} names {unknown}, which are not body parts of this "
                f"project (config.yaml lists {config_bpts})."
            )
        bodyparts = [b for b in config_bpts if b in wanted]

    segments_named: list = []
    skeleton_bgr = None
    if draw_skeleton:
        segments_named = list(skeleton) if skeleton else list(cfg.get("skeleton") or [])
        if displayedbodyparts != "all":
            segments_named = [pair for pair in segments_named if all(b in bodyparts for b in pair)]
        skeleton_bgr = named_color_bgr(skeleton_color or cfg.get("skeleton_color", "white"))
    alpha_fn = _alpha_function(confidence_to_alpha, pcutoff)

    results = []
    for video in proj.list_videos(videos, video_extensions):
        results.append(_label_one(
            video, cfg, scorer, destfolder, filtered, track_method, pcutoff, dotsize, colormap,
            alphavalue, bodyparts, displayedindividuals, color_by, codec, outputframerate,
            segments_named, skeleton_bgr, int(trailpoints), displaycropped, alpha_fn,
            keypoints_only, save_frames, Frames2plot, overwrite, plot_bboxes, bboxes_pcutoff,
        ))
    return results


def _label_one(video, cfg, scorer, destfolder, filtered, track_method, pcutoff, dotsize, colormap,
               alphavalue, bodyparts, displayedindividuals, color_by, codec, outputframerate,
               segments_named, skeleton_bgr, trailpoints, displaycropped, alpha_fn, keypoints_only,
               save_frames, Frames2plot, overwrite, plot_bboxes, bboxes_pcutoff) -> bool:
    video = Path(video)
    vname = video.stem
    folder = Path(destfolder) if destfolder is not None else video.parent
    suffix = "filtered_labeled.mp4" if filtered else "_labeled.mp4"
    legacy = scorer.replace("DLC", "DeepCut")
    if not overwrite and any((folder / f"{vname}{s}{suffix}").is_file() for s in (scorer, legacy)):
        return True
    h5 = proj.find_analysis_h5(folder, vname, scorer, filtered, track_method)
    s = ("_id" if color_by == "individual" else "_bp") if cfg.get("multianimalproject", False) else ""
    output = Path(str(h5)[: -len(".h5")] + f"{s}_p{int(100 * pcutoff)}_labeled.mp4")
    if output.is_file() and not overwrite:
        return True

    info = probe_video(video)
    meta = proj.read_meta(proj.find_meta(folder, vname, scorer))
    proj.check_meta_matches_video(meta, info, f"analysis file {h5.name}")
    df = proj.read_tracks_h5(h5)
    labeled_bpts = [bp for bp in dict.fromkeys(df.columns.get_level_values("bodyparts")) if bp in bodyparts]
    values, all_bpts, keep, colors, df = _prepare_tracks(
        df, displayedindividuals, labeled_bpts, color_by, colormap)

    x1, x2, y1, y2 = 0, info.width, 0, info.height
    crop_params = meta.get("cropping_parameters")
    if crop_params is not None and len(crop_params) == 4:
        x1, x2, y1, y2 = (int(v) for v in crop_params)
    cropped = (x1, x2, y1, y2) != (0, info.width, 0, info.height)
    x = values[:, keep, 0]
    y = values[:, keep, 1]
    p = values[:, keep, 2]
    if cropped and not displaycropped:
        x = x + x1
        y = y + y1
    frame_w, frame_h = (x2 - x1, y2 - y1) if displaycropped else (info.width, info.height)
    rows = _frame_rows(df.index, len(df))
    proj.check_coordinates_fit(x, y, p > pcutoff, _Size(info.path, frame_w, frame_h), f"tracks {h5.name}")
    used = np.flatnonzero(np.isfinite(values[:, :, :2]).any(axis=(1, 2)))
    last_row_frame = np.flatnonzero(np.isin(rows, used))
    n_required = int(last_row_frame.max()) + 1 if last_row_frame.size else 0
    if info.nframes and n_required > info.nframes:
        raise ValueError(
            f"tracks {h5.name} hold data up to frame {n_required - 1}, but video {str(video)!r} has "
            f"{info.nframes} frames; pass the video that was analysed."
        )

    col_of = {}
    for pos, k in enumerate(keep):
        col_of.setdefault(k, pos)
    segments = []
    if segments_named:
        # DLC connects the same pair within every individual (consecutive blocks of columns)
        names = [all_bpts[k] for k in keep]
        inds = list(df.columns.get_level_values("individuals")[::3]) if df.columns.nlevels == 4 \
            else [""] * len(all_bpts)
        kept_inds = [inds[k] for k in keep]
        for a, b in segments_named:
            for animal in dict.fromkeys(kept_inds):
                ia = [i for i, (n, an) in enumerate(zip(names, kept_inds)) if n == a and an == animal]
                ib = [i for i, (n, an) in enumerate(zip(names, kept_inds)) if n == b and an == animal]
                if ia and ib:
                    segments.append((ia[0], ib[0]))

    boxes = _boxes_from_full(folder, vname, scorer, x1, y1) if plot_bboxes else {}
    painter = _TrackPainter(x, y, p, rows, colors, dotsize, pcutoff, segments, skeleton_bgr,
                            trailpoints, alpha_fn, keypoints_only, boxes, bboxes_pcutoff)
    on_frame = None
    if save_frames:
        tmpfolder = video.parent / f"temp-{vname}"
        tmpfolder.mkdir(parents=True, exist_ok=True)
        digits = max(int(np.ceil(np.log10(max(info.nframes, 2)))), 1)
        wanted = None if Frames2plot is None else {int(k) for k in Frames2plot}

        def on_frame(index, img):
            if wanted is None or index in wanted:
                import cv2

                cv2.imwrite(str(tmpfolder / f"file{index:0{digits}d}.png"), img)

    render_video(
        video, output, painter, codec=codec, fps=outputframerate,
        crop=(x1, x2, y1, y2) if displaycropped and cropped else None,
        n_required=n_required, on_frame=on_frame,
    )
    return True


class _Size:
    def __init__(self, path, width, height):
        self.path, self.width, self.height = path, width, height


def _boxes_from_full(folder: Path, vname: str, scorer: str, x1: int, y1: int) -> dict:
    """Detector boxes of top-down models, ``{frame: (boxes (n, 4) xywh, scores)}``."""
    path = Path(folder) / f"{vname}{scorer}_full.pickle"
    if not path.is_file():
        return {}
    from mapose.io.full_pickle import frame_index, iter_frames, read_full_pickle

    data = read_full_pickle(path)
    out = {}
    for key, frame in iter_frames(data):
        if isinstance(frame, dict) and "bboxes" in frame:
            boxes = np.asarray(frame["bboxes"], dtype=np.float64).reshape(-1, 4).copy()
            boxes[:, 0] += x1
            boxes[:, 1] += y1
            scores = frame.get("bbox_scores")
            out[frame_index(key)] = (boxes, None if scores is None else np.asarray(scores).ravel())
    return out


# --------------------------------------------------------------------------- all detections

def _flatten_frame(frame: dict):
    """Detections of one ``_full.pickle`` frame: arrays label, x, y, confidence (DLC order)."""
    coords = frame.get("coordinates")
    confs = frame.get("confidence")
    if coords is None or confs is None:
        return (np.zeros(0, np.intp),) + (np.zeros(0),) * 3
    coords = coords[0] if isinstance(coords, tuple) else coords
    labels, xs, ys, ps = [], [], [], []
    for label, (xy, conf) in enumerate(zip(coords, confs)):
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        conf = np.asarray(conf, dtype=np.float64).reshape(-1)
        if xy.size == 0 or not np.any(np.nan_to_num(xy)):
            continue  # DLC skips bodyparts whose coordinates are all zero
        n = min(len(xy), len(conf))
        labels.append(np.full(n, label, dtype=np.intp))
        xs.append(xy[:n, 0])
        ys.append(xy[:n, 1])
        ps.append(conf[:n])
    if not labels:
        return (np.zeros(0, np.intp),) + (np.zeros(0),) * 3
    return np.concatenate(labels), np.concatenate(xs), np.concatenate(ys), np.concatenate(ps)


def create_video_with_all_detections(
    config,
    videos,
    video_extensions=None,
    shuffle: int = 1,
    trainingsetindex: int = 0,
    displayedbodyparts="all",
    cropping: Sequence[int] | None = None,
    destfolder=None,
    modelprefix: str = "",
    confidence_to_alpha: bool | Callable[[float], float] = False,
    plot_bboxes: bool = True,
    bboxes_pcutoff: float | None = None,
    **kwargs,
) -> list[Path]:
    """Draw every raw detection of ``<video><scorer>_full.pickle`` (DLC's function of that name).

    Writes ``<video without extension><scorer>_full.mp4`` (or ``destfolder/<stem><scorer>_full.mp4``
    when ``destfolder`` is given; the pickle is read from the same place); an existing output
    is kept.  Every detection with confidence ``>= pcutoff`` (config) is a disk of radius
    ``dotsize`` coloured by body part (``colormap`` sampled over the displayed body parts).
    Both ``_full.pickle`` layouts (raw TF peaks and DLC 3's assembled PyTorch rows with
    ``-1`` padding) and shelve containers are read.

    Parameters
    ----------
    config : str or Path
    videos : path or list of paths
    video_extensions : str or list of str, optional (old name ``videotype``)
    shuffle, trainingsetindex, modelprefix
        Select the scorer (``snapshot_index=`` may be passed as keyword).
    displayedbodyparts : "all" or list of str
        Unknown names raise ``ValueError``.
    cropping : [x1, x2, y1, y2], optional
        Shift detections by ``(x1, y1)`` (default: the analysis crop from ``_meta.pickle``).
    destfolder : path, optional
    confidence_to_alpha : bool or callable
        ``True``: opacity = confidence; or a function confidence -> opacity.
    plot_bboxes, bboxes_pcutoff
        Draw top-down detector boxes scoring ``>= bboxes_pcutoff``.

    Returns
    -------
    list of Path
        The ``_full.mp4`` of each video (created or already present).
    """
    video_extensions = _resolve_extensions(video_extensions, kwargs)
    cfg = proj.read_config(config)
    scorer = proj.scorer_for(cfg, shuffle, trainingsetindex, modelprefix, **kwargs)
    if bboxes_pcutoff is None:
        bboxes_pcutoff = float(cfg.get("bboxes_pcutoff", 0.6) or 0.6)
    alpha_fn = _alpha_function(confidence_to_alpha, 0.0)
    pcutoff = float(cfg.get("pcutoff", 0.6))
    dotsize = float(cfg.get("dotsize", 8))
    outputs = []
    for video in proj.list_videos(videos, video_extensions):
        video = Path(video)
        if destfolder is None:
            outputname = Path(str(video.with_suffix("")) + scorer + "_full.mp4")
            full_pickle = Path(str(video.with_suffix("")) + scorer + "_full.pickle")
        else:
            Path(destfolder).mkdir(parents=True, exist_ok=True)
            outputname = Path(destfolder) / (video.stem + scorer + "_full.mp4")
            full_pickle = Path(destfolder) / (video.stem + scorer + "_full.pickle")
        outputs.append(outputname)
        if outputname.is_file():
            continue
        _all_detections_one(video, full_pickle, outputname, cfg, scorer, displayedbodyparts,
                            cropping, alpha_fn, pcutoff, dotsize, plot_bboxes, bboxes_pcutoff)
    return outputs


def _all_detections_one(video, full_pickle, outputname, cfg, scorer, displayedbodyparts, cropping,
                        alpha_fn, pcutoff, dotsize, plot_bboxes, bboxes_pcutoff):
    from mapose.io.full_pickle import frame_index, iter_frames, read_full_pickle

    info = probe_video(video)
    if not Path(full_pickle).exists() and not any(Path(full_pickle).parent.glob(Path(full_pickle).name + ".*")):
        raise FileNotFoundError(
            f"no detections file {Path(full_pickle).name} in {Path(full_pickle).parent} for video "
            f"{video.name!r}; run analyze_videos first (or pass destfolder= where it wrote its output)."
        )
    data = read_full_pickle(full_pickle)
    header = data.get("metadata") or {}
    meta = proj.read_meta(proj.find_meta(Path(full_pickle).parent, video.stem, scorer))
    proj.check_meta_matches_video(meta, info, f"detections file {Path(full_pickle).name}")
    names = list(header.get("all_joints_names") or [])
    if not names:
        names = list(cfg.get("multianimalbodyparts") or []) + list(cfg.get("uniquebodyparts") or [])
    if displayedbodyparts == "all":
        bpts = list(range(len(names)))
    else:
        wanted = [displayedbodyparts] if isinstance(displayedbodyparts, str) else list(displayedbodyparts)
        unknown = [b for b in wanted if b not in names]
        if unknown:
            raise ValueError(
                f"displayedbodyparts={wanted!r} names {unknown}, which are not in the detections "
                f"(body parts there: {names})."
            )
        bpts = [i for i, b in enumerate(names) if b in wanted]
    palette = colormap_bgr(str(cfg.get("colormap", "rainbow")), len(bpts))
    lut = np.full(max(len(names), 1), -1, dtype=np.intp)
    lut[bpts] = np.arange(len(bpts))

    x1 = y1 = 0
    if cropping is not None:
        x1, _, y1, _ = (int(v) for v in cropping)
    elif meta.get("cropping") and meta.get("cropping_parameters") is not None:
        x1, _, y1, _ = (int(v) for v in meta["cropping_parameters"])

    frames = {}
    boxes = {}
    xs_all, ys_all, vis_all = [], [], []
    for key, frame in iter_frames(data):
        if not isinstance(frame, dict):
            continue
        idx = frame_index(key)
        label, xs, ys, ps = _flatten_frame(frame)
        ok = (ps >= pcutoff) & (label < len(lut))
        label, xs, ys, ps = label[ok], xs[ok] + x1, ys[ok] + y1, ps[ok]
        ok = lut[label] >= 0
        frames[idx] = (lut[label[ok]], xs[ok], ys[ok], ps[ok])
        xs_all.append(xs)
        ys_all.append(ys)
        vis_all.append(np.ones(len(xs), bool))
        if plot_bboxes and "bboxes" in frame and "bbox_scores" in frame:
            b = np.asarray(frame["bboxes"], dtype=np.float64).reshape(-1, 4).copy()
            b[:, 0] += x1
            b[:, 1] += y1
            boxes[idx] = (b, np.asarray(frame["bbox_scores"]).ravel())
    if xs_all:
        proj.check_coordinates_fit(np.concatenate(xs_all), np.concatenate(ys_all), np.concatenate(vis_all),
                                   info, f"detections {Path(full_pickle).name}")
    n_required = max(frames, default=-1) + 1
    if header.get("nframes") is not None and info.nframes and int(header["nframes"]) != info.nframes \
            and n_required > info.nframes:
        raise ValueError(
            f"detections {Path(full_pickle).name} were computed on {int(header['nframes'])} frames, but "
            f"video {str(video)!r} has {info.nframes}; pass the video that was analysed."
        )
    if info.nframes and n_required > info.nframes:
        raise ValueError(
            f"detections {Path(full_pickle).name} hold frame {n_required - 1}, but video {str(video)!r} "
            f"has {info.nframes} frames; pass the video that was analysed."
        )

    def paint(index, img):
        if index in boxes:
            b, scores = boxes[index]
            for k in range(len(b)):
                if scores[k] >= bboxes_pcutoff:
                    _draw_box(img, *b[k])
        det = frames.get(index)
        if det is None:
            return None
        col, xs, ys, ps = det
        for k in range(len(xs)):
            alpha = 1.0 if alpha_fn is None else float(alpha_fn(ps[k]))
            draw_disk(img, xs[k], ys[k], dotsize, palette[col[k]], alpha)
        return None

    render_video(video, outputname, paint, codec="mp4v", n_required=n_required)
