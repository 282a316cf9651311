"""HRNet through analyze_videos: mapose vs DeepLabCut 3.0.2 on the same trained snapshot.

    python scripts/compare_hrnet_dlc.py [--workdir /tmp/mapose_hrnet] [--epochs 1] [--frames 4]

DLC side (``scripts/dlc_oracle.py`` in /work/dlcenv, run once and cached in WORKDIR):

1. ``hrnet-project``: a copy of project A's labelled data and video, a PAF training set
   with ``net_type=hrnet_w18`` (DLC's own preset: ``auto_padding`` divisors 32, position
   ``random``) and a few training iterations on CPU from random initialisation (one
   epoch, 10 iterations: all a shared 2-core machine allows), then ``rescale-heads``: the
   output layers rescaled so the barely trained net yields ~50 peaks per body part
   instead of thousands (saved as the next DLC snapshot, used by both sides);
2. two clips of the first ``--frames`` frames: ``div.avi`` 320x256 (divisible by 32: no
   padding) and ``pad.avi`` 300x250 (padded to 320x256);
3. ``raw``: DLC's ``PoseModel`` outputs for frame 0 of each clip (its own transform, the
   padding position forced to ``top_left``);
4. ``analyze_videos`` (batch size 1, ``save_as_df``) on ``div.avi``; on ``pad.avi`` with the
   position forced to ``top_left`` (mapose's deterministic choice) and with DLC's default
   ``random`` (the pads albumentations drew are recorded);
5. ``track`` (``convert_detections2tracklets`` + ``stitch_tracklets``) on the div analysis.

mapose side, same snapshot and clips: raw outputs (mapose network on DLC's input tensor,
and on mapose's own padded/normalised frames), ``analyze_videos`` files, tracking, and
DLC's random-position run replayed with the recorded pads.
"""
from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROJECT_A = Path("/work/shared/data/dlc-3.0.2-project-a")
CLIPS = {"div": (0, 320, 0, 256), "pad": (10, 310, 3, 253)}


def _load(p):
    with open(p, "rb") as fh:
        return pickle.load(fh)


def _frames(video) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return np.stack(out)


def prepare_dlc(py: str, work: Path, epochs: int, n_frames: int) -> dict:
    import cv2

    oracle = [py, str(REPO / "scripts/dlc_oracle.py")]
    project = work / "project"
    timings = {}
    config = project / "config.yaml"
    trained = not list(project.glob("dlc-models-pytorch/iteration-0/*/train/snapshot-*.pt"))
    if trained:
        shutil.rmtree(project, ignore_errors=True)
        subprocess.run(oracle + ["hrnet-project", str(project), "--epochs", str(epochs)], check=True)
    frames = _frames(PROJECT_A / "videos/synthA.avi")[:n_frames]
    for name, (x0, x1, y0, y1) in CLIPS.items():
        path = project / "videos" / f"{name}.avi"
        if not path.is_file():
            out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (x1 - x0, y1 - y0))
            for f in frames:
                out.write(np.ascontiguousarray(f[y0:y1, x0:x1]))
            out.release()
    if trained:
        subprocess.run(oracle + ["rescale-heads", str(config), str(project / "videos/div.avi")],
                       check=True)
    dlc = work / "dlc"
    steps = [
        (dlc / "raw_div.npz", ["raw", config, project / "videos/div.avi", dlc / "raw_div.npz"]),
        (dlc / "raw_pad.npz", ["raw", config, project / "videos/pad.avi", dlc / "raw_pad.npz"]),
        (dlc / "div", ["analyze", config, project / "videos/div.avi", dlc / "div"]),
        (dlc / "pad_topleft", ["analyze", config, project / "videos/pad.avi", dlc / "pad_topleft",
                               "--position", "top_left"]),
        (dlc / "pad_random", ["analyze", config, project / "videos/pad.avi", dlc / "pad_random",
                              "--record-pads", dlc / "pads.json"]),
        # DLC against itself: another random draw of the padding positions
        (dlc / "pad_random_seed1", ["analyze", config, project / "videos/pad.avi",
                                    dlc / "pad_random_seed1", "--seed", "1"]),
    ]
    dlc.mkdir(parents=True, exist_ok=True)
    for done, args in steps:
        if not done.exists():
            t0 = time.perf_counter()
            subprocess.run(oracle + [str(a) for a in args], check=True, capture_output=True)
            timings[done.name] = time.perf_counter() - t0
    track = dlc / "div_track"
    if not track.exists():
        shutil.copytree(dlc / "div", track)
        subprocess.run(oracle + ["track", str(config), str(project / "videos/div.avi"), str(track)],
                       check=True, capture_output=True)
    return timings


