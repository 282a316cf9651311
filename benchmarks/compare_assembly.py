"""mapose vs DeepLabCut 3.0.2: Assembler throughput on the same generated detections.

Usage::

    python benchmarks/compare_assembly.py [--dlc-python /work/dlcenv/bin/python] [--frames 300]

Generates ``_full.pickle``-like data (:func:`mapose.assembly.synthetic.make_full_data`),
runs ``deeplabcut.core.inferenceutils.Assembler(...).assemble(chunk_size=0)`` in a
subprocess with the DLC interpreter (mapose never imports DeepLabCut), then mapose's
``Assembler`` on one thread and on all cores, checks that both produce the same
assemblies, and prints frames/s and speed-ups.  Times are the best of ``--repeat`` runs
(wall clock) on the same machine in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapose.assembly.assembler import Assembler  # noqa: E402
from mapose.assembly.synthetic import make_full_data  # noqa: E402

CASES = [
    # name, animals, bodyparts, false positives per bodypart and frame
    ("3 animals x 12 bodyparts x 66 edges", 3, 12, 0.0),
    ("3 animals x 12 bodyparts x 66 edges, false positives", 3, 12, 1.0),
    ("10 animals x 16 bodyparts x 120 edges, false positives", 10, 16, 1.0),
]

DLC_SCRIPT = r"""
import json, pickle, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from deeplabcut.core.inferenceutils import Assembler
data = pickle.load(open(sys.argv[1], "rb"))
kw = json.loads(sys.argv[2]); repeat = int(sys.argv[3])
best = float("inf")
for _ in range(repeat):
    a = Assembler(data, **kw)
    t = time.perf_counter(); a.assemble(chunk_size=0); best = min(best, time.perf_counter() - t)
out = {k: [x.xy.tolist() for x in v] for k, v in a.assemblies.items()}
print(json.dumps({"time": best, "xy": out}))
"""


def run_dlc(python, data, kwargs, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "full.pickle")
        with open(path, "wb") as fh:
            pickle.dump(data, fh, pickle.HIGHEST_PROTOCOL)
        res = subprocess.run(
            [python, "-c", DLC_SCRIPT, path, json.dumps(kwargs), str(repeat)], capture_output=True, text=True, check=False
        )
    if res.returncode:
        raise RuntimeError(f"DeepLabCut run failed:\n{res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return out["time"], {int(k): v for k, v in out["xy"].items()}


def run_mapose(data, kwargs, n_threads, repeat):
    best = float("inf")
    for _ in range(repeat):
        a = Assembler(data, **kwargs)
        t = time.perf_counter()
        a.assemble(n_threads=n_threads)
        best = min(best, time.perf_counter() - t)
    return best, a


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    parser.add_argument("--frames", type=int, default=300, help="frames per case for mapose")
    parser.add_argument("--dlc-frames", type=int, default=100, help="frames per case for DeepLabCut (slow)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    have_dlc = Path(args.dlc_python).exists()
    n_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"mapose Assembler vs DeepLabCut 3.0.2 (best of {args.repeat}; {n_cores} cores; "
          f"mapose {args.frames} frames, DLC {args.dlc_frames} frames per case)\n")
    header = f"{'case':58s} {'DLC fps':>10s} {'mapose 1T fps':>14s} {'mapose nT fps':>14s} {'1T speed-up':>12s} {'same output':>12s}"
    print(header)
    print("-" * len(header))
    for name, n_animals, n_bodyparts, fp in CASES:
        data = make_full_data(n_frames=args.frames, n_animals=n_animals, n_bodyparts=n_bodyparts,
                              n_false_positives=fp, seed=0)
        kwargs = {"max_n_individuals": n_animals, "n_multibodyparts": n_bodyparts}
        t1, ass = run_mapose(data, kwargs, 1, args.repeat)
        tn, _ = run_mapose(data, kwargs, None, args.repeat)
        fps1 = args.frames / t1
        fpsn = args.frames / tn
        dlc_fps = same = float("nan")
        if have_dlc:
            small = {k: v for i, (k, v) in enumerate(data.items()) if i <= args.dlc_frames}
            td, xy = run_dlc(args.dlc_python, small, kwargs, 1)
            dlc_fps = args.dlc_frames / td
            agree = 0
            for f in range(args.dlc_frames):
                mine = [a.xy.tolist() for a in ass.assemblies.get(f, [])] if f in ass.assemblies else []
                theirs = xy.get(f, [])
                agree += np.array_equal(np.asarray(mine, float), np.asarray(theirs, float), equal_nan=True)
            same = agree / args.dlc_frames
        print(f"{name:58s} {dlc_fps:10.0f} {fps1:14.0f} {fpsn:14.0f} {fps1 / dlc_fps:11.0f}x {same:11.1%}")
    print("\n'same output': fraction of frames whose assemblies (xy, in order) are identical. DeepLabCut "
          "under NumPy 2 sums affinities in float32, so a rare NMS tie can order assemblies differently.")


if __name__ == "__main__":
    main()
