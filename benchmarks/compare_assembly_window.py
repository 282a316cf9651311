"""mapose vs DeepLabCut 3.0.2: Assembler with temporal coherence (``window_size`` 1..5)
and calibrated (``Assembler.calibrate``).

Usage::

    python benchmarks/compare_assembly_window.py [--dlc-python /work/dlcenv/bin/python] [--repeat 3]
        [--windows 1,2,3,4,5] [--no-calibrated] [--no-window]

For each generated case and window size, in the same run: DeepLabCut's
``Assembler(..., window_size=w).assemble(chunk_size=0)`` in a subprocess (one BLAS
thread; it keeps a ``scipy.spatial.cKDTree`` per frame), mapose's ``Assembler`` on one
thread (a compiled k-d tree per frame), and mapose's kernel with the brute-force
nearest-neighbour scan it used before (the ``_window_brute`` test hook).  Prints seconds
per frame (median of ``--repeat`` runs; DLC: ``--dlc-repeat``), the ratios, and the
fraction of frames whose assemblies are identical to DLC's.

Calibrated: DLC's ``trimouse_full.pickle`` calibrated with ``trimouse_calib.h5`` (the
shared DLC test data), DLC against mapose's ``Assembler`` (compiled) and the Python
reference frame by frame (:mod:`mapose.kernels.assembly_ref`, what mapose's calibrated
path ran before the kernel did it).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapose.assembly.assembler import Assembler  # noqa: E402
from mapose.assembly.synthetic import make_full_data  # noqa: E402
from mapose.kernels import assembly as K  # noqa: E402

# name, frames, data factory, Assembler kwargs
CASES = [
    ("10 x 16 x 120 edges, missing/low-conf/false pos.", 20,
     lambda n: make_full_data(n, 10, 16, p_detect=0.95, n_false_positives=1.0),
     {"max_n_individuals": 10, "n_multibodyparts": 16}),
    ("16 x 30 x 435 edges, missing/low-conf", 6,
     lambda n: make_full_data(n, 16, 30, p_detect=0.95),
     {"max_n_individuals": 16, "n_multibodyparts": 30}),
]

SHARED = Path(os.environ.get("MAPOSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "dlc-unittest"

# argv: full pickle, Assembler kwargs (JSON), calibration h5 ("" for none), repeats
DLC_SCRIPT = r"""
import json, pickle, sys, time, warnings
warnings.simplefilter("ignore")
from deeplabcut.core.inferenceutils import Assembler
data = pickle.load(open(sys.argv[1], "rb"))
kw = json.loads(sys.argv[2]); calib = sys.argv[3]; repeat = int(sys.argv[4])
times = []
for _ in range(repeat):
    a = Assembler(data, **kw)
    if calib:
        a.calibrate(calib)
    t = time.perf_counter(); a.assemble(chunk_size=0); times.append(time.perf_counter() - t)
