"""HRNet + PAF parity: mapose's networks vs DeepLabCut 3.0.2's own ``PoseModel`` (timm HRNet).

    python benchmarks/compare_hrnet.py                 # w18, w32 (+ incre / interpolate variants)
    python benchmarks/compare_hrnet.py --all           # also hrnet_w48
    python benchmarks/compare_hrnet.py --write-fixtures

In the DLC virtualenv (``--dlc-python``, default /work/dlcenv/bin/python) the script builds
the ``pytorch_config`` of each ``net_type`` with DLC's own config builder
(``make_pytorch_pose_config`` on project A's ``config.yaml``: 5 body parts, PAF head),
builds DLC's ``PoseModel`` (timm ``hrnet_wXX``, ``features_only=True``), randomises the
BatchNorm statistics, and saves its random-initialised ``state_dict``, a fixed input and
the outputs to a temporary ``.pt``.  mapose then builds its model from the same config,
loads that state dict with ``strict=True`` and reports the max |difference| of every
output, the head strides, and the forward time of both on the same input size.

``--write-fixtures`` also writes the generated ground truth used by
``tests/test_models_hrnet.py``:

* ``tests/data/hrnet_keys_<net_type>.json``: DLC's model section, state-dict keys and
  shapes, the backbone key count, head strides and output shapes for a 64x96 input;
* ``tests/data/hrnet_parity_w18.npz``: DLC's outputs of hrnet_w18+PAF on a 32x32 input
  with *deterministic* weights (filled by :func:`fill_rule`, numpy PCG64, reproducible
  without storing 38 MB of weights).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROJECT_A = Path("/work/shared/data/dlc-3.0.2-project-a")
DATA = REPO / "tests" / "data"

# Deterministic weights from key index and shape (numpy's PCG64 is stable across versions).
# The same text runs in the DLC process and here; tests/test_models_hrnet.py repeats it.
FILL_SRC = r'''
def fill_rule(index, key, shape):
    rng = np.random.default_rng(1000 + index)
    shape = tuple(shape)
    if key.endswith("num_batches_tracked"):
        return None
    if len(shape) > 1:
        fan = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32)
    if key.endswith("running_var") or key.endswith(".weight"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def fill_input(shape):
    return np.random.default_rng(7).standard_normal(shape).astype(np.float32)
'''
exec(FILL_SRC)  # defines fill_rule, fill_input

DLC_SCRIPT = r"""
import copy, json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, torch, yaml
from deeplabcut.pose_estimation_pytorch.config.make_pose_config import make_pytorch_pose_config
from deeplabcut.pose_estimation_pytorch.models import PoseModel
exec(sys.argv[4])
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[5]))
proj = yaml.safe_load(open(sys.argv[1]))
proj["project_path"] = "/tmp/mapose_hrnet_project"
cases = json.loads(sys.argv[2])
out = {}
for case in cases:
    name, net_type = case["name"], case["net_type"]
    cfg = make_pytorch_pose_config(proj, "/tmp/mapose_hrnet_project/pytorch_config.yaml", net_type=net_type)
    plain = lambda o: o.to_dict() if hasattr(o, "to_dict") else str(o)
    cfg = json.loads(json.dumps(plain(cfg), default=plain))
    model_cfg = cfg["model"]
    model_cfg["backbone"].update(case.get("backbone", {}))
    if case.get("backbone", {}).get("increased_channel_count"):
        model_cfg["backbone_output_channels"] = 128
    if case.get("backbone", {}).get("interpolate_branches"):
        c = model_cfg["backbone_output_channels"]
        c = 128 + 256 + 512 + 1024 if model_cfg["backbone"].get("increased_channel_count") else 15 * c
        model_cfg["backbone_output_channels"] = c
    for h in model_cfg["heads"].values():
        for k in ("heatmap_config", "locref_config", "paf_config"):
            if k in h:
                h[k]["channels"][0] = model_cfg["backbone_output_channels"]
    model = PoseModel.build(copy.deepcopy(model_cfg)).eval()
    sd = model.state_dict()
    rec = dict(cfg=model_cfg, data=cfg.get("data"), keys=[[k, list(v.shape)] for k, v in sd.items()],
               n_backbone=sum(k.startswith("backbone.") for k in sd))
    if case.get("deterministic"):
        with torch.no_grad():
            for i, (k, v) in enumerate(sd.items()):
                w = fill_rule(i, k, v.shape)
                if w is not None:
                    v.copy_(torch.from_numpy(w))
        x = torch.from_numpy(fill_input(case["shape"]))
    else:
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 1.5)
                mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.normal_(0, 0.1)
        x = torch.randn(case["shape"])
        rec["sd"] = model.state_dict()
    with torch.no_grad():
        y = model(x)
    rec["x"] = x
    rec["y"] = {h: {k: v for k, v in d.items()} for h, d in y.items()}
    rec["strides"] = {h: float(model.get_stride(h)) for h in y}
    if case.get("time_shape"):
        xt = torch.randn(case["time_shape"])
        with torch.inference_mode():
            model(xt)
            t0 = time.perf_counter()
            for _ in range(case["reps"]):
                model(xt)
            rec["time"] = (time.perf_counter() - t0) / case["reps"]
            rec["time_shape"] = case["time_shape"]
    out[name] = rec
    print(name, len(sd), {h: {k: tuple(v.shape) for k, v in d.items()} for h, d in y.items()}, flush=True)