def _stem(folder: Path, video: str) -> Path:
    (full,) = folder.glob(f"{video}DLC_*_full.pickle")
    return Path(str(full)[: -len("_full.pickle")])


def _poses(full_path) -> np.ndarray:
    full = _load(full_path)
    n, w = full["metadata"]["nframes"], full["metadata"]["key_str_width"]
    out = []
    for i in range(n):
        fr = full[f"frame{str(i).zfill(w)}"]
        out.append(np.concatenate([np.stack(fr["coordinates"][0], 1), np.stack(fr["confidence"], 1)], 2))
    return np.stack(out)  # (frames, N, K, 3)


def compare_files(ours: Path, dlc: Path) -> dict:
    import pandas as pd

    a, b = _poses(str(ours) + "_full.pickle"), _poses(str(dlc) + "_full.pickle")
    res = {"shape_equal": a.shape == b.shape}
    if a.shape != b.shape:
        return res
    fin = np.isfinite(a) & np.isfinite(b)
    res["nan_pattern_equal"] = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    res["max_abs_diff"] = float(np.abs(a - b)[fin].max(initial=0))
    res["n_keypoints"] = int((np.isfinite(b[..., 0]) & (b[..., 2] > 0)).sum())
    asm_a, asm_b = _load(str(ours) + "_assemblies.pickle"), _load(str(dlc) + "_assemblies.pickle")
    res["assemblies_equal_shape"] = all(asm_a[k].shape == asm_b[k].shape for k in asm_b if k != "single")
    res["assemblies_max_diff"] = max((float(np.nanmax(np.abs(asm_a[k] - asm_b[k]), initial=0))
                                      for k in asm_b if k != "single"
                                      and asm_a[k].shape == asm_b[k].shape), default=0.0)
    ha, hb = pd.read_hdf(str(ours) + ".h5"), pd.read_hdf(str(dlc) + ".h5")
    res["h5_columns_equal"] = bool(ha.columns.equals(hb.columns))
    res["h5_max_diff"] = float(np.nanmax(np.abs(ha.to_numpy() - hb.to_numpy())))
    return res


def compare_raw(pm, dlc_npz: Path, video: Path) -> dict:
    """mapose network on DLC's input tensor, and on mapose's own padded frames."""
    import torch

    from mapose.inference.runners import TorchRunner
    from mapose.inference.transforms import InferenceTransform

    ref = np.load(dlc_npz)
    model = pm.build_model()
    with torch.no_grad():
        out = model(torch.from_numpy(ref["0/input"]))
    res = {}
    for name, y in zip(model.output_names, out):
        res[f"{name} (DLC input)"] = float(np.abs(y.numpy() - ref[f"0/{name}"]).max())
    runner = TorchRunner(model, device="cpu", channels_last=False)
    padded_runner, _ = InferenceTransform.from_config(pm.pytorch_cfg).wrap(runner, lambda o: o)
    ours = padded_runner(_frames(video)[:1])
    for name in model.output_names:
        res[f"{name} (mapose frames)"] = float(np.abs(ours[name] - ref[f"0/{name}"]).max())
    res["scale |heatmap|"] = float(np.abs(ref["0/bodypart/heatmap"]).max())
    res["input shape"] = tuple(ref["0/input"].shape)
    return res