out = {k: [x.xy.tolist() for x in v] for k, v in a.assemblies.items()}
print(json.dumps({"times": times, "xy": out}))
"""


def run_dlc(python, data, kwargs, repeat, calib_file=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "full.pickle")
        with open(path, "wb") as fh:
            pickle.dump(data, fh, pickle.HIGHEST_PROTOCOL)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [python, "-c", DLC_SCRIPT, path, json.dumps(kwargs), str(calib_file or ""), str(repeat)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode:
        raise RuntimeError(f"DeepLabCut run failed:\n{res.stderr[-2000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return statistics.median(out["times"]), {int(k): v for k, v in out["xy"].items()}


def run_mapose(data, kwargs, repeat):
    times = []
    for _ in range(repeat):
        a = Assembler(data, **kwargs)
        t = time.perf_counter()
        a.assemble(chunk_size=0)
        times.append(time.perf_counter() - t)
    return statistics.median(times), a


def run_brute(data, kwargs, repeat):
    """The kernel alone (pack + run) with the brute-force scan, and with the trees."""
    a = Assembler(data, **kwargs)
    params = a._params()
    frames = [data[k] for k in a.metadata["imnames"]]
    fi = np.arange(len(frames), dtype=np.int64)
    out = {}
    for brute in (True, False):
        times = []
        for _ in range(1 if brute else repeat):  # the brute force is only the "before" figure (slow)
            t = time.perf_counter()
            K.run_packed(K.pack_frames(frames, params), params, fi, 1, {}, _window_brute=brute)
            times.append(time.perf_counter() - t)
        out[brute] = statistics.median(times)
    return out[True], out[False]


def _same(ass, xy, n_frames):
    agree = 0
    for f in range(n_frames):
        mine = [a.xy.tolist() for a in ass.assemblies[f]] if f in ass.assemblies else []
        agree += np.array_equal(np.asarray(mine, float), np.asarray(xy.get(f, []), float), equal_nan=True)
    return agree / n_frames


def calibrated(args, have_dlc):
    from mapose.io.safe_pickle import read_pickle
    from mapose.kernels import assembly_ref as R

    full, calib = SHARED / "trimouse_full.pickle", SHARED / "trimouse_calib.h5"
    if not full.exists() or not calib.exists():
        print("calibrated: shared DLC test data not found")
        return
    data = read_pickle(full, what="DLC test data")
    n = len(data) - 1
    print(f"\nCalibrated: DLC trimouse_full.pickle ({n} frames, 3 x 12, 66 edges) + trimouse_calib.h5\n")
    header = f"{'mode':34s} {'DLC s':>8s} {'reference s':>12s} {'mapose 1T s':>12s} {'mapose nT s':>12s} {'x DLC':>7s} {'x ref':>7s} {'same':>5s}"
    print(header)
    print("-" * len(header))
    for label, kw in (("default", {}), ("add_discarded, max_overlap .5", {"add_discarded": True, "max_overlap": 0.5})):
        kwargs = dict(max_n_individuals=3, n_multibodyparts=12, **kw)
        times = {}
        for threads in (1, None):
            ts = []
            for _ in range(args.repeat):
                a = Assembler(data, **kwargs)
                a.calibrate(str(calib))
                t = time.perf_counter()
                a.assemble(n_threads=threads)
                ts.append(time.perf_counter() - t)
            times[threads] = statistics.median(ts)
        ts = []
        for _ in range(max(1, min(args.repeat, 2))):
            frames = [data[k] for k in a.metadata["imnames"]]
            t = time.perf_counter()
            R.assemble_frames(frames, a._params(), kde=a._kde)
            ts.append(time.perf_counter() - t)
        t_ref = statistics.median(ts)
        td = same = float("nan")
        if have_dlc:
            td, xy = run_dlc(args.dlc_python, data, kwargs, args.dlc_repeat, calib_file=calib)
            same = _same(a, xy, n)
        print(f"{label:34s} {td:8.2f} {t_ref:12.3f} {times[1]:12.4f} {times[None]:12.4f} {td / times[1]:6.0f}x "
              f"{t_ref / times[1]:6.0f}x {same:5.0%}", flush=True)
    print("\nseconds for all frames (assemble(); mapose 1T: one thread, nT: all cores); x DLC / x ref = DLC / "
          "reference time over mapose's one-thread time; same = frames with DLC's assemblies (xy, order).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dlc-repeat", type=int, default=1)
    parser.add_argument("--windows", default="1,2,3,4,5")
    parser.add_argument("--no-window", action="store_true")
    parser.add_argument("--no-calibrated", action="store_true")
    args = parser.parse_args(argv)
    have_dlc = Path(args.dlc_python).exists()
    windows = [int(w) for w in args.windows.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Assembler with window_size: mapose vs DeepLabCut 3.0.2 (median of {args.repeat}, DLC {args.dlc_repeat}; "
          f"one thread each; load average {load:.1f} at start)\n")
    header = (f"{'case':50s} {'w':>2s} {'DLC s/fr':>9s} {'mapose s/fr':>12s} {'x DLC':>7s} "
              f"{'brute s/fr':>11s} {'tree s/fr':>10s} {'x brute':>8s} {'same':>5s}")
    print(header)
    print("-" * len(header))
    for name, n_frames, factory, base in ([] if args.no_window else CASES):
        data = factory(n_frames)
        for w in windows:
            kwargs = dict(base, window_size=w)
            tm, ass = run_mapose(data, kwargs, args.repeat)
            tb, tt = run_brute(data, kwargs, args.repeat)
            td = ratio = same = float("nan")
            if have_dlc:
                td, xy = run_dlc(args.dlc_python, data, kwargs, args.dlc_repeat)
                ratio = td / tm
                same = _same(ass, xy, n_frames)
            print(f"{name:50s} {w:2d} {td / n_frames:9.4f} {tm / n_frames:12.5f} {ratio:6.0f}x "
                  f"{tb / n_frames:11.5f} {tt / n_frames:10.5f} {tb / tt:7.1f}x {same:5.0%}", flush=True)
    print("\ns/fr = seconds per frame (wall clock); x DLC = DLC time / mapose Assembler time; brute/tree = "
          "mapose's kernel (pack + assemble) with the old brute-force nearest-neighbour scan and with the "
          "k-d trees; same = frames whose assemblies (xy, order) equal DLC's.")
    if not args.no_calibrated:
        calibrated(args, have_dlc)
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
