"""Compare mapose's DLC file I/O with DeepLabCut 3.0.2 on the same generated files.

Runs mapose in this process and DeepLabCut (``--dlc-python``, default
``/work/dlcenv/bin/python``) in a subprocess, on the same synthetic file set, and prints a
table of best-of-N wall times and their ratio.  The DLC side also checks compatibility:
DLC's own readers must load what mapose wrote (meta-pickle enums, shelve, h5 under
pandas 2, tracklet headers, config.yaml, scorer names).

Usage::

    python benchmarks/compare_io.py [--frames 1000 10000] [--animals 3] [--bodyparts 8]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROJECT_A = Path(os.environ.get("MAPOSE_SHARED_DATA", REPO.parent / "shared" / "data")) / "dlc-3.0.2-project-a"


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def interleaved(fn_a, fn_b, repeat):
    """Best-of-``repeat`` times of two functions run alternately (cancels load drift)."""
    ta, tb = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        fn_a()
        ta.append(time.perf_counter() - t)
        if fn_b is not None:
            t = time.perf_counter()
            fn_b()
            tb.append(time.perf_counter() - t)
    return min(ta), (min(tb) if tb else None)


def mapose_side(paths: dict, project: Path | None, repeat: int) -> tuple[dict, dict]:
    """mapose timings and, interleaved in this process, the stdlib/pandas calls DLC makes."""
    import pickle
    import shelve

    import pandas as pd

    from mapose.io.assemblies_pickle import read_assemblies_pickle
    from mapose.io.config import read_config
    from mapose.io.full_pickle import read_full_pickle, write_full_pickle
    from mapose.io.project import get_scorer_name
    from mapose.io.tracklets_pickle import read_tracklets_pickle
    from mapose.io.tracks_h5 import read_tracks, write_tracks_h5

    full = read_full_pickle(paths["full"])
    df = read_tracks(paths["tracks_h5"])
    tmp = Path(paths["full"]).parent / "mapose_out"
    tmp.mkdir(exist_ok=True)

    def load(p):
        with open(p, "rb") as fh:
            return pickle.load(fh)

    def dump(p, obj):
        with open(p, "wb") as fh:
            pickle.dump(obj, fh, pickle.HIGHEST_PROTOCOL)

    def shelf_read(p):
        with shelve.open(p, "r") as db:
            return {k: db[k] for k in db}

    def shelf_write(p, data):
        with shelve.open(str(p), "n", protocol=pickle.DEFAULT_PROTOCOL) as db:
            for k, v in data.items():
                db[k] = v

    ops = {
        "read _full.pickle": (lambda: read_full_pickle(paths["full"]), lambda: load(paths["full"])),
        "read _full.pickle (shelve)": (lambda: read_full_pickle(paths["full_shelve"]), lambda: shelf_read(paths["full_shelve"])),
        "write _full.pickle": (lambda: write_full_pickle(tmp / "w_full.pickle", full), lambda: dump(tmp / "r_full.pickle", full)),
        "write _full.pickle (shelve)": (lambda: write_full_pickle(tmp / "s_full.pickle", full, use_shelve=True),
                                        lambda: shelf_write(tmp / "rs_full.pickle", full)),
        "read _assemblies.pickle": (lambda: read_assemblies_pickle(paths["assemblies"]), lambda: load(paths["assemblies"])),
        "read _el.pickle": (lambda: read_tracklets_pickle(paths["tracklets"]), lambda: load(paths["tracklets"])),
        "read _el.h5": (lambda: read_tracks(paths["tracks_h5"]), lambda: pd.read_hdf(paths["tracks_h5"])),
        "write _el.h5": (lambda: write_tracks_h5(tmp / "w.h5", df),
                         lambda: df.to_hdf(tmp / "r.h5", key="tracks", format="table", mode="w")),
        "read _el.csv": (lambda: read_tracks(paths["tracks_csv"]),
                         lambda: pd.read_csv(paths["tracks_csv"], header=[0, 1, 2, 3], index_col=0)),
    }
    if project is not None:
        ops["read config.yaml"] = (lambda: read_config(project / "config.yaml"), None)
        ops["scorer name"] = (lambda: get_scorer_name(read_config(project / "config.yaml"), 1, 0), None)
    mine, base = {}, {}
    for k, (a, b) in ops.items():
        mine[k], base[k] = interleaved(a, b, repeat)
    return mine, base


DLC_SCRIPT = textwrap.dedent(r'''
    import json, pickle, sys, time, shutil
    from pathlib import Path
    import numpy as np, pandas as pd
    t0 = time.perf_counter()
    import deeplabcut  # noqa: F401  (import cost excluded from the timings)
    from deeplabcut.pose_estimation_pytorch.runners.shelving import ShelfReader
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_scorer_name
    from deeplabcut.pose_estimation_pytorch.apis.videos import _generate_assemblies_file
    from deeplabcut.utils import auxiliaryfunctions
    args = json.loads(sys.argv[1]); paths = args["paths"]; repeat = args["repeat"]
    project = Path(args["project"]) if args["project"] else None
    out = Path(args["tmp"]); out.mkdir(exist_ok=True)

    def best_of(fn):
        ts = []
        for _ in range(repeat):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        return min(ts)

    def load(p):
        with open(p, "rb") as f:
            return pickle.load(f)

    def dump(p, obj):
        with open(p, "wb") as f:
            pickle.dump(obj, f, pickle.HIGHEST_PROTOCOL)

    def read_shelf(p):
        r = ShelfReader(p); r.open()
        d = {k: r[k] for k in r.keys()}
        r.close(); return d

    def write_shelf(p, data):
        import shelve
        with shelve.open(str(p), flag="n", protocol=pickle.DEFAULT_PROTOCOL) as db:
            for k, v in data.items():
                db[k] = v

    full = load(paths["full"])
    df = pd.read_hdf(paths["tracks_h5"])
    t = {
        "read _full.pickle": best_of(lambda: load(paths["full"])),
        "read _full.pickle (shelve)": best_of(lambda: read_shelf(paths["full_shelve"])),
        "write _full.pickle": best_of(lambda: dump(out / "w_full.pickle", full)),
        "write _full.pickle (shelve)": best_of(lambda: write_shelf(out / "s_full.pickle", full)),
        "read _assemblies.pickle": best_of(lambda: load(paths["assemblies"])),
        "read _el.pickle": best_of(lambda: load(paths["tracklets"])),
        "read _el.h5": best_of(lambda: pd.read_hdf(paths["tracks_h5"])),
        "write _el.h5": best_of(lambda: df.to_hdf(out / "w.h5", key="tracks", format="table", mode="w")),
        "read _el.csv": best_of(lambda: pd.read_csv(paths["tracks_csv"], header=[0, 1, 2, 3], index_col=0)),
    }
    checks = {}
    if project is not None:
        t["read config.yaml"] = best_of(lambda: auxiliaryfunctions.read_config(project / "config.yaml"))
        t["scorer name"] = best_of(lambda: get_scorer_name(auxiliaryfunctions.read_config(project / "config.yaml"), 1, 0.95))
        checks["scorer"] = get_scorer_name(auxiliaryfunctions.read_config(project / "config.yaml"), 1, 0.95)
        cfg = auxiliaryfunctions.read_config(Path(args["mapose_config"]))
        checks["mapose config.yaml read by DLC"] = cfg["Task"] == "projA" and list(cfg["individuals"]) == ["animal0", "animal1", "animal2"]
    # compatibility: DLC's readers on mapose-written files
    meta = load(paths["mapose_meta"])
    from deeplabcut.pose_estimation_pytorch.config.enums import NetType, MethodType
    nt = meta["data"]["pytorch-config"]["net_type"]
    checks["meta enums are DLC enums"] = isinstance(nt, NetType) and nt.value == "resnet_50" and isinstance(meta["data"]["pytorch-config"]["method"], MethodType)
    shelf = read_shelf(paths["full_shelve"])
    checks["DLC ShelfReader reads mapose shelve"] = sorted(shelf) == sorted(full) and all(
        np.array_equal(a, b, equal_nan=True) for a, b in zip(shelf["frame" + "0" * full["metadata"]["key_str_width"]]["coordinates"][0], full[list(full)[1]]["coordinates"][0]))
    _generate_assemblies_file(Path(paths["full"]), out / "dlc_assemblies.pickle", args["n_bodyparts"], args["n_unique"])
    _generate_assemblies_file(Path(paths["full_shelve"]), out / "dlc_assemblies_shelve.pickle", args["n_bodyparts"], args["n_unique"])
    a1, a2 = load(out / "dlc_assemblies.pickle"), load(out / "dlc_assemblies_shelve.pickle")
    checks["DLC builds assemblies from mapose _full (pickle == shelve)"] = list(a1) == list(a2) and all(
        np.array_equal(a1[k], a2[k], equal_nan=True) for k in a1 if k != "single")
    tr = load(paths["tracklets"])
    checks["pandas 2 loads mapose tracklet header"] = isinstance(tr["header"], pd.MultiIndex) and tr["header"].names == ["scorer", "bodyparts", "coords"]
    h5 = pd.read_hdf(paths["tracks_h5"], "tracks")
    checks["pandas 2 reads mapose tracks h5"] = h5.shape == (args["n_frames"], h5.shape[1]) and list(h5.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    print(json.dumps({"times": t, "checks": checks, "import_s": 0}))
''')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--animals", type=int, default=3)
    ap.add_argument("--bodyparts", type=int, default=8)
    ap.add_argument("--unique", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    args = ap.parse_args()

    from mapose.examples import write_example_set
    from mapose.io.config import read_config, write_config
    from mapose.io.meta_pickle import read_meta_pickle, write_meta_pickle

    have_dlc = Path(args.dlc_python).exists()
    for n in args.frames:
        with tempfile.TemporaryDirectory(prefix="mapose_cmp_io_") as tmp:
            tmp = Path(tmp)
            paths = {k: str(v) for k, v in write_example_set(tmp / "set", n_frames=n, n_animals=args.animals,
                                                               n_bodyparts=args.bodyparts, n_unique=args.unique).items()}
            project = None
            extra = {}
            if PROJECT_A.exists():
                # a private copy: DLC's read_config rewrites a moved project's config.yaml
                project = tmp / "projA"
                shutil.copytree(PROJECT_A / "dlc-models-pytorch", project / "dlc-models-pytorch",
                                ignore=shutil.ignore_patterns("*.pt"))
                shutil.copy(PROJECT_A / "config.yaml", project / "config.yaml")
                (project / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train/snapshot-best-050.pt").touch()
                mcfg = tmp / "mapose_cfg" / "config.yaml"
                write_config(mcfg, read_config(PROJECT_A / "config.yaml"))
                extra["mapose_config"] = str(mcfg)
                meta = read_meta_pickle(next(PROJECT_A.glob("videos/*_meta.pickle")))
                paths["mapose_meta"] = str(tmp / "m_meta.pickle")
                write_meta_pickle(paths["mapose_meta"], meta)
            mine, base = mapose_side(paths, project, args.repeat)
            theirs, checks = {}, {}
            if have_dlc:
                payload = json.dumps({"paths": paths, "repeat": args.repeat, "project": str(project) if project else "",
                                      "tmp": str(tmp / "dlc_out"), "n_bodyparts": args.bodyparts,
                                      "n_unique": args.unique, "n_frames": n, **extra})
                r = subprocess.run([args.dlc_python, "-c", DLC_SCRIPT, payload], capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stderr[-3000:], file=sys.stderr)
                else:
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                    theirs, checks = res["times"], res["checks"]
            print(f"\n## {n} frames, {args.animals} animals, {args.bodyparts} bodyparts (+{args.unique} unique); best of {args.repeat}")
            print("(stdlib = the pickle/shelve/pandas call DLC makes, timed in this process, interleaved with mapose)")
            print(f"{'operation':30s} {'mapose [ms]':>12s} {'stdlib [ms]':>12s} {'DLC 3.0.2 [ms]':>15s} {'DLC/mapose':>11s}")

            def fmt(x, w):
                return f"{1e3 * x:{w}.2f}" if x else " " * (w - 1) + "-"

            for k, v in mine.items():
                d = theirs.get(k)
                ratio = f"{d / v:10.2f}x" if d else "         -"
                print(f"{k:30s} {fmt(v, 12)} {fmt(base.get(k), 12)} {fmt(d, 15)} {ratio}")
            if checks:
                if "scorer" in checks:
                    from mapose.io.project import get_scorer_name as gs
                    ours = gs(read_config(project / "config.yaml"), 1, 0)
                    checks["scorer name identical"] = checks.pop("scorer") == ours
                print("compatibility (DLC's readers on mapose-written files):")
                for k, v in checks.items():
                    print(f"  [{'ok' if v else 'FAIL'}] {k}")


if __name__ == "__main__":
    main()
