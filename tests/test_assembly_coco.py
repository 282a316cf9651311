"""evaluate_assembly_greedy against pycocotools' COCOeval (spec §7, test_map_computation).

The ground truth becomes COCO keypoint annotations whose ``area`` is the box of the
visible keypoints (the scale mapose's OKS uses) and predictions become detections
scored by their confidence; precision tables, recalls and mAP must agree.
"""
import contextlib
import io

import numpy as np
import pytest

from mapose.assembly.evaluation import evaluate_assembly_greedy
from mapose.assembly.model import Assembly

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

THRESHOLDS = np.linspace(0.5, 0.95, 10)
SIGMA = 0.1


def _coco(gt, pred, n_joints, thresholds=THRESHOLDS, sigma=SIGMA):
    """(precision (T, 101), recall (T,), mAP) from COCOeval, all areas, 20 detections."""
    images = sorted(gt)
    anns = []
    for img in images:
        for a in gt[img]:
            xy = a.xy
            vis = ~np.isnan(xy).any(axis=1)
            kp = np.zeros((n_joints, 3))
            kp[vis, :2] = xy[vis]
            kp[vis, 2] = 2
            lo, hi = xy[vis].min(axis=0), xy[vis].max(axis=0)
            area = float(np.prod(np.ptp(xy[vis], axis=0) + np.spacing(1)))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img,
                    "category_id": 1,
                    "keypoints": kp.ravel().tolist(),
                    "num_keypoints": int(vis.sum()),
                    "area": area,
                    "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])],
                    "iscrowd": 0,
                }
            )
    dets = []
    for img in images:
        for a in pred.get(img, []):
            kp = np.column_stack([a.xy, np.ones(n_joints)])
            dets.append({"image_id": img, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": float(a.confidence)})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": [{"id": i} for i in images],
            "annotations": anns,
            "categories": [{"id": 1, "name": "animal", "keypoints": [str(k) for k in range(n_joints)], "skeleton": []}],
        }
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.full(n_joints, sigma)
        ev.params.iouThrs = np.asarray(thresholds, dtype=float)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, 0, 0, -1]  # category 1, area "all", 20 detections
    recall = ev.eval["recall"][:, 0, 0, -1]
    return precision, recall, ev.stats[0]


def _pose(xy, score):
    return Assembly.from_array(np.column_stack([xy, np.full(len(xy), score)]))


def _random_case(rng):
    n_images = int(rng.integers(1, 11))
    n_joints = int(rng.integers(2, 21))
    gt, pred = {}, {}
    for img in range(n_images):
        n_animals = int(rng.integers(1, 5))
        gt[img], pred[img] = [], []
        for a in range(n_animals):
            # animals 1000 px apart: a prediction's best ground truth is its own animal,
            # so DLC's greedy rule (best OKS, else unmatched) and COCO's (best available
            # above the threshold) pick the same pairs
            xy = rng.normal(0, 40, size=(n_joints, 2)) + [1000.0 * a, 500.0]
            truth = xy.copy()
            hidden = rng.random(n_joints) < 0.2
            if (~hidden).sum() < 2:
                hidden[:] = False
            truth[hidden] = np.nan
            gt[img].append(Assembly.from_array(truth))
            if rng.random() < 0.85:  # detected, with errors up to 40 px
                err = rng.uniform(-1, 1, size=(n_joints, 2)) * rng.uniform(0, 40)
                pred[img].append(_pose(xy + err, rng.random()))
            if rng.random() < 0.15:  # a duplicate of the same animal
                pred[img].append(_pose(xy + rng.normal(0, 5, size=xy.shape), rng.random()))
        for _ in range(int(rng.poisson(0.5))):  # false positives far from every animal
            pred[img].append(_pose(rng.normal(0, 40, size=(n_joints, 2)) + [500.0, 5000.0], rng.random()))
    return gt, pred, n_joints


def _check(gt, pred, n_joints):
    precision, recall, m_ap = _coco(gt, pred, n_joints)
    out = evaluate_assembly_greedy(gt, pred, SIGMA, THRESHOLDS, margin=0)
    np.testing.assert_allclose(out["precisions"], precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["recalls"], recall, rtol=0, atol=1e-12)
    assert out["mAP"] == pytest.approx(m_ap, rel=0, abs=1e-12)


def test_map_equals_pycocotools_hand_made():
    gt0 = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0]])
    gt1 = gt0 + 300
    gt = {0: [Assembly.from_array(gt0.copy())], 1: [Assembly.from_array(gt1.copy())]}
    # a perfect prediction, one 10 px off (OKS 0.88), one 30 px off and a far false positive
    pred = {0: [_pose(gt0, 0.5)], 1: [_pose(gt1 + [10, 0], 0.9), _pose(gt1 + [30, 0], 0.7), _pose(gt1 + 1000, 0.1)]}
    _check(gt, pred, 3)
    # every prediction off by 30 px: OKS 0.32, below every threshold
    _check(gt, {0: [_pose(gt0 + [30, 0], 0.5)], 1: [_pose(gt1 + [30, 0], 0.9)]}, 3)


@pytest.mark.parametrize("seed", range(25))
def test_map_equals_pycocotools_random(seed):
    gt, pred, n_joints = _random_case(np.random.default_rng(seed))
    _check(gt, pred, n_joints)
