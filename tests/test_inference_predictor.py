"""Predictor glue: identity sampling/reordering, unique body parts, empty and 1-animal frames."""
from __future__ import annotations

import numpy as np
import pytest

from mapose.inference.predictor import BottomUpPredictor, FramePrediction, identity_scores_at
from mapose.models.specs import HeadSpec

GRAPH = [[0, 1], [0, 2], [1, 2]]


def _spec(n_animals=3, k=3, unique=False, identity=False):
    pred = {"num_animals": n_animals, "num_multibodyparts": k, "graph": GRAPH[: k * (k - 1) // 2]}
    specs = [HeadSpec("bodypart", "DLCRNetHead", ("heatmap", "locref", "paf"), 4.0, pred)]
    if unique:
        specs.append(HeadSpec("unique_bodypart", "HeatmapHead", ("heatmap", "locref"), 8.0,
                              {"apply_sigmoid": False, "clip_scores": True, "locref_std": 7.2801}))
    if identity:
        specs.append(HeadSpec("identity", "HeatmapHead", ("heatmap",), 8.0, {"apply_sigmoid": True}))
    return specs


def _animals_outputs(centres, h=40, w=60, k=3):
    """Heatmaps with one sharp peak per animal and body part, PAFs along each limb."""
    hm = np.full((1, k, h, w), -30, np.float32)
    lr = np.zeros((1, 2 * k, h, w), np.float32)
    paf = np.zeros((1, 2 * len(GRAPH), h, w), np.float32)
    for rows_cols in centres:
        for j, (r, c) in enumerate(rows_cols):
            hm[0, j, r, c] = 30
        for e, (a, b) in enumerate(GRAPH):
            (r0, c0), (r1, c1) = rows_cols[a], rows_cols[b]
            v = np.array([c1 - c0, r1 - r0], np.float32)
            v /= np.linalg.norm(v)
            for t in np.linspace(0, 1, 30):
                rr, cc = int(r0 + t * (r1 - r0)), int(c0 + t * (c1 - c0))
                paf[0, 2 * e, rr, cc], paf[0, 2 * e + 1, rr, cc] = v
    return {"bodypart/heatmap": hm, "bodypart/locref": lr, "bodypart/paf": paf}


ANIMALS = [[(5, 5), (5, 15), (12, 10)], [(25, 40), (25, 50), (32, 45)]]


@pytest.mark.smoke
def test_two_animals_assembled_and_padded():
    out = _animals_outputs(ANIMALS)
    (pred,) = BottomUpPredictor(_spec())(out)
    assert pred.poses.shape == (3, 3, 5) and pred.poses.dtype == np.float32
    got = sorted(tuple(np.round(p[:, :2]).astype(int).ravel()) for p in pred.poses[:2])
    want = sorted(tuple(np.array([(4 * c + 2, 4 * r + 2) for r, c in a]).ravel()) for a in ANIMALS)
    assert got == want
    assert (pred.poses[2] == -1).all()  # unfilled row
    assert (pred.poses[:2, :, 4] > 0.5).all()  # mean affinity of the drawn limbs


def test_empty_frame_and_single_animal():
    out = _animals_outputs([])
    (pred,) = BottomUpPredictor(_spec())(out)
    assert (pred.poses == -1).all() and pred.n_peaks == 0
    (pred,) = BottomUpPredictor(_spec(n_animals=1))(_animals_outputs(ANIMALS))
    assert pred.poses.shape == (1, 3, 5) and np.isfinite(pred.poses[0, :, :3]).all()


def test_identity_scores_match_torch_resize():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 11, 13)).astype(np.float32)
    stride = 8.0
    H, W = int(11 * stride), int(13 * stride)
    full = torch.nn.functional.interpolate(torch.from_numpy(logits)[None], size=(H, W), mode="bilinear",
                                           align_corners=False, antialias=True)
    full = torch.sigmoid(full)[0].numpy()
    xy = np.array([[0, 0], [3.4, 7.6], [W + 5, H + 5], [50.5, 20.5], [-1, -1], [np.nan, 3]], np.float32)
    got = identity_scores_at(logits, xy, stride)
    for i, (x, y) in enumerate(xy[:5]):
        yi = int(np.clip(np.rint(y), 0, H - 1))
        xi = int(np.clip(np.rint(x), 0, W - 1))
        np.testing.assert_allclose(got[i], full[:, yi, xi], atol=1e-6)
    assert (got[5] == 0).all()  # non-finite keypoints get zero scores, no warning


def test_identity_reorders_rows():
    specs = _spec(unique=True, identity=True)
    predictor = BottomUpPredictor(specs)
    pred = FramePrediction(poses=np.full((3, 3, 5), -1, np.float32))
    pred.poses[0, :, :3] = [[10, 10, 0.9]] * 3  # animal near (10, 10)
    pred.poses[1, :, :3] = [[100, 60, 0.9]] * 3  # animal near (100, 60)
    logits = np.full((3, 12, 16), -6, np.float32)
    logits[2, :6, :4] = 6  # identity 2 around (10, 10) (map stride 8)
    logits[0, 6:, 10:] = 6  # identity 0 around (100, 60)
    predictor._apply_identity(pred, logits)
    assert pred.poses[2, 0, 0] == 10 and pred.poses[0, 0, 0] == 100
    assert (pred.poses[1] == -1).all()
    assert pred.identity.shape == (3, 3, 3)
    assert pred.identity[2, :, 2].min() > 0.9 and pred.identity[0, :, 0].min() > 0.9


def test_unique_bodyparts_and_sink_layout():
    from mapose.inference.analyze import _VideoSink

    specs = _spec(unique=True)
    out = _animals_outputs(ANIMALS)
    u = np.full((1, 1, 5, 8), -1, np.float32)
    u[0, 0, 2, 3] = 0.7
    out["unique_bodypart/heatmap"] = u
    out["unique_bodypart/locref"] = np.zeros((1, 2, 5, 8), np.float32)
    (pred,) = BottomUpPredictor(specs)(out)
    np.testing.assert_allclose(pred.unique, [[3 * 8 + 4, 2 * 8 + 4, 0.7]])

    class Writer:
        frames = {}

        def add(self, i, frame):
            self.frames[i] = frame

    sink = _VideoSink(Writer(), n_unique=1, identity=False, keep_df=False)
    sink(0, pred)
    frame = Writer.frames[0]
    assert len(frame["coordinates"][0]) == 4 and frame["coordinates"][0][3].shape == (1, 2)
    assert frame["confidence"][3].shape == (1, 1) and frame["costs"] is None
    assert sink.assemblies[0].shape == (2, 3, 4) and (sink.assemblies[0][..., 3] == -1).all()
    assert sink.single[0].shape == (1, 3)


def test_predictor_rejects_non_paf_models():
    spec = HeadSpec("bodypart", "HeatmapHead", ("heatmap", "locref"), 8.0, {})
    with pytest.raises(ValueError, match="bottom-up"):
        BottomUpPredictor([spec])
