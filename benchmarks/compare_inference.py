"""mapose vs DeepLabCut 3.0.2: end-to-end ``analyze_videos`` frames/s on the same video.

Usage::

    python benchmarks/compare_inference.py --check-models   # network parity vs timm / DLC
    python benchmarks/compare_inference.py --network --repeats 5   # network alone, 1 thread, CPU s/frame
    python benchmarks/compare_inference.py --repeats 3   # the project's whole video (the issue's target)
    python benchmarks/compare_inference.py [--frames 60] [--dlc-python /work/dlcenv/bin/python]
                                           [--project ../shared/data/dlc-3.0.2-project-a]
                                           [--auto-track] [--repeats 1] [--plain] [--sync]
                                           [--tree before=/path/to/older/checkout]

A temporary copy of the project (config, model configs, snapshot symlink) gets the
project's video (``videos/synthA.avi``, all its frames, linked unchanged) or, with
``--frames N``, an N-frame clip of it (looped when N exceeds its length, re-encoded
losslessly as FFV1); DLC runs in a subprocess with its own interpreter (it writes
into the project, hence the copy), mapose runs torch and ONNX engines in subprocesses too,
so every contender pays the same start-up and none shares warm caches.  Times exclude
interpreter start-up and imports, include model loading, and are wall-clock seconds of the
``analyze_videos`` call (libraries preloaded on both sides).  Outputs are checked against each other (max |Δxy| over frames).

Both sides use the project's ``batch_size`` (config.yaml, as ``analyze_videos(batch_size=None)``
does) and their default thread settings.  Each repeat runs the contenders in a rotated
order; the table shows the median over repeats (and the best), the process CPU seconds
of the call (robust against other load on the machine: a contender that waits on
preempted threads burns CPU spinning), and with ``--warm`` a second ``analyze_videos``
call in the same process (model loaded again, but lazy imports, allocator and kernel
caches warm).  mapose's per-stage seconds: decode and post-processing overlap the
network, so they are not on the critical path unless they exceed it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHUFFLE_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"

RUNNER = r"""
import json, sys, time, warnings, pickle, faulthandler
faulthandler.enable()  # a crash prints every thread's stack (reported by run())
warnings.simplefilter("ignore")
kind, config, video, dest, auto_track = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
warm = sys.argv[7] == "1"
t_import = time.perf_counter()
if kind == "dlc":
    import deeplabcut as lib
    kw = {}
else:
    sys.path.insert(0, sys.argv[6])
    import mapose as lib
    # `import deeplabcut` loads torch, cv2 & co. before the clock starts; preload what
    # mapose imports lazily so both calls are timed from the same point
    import cv2, torch, mapose.inference.analyze  # noqa: F401
    if kind.endswith("-prev"):
        # the previous release's runners: one multi-threaded forward per batch, ONNX graph
        # optimised at every session start
        import mapose.inference.runners as runners
        for cls, fixed in ((runners.TorchRunner, {"workers": 1}),
                           (runners.OnnxRunner, {"workers": 1, "cache_optimized": False})):
            cls.__init__ = (lambda init, fixed: lambda self, *a, **k: init(self, *a, **{**k, **fixed}))(cls.__init__, fixed)
        kind = kind[:-len("-prev")]
    if kind.endswith("-plain"):
        # this release's runners without the inference rewrites (no Winograd, fused head or
        # forced oneDNN): the model as trained; its own ONNX file
        import mapose.inference.export as export
        import mapose.inference.runners as runners
        init, exp, where = runners.TorchRunner.__init__, export.export_onnx, export.onnx_path_for
        runners.TorchRunner.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "optimize": False})
        export.export_onnx = lambda *a, **k: exp(*a, **{**k, "optimize": False})
        export.onnx_path_for = lambda pm: where(pm).with_name(where(pm).stem + "-plain.onnx")
        kind = kind[:-len("-plain")]
    if kind.endswith("-sync"):
        # this release without batches in flight: run_video waits for every batch before
        # submitting the next (the previous pipeline)
        import mapose.inference.runners as runners
        del runners.TorchRunner.submit, runners.OnnxRunner.submit
        kind = kind[:-len("-sync")]
    if kind == "onnx":
        import onnxruntime  # noqa: F401
    kw = {"engine": kind, "progress": False}
