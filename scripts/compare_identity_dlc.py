"""Identity-head parity: mapose vs DeepLabCut 3.0.2's ``analyze_videos`` on the same snapshot.

    python scripts/compare_identity_dlc.py [--workdir /tmp/mapose_identity] [--frames 20]
    python scripts/compare_identity_dlc.py --write-fixture   # tests/data/identity_dlc_ref.npz

The identity project is project A (its trained ResNet-50 + PAF snapshot) with
``identity: true`` and DLC's own identity head section; the identity head's weights are
seeded (``scripts/dlc_oracle.py identity_head_weights``: numpy ``default_rng(2024)``,
scale 8), so the project can be rebuilt anywhere without storing weights.  DLC runs in
its virtualenv (``scripts/dlc_oracle.py identity-project`` then ``analyze --auto-track``,
batch size 1, CPU) on the first ``--frames`` frames of project A's video; mapose runs
``analyze_videos`` on the same project and clip.  Compared, per frame:

* ``_full.pickle``: coordinates, confidences and the identity score arrays;
* ``_assemblies.pickle``: every row (x, y, confidence, argmax identity);
* the ``.h5`` (``save_as_df``), the tracklet pickle ``_el.pickle`` and the stitched ``_el.h5``;
* the same tracking re-run with ``identity_only=True`` on each side's analysis files
  (``scripts/dlc_oracle.py track --identity-only`` vs mapose's functions).

``--write-fixture`` stores DLC's numbers for the first 3 frames (a few KB: full-pickle
arrays, assemblies, identity_only tracklets) as the CI reference of
``tests/test_inference_identity.py``.
"""
from __future__ import annotations

import argparse
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
SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
FIXTURE = REPO / "tests" / "data" / "identity_dlc_ref.npz"
N_FIXTURE = 3


def _load(p):
    with open(p, "rb") as fh:
        return pickle.load(fh)


def write_clip(dst: Path, n: int) -> None:
    import cv2

    cap = cv2.VideoCapture(str(PROJECT_A / "videos/synthA.avi"))
    out = None
    for _ in range(n):
        ok, frame = cap.read()
        if not ok:
            break
        if out is None:
            h, w = frame.shape[:2]
            out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
        out.write(frame)
    out.release()
    cap.release()


def run_dlc(dlc_python: str, workdir: Path, n_frames: int) -> Path:
    oracle = REPO / "scripts" / "dlc_oracle.py"
    project = workdir / "project"
    dest = workdir / "dlc"
    if (dest / f"clip{SCORER}_el.h5").is_file():
        return dest
    shutil.rmtree(project, ignore_errors=True)
    subprocess.run([dlc_python, str(oracle), "identity-project", str(project)], check=True,
                   capture_output=True)
    write_clip(project / "videos" / "clip.avi", n_frames)
    t0 = time.perf_counter()
    subprocess.run([dlc_python, str(oracle), "analyze", str(project / "config.yaml"),
                    str(project / "videos" / "clip.avi"), str(dest), "--auto-track"],
                   check=True, capture_output=True)
    print(f"DLC analyze_videos (+tracking): {time.perf_counter() - t0:.1f} s")
    return dest


