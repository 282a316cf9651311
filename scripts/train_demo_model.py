"""Train the small model shipped in ``mapose/data/demo_model/`` (not part of the public API).

The model is mapose's tiny backbone (:mod:`mapose.models.tiny`) with DLC's multi-stage
``DLCRNetHead`` on top, trained from scratch on scenes rendered on the fly by
:mod:`mapose.demo.render` -- random animal counts, positions, headings, sizes, overlaps,
pillars, backgrounds and noise.  The demo's evaluation video is never used for training:
it is rendered later, from other seeds, by ``mapose demo``.

Targets follow DLC's bottom-up recipe on the head's output grid (cell (r, c) sits at pixel
(stride*c + stride/2, stride*r + stride/2), the mapping DLC's PAF predictor applies):

* heatmap: 1 within ``pos_radius`` pixels of a visible key point, binary cross-entropy;
* locref: (keypoint - cell centre) / 7.2801 on those cells, Huber loss;
* PAF: the unit vector of each skeleton edge on cells within ``paf_width / 2`` of it.

Usage (CPU, a few minutes; run niced when sharing a machine)::

    nice -n 10 python scripts/train_demo_model.py --minutes 12 --out mapose/data/demo_model

It writes ``snapshot-best-<epoch>.pt`` (DLC snapshot layout: ``{"model": state_dict,
"metadata": {...}}``) and ``training_log.csv`` beside the config.
"""
from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import sys

import numpy as np
import torch
import yaml
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from mapose.demo.render import BODYPARTS, animal_keypoints, make_background, render_frame
from mapose.models.heads import build_head
from mapose.models.tiny import build_backbone

LOCREF_STD = 7.2801
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


class TrainModel(nn.Module):
    """backbone + heads.bodypart, with DLC's state_dict prefixes."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone, _, self.backbone_stride = build_backbone(cfg["model"])
        self.heads = nn.ModuleDict({"bodypart": build_head(cfg["model"]["heads"]["bodypart"])})
        self.stride = self.backbone_stride / self.heads["bodypart"].stride

    def forward(self, x):
        return self.heads["bodypart"](self.backbone(x))


def random_scene(rng, size):
    """One training image with its visible key points."""
    h, w = size
    n = int(rng.choice([1, 2, 2, 3, 3, 4]))
    animals = []
    length_base = rng.uniform(36, 58)
    for i in range(n):
        length = length_base * rng.uniform(0.9, 1.1)
        width = length * rng.uniform(0.38, 0.48)
        if i > 0 and rng.random() < 0.6:
            # close encounter: next to a previous animal, possibly overlapping
            ref = animals[int(rng.integers(i))][0][3]
            ang = rng.uniform(0, 2 * math.pi)
            center = ref + rng.uniform(0.45, 1.1) * length * np.array([math.cos(ang), math.sin(ang)])
        else:
            center = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h])
        heading = rng.uniform(-math.pi, math.pi)
        kps = animal_keypoints(center, heading, length, width, rng.normal(0, 0.3))
        animals.append((kps, heading, length, width))
    occ = []
    if rng.random() < 0.35:
        ow, oh = rng.uniform(10, 25), rng.uniform(40, 110)
        x0, y0 = rng.uniform(0, w - ow), rng.uniform(-20, h - 20)
        occ.append((x0, y0, x0 + ow, y0 + oh))
    bg = make_background(w, h, rng)
    img, vis = render_frame(bg, animals, occ, rng.uniform(0, 9), rng, int(rng.choice([3, 4, 4, 5])))
    if rng.random() < 0.25:
        import cv2

        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 0.9))
    kps = np.stack([a[0] for a in animals])
    return img, kps, vis


def make_targets(kps, vis, out_hw, stride, graph, pos_radius, paf_width):
    """Heatmap, locref (+mask) and PAF targets on the head's output grid."""
    oh, ow = out_hw
    n_parts = kps.shape[1]
    ys = np.arange(oh) * stride + stride / 2
    xs = np.arange(ow) * stride + stride / 2
    gx, gy = np.meshgrid(xs, ys)
    hm = np.zeros((n_parts, oh, ow), np.float32)
    locref = np.zeros((2 * n_parts, oh, ow), np.float32)
    lmask = np.zeros((2 * n_parts, oh, ow), np.float32)
    best = np.full((n_parts, oh, ow), np.inf, np.float32)
    for a in range(kps.shape[0]):
        for k in range(n_parts):
            if not vis[a, k]:
                continue
            dx = kps[a, k, 0] - gx
            dy = kps[a, k, 1] - gy
            d2 = dx * dx + dy * dy
            m = (d2 <= pos_radius ** 2) & (d2 < best[k])
            hm[k][m] = 1.0
            best[k][m] = d2[m]
            locref[2 * k][m] = dx[m] / LOCREF_STD
            locref[2 * k + 1][m] = dy[m] / LOCREF_STD
            lmask[2 * k][m] = 1.0
            lmask[2 * k + 1][m] = 1.0
    paf = np.zeros((2 * len(graph), oh, ow), np.float32)
    pcount = np.zeros((len(graph), oh, ow), np.float32)
    for a in range(kps.shape[0]):
        for e, (i, j) in enumerate(graph):
            if not (vis[a, i] and vis[a, j]):
                continue
            v = kps[a, j] - kps[a, i]
            length = float(np.hypot(*v))
            if length < 1e-3:
                continue
            u = v / length
            px, py = gx - kps[a, i, 0], gy - kps[a, i, 1]
            along = px * u[0] + py * u[1]
            across = np.abs(-px * u[1] + py * u[0])
            m = (along >= -stride / 2) & (along <= length + stride / 2) & (across <= paf_width / 2)
            paf[2 * e][m] += u[0]
            paf[2 * e + 1][m] += u[1]
            pcount[e][m] += 1
    pc = np.maximum(pcount, 1)
    paf[0::2] /= pc
    paf[1::2] /= pc
    pmask = np.repeat((pcount > 0).astype(np.float32), 2, axis=0)
    return hm, locref, lmask, paf, pmask