def call(dest):
    t0, c0 = time.perf_counter(), time.process_time()
    scorer = lib.analyze_videos(config, [video], auto_track=auto_track, destfolder=dest, **kw)
    t1, c1 = time.perf_counter(), time.process_time()
    stages = None
    if kind != "dlc":
        st = lib.analyze_videos.last_times
        stages = {k: getattr(st, k, 0.0)  # an older checkout (--tree) has no setup stage
                  for k in ("setup", "decode", "network", "postprocess", "write", "tracking", "total")}
    return {"seconds": t1 - t0, "cpu": c1 - c0, "scorer": scorer, "stages": stages}
t_imported = time.perf_counter()
res = call(dest)
res["import"] = t_imported - t_import
if warm:
    res["warm"] = call(dest + "_warm")
print("RESULT" + json.dumps(res))
"""


def make_project(src: Path, dst: Path, n_frames: int | None) -> tuple[Path, Path]:
    """Copy of the project at ``dst`` with its video (``n_frames`` None) or an n-frame clip."""
    import cv2

    (dst / "videos").mkdir(parents=True)
    shutil.copy(src / "config.yaml", dst / "config.yaml")
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("train/pytorch_config.yaml", "test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(src / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
    os.symlink(src / SHUFFLE_DIR / "train/snapshot-best-050.pt", dst / SHUFFLE_DIR / "train/snapshot-best-050.pt")
    for p in dst.rglob("*"):
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    if n_frames is None:  # the project's own video, every frame
        os.symlink(src / "videos/synthA.avi", dst / "videos/synthA.avi")
        return dst / "config.yaml", dst / "videos/synthA.avi"
    cap = cv2.VideoCapture(str(src / "videos/synthA.avi"))
    frames = []
    while len(frames) < n_frames:
        ok, f = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(src / "videos/synthA.avi"))  # loop the 150-frame video
            continue
        frames.append(f)
    cap.release()
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst / "videos/clip.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return dst / "config.yaml", dst / "videos/clip.avi"


def run(python, kind, config, video, dest, auto_track, warm=False, trees=None):
    """One contender in a fresh process; ``kind`` ``"<engine>@<label>"`` runs the mapose
    checkout ``trees[label]`` (``--tree``) instead of this one."""
    engine, _, label = kind.partition("@")
    repo = (trees or {}).get(label, REPO)
    cmd = [python, "-c", RUNNER, engine, str(config), str(video), str(dest), "1" if auto_track else "0", str(repo),
           "1" if warm else "0"]
    for attempt in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT")), None)
        if not proc.returncode and line is not None:
            return json.loads(line[len("RESULT"):])
        msg = f"{kind} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
        if attempt:
            raise RuntimeError(msg)
        print(msg + "\n(retrying once)", file=sys.stderr, flush=True)
        shutil.rmtree(dest, ignore_errors=True)


def max_diff(a_path, b_path):
    import pickle

    import numpy as np

    with open(a_path, "rb") as fh:
        a = pickle.load(fh)
    with open(b_path, "rb") as fh:
        b = pickle.load(fh)
    keys = [k for k in a if k != "metadata"]
    d = 0.0
    for k in keys:
        for x, y in zip(a[k]["coordinates"][0], b[k]["coordinates"][0]):
            if x.shape == y.shape and len(x):
                d = max(d, float(np.nanmax(np.abs(x - y))) if np.isfinite(x - y).any() else 0.0)
    return d


# --- --check-models: mapose's modules vs timm and DLC's PoseModel (random weights) ---------
TIMM_SCRIPT = r"""
# runs in /work/dlcenv: dump timm state dicts + outputs for random weights
import torch, timm, sys
torch.manual_seed(0)
res={}
x=torch.randn(1,3,96,128)
for name, os_ in [("resnet50_gn",16),("resnet50",8),("resnet101",16),("resnet50",32)]:
    m=timm.create_model(name, output_stride=os_, pretrained=False, num_classes=0).eval()
    # randomise BN stats so eval differs from identity
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0,0.1); mod.running_var.uniform_(0.5,1.5)
    with torch.no_grad(): y=m.forward_features(x)
    res[(name,os_)]=({k:v for k,v in m.state_dict().items()}, y)