def _copy_analysis(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for suffix in ("_full.pickle", "_meta.pickle", "_assemblies.pickle"):
        shutil.copy(src / f"clip{SCORER}{suffix}", dst)


def track_identity_only(dlc_python: str, workdir: Path, dlc: Path, ours: Path) -> tuple[Path, Path]:
    """Re-track both analyses with ``identity_only=True`` (DLC's and mapose's tracking)."""
    import mapose

    project = workdir / "project"
    dlc_id, ours_id = workdir / "dlc_identity_only", workdir / "mapose_identity_only"
    if not (dlc_id / f"clip{SCORER}_el.h5").is_file():
        _copy_analysis(dlc, dlc_id)
        subprocess.run([dlc_python, str(REPO / "scripts/dlc_oracle.py"), "track",
                        str(project / "config.yaml"), str(project / "videos/clip.avi"), str(dlc_id),
                        "--identity-only"], check=True, capture_output=True)
    _copy_analysis(ours, ours_id)
    video = [str(project / "videos/clip.avi")]
    mapose.convert_detections2tracklets(project / "config.yaml", video, destfolder=str(ours_id),
                                        identity_only=True, overwrite=True)
    mapose.stitch_tracklets(project / "config.yaml", video, destfolder=str(ours_id))
    return dlc_id, ours_id


def compare_tracks(dlc: Path, ours: Path) -> dict:
    import pandas as pd

    stem = f"clip{SCORER}"
    res = {}
    ta, tb = _load(ours / f"{stem}_el.pickle"), _load(dlc / f"{stem}_el.pickle")
    # DLC's tracklet ids are numpy ints
    ka = sorted(k for k in ta if not isinstance(k, str))
    kb = sorted(k for k in tb if not isinstance(k, str))
    res["tracklet_ids_equal"] = ka == kb and len(ka) > 0
    res["tracklets"] = max(
        (float(np.nanmax(np.abs(ta[t][f] - tb[t][f]), initial=0)) for t in ka if t in tb
         for f in ta[t] if f in tb[t]), default=0.0)
    res["tracklet_frames_equal"] = all(sorted(ta[t]) == sorted(tb.get(t, {})) for t in ka)
    ea = pd.read_hdf(ours / f"{stem}_el.h5", "tracks")
    eb = pd.read_hdf(dlc / f"{stem}_el.h5", "tracks")
    same = ea.shape == eb.shape and bool(ea.columns.equals(eb.columns))
    res["el_h5_shape_equal"] = same
    res["el_h5"] = float(np.nanmax(np.abs(ea.to_numpy() - eb.to_numpy()))) if same else float("nan")
    res["el_h5_nan_equal"] = same and bool(np.array_equal(np.isnan(ea.to_numpy()), np.isnan(eb.to_numpy())))
    return res


def run_mapose(workdir: Path) -> Path:
    import mapose

    dest = workdir / "mapose"
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    mapose.analyze_videos(workdir / "project" / "config.yaml", [workdir / "project/videos/clip.avi"],
                          destfolder=dest, batch_size=1, save_as_df=True, auto_track=True,
                          progress=False, device="cpu")
    print(f"mapose analyze_videos (+tracking): {time.perf_counter() - t0:.1f} s")
    return dest


def compare(dlc: Path, ours: Path) -> dict:
    import pandas as pd

    stem = f"clip{SCORER}"
    a, b = _load(ours / f"{stem}_full.pickle"), _load(dlc / f"{stem}_full.pickle")
    n = a["metadata"]["nframes"]
    assert n == b["metadata"]["nframes"], (n, b["metadata"]["nframes"])
    res = {"frames": n, "xy": 0.0, "conf": 0.0, "identity": 0.0, "nan_pattern_equal": True,
           "id_argmax_equal": True}
    w = a["metadata"]["key_str_width"]
    for i in range(n):
        fa, fb = a[f"frame{str(i).zfill(w)}"], b[f"frame{str(i).zfill(w)}"]
        assert fa.keys() == fb.keys(), (fa.keys(), fb.keys())
        for k in range(len(fa["coordinates"][0])):
            ca, cb = fa["coordinates"][0][k], fb["coordinates"][0][k]
            res["nan_pattern_equal"] &= bool(np.array_equal(np.isnan(ca), np.isnan(cb)))
            res["xy"] = max(res["xy"], float(np.nanmax(np.abs(ca - cb), initial=0)))
            res["conf"] = max(res["conf"], float(np.max(np.abs(fa["confidence"][k] - fb["confidence"][k]))))
            ia, ib = fa["identity"][k], fb["identity"][k]
            res["identity"] = max(res["identity"], float(np.max(np.abs(ia - ib))))
            res["id_argmax_equal"] &= bool(np.array_equal(ia.argmax(1), ib.argmax(1)))
    asm_a, asm_b = _load(ours / f"{stem}_assemblies.pickle"), _load(dlc / f"{stem}_assemblies.pickle")
    assert asm_a.keys() == asm_b.keys()
    res["assemblies"] = max(float(np.nanmax(np.abs(asm_a[i] - asm_b[i]), initial=0))
                            for i in range(n))
    res["assemblies_shapes_equal"] = all(asm_a[i].shape == asm_b[i].shape for i in range(n))
    res["assemblies_ids_equal"] = all(np.array_equal(asm_a[i][..., 3], asm_b[i][..., 3])
                                      for i in range(n))
    ha = pd.read_hdf(ours / f"{stem}.h5", "df_with_missing")
    hb = pd.read_hdf(dlc / f"{stem}.h5", "df_with_missing")
    res["h5_columns_equal"] = bool(ha.columns.equals(hb.columns))
    res["h5"] = float(np.nanmax(np.abs(ha.to_numpy() - hb.to_numpy())))
    res.update(compare_tracks(dlc, ours))
    return res


def write_fixture(dlc: Path, dlc_identity_only: Path) -> None:
    from mapose.io.atomic import atomic_path

    stem = f"clip{SCORER}"
    full = _load(dlc / f"{stem}_full.pickle")
    asm = _load(dlc / f"{stem}_assemblies.pickle")
    w = full["metadata"]["key_str_width"]
    arrays = {}
    for i in range(N_FIXTURE):
        fr = full[f"frame{str(i).zfill(w)}"]
        arrays[f"xy{i}"] = np.stack(fr["coordinates"][0], axis=1)        # (N, K, 2)
        arrays[f"conf{i}"] = np.stack(fr["confidence"], axis=1)[..., 0]  # (N, K)
        arrays[f"identity{i}"] = np.stack(fr["identity"], axis=1)        # (N, K, ids)
        arrays[f"assemblies{i}"] = asm[i]
    # identity_only tracklets of the first frames: (n_tracklets, frames, K, 4), NaN if absent
    tracklets = _load(dlc_identity_only / f"{stem}_el.pickle")
    ids = sorted(k for k in tracklets if not isinstance(k, str))
    tr = np.full((len(ids), N_FIXTURE, len(full["metadata"]["all_joints"]), 4), np.nan)
    for j, t in enumerate(ids):
        for i in range(N_FIXTURE):
            key = f"frame{str(i).zfill(w)}"
            if key in tracklets[t]:
                tr[j, i] = tracklets[t][key]
    arrays["identity_only_ids"] = np.asarray(ids, np.int64)
    arrays["identity_only_tracklets"] = tr
    with atomic_path(FIXTURE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mapose_identity"))
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--dlc-output", type=Path, help="use DLC files already written here")
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    dlc = args.dlc_output or run_dlc(args.dlc_python, args.workdir, args.frames)
    ours = run_mapose(args.workdir)
    dlc_id, ours_id = track_identity_only(args.dlc_python, args.workdir, dlc, ours)
    if args.write_fixture:
        write_fixture(dlc, dlc_id)
    res = compare(dlc, ours)
    res.update({f"identity_only {k}": v for k, v in compare_tracks(dlc_id, ours_id).items()})
    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:<{width}}  {v:.3g}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