def make_batch(rng, batch, size, stride, out_hw, graph, pos_radius, paf_width):
    imgs, hms, lrs, lms, pafs, pms = [], [], [], [], [], []
    for _ in range(batch):
        img, kps, vis = random_scene(rng, size)
        rgb = img[..., ::-1].astype(np.float32)
        imgs.append(((rgb - MEAN) / STD).transpose(2, 0, 1))
        t = make_targets(kps, vis, out_hw, stride, graph, pos_radius, paf_width)
        for lst, arr in zip((hms, lrs, lms, pafs, pms), t):
            lst.append(arr)
    return [torch.from_numpy(np.stack(x)) for x in (imgs, hms, lrs, lms, pafs, pms)]


def losses(out, hm, lr, lm, paf, pm):
    hm_p, lr_p, paf_p = out
    l_hm = nn.functional.binary_cross_entropy_with_logits(hm_p, hm, pos_weight=torch.tensor(3.0))
    l_lr = (nn.functional.smooth_l1_loss(lr_p, lr, reduction="none") * lm).sum() / lm.sum().clamp(min=1)
    d_paf = nn.functional.smooth_l1_loss(paf_p, paf, reduction="none", beta=0.2)
    l_paf = (d_paf * pm).sum() / pm.sum().clamp(min=1) + 0.5 * d_paf.mean()
    return l_hm, l_lr, l_paf


