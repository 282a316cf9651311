"""``mapose demo``: the whole pipeline on a rendered video, scored against ground truth.

Steps (each timed):

1. render a synthetic multi-animal video (:mod:`mapose.demo.render`); its ground truth
   goes to ``<out>/ground_truth/``, outside the project;
2. write a DLC-format project around the model shipped in ``mapose/data/demo_model``;
3. ``analyze_videos(config, [video], auto_track=True)``: network, peaks + PAF assembly,
   tracklets and stitching, exactly as for a DLC model -- the network only sees pixels;
4. ``create_labeled_video(color_by="individual")``;
5. ``evaluate_tracks(tracks.h5, ground_truth.h5)``: MOTA, IDF1, ID switches, key-point
   error.

A summary is printed and written to ``<out>/demo_summary.json``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from mapose.io.atomic import atomic_open

__all__ = ["DemoSettings", "run_demo", "format_report"]


@dataclasses.dataclass
class DemoSettings:
    """Tunables of :func:`run_demo`.

    Attributes
    ----------
    animals : int
        Animals in the rendered video (1-6).
    frames : int
        Length of the video.
    out : str
        Output folder (project, video, tracks, labeled video, ground truth, summary).
    seed : int
        Scene seed (motion, background, noise).
    width, height : int
        Frame size.
    labeled_video : bool
        Also write the labeled video.
    batch_size : int
        Network batch size.
    """

    animals: int = 3
    frames: int = 300
    out: str = "mapose-demo"
    seed: int = 11
    width: int = 320
    height: int = 256
    labeled_video: bool = True
    batch_size: int = 8

    def validate(self) -> None:
        for name in ("animals", "frames", "width", "height", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}.")
        if self.animals > 6:
            raise ValueError(f"animals={self.animals} is too many for the demo scene; use 1 to 6.")
        if self.frames < 10:
            raise ValueError(
                f"frames={self.frames} is too short: stitching needs tracklets of at least 10 frames; "
                f"use frames >= 10."
            )


def _stage(name, seconds, frames):
    return {"stage": name, "seconds": float(seconds),
            "frames_per_s": float(frames / seconds) if seconds > 0 else float("inf")}


def run_demo(settings: DemoSettings | None = None, verbose: bool = True, model_dir=None) -> dict:
    """Render, analyse, track, label and evaluate; return the summary dict.

    Parameters
    ----------
    settings : DemoSettings, optional
    verbose : bool
        Print progress and the final report.
    model_dir : str or os.PathLike, optional
        Folder with ``pytorch_config.yaml`` and ``snapshot-*.pt``; default: the shipped
        demo model.

    Returns
    -------
    dict
        ``metrics`` (see :func:`mapose.evaluation.tracks.evaluate_tracks`), ``stages``
        (name, seconds, frames/s), ``total_seconds``, ``files`` and ``settings``.
    """
    s = DemoSettings() if settings is None else settings
    s.validate()
    from mapose.demo.project import write_demo_project
    from mapose.demo.render import SceneConfig, render_video
    from mapose.evaluation.tracks import evaluate_tracks

    out = Path(s.out).resolve()
    t_all = time.perf_counter()
    cpu_all = time.process_time()
    stages = []

    def say(msg):
        if verbose:
            print(msg, flush=True)

    project = out / "demo-project"
    video = project / "videos" / "demo.avi"
    gt_npz = out / "ground_truth" / "demo_gt.npz"
    gt_h5 = out / "ground_truth" / "demo_gt.h5"
    scene = SceneConfig(n_animals=s.animals, n_frames=s.frames, width=s.width, height=s.height, seed=s.seed)
    say(f"[1/5] rendering {s.frames} frames, {s.animals} animals, {s.width}x{s.height} -> {video}")
    t0 = time.perf_counter()
    render_video(video, scene, gt_path=gt_npz, gt_h5_path=gt_h5)
    stages.append(_stage("render video + ground truth", time.perf_counter() - t0, s.frames))

    say("[2/5] writing the DLC project around the shipped demo model")
    config = write_demo_project(project, n_animals=s.animals, model_dir=model_dir,
                                video_sets=[(video, s.width, s.height)])

    say("[3/5] analyze_videos(auto_track=True): network, assembly, tracking, stitching")
    from mapose.inference.analyze import analyze_videos

    t0 = time.perf_counter()
    scorer = analyze_videos(str(config), [str(video)], auto_track=True, batch_size=s.batch_size,
                            overwrite=True, progress=verbose)
    t_analyze = time.perf_counter() - t0
    times = getattr(analyze_videos, "last_times", None)
    if times is not None:
        stages.append(_stage("decode (overlapped)", times.decode, s.frames))
        stages.append(_stage("network", times.network, s.frames))
        stages.append(_stage("peaks + PAF + assembly", times.postprocess, s.frames))
        stages.append(_stage("tracklets + stitching", times.tracking, s.frames))
    stages.append(_stage("analyze_videos total", t_analyze, s.frames))
    tracks_h5 = project / "videos" / f"demo{scorer}_el.h5"
    if not tracks_h5.is_file():
        raise FileNotFoundError(f"analyze_videos did not write the tracks file {str(tracks_h5)!r}.")

    labeled = still = None
    if s.labeled_video:
        say("[4/5] create_labeled_video(color_by='individual')")
        from mapose.visualization.videos import create_labeled_video

        t0 = time.perf_counter()
        create_labeled_video(str(config), [str(video)], color_by="individual", overwrite=True,
                             draw_skeleton=True)
        stages.append(_stage("labeled video", time.perf_counter() - t0, s.frames))
        found = sorted((project / "videos").glob(f"demo{scorer}_el*_labeled.mp4"))
        labeled = found[-1] if found else None
        if labeled is not None:
            still = _write_encounter_still(labeled, gt_npz, out / "demo_frame.png")
    else:
        say("[4/5] labeled video skipped")

    say("[5/5] evaluate_tracks(tracks, ground truth)")
    t0 = time.perf_counter()
    metrics = evaluate_tracks(tracks_h5, gt_h5)
    stages.append(_stage("evaluation", time.perf_counter() - t0, s.frames))
    total = time.perf_counter() - t_all
    result = {
        "cpu_seconds": time.process_time() - cpu_all,
        "settings": dataclasses.asdict(s),
        "metrics": metrics,
        "stages": stages,
        "total_seconds": total,
        "end_to_end_frames_per_s": s.frames / total,
        "files": {"config": str(config), "video": str(video), "tracks": str(tracks_h5),
                  "labeled_video": str(labeled) if labeled else None,
                  "labeled_still": str(still) if still else None,
                  "ground_truth": str(gt_h5), "ground_truth_npz": str(gt_npz)},
        "scorer": scorer,
    }
    with atomic_open(out / "demo_summary.json", "w") as fh:
        json.dump(result, fh, indent=2, default=float)
    say("")
    say(format_report(result))
    return result


def _write_encounter_still(labeled_video: Path, gt_npz: Path, png: Path):
    """Save the labeled frame where two animals are closest (the interesting one) as PNG."""
    import cv2
    import numpy as np

    from mapose.demo.render import GroundTruth

    gt = GroundTruth.load(gt_npz)
    centres = gt.keypoints[:, :, 3]
    n = centres.shape[1]
    if n > 1:
        d = np.linalg.norm(centres[:, :, None] - centres[:, None], axis=-1)
        d[:, np.arange(n), np.arange(n)] = np.inf
        frame_index = int(np.argmin(d.min(axis=(1, 2))))
    else:
        frame_index = 0
    cap = cv2.VideoCapture(str(labeled_video))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        return None
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    ok, buf = cv2.imencode(".png", big)
    if not ok:
        return None
    with atomic_open(png, "wb") as fh:
        fh.write(buf.tobytes())
    return png


def format_report(result: dict) -> str:
    """The printed summary of :func:`run_demo`."""
    from mapose.evaluation.tracks import format_summary

    s = result["settings"]
    lines = [
        f"mapose demo: {s['animals']} animals, {s['frames']} frames ({s['width']}x{s['height']}), "
        f"scorer {result['scorer']}",
        "",
        f"{'stage':<30}{'seconds':>9}{'frames/s':>11}",
    ]
    for st in result["stages"]:
        lines.append(f"{st['stage']:<30}{st['seconds']:>9.2f}{st['frames_per_s']:>11.1f}")
    lines.append(f"{'end to end':<30}{result['total_seconds']:>9.2f}{result['end_to_end_frames_per_s']:>11.1f}")
    if "cpu_seconds" in result:
        lines.append(f"(CPU time of this process, all threads: {result['cpu_seconds']:.1f} s; a much larger "
                     f"wall time means the machine was busy with other work)")
    lines += ["", "tracking quality against the rendered ground truth:", format_summary(result["metrics"]), ""]
    files = result["files"]
    lines.append(f"tracks:        {files['tracks']}")
    if files.get("labeled_video"):
        lines.append(f"labeled video: {files['labeled_video']}")
    if files.get("labeled_still"):
        lines.append(f"closest encounter, labeled: {files['labeled_still']}")
    lines.append(f"ground truth:  {files['ground_truth']}")
    return "\n".join(lines)