torch.save(out, sys.argv[3])
"""


def run_dlc(dlc_python: str, cases: list[dict], threads: int, cache: Path | None = None) -> dict:
    import torch

    if cache is not None and cache.exists():
        return torch.load(cache, weights_only=False)
    with tempfile.TemporaryDirectory(prefix="mapose_hrnet_") as tmp:
        dst = cache if cache is not None else Path(tmp) / "dlc.pt"
        proc = subprocess.run(
            [dlc_python, "-c", DLC_SCRIPT, str(PROJECT_A / "config.yaml"), json.dumps(cases), str(dst),
             FILL_SRC, str(threads)],
            capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"DLC side failed:\n{proc.stderr[-4000:]}")
        return torch.load(dst, weights_only=False)


def _outputs(rec) -> list:
    return [rec["y"][h][k] for h in rec["y"] for k in rec["y"][h]]


def mapose_model(rec):
    from mapose.models.pose_model import PoseModel

    return PoseModel.from_config({"model": rec["cfg"], "net_type": rec["cfg"]["backbone"]["model_name"]}).eval()


def time_forward(model, shape, reps):
    import torch

    x = torch.randn(shape)
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
    return (time.perf_counter() - t0) / reps


def compare(recs: dict, reps: int) -> None:
    import torch

    print(f"{'case':<22}{'keys':>6}{'max |diff|':>12}{'max |ref|':>11}{'strides eq':>11}"
          f"{'DLC s':>9}{'mapose s':>10}{'speed-up':>9}")
    for name, rec in recs.items():
        m = mapose_model(rec)
        if "sd" in rec:
            m.load_state_dict(rec["sd"], strict=True)
        else:
            # index by DLC's key order, so a different module order here cannot hide
            sd = m.state_dict()
            with torch.no_grad():
                for i, (k, shape) in enumerate(rec["keys"]):
                    w = fill_rule(i, k, shape)
                    if w is not None:
                        sd[k].copy_(torch.from_numpy(w))
        with torch.no_grad():
            out = m(rec["x"])
        refs = _outputs(rec)
        diff = max((a - b).abs().max().item() for a, b in zip(out, refs))
        ref = max(b.abs().max().item() for b in refs)
        strides = [s.stride for s in m.head_specs] == list(rec["strides"].values())
        t_dlc = rec.get("time")
        t_map = time_forward(m, rec["time_shape"], reps) if t_dlc else None
        tcols = (f"{t_dlc:>9.3f}{t_map:>10.3f}{t_dlc / t_map:>8.2f}x" if t_dlc else "")
        print(f"{name:<22}{len(rec['keys']):>6}{diff:>12.3g}{ref:>11.3g}{str(strides):>11}{tcols}")


def write_fixtures(recs: dict) -> None:
    from mapose.io.atomic import atomic_path

    for name, rec in recs.items():
        if not name.startswith("keys_"):
            continue
        net_type = name[len("keys_"):]
        doc = {
            "generated_by": "benchmarks/compare_hrnet.py --write-fixtures (DeepLabCut 3.0.2 PoseModel, timm)",
            "net_type": net_type,
            "model": rec["cfg"],
            "data_inference": (rec.get("data") or {}).get("inference"),
            "n_keys": len(rec["keys"]),
            "n_backbone_keys": rec["n_backbone"],
            "keys": rec["keys"],
            "strides": rec["strides"],
            "input_shape": list(rec["x"].shape),
            "output_shapes": {h: {k: list(v.shape) for k, v in d.items()} for h, d in rec["y"].items()},
        }
        path = DATA / f"hrnet_keys_{net_type}.json"
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(doc, separators=(",", ":")))
        print("wrote", path, path.stat().st_size, "bytes")
    rec = recs["parity_w18"]
    path = DATA / "hrnet_parity_w18.npz"
    arrays = {f"{h}/{k}": v.numpy() for h, d in rec["y"].items() for k, v in d.items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, input_shape=np.asarray(rec["x"].shape), **arrays)
    print("wrote", path, path.stat().st_size, "bytes")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--all", action="store_true", help="also hrnet_w48 (parity and timing)")
    ap.add_argument("--write-fixtures", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dlc-cache", type=Path, default=None,
                    help="keep DLC's outputs in this .pt and reuse it when it exists")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    tshape = [1, 3, 256, 320]
    cases = [
        dict(name="hrnet_w18", net_type="hrnet_w18", shape=[2, 3, 64, 96], time_shape=tshape, reps=args.reps),
        dict(name="hrnet_w32", net_type="hrnet_w32", shape=[1, 3, 96, 64], time_shape=tshape, reps=args.reps),
        dict(name="hrnet_w18_incre", net_type="hrnet_w18", shape=[1, 3, 64, 64],
             backbone={"increased_channel_count": True}),
        dict(name="hrnet_w18_interp", net_type="hrnet_w18", shape=[1, 3, 64, 96],
             backbone={"interpolate_branches": True}),
        dict(name="hrnet_w32_incre_interp", net_type="hrnet_w32", shape=[1, 3, 64, 64],
             backbone={"interpolate_branches": True, "increased_channel_count": True}),
        dict(name="parity_w18", net_type="hrnet_w18", shape=[1, 3, 32, 32], deterministic=True),
    ]
    if args.all:
        cases.append(dict(name="hrnet_w48", net_type="hrnet_w48", shape=[1, 3, 64, 64],
                          time_shape=tshape, reps=args.reps))
    if args.write_fixtures:
        cases += [dict(name=f"keys_{n}", net_type=n, shape=[1, 3, 64, 96], deterministic=True)
                  for n in ("hrnet_w18", "hrnet_w32", "hrnet_w48")]
    recs = run_dlc(args.dlc_python, cases, args.threads, args.dlc_cache)
    compare({k: v for k, v in recs.items() if not k.startswith("keys_")}, args.reps)
    if args.write_fixtures:
        write_fixtures(recs)


if __name__ == "__main__":
    main()