@torch.no_grad()
def detection_scores(out, hm_t, stride):
    """Peak precision/recall at 0.5 on the validation batch (cell-level, quick check)."""
    prob = torch.sigmoid(out[0])
    peaks = (prob == nn.functional.max_pool2d(prob, 3, 1, 1)) & (prob > 0.5)
    gt_peaks = hm_t > 0.5
    near = nn.functional.max_pool2d(gt_peaks.float(), 3, 1, 1) > 0
    tp = (peaks & near).sum().item()
    precision = tp / max(1, peaks.sum().item())
    # recall: GT blobs (plateaus) that hold at least one peak
    pk = nn.functional.max_pool2d(peaks.float(), 5, 1, 2) > 0
    recall = (pk & gt_peaks).sum().item() / max(1, gt_peaks.sum().item())
    return precision, recall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mapose/data/demo_model")
    ap.add_argument("--minutes", type=float, default=12.0, help="wall-clock budget")
    ap.add_argument("--iterations", type=int, default=None,
                    help="stop after this many iterations instead (reproducible on any machine)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, nargs=2, default=(160, 160), metavar=("H", "W"))
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--pos-radius", type=float, default=6.0)
    ap.add_argument("--paf-width", type=float, default=8.0)
    ap.add_argument("--init", default=None, help="continue from this snapshot")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out_dir = Path(args.out)
    cfg = yaml.safe_load((out_dir / "pytorch_config.yaml").read_text())
    graph = [tuple(e) for e in cfg["model"]["heads"]["bodypart"]["predictor"]["graph"]]
    assert len(cfg["metadata"]["bodyparts"]) == len(BODYPARTS)
    model = TrainModel(cfg)
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True)["model"])
    size = tuple(args.size)
    with torch.no_grad():
        out_hw = tuple(model(torch.zeros(1, 3, *size))[0].shape[-2:])
    stride = model.stride
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params={n_params} stride={stride} out_hw={out_hw}", flush=True)

    val_rng = np.random.default_rng(999)
    val = make_batch(val_rng, 48, size, stride, out_hw, graph, args.pos_radius, args.paf_width)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    t0 = time.perf_counter()
    it = 0
    log_rows = []
    best = math.inf
    while True:
        elapsed = time.perf_counter() - t0
        if args.iterations is not None:
            progress = it / args.iterations
        else:
            progress = elapsed / budget
        if progress >= 1.0:
            break
        # cosine decay over the budget (iterations, or wall-clock time)
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        model.train()
        x, hm, lr, lm, paf, pm = make_batch(rng, args.batch, size, stride, out_hw, graph,
                                            args.pos_radius, args.paf_width)
        l_hm, l_lr, l_paf = losses(model(x), hm, lr, lm, paf, pm)
        loss = l_hm + 0.5 * l_lr + 2.0 * l_paf
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 100 == 0:
            model.eval()
            with torch.no_grad():
                out = model(val[0])
                v = losses(out, *val[1:])
                vloss = float(v[0] + 0.5 * v[1] + 2.0 * v[2])
                prec, rec = detection_scores(out, val[1], stride)
            row = dict(it=it, seconds=round(time.perf_counter() - t0, 1), lr=opt.param_groups[0]["lr"],
                       train_loss=float(loss.detach()), val_loss=vloss, val_hm=float(v[0]), val_locref=float(v[1]),
                       val_paf=float(v[2]), val_precision=prec, val_recall=rec)
            log_rows.append(row)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
            if vloss < best:
                best = vloss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best_row = row
    if not log_rows:
        raise SystemExit("training budget too short: no validation step ran")
    epoch = best_row["it"] // 100
    for old in out_dir.glob("snapshot-*.pt"):
        old.unlink()
    snap = out_dir / f"snapshot-best-{epoch:03d}.pt"
    torch.save({"model": best_state,
                "metadata": {"epoch": epoch,
                             "metrics": {"val.precision": best_row["val_precision"],
                                         "val.recall": best_row["val_recall"]},
                             "losses": {"val.total": best_row["val_loss"]}}}, snap)
    with open(out_dir / "training_log.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(log_rows[0]))
        wr.writeheader()
        wr.writerows(log_rows)
    print(f"saved {snap} ({snap.stat().st_size / 1e6:.2f} MB) after {it} iterations", flush=True)


if __name__ == "__main__":
    main()