def replay_random(pm, video: Path, pads: list, dlc_stem: Path) -> dict:
    """mapose with the pads DLC drew, frame by frame: should equal DLC's random run."""
    from mapose.inference.predictor import BottomUpPredictor
    from mapose.inference.runners import TorchRunner
    from mapose.inference.transforms import AutoPadding, PaddingPredictor, PaddingRunner

    runner = TorchRunner(pm.build_model(), device="cpu")
    predictor = PaddingPredictor(BottomUpPredictor(runner.net.model.head_specs))
    want = _poses(str(dlc_stem) + "_full.pickle")
    got = []
    for frame, (t, b, l, r) in zip(_frames(video), pads):
        class Fixed(AutoPadding):
            def pads(self, height, width, _p=(t, b, l, r)):
                return _p
        got.append(predictor(PaddingRunner(runner, Fixed(32, 32))(frame[None]))[0].poses[..., :3])
    got = np.stack(got)
    fin = np.isfinite(got) & np.isfinite(want)
    return {"nan_pattern_equal": bool(np.array_equal(np.isnan(got), np.isnan(want))),
            "max_abs_diff": float(np.abs(got - want)[fin].max(initial=0)),
            "pads (top,bottom,left,right)": pads}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mapose_hrnet"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    args = ap.parse_args(argv)
    work = args.workdir
    dlc_times = prepare_dlc(args.dlc_python, work, args.epochs, args.frames)

    import mapose
    from mapose.inference.project_model import find_project_model

    config = work / "project/config.yaml"
    pm = find_project_model(config)
    print(f"snapshot {pm.snapshot.name}, scorer {pm.scorer}")
    for name in CLIPS:
        print(f"\n== raw network outputs, {name}.avi frame 0 ==")
        for k, v in compare_raw(pm, work / f"dlc/raw_{name}.npz", work / f"project/videos/{name}.avi").items():
            print(f"  {k:<40} {v}")
    ours = work / "mapose"
    shutil.rmtree(ours, ignore_errors=True)
    times = {}
    for name, dlc_dir in (("div", "div"), ("pad", "pad_topleft")):
        t0 = time.perf_counter()
        mapose.analyze_videos(config, [work / f"project/videos/{name}.avi"], auto_track=False,
                              save_as_df=True, batch_size=1, destfolder=ours, progress=False,
                              device="cpu")
        times[name] = time.perf_counter() - t0
        print(f"\n== analyze_videos {name}.avi vs DLC ({dlc_dir}) ==")
        for k, v in compare_files(_stem(ours, name), _stem(work / "dlc" / dlc_dir, name)).items():
            print(f"  {k:<40} {v}")
    print("\n== pad.avi: mapose (top_left) vs DLC position=random ==")
    for k, v in compare_files(_stem(ours, "pad"), _stem(work / "dlc/pad_random", "pad")).items():
        print(f"  {k:<40} {v}")
    print("\n== pad.avi: DLC position=random vs DLC position=random, another seed ==")
    for k, v in compare_files(_stem(work / "dlc/pad_random_seed1", "pad"),
                              _stem(work / "dlc/pad_random", "pad")).items():
        print(f"  {k:<40} {v}")
    pads = json.loads((work / "dlc/pads.json").read_text())
    print("\n== pad.avi: mapose replaying DLC's random pads vs DLC position=random ==")
    for k, v in replay_random(pm, work / "project/videos/pad.avi", pads,
                              _stem(work / "dlc/pad_random", "pad")).items():
        print(f"  {k:<40} {v}")
    print("\n== tracking (div.avi, auto_track path) ==")
    track = work / "mapose_track"
    shutil.rmtree(track, ignore_errors=True)
    track.mkdir()
    stem = _stem(ours, "div")
    for suffix in ("_full.pickle", "_meta.pickle", "_assemblies.pickle"):
        shutil.copy(str(stem) + suffix, track)
    video = [str(work / "project/videos/div.avi")]
    mapose.convert_detections2tracklets(config, video, destfolder=str(track), overwrite=True)
    try:
        mapose.stitch_tracklets(config, video, destfolder=str(track))
        err = None
    except OSError as exc:
        err = str(exc)
    dlc_track = work / "dlc/div_track"
    dlc_err = (dlc_track / "stitch_error.txt").read_text() if (dlc_track / "stitch_error.txt").exists() else None
    ta = _load(str(_stem(track, "div")) + "_el.pickle")
    tb = _load(str(_stem(dlc_track, "div")) + "_el.pickle")
    ka = sorted(k for k in ta if not isinstance(k, str))
    kb = sorted(k for k in tb if not isinstance(k, str))
    diff = max((float(np.nanmax(np.abs(ta[t][f] - tb[t][f]), initial=0)) for t in ka if t in tb
                for f in ta[t] if f in tb[t]), default=0.0)
    print(f"  tracklet ids equal {ka == kb} ({len(ka)}), frames equal "
          f"{all(sorted(ta[t]) == sorted(tb.get(t, {})) for t in ka)}, max diff {diff:.3g}")
    print(f"  stitch: mapose error {err!r}, DLC error {dlc_err!r}")
    if dlc_times:
        print("\nDLC oracle step times, process start and imports included (s):",
              {k: round(v, 1) for k, v in dlc_times.items()})
    print("\n== analyze_videos call alone, same clips, batch size 1, CPU (s) ==")
    for name, dlc_dir in (("div", "div"), ("pad", "pad_topleft")):
        timing = work / "dlc" / dlc_dir / "timing.json"
        dlc_s = json.loads(timing.read_text())["analyze_videos_s"] if timing.is_file() else float("nan")
        print(f"  {name}.avi: DLC {dlc_s:.1f}  mapose {times[name]:.1f}  ratio {dlc_s / times[name]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
