"""mapose vs DeepLabCut 3.0.2: OKS mAP of poses against ground truth, same generated input.

Usage::

    python benchmarks/compare_evaluation.py [--dlc-python /work/dlcenv/bin/python] [--quick]

For each size, ground-truth poses (animals x body parts x frames) and noisy predictions
(jitter, missing key points, dropped animals, spurious animals) are generated and saved as
``.npy``.  mapose's :func:`mapose.evaluation.tracks.oks_map` runs here; DeepLabCut's
``deeplabcut.core.inferenceutils.evaluate_assembly`` runs in a subprocess with its own
interpreter on ``Assembly.from_array`` dicts built from the same arrays.  The table shows
both times, the speed-up, and the largest difference in mAP / mAR.

It also times the whole :func:`mapose.evaluate_tracks` (MOTA/IDF1 via py-motmetrics, RMSE,
mAP) from tracks ``.h5`` files; DLC has no equivalent, so that column has no ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapose.evaluation.tracks import evaluate_tracks, oks_map  # noqa: E402

DLC_SCRIPT = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from deeplabcut.core.inferenceutils import Assembly, evaluate_assembly
pred = np.load(sys.argv[1]); true = np.load(sys.argv[2])
t0 = time.perf_counter()
pred_d, true_d = {}, {}
for f in range(true.shape[0]):
    gts = [Assembly.from_array(g.copy()) for g in true[f] if not np.isnan(g[:, :2]).all()]
    if gts:
        true_d[f] = gts
    pred_d[f] = [Assembly.from_array(p.copy()) for p in pred[f] if not np.isnan(p[:, :2]).all()]
t1 = time.perf_counter()
res = evaluate_assembly(pred_d, true_d, oks_sigma=0.072, with_tqdm=False)
t2 = time.perf_counter()
print(json.dumps({"build": t1 - t0, "eval": t2 - t1, "mAP": float(res["mAP"]), "mAR": float(res["mAR"])}))
"""


def make_case(n_frames, n_animals, n_parts, seed=0):
    """Ground truth (F, N, K, 2) and predictions (F, N+1, K, 3) with likelihoods."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(50, 600, (n_animals, 2)) + np.cumsum(rng.normal(0, 2, (n_frames, n_animals, 2)), axis=0)
    offsets = rng.normal(0, 15, (n_animals, n_parts, 2))
    true = centres[:, :, None] + offsets[None]
    true[rng.random(true.shape[:-1]) < 0.1] = np.nan                       # hidden key points
    pred = np.full((n_frames, n_animals + 1, n_parts, 3), np.nan)
    pred[:, :n_animals, :, :2] = true + rng.normal(0, rng.uniform(0.5, 6, (n_frames, n_animals, 1, 1)),
                                                   true.shape)
    pred[:, :n_animals, :, 2] = rng.uniform(0.2, 1.0, (n_frames, n_animals, n_parts))
    missed = np.zeros((n_frames, n_animals + 1), bool)
    missed[:, :n_animals] = rng.random((n_frames, n_animals)) < 0.05
    pred[missed] = np.nan                                                  # missed animals
    spur = rng.random(n_frames) < 0.2                                       # spurious animals
    pred[spur, n_animals, :, :2] = rng.uniform(0, 640, (spur.sum(), n_parts, 2))
    pred[spur, n_animals, :, 2] = rng.uniform(0.1, 0.6, (spur.sum(), 1))
    pred[np.isnan(pred[..., 0])] = np.nan
    return true, pred


def run_mapose(true, pred):
    t0 = time.perf_counter()
    xy = pred[..., :2]
    kept = ~np.isnan(xy[..., 0])
    n = kept.sum(-1)
    scores = np.where(n > 0, np.where(kept, pred[..., 2], 0).sum(-1) / np.maximum(n, 1), 0.0)
    res = oks_map(xy, scores, true)
    return time.perf_counter() - t0, res


def write_tracks(path, xy, lik):
    import pandas as pd

    f, n, k, _ = xy.shape
    cols = pd.MultiIndex.from_product([["s"], [f"ind{i}" for i in range(n)], [f"bp{j}" for j in range(k)],
                                       ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    vals = np.concatenate([xy, lik[..., None]], axis=-1).reshape(f, -1)
    pd.DataFrame(vals, columns=cols).to_hdf(path, key="tracks", format="table", mode="w")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args(argv)
    sizes = [(100, 3, 5), (500, 3, 12)] if args.quick else [(100, 3, 5), (500, 3, 12), (1000, 6, 12), (2000, 10, 20)]
    have_dlc = os.path.exists(args.dlc_python)
    print(f"{'frames':>6} {'anim':>4} {'bpts':>4} | {'mapose mAP s':>12} {'DLC mAP s':>10} {'speed-up':>8} "
          f"{'|dmAP|':>8} {'|dmAR|':>8} | {'evaluate_tracks s':>17}")
    rows = []
    for n_frames, n_animals, n_parts in sizes:
        true, pred = make_case(n_frames, n_animals, n_parts)
        t_m, res = run_mapose(true, pred)
        with tempfile.TemporaryDirectory() as tmp:
            np.save(os.path.join(tmp, "pred.npy"), pred)
            np.save(os.path.join(tmp, "true.npy"), true)
            dlc = None
            if have_dlc:
                proc = subprocess.run([args.dlc_python, "-c", DLC_SCRIPT, os.path.join(tmp, "pred.npy"),
                                       os.path.join(tmp, "true.npy")], capture_output=True, text=True,
                                      timeout=1800)
                if proc.returncode == 0:
                    dlc = json.loads(proc.stdout.strip().splitlines()[-1])
                else:
                    print("DLC failed:", proc.stderr.strip().splitlines()[-1][:200])
            lik = np.where(np.isnan(true[..., 0]), np.nan, 1.0)
            write_tracks(os.path.join(tmp, "gt.h5"), true, lik)
            write_tracks(os.path.join(tmp, "pred.h5"), pred[..., :2], pred[..., 2])
            t0 = time.perf_counter()
            evaluate_tracks(os.path.join(tmp, "pred.h5"), os.path.join(tmp, "gt.h5"))
            t_e = time.perf_counter() - t0
        t_d = dlc["build"] + dlc["eval"] if dlc else float("nan")
        d_map = abs(dlc["mAP"] - res["mAP"]) if dlc else float("nan")
        d_mar = abs(dlc["mAR"] - res["mAR"]) if dlc else float("nan")
        print(f"{n_frames:>6} {n_animals:>4} {n_parts:>4} | {t_m:>12.3f} {t_d:>10.3f} {t_d / t_m:>8.1f} "
              f"{d_map:>8.1e} {d_mar:>8.1e} | {t_e:>17.3f}", flush=True)
        rows.append(dict(frames=n_frames, animals=n_animals, bodyparts=n_parts, mapose_s=t_m, dlc_s=t_d,
                         mapose_map=res["mAP"], dlc_map=dlc["mAP"] if dlc else None, evaluate_tracks_s=t_e))
    return rows


if __name__ == "__main__":
    main()