torch.save({"x":x,"res":res}, sys.argv[1])
print("ok")
"""

DLC_MODELS_SCRIPT = r"""
import torch, yaml, copy, sys
from deeplabcut.pose_estimation_pytorch.models import PoseModel
torch.manual_seed(0)
base=yaml.safe_load(open(sys.argv[1]))
out={}
def heads_for(C, two):
    ch=lambda o:{"channels":[C,C//2,o] if two else [C,o],"kernel_size":[3,3] if two else [3],"strides":[2,2] if two else [2]}
    h=copy.deepcopy(base['model']['heads']['bodypart'])
    h['heatmap_config']=ch(5); h['locref_config']=ch(10); h['paf_config']=ch(20)
    uniq={"type":"HeatmapHead","predictor":{"type":"HeatmapPredictor","apply_sigmoid":False,"clip_scores":True,"location_refinement":True,"locref_std":7.2801},
          "target_generator":{"type":"HeatmapPlateauGenerator","num_heatmaps":1,"pos_dist_thresh":17,"heatmap_mode":"KEYPOINT","generate_locref":True,"locref_std":7.2801},
          "criterion":{"heatmap":{"type":"WeightedBCECriterion","weight":1.0},"locref":{"type":"WeightedHuberCriterion","weight":0.05}},
          "heatmap_config":{"channels":[C,1],"kernel_size":[3],"strides":[2]},"locref_config":{"channels":[C,2],"kernel_size":[3],"strides":[2]}}
    ident={"type":"HeatmapHead","predictor":{"type":"IdentityPredictor","apply_sigmoid":True},
          "target_generator":{"type":"HeatmapGaussianGenerator","num_heatmaps":3,"pos_dist_thresh":17,"heatmap_mode":"INDIVIDUAL","generate_locref":False},
          "criterion":{"heatmap":{"type":"WeightedBCECriterion","weight":1.0}},
          "heatmap_config":{"channels":[C,3],"kernel_size":[3],"strides":[2]}}
    return {"bodypart":h,"unique_bodypart":uniq,"identity":ident}
for name,bb,C,two in [("dlcrnet16",{"type":"DLCRNet","model_name":"resnet50","output_stride":16},2304,False),
                      ("dlcrnet32",{"type":"DLCRNet","model_name":"resnet50","output_stride":32},2304,True),
                      ("resnet101",{"type":"ResNet","model_name":"resnet101","output_stride":16},2048,False)]:
    m=copy.deepcopy(base['model']); m['backbone']=bb; m['backbone_output_channels']=C; m['heads']=heads_for(C,two)
    try:
        model=PoseModel.build(m).eval()
    except Exception as e:
        print(name,'build failed',repr(e)[:300]); continue
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0,0.1); mod.running_var.uniform_(0.5,1.5)
    x=torch.randn(1,3,96,128)
    with torch.no_grad(): y=model(x)
    out[name]=dict(cfg=m, sd=model.state_dict(), x=x, y={h:{k:v for k,v in d.items()} for h,d in y.items()}, strides={h:model.get_stride(h) for h in y})
    print(name, len(model.state_dict()), {h:{k:tuple(v.shape) for k,v in d.items()} for h,d in y.items()})
torch.save(out,sys.argv[2])
"""


DLC_NETWORK_SCRIPT = r"""
# runs in /work/dlcenv: DLC's own PoseModel on the same batch, one thread
import sys, time, statistics, numpy as np, torch, yaml
from deeplabcut.pose_estimation_pytorch.models import PoseModel
torch.set_num_threads(1)
cfg = yaml.safe_load(open(sys.argv[1]))
model = PoseModel.build(cfg["model"]).eval()
model.load_state_dict(torch.load(sys.argv[2], map_location="cpu", weights_only=False)["model"])
x = torch.from_numpy(np.load(sys.argv[3]))
times = []
with torch.inference_mode():
    model(x)
    for _ in range(int(sys.argv[4])):
        c = time.process_time(); model(x); times.append((time.process_time() - c) / len(x))
print("RESULT", statistics.median(times), min(times))
"""


def network_only(dlc_python: str, project: Path, repeats: int, batch: int = 2) -> None:
    """Single-threaded CPU seconds per frame of the network alone (batch ``batch``, 320x256):
    less sensitive to other load on the machine than wall-clock times."""
    import statistics
    import time

    import numpy as np
    import onnxruntime as ort
    import torch

    from mapose.inference.export import export_onnx
    from mapose.inference.project_model import find_project_model
    from mapose.models.pose_model import FramesModel, InferenceOptions, normalize_frames, optimize_for_inference

    torch.set_num_threads(1)
    pm = find_project_model(project / "config.yaml", 1, 0, None, "")
    frames = np.random.default_rng(0).integers(0, 256, (batch, 256, 320, 3), dtype=np.uint8)
    runs = {}
    plain = pm.build_model().eval()
    runs["torch plain"] = FramesModel(plain, channels_last=True).eval()
    runs["torch fused+oneDNN"] = FramesModel(optimize_for_inference(plain, InferenceOptions(winograd=False)),
                                             channels_last=True).eval()
    runs["torch optimized"] = FramesModel(optimize_for_inference(plain), channels_last=True).eval()
    with tempfile.TemporaryDirectory(prefix="mapose_net_") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        for name, optimize in (("onnx plain", False), ("onnx optimized", True)):
            path = export_onnx(pm.build_model().eval(), Path(tmp) / f"{optimize}.onnx", optimize=optimize)
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            runs[name] = (lambda s: lambda f: s.run(None, {"frames": f}))(sess)
        np.save(Path(tmp) / "x.npy", normalize_frames(frames[..., ::-1]))
        dlc = None
        if dlc_python:
            out = subprocess.run([dlc_python, "-c", DLC_NETWORK_SCRIPT,
                                  str(project / SHUFFLE_DIR / "train/pytorch_config.yaml"),
                                  str(project / SHUFFLE_DIR / "train/snapshot-best-050.pt"),
                                  str(Path(tmp) / "x.npy"), str(repeats)], capture_output=True, text=True)
            line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
            dlc = tuple(map(float, line.split()[1:])) if line else None
            if dlc is None:
                print("DLC network run failed:", out.stderr[-1500:])
    times = {k: [] for k in runs}
    with torch.inference_mode():
        for fn in runs.values():
            fn(frames if not isinstance(fn, torch.nn.Module) else torch.from_numpy(frames))
        for _ in range(repeats):  # interleaved, so load changes hit every variant alike
            for k, fn in runs.items():
                arg = torch.from_numpy(frames) if isinstance(fn, torch.nn.Module) else frames
                c = time.process_time()
                fn(arg)
                times[k].append((time.process_time() - c) / batch)
    ref = statistics.median(times["torch plain"])
    print(f"\nnetwork alone, 1 thread, batch {batch} of 320x256 frames, {repeats} runs; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'':4}{'variant':<22}{'CPU s/frame':>12}{'best':>8}{'vs torch plain':>16}{'vs DLC':>8}")
    if dlc:
        print(f"{'':4}{'DLC 3.0.2 PoseModel':<22}{dlc[0]:12.3f}{dlc[1]:8.3f}{ref / dlc[0]:15.2f}x{1:7.2f}x")
    for k, v in times.items():
        med = statistics.median(v)
        vs_dlc = f"{dlc[0] / med:7.2f}x" if dlc else "    n/a"
        print(f"{'':4}{k:<22}{med:12.3f}{min(v):8.3f}{ref / med:15.2f}x{vs_dlc}")


def check_models(dlc_python: str, project: Path) -> None:
    """Build models in DLC's env (timm / DLC PoseModel), load their weights into mapose's
    modules and compare outputs on the same random input (max |difference|)."""
    import torch

    from mapose.models.backbones import TimmResNet
    from mapose.models.pose_model import PoseModel

    with tempfile.TemporaryDirectory(prefix="mapose_models_") as tmp:
        t_out, d_out = Path(tmp) / "timm.pt", Path(tmp) / "dlc.pt"
        subprocess.run([dlc_python, "-c", TIMM_SCRIPT, str(t_out)], check=True, capture_output=True)
        cfg = project / SHUFFLE_DIR / "train/pytorch_config.yaml"
        subprocess.run([dlc_python, "-c", DLC_MODELS_SCRIPT, str(cfg), str(d_out)], check=True,
                       capture_output=True)
        ref = torch.load(t_out, weights_only=False)
        for (name, os_), (sd, y) in ref["res"].items():
            m = TimmResNet(name, os_).eval()
            m.load_state_dict({k: v for k, v in sd.items() if not k.startswith("fc.")}, strict=True)
            with torch.no_grad():
                d = (m(ref["x"]) - y).abs().max().item()
            print(f"timm {name:<12} output_stride {os_:>2}: max |diff| {d:.3g}")
        for name, r in torch.load(d_out, weights_only=False).items():
            m = PoseModel.from_config({"model": r["cfg"]}).eval()
            m.load_state_dict(r["sd"], strict=True)
            with torch.no_grad():
                out = m(r["x"])
            refs = [r["y"][h][k] for h in r["y"] for k in r["y"][h]]
            d = max((a - b).abs().max().item() for a, b in zip(out, refs))
            strides = [s.stride for s in m.head_specs] == list(r["strides"].values())
            print(f"DLC PoseModel {name:<10} ({len(r['sd'])} keys, heads {list(r['y'])}): "
                  f"max |diff| {d:.3g}, strides equal: {strides}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=None,
                    help="analyse an N-frame clip of the project's video (looped if longer) "
                         "instead of the whole video")
    ap.add_argument("--project", default=str(REPO.parent / "shared/data/dlc-3.0.2-project-a"))
    ap.add_argument("--dlc-python", default="/work/dlcenv/bin/python")
    ap.add_argument("--auto-track", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-dlc", action="store_true")
    ap.add_argument("--baseline", action="store_true",
                    help="also run mapose with the previous runners (workers=1, no ONNX graph cache)")
    ap.add_argument("--plain", action="store_true",
                    help="also run mapose without the inference rewrites (optimize=False: no Winograd, "
                         "fused head layers or forced oneDNN)")
    ap.add_argument("--sync", action="store_true",
                    help="also run mapose without batches in flight (each batch collected before "
                         "the next is submitted: the previous pipeline)")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="also run mapose torch and ONNX from another checkout in the same run "
                         "(e.g. a `git worktree` of an older commit, built); repeatable")
    ap.add_argument("--warm", action="store_true",
                    help="also time a second analyze_videos call in the same process")
    ap.add_argument("--check-models", action="store_true",
                    help="only compare mapose's networks with timm / DLC's PoseModel")
    ap.add_argument("--network", action="store_true",
                    help="only time the network alone: single-threaded CPU s/frame of DLC's PoseModel, "
                         "mapose torch and ONNX Runtime, plain and optimized")
    args = ap.parse_args(argv)
    if args.network:
        sys.path.insert(0, str(REPO))
        return network_only(args.dlc_python, Path(args.project), max(3, args.repeats))
    if args.check_models:
        sys.path.insert(0, str(REPO))
        return check_models(args.dlc_python, Path(args.project))
    kinds = (["torch", "onnx"] + (["torch-prev", "onnx-prev"] if args.baseline else [])
             + (["torch-plain", "onnx-plain"] if args.plain else [])
             + (["torch-sync", "onnx-sync"] if args.sync else [])
             + [f"{e}@{t.partition('=')[0]}" for t in args.tree for e in ("torch", "onnx")]
             + ([] if args.skip_dlc else ["dlc"]))
    trees = {t.partition("=")[0]: Path(t.partition("=")[2]).resolve() for t in args.tree}
    for label, d in trees.items():
        if not (d / "mapose" / "__init__.py").is_file():
            ap.error(f"--tree {label}={d}: not a mapose checkout")
    with tempfile.TemporaryDirectory(prefix="mapose_cmp_") as tmp:
        tmp = Path(tmp)
        config, video = make_project(Path(args.project), tmp / "proj", args.frames)
        results = {k: [] for k in kinds}
        # warm the ONNX export once (cached next to the project, like a user's second run)
        run(sys.executable, "onnx", config, video, tmp / "warm", False)
        for label in trees:  # the same file name unless the graph version differs
            run(sys.executable, f"onnx@{label}", config, video, tmp / f"warm-{label}", False, trees=trees)
        if args.plain:
            run(sys.executable, "onnx-plain", config, video, tmp / "warm-plain", False)
        for r in range(args.repeats):
            for k in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # rotate who goes first
                py = args.dlc_python if k == "dlc" else sys.executable
                results[k].append(run(py, k, config, video, tmp / f"out_{k}_{r}", args.auto_track, args.warm,
                                      trees))
        scorer = results["torch"][0]["scorer"]
        n_frames = _frame_count(video)
        what = (f"a {n_frames}-frame 320x256 clip of project A's video" if args.frames is not None
                else f"project A's whole video {video.name} ({n_frames} frames, 320x256)")
        print(f"\nanalyze_videos on {what} "
              f"(ResNet-50-GN + DLCRNet PAF head, batch_size 4, auto_track={args.auto_track}), "
              f"{os.cpu_count()} CPUs, {args.repeats} repeat(s); load average before: "
              f"{os.getloadavg()[0]:.1f}")
        rows = [("cold", lambda d: d)] + ([("warm", lambda d: d["warm"])] if args.warm else [])
        for label, pick in rows:
            med = {k: _median([pick(d)["seconds"] for d in v]) for k, v in results.items()}
            best = {k: min(pick(d)["seconds"] for d in v) for k, v in results.items()}
            cpu = {k: _median([pick(d)["cpu"] for d in v]) for k, v in results.items()}
            print(f"\n[{label} process] {'engine':<18}{'median s':>9}{'frames/s':>9}{'vs DLC':>8}"
                  f"{'best s':>8}{'vs DLC':>8}{'CPU s':>8}{'vs DLC':>8}   median stages (s)")
            for k in kinds:
                name = "DLC 3.0.2" if k == "dlc" else f"mapose {k}"
                ratio = (lambda a, b: f"{a / b:7.2f}x") if "dlc" in med else (lambda a, b: "    n/a")
                st = [pick(d)["stages"] for d in results[k]]
                stages = "" if not st[0] else ", ".join(
                    f"{n} {_median([x[n] for x in st]):.2f}" for n in st[0])
                print(f"{'':16}{name:<18}{med[k]:9.2f}{n_frames / med[k]:9.2f}"
                      f"{ratio(med.get('dlc', 1), med[k]):>8}{best[k]:8.2f}{ratio(best.get('dlc', 1), best[k]):>8}"
                      f"{cpu[k]:8.2f}{ratio(cpu.get('dlc', 1), cpu[k]):>8}   {stages}")
        if "dlc" in results:
            for k in ("torch", "onnx"):
                d = max_diff(tmp / f"out_{k}_0/{video.stem}{scorer}_full.pickle",
                             tmp / f"out_dlc_0/{video.stem}{scorer}_full.pickle")
                print(f"max |xy difference| mapose {k} vs DLC: {d:.2e} px")


def _frame_count(video: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def _median(values):
    import statistics

    return statistics.median(values)


if __name__ == "__main__":
    main()
