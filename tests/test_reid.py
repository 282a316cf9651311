"""ReID transformer path (DLC's transformer_reID): model, features, mining, training, stitching.

References: a slow NumPy statement of the transformer (mapose.reid.model_ref), the backbone
output recomputed through the network's own modules plus the grid rule written out here,
DLC's real tracklets and detections of project A, and hand-made cases.
"""
from __future__ import annotations

import math
import pickle
import shutil
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reid_helpers import SCORER, SHUFFLE_DIR, make_reid_project, read_frames

torch = pytest.importorskip("torch")

from mapose.reid.features import (FeatureShelf, FeatureShelfWriter,  # noqa: E402
                                  bodypart_features, query_feature_by_coord)
from mapose.reid.model import (CheckpointNotFoundError, DLCTransReID,  # noqa: E402
                               load_checkpoint, save_checkpoint)
from mapose.reid.model_ref import transreid_forward_ref  # noqa: E402
from mapose.reid.train import ReIDTrainConfig, learning_rate  # noqa: E402
from mapose.reid.triplets import mine, overlap_lookup  # noqa: E402

pytestmark = pytest.mark.torch

N_CLIP = 12

DLC_KEYS = (["base.pos_embed", "base.kpt_embed.proj.weight", "base.kpt_embed.proj.bias"]
            + [f"base.blocks.{i}.{m}.{p}" for i in range(4)
               for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
               for p in ("weight", "bias")]
            + ["base.norm.weight", "base.norm.bias"])


def _random_model(C=24, K=5, seed=0):
    torch.manual_seed(seed)
    model = DLCTransReID(C, K)
    # non-trivial norms and biases (a fresh model has ones / zeros there)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


# -- model -----------------------------------------------------------------------------
@pytest.mark.smoke
def test_state_dict_has_dlc_names_and_shapes():
    model = DLCTransReID(2048, 5)
    sd = model.state_dict()
    assert sorted(sd) == sorted(DLC_KEYS)
    assert sd["base.pos_embed"].shape == (1, 5, 128)
    assert sd["base.kpt_embed.proj.weight"].shape == (128, 2048)
    assert sd["base.blocks.0.attn.qkv.weight"].shape == (384, 128)
    assert sd["base.blocks.3.mlp.fc1.weight"].shape == (128, 128)


@pytest.mark.smoke
@pytest.mark.parametrize("B, K, C", [(1, 5, 24), (3, 2, 7), (2, 1, 16)])
def test_forward_matches_numpy_reference(B, K, C):
    model = _random_model(C, K).double()
    x = np.random.default_rng(B * 100 + K).normal(size=(B, K, C))
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    ref = transreid_forward_ref({k: v.numpy() for k, v in model.state_dict().items()}, x)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-12)


def test_init_is_seeded_and_drop_path_only_in_training():
    a, b = (DLCTransReID(16, 3) for _ in range(2) if torch.manual_seed(5) is not None)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    # fresh LayerNorms and biases: ones / zeros; truncated-normal weights within +-2
    assert torch.all(a.state_dict()["base.norm.weight"] == 1)
    assert float(a.state_dict()["base.kpt_embed.proj.weight"].std()) == pytest.approx(0.02, rel=0.2)
    x = torch.randn(64, 3, 16)
    a.eval()
    assert torch.equal(a(x), a(x))
    a.train()
    assert not torch.equal(a(x), a(x))  # stochastic depth (blocks 1..3)


def test_forward_shape_error():
    with pytest.raises(ValueError, match="5 keypoints, 24 features"):
        DLCTransReID(24, 5)(torch.zeros(2, 5, 23))
    with pytest.raises(ValueError, match="feature_dim must be a positive int"):
        DLCTransReID(0, 5)


def test_checkpoint_round_trip(tmp_path):
    model = _random_model()
    path = save_checkpoint(tmp_path / "dlc_transreid_10.pth", model)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict", "num_kpts", "feature_dim"}
    assert (raw["num_kpts"], raw["feature_dim"]) == (5, 24)
    loaded = load_checkpoint(path, dtype=torch.float64)
    assert not loaded.training and loaded.base.pos_embed.dtype == torch.float64
    x = torch.randn(4, 5, 24, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.double()(x), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*part"))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist") as info:
        load_checkpoint(tmp_path / "nope.pth")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pth")
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a DLC ReID checkpoint"):
        load_checkpoint(tmp_path / "other.pth")
    sd = _random_model().state_dict()
    torch.save({"state_dict": sd, "num_kpts": 5, "feature_dim": 25}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(tmp_path / "bad.pth")


def test_learning_rate_schedule():
    base = 3e-4
    # warm-up from 0.01*lr in 5 linear steps, then cosine over 200 epochs down to 0.002*lr
    assert learning_rate(1, base) == pytest.approx(3e-6 + (3e-4 - 3e-6) / 5)
    assert learning_rate(4, base) == pytest.approx(3e-6 + 4 * (3e-4 - 3e-6) / 5)
    lr_min = 0.002 * base
    assert learning_rate(5, base) == pytest.approx(lr_min + 0.5 * (base - lr_min) * (1 + math.cos(math.pi * 5 / 200)))
    assert learning_rate(100, base) == pytest.approx((base + lr_min) / 2)
    assert learning_rate(200, base) == learning_rate(500, base) == pytest.approx(lr_min)
    assert ReIDTrainConfig().checkpoint_period == 10


def test_training_matches_dlc_recording(tmp_path):
    """Same seed, same triplets: DLC 3.0.2's weights and accuracies (recorded by
    scripts/reid_training_fixture.py on generated triplets)."""
    import json
    from pathlib import Path

    from mapose.reid.train import train_on_triplets

    ref = json.loads((Path(__file__).parent / "data" / "reid_dlc_training.json").read_text())
    x = np.random.default_rng(0).normal(size=(40, 3, 5, 16))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threads only add contention (DLC was recorded so too)
    try:
        history = train_on_triplets(x[:32], x[32:], tmp_path, train_epochs=20, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert history == ref["history"]
    model = load_checkpoint(tmp_path / "dlc_transreid_20.pth")
    for k, v in model.state_dict().items():
        flat = v.double().numpy().ravel()
        got = [flat.sum(), (flat ** 2).sum()] + flat[:8].tolist()
        np.testing.assert_allclose(got, ref["state_dict"][k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dlc_transreid_10.pth", "dlc_transreid_20.pth", "dlc_transreid_results.pickle"]


# -- features --------------------------------------------------------------------------
def _features_loop(features, poses, input_size):
    """The grid rule written out per keypoint."""
    C, h, w = features.shape
    keep = [i for i in range(len(poses))
            if not all((v < 0 or np.isnan(v)) for v in poses[i].ravel())]
    out = np.zeros((len(keep), poses.shape[1], C))
    for r, i in enumerate(keep):
        for k in range(poses.shape[1]):
            x, y = (0.0 if np.isnan(v) else float(v) for v in poses[i, k, :2])
            gx = min(max(int(np.rint(x / (input_size[0] / w))), 0), w - 1)
            gy = min(max(int(np.rint(y / (input_size[1] / h))), 0), h - 1)
            if gx + gy > 0:
                out[r, k] = features[:, gy, gx]
    return poses[keep][..., :2], out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4), st.integers(1, 4), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from([4, 8, 16]), st.integers(0, 10**6))
def test_bodypart_features_vs_loop(n, K, C, h, w, stride, seed):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(C, h, w)).astype(np.float32)
    size = (w * stride, h * stride)
    poses = rng.uniform(-10, max(size) + 10, size=(n, K, 5)).astype(np.float32)
    if n:
        poses[rng.random((n, K)) < 0.2, :2] = np.nan
        poses[0] = -1  # padding row
    coords, got = bodypart_features(feats, poses, size)
    ref_coords, ref = _features_loop(feats, poses, size)
    assert got.dtype == np.float64 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(coords, ref_coords)


@pytest.mark.smoke
def test_bodypart_features_edge_cases():
    feats = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) + 1
    poses = np.array([[[0.0, 0.0, 1, 0, 0], [7.9, 0.0, 1, 0, 0], [100, 100, 1, 0, 0], [np.nan, np.nan, 0, np.nan, 0]],
                      [[-1, -1, -1, -1, -1]] * 4], np.float32)
    coords, out = bodypart_features(feats, poses, (16, 16))  # stride 4
    assert out.shape == (1, 4, 2)
    np.testing.assert_array_equal(out[0, 0], 0)  # grid cell (0, 0): never taken (x + y > 0)
    np.testing.assert_array_equal(out[0, 1], feats[:, 0, 2])  # rint(7.9 / 4) = 2
    np.testing.assert_array_equal(out[0, 2], feats[:, 3, 3])  # clipped to the grid
    np.testing.assert_array_equal(out[0, 3], 0)  # missing keypoint -> (0, 0)
    assert np.isnan(coords[0, 3]).all()
    empty_c, empty_f = bodypart_features(feats, np.full((3, 4, 5), -1, np.float32), (16, 16))
    assert empty_c.shape == (0, 4, 2) and empty_f.shape == (0, 4, 2)
    with pytest.raises(ValueError, match="features must have shape"):
        bodypart_features(feats[0], poses, (16, 16))
    with pytest.raises(ValueError, match="input_size"):
        bodypart_features(feats, poses, (0, 16))


def test_query_feature_by_coord():
    coords = np.array([[[10, 10], [20, 20]], [[12, 11], [22, 21]], [[np.nan, np.nan], [np.nan, np.nan]]], np.float32)
    feats = np.arange(3 * 2 * 3, dtype=np.float64).reshape(3, 2, 3)
    frame = {"coordinates": coords, "features": feats}
    np.testing.assert_array_equal(query_feature_by_coord(frame, np.array([[10, 10], [20, 20]])), feats[0])
    # differences below 0 are ignored: animal 1 is the closest from above
    np.testing.assert_array_equal(query_feature_by_coord(frame, np.array([[11, 11], [21, 21]])), feats[1])
    # nothing at or above the query anywhere: DLC's masked argmin falls back to row 0
    np.testing.assert_array_equal(query_feature_by_coord(frame, np.array([[99, 99], [99, 99]])), feats[0])
    with pytest.raises(ValueError, match="no animal"):
        query_feature_by_coord({"coordinates": np.zeros((0, 2, 2)), "features": np.zeros((0, 2, 3))},
                               np.zeros((2, 2)))


def test_feature_shelf_round_trip_and_errors(tmp_path):
    path = tmp_path / "v_bpt_features.pickle"
    with FeatureShelfWriter(path, {"nframes": None}, n_frames=12) as w:
        for i in range(12):
            w.add(i, np.full((1, 2, 2), i, np.float32), np.full((1, 2, 3), i, np.float64))
    with FeatureShelf(path) as shelf:
        assert shelf.key_width == 2 and len(shelf) == 13
        assert shelf.frame_key(7) == "frame07" and "frame11" in shelf and "frame12" not in shelf
        np.testing.assert_array_equal(shelf["frame07"]["features"], 7)
        assert shelf.metadata["nframes"] == 12
    with pytest.raises(FileNotFoundError, match="transformer_reID"):
        FeatureShelf(tmp_path / "missing_bpt_features.pickle")
    # an interrupted writer leaves nothing behind
    with pytest.raises(RuntimeError):
        with FeatureShelfWriter(tmp_path / "x_bpt_features.pickle", {}, n_frames=3) as w:
            w.add(0, np.zeros((0, 2, 2)), np.zeros((0, 2, 3)))
            raise RuntimeError("boom")
    assert not list(tmp_path.glob("x_bpt*"))


# -- mining ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlc_stitcher(project_a):
    from mapose.stitching.stitcher import TrackletStitcher

    return TrackletStitcher.from_pickle(project_a / "videos" / f"synthA{SCORER}_el.pickle", 3)


def test_mine_is_deterministic_and_uses_the_global_generator(dlc_stitcher):
    a = mine(dlc_stitcher, 30, random_state=0)
    b = mine(dlc_stitcher, 30, random_state=np.random.RandomState(0))
    state = np.random.get_state()
    try:
        np.random.seed(0)
        c = mine(dlc_stitcher, 30)  # DLC: global generator, seeded 0 at import
    finally:
        np.random.set_state(state)
    for x, y, z in zip(a, b, c):
        for m in range(3):
            assert x[m][1] == y[m][1] == z[m][1]
            np.testing.assert_array_equal(x[m][0], y[m][0])
            np.testing.assert_array_equal(x[m][0], z[m][0])
    assert [t[0][1] for t in mine(dlc_stitcher, 30, random_state=1)] != [t[0][1] for t in a]


def test_stitcher_mine_method_delegates(dlc_stitcher):
    a = dlc_stitcher.mine(10, random_state=7)
    b = mine(dlc_stitcher, 10, random_state=7)
    assert [(x[0][1], x[1][1]) for x in a] == [(x[0][1], x[1][1]) for x in b]


def test_dlc_module_path_helpers(project_a):
    import mapose.pose_tracking_pytorch as ptp

    path = project_a / "videos" / f"synthA{SCORER}_el.pickle"
    a = ptp.generate_train_triplets_from_pickle(path, 8, random_state=0)
    b = ptp.generate_train_triplets_from_pickle(path, 8, random_state=0)
    assert len(a) == 8 and [t[0][1] for t in a] == [t[0][1] for t in b]
    assert callable(ptp.transformer_reID) and callable(ptp.train_tracking_transformer)


def _int(a):
    with np.errstate(invalid="ignore"):  # NaN (missing keypoint) -> INT64_MIN, as DLC
        return a.astype(int)


def test_mined_triplets_are_valid(dlc_stitcher):
    tracklets = dlc_stitcher.tracklets
    lu = overlap_lookup(tracklets)
    triplets = mine(dlc_stitcher, 60, random_state=3)
    assert len(triplets) == 60 and mine(dlc_stitcher, 0) == []
    for (anchor, fa), (pos, fp), (neg, fn) in triplets:
        assert fa == fn and fp != fa
        owners = [t for t in tracklets if fa in t.inds and fp in t.inds
                  and np.array_equal(_int(t.get_data_at(fa)[:, :2]), anchor)
                  and np.array_equal(_int(t.get_data_at(fp)[:, :2]), pos)]
        assert owners, "anchor and positive come from one tracklet"
        t = owners[0]
        dists = [t.distance_to(o) for o in lu[t]]
        nearest = lu[t][int(np.argmin(dists))]
        np.testing.assert_array_equal(_int(nearest.get_data_at(fa)[:, :2]), neg)
        assert anchor.dtype.kind == "i"


def test_mine_without_overlaps_raises():
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.stitching.tracklet import Tracklet

    data = np.ones((12, 2, 3))
    ts = TrackletStitcher([Tracklet(data, np.arange(12)), Tracklet(data + 5, np.arange(20, 32))], 1)
    with pytest.raises(ValueError, match="No overlapping tracklets"):
        mine(ts, 5)
    with pytest.raises(ValueError, match="n_samples"):
        mine(ts, -1)
    with pytest.raises(TypeError, match="random_state"):
        mine(ts, 1, random_state="x")


# -- project A: features, end to end, errors ------------------------------------------
@pytest.fixture(scope="module")
def reid_project(project_a, tmp_path_factory):
    """Project A clip with DLC's tracklets, after a tiny transformer_reID run."""
    from mapose.reid.api import transformer_reID

    root = tmp_path_factory.mktemp("reid")
    config, clip = make_reid_project(project_a, root / "p", N_CLIP)
    out = transformer_reID(config, [clip], n_triplets=40, train_epochs=10, seed=0, progress=False)
    return config, clip, SCORER, out


@pytest.mark.slow
def test_features_match_independent_backbone_and_dlc_detections(reid_project, project_a):
    from mapose.inference.project_model import find_project_model
    from mapose.io.full_pickle import read_full_pickle
    from mapose.models.pose_model import normalize_frames

    config, clip, scorer, _ = reid_project
    model = find_project_model(config).build_model()
    frames = read_frames(clip, 3)
    with torch.no_grad():
        backbone = model.backbone(torch.from_numpy(normalize_frames(frames))).numpy()
    assert backbone.shape == (3, 2048, 16, 20)  # stride 16 on 320 x 256
    dlc_full = read_full_pickle(project_a / "videos" / f"synthA{SCORER}_full.pickle")
    with FeatureShelf(clip.parent / f"clip{SCORER}_bpt_features.pickle") as shelf:
        assert len(shelf) == N_CLIP + 1 and shelf.key_width == 2
        for i in range(3):
            entry = shelf[f"frame{i:02d}"]
            coords, feats = entry["coordinates"], entry["features"]
            assert feats.dtype == np.float64 and feats.shape[1:] == (5, 2048)
            # DLC's own detections of that frame (its full pickle: per bodypart, per animal)
            dlc = np.stack([c for c in dlc_full[f"frame{i:03d}"]["coordinates"][0]], axis=1)
            dlc = dlc[~np.all(dlc < 0, axis=(1, 2))]
            np.testing.assert_allclose(coords, dlc, atol=1e-3)
            # the grid rule on the independently computed backbone output
            ref = np.zeros_like(feats)
            for a in range(len(coords)):
                for k in range(5):
                    x, y = np.nan_to_num(coords[a, k].astype(np.float64))
                    gx, gy = min(max(int(np.rint(x / 16)), 0), 19), min(max(int(np.rint(y / 16)), 0), 15)
                    if gx + gy > 0:
                        ref[a, k] = backbone[i, :, gy, gx]
            np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-4)
    vec = np.load(clip.parent / f"clip{SCORER}_triplet_vector.npy")
    assert vec.shape == (40, 3, 5, 2048) and vec.dtype == np.float64


@pytest.mark.slow
def test_transformer_reid_end_to_end(reid_project, tmp_path):
    import pandas as pd

    import mapose
    from mapose.io.tracklets_pickle import read_tracklets_pickle

    config, clip, scorer, out = reid_project
    assert [p.name for p in out] == [f"clip{SCORER}_el_tr.h5"]
    train_dir = config.parent / SHUFFLE_DIR / "train"
    assert (train_dir / "dlc_transreid_10.pth").is_file()
    with open(train_dir / "dlc_transreid_results.pickle", "rb") as fh:
        results = pickle.load(fh)
    assert list(results) == ["train_acc", "test_acc", "epochs"] and results["epochs"] == list(range(1, 11))
    assert len(results["train_acc"]) == 10 and len(results["test_acc"]) == 1
    assert all(0 <= a <= 1 for a in results["train_acc"] + results["test_acc"])
    df = pd.read_hdf(out[0], "tracks")
    assert df.shape == (N_CLIP, 3 * 5 * 3)
    # a valid stitching: every track row is one tracklet's detection of that frame, and no
    # detection is used twice
    tracklets = read_tracklets_pickle(clip.parent / f"clip{SCORER}_el.pickle")
    rows = {}
    for tid, frames in tracklets.items():
        if tid in ("header", "single"):
            continue
        for key, arr in frames.items():
            rows.setdefault(int(key[5:]), []).append(np.asarray(arr)[:, :3].ravel())
    used = set()
    for ind in df.columns.get_level_values("individuals").unique():
        block = df.xs(ind, axis=1, level="individuals").to_numpy()
        for f, row in zip(df.index, block):
            if np.isnan(row).all():
                continue
            match = [j for j, r in enumerate(rows[f]) if np.allclose(r, row, equal_nan=True)]
            assert match, (ind, f)
            assert (f, match[0]) not in used
            used.add((f, match[0]))
    # stitching again with the checkpoint gives the same file (deterministic weights)
    again = mapose.stitch_tracklets(config, [clip], transformer_checkpoint=train_dir / "dlc_transreid_10.pth",
                                    output_name=str(tmp_path / "again.h5"))
    pd.testing.assert_frame_equal(pd.read_hdf(again[0], "tracks"), df)


@pytest.mark.slow
def test_stitch_with_transformer_errors(reid_project, tmp_path, monkeypatch):
    import mapose

    config, clip, scorer, _ = reid_project
    good = tmp_path / "good.pth"
    save_checkpoint(good, DLCTransReID(2048, 5))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mapose.stitch_tracklets(config, [clip], transformer_checkpoint=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    save_checkpoint(wrong, DLCTransReID(64, 5))
    with pytest.raises(ValueError, match="expects \\(5 keypoints, 64 features\\)"):
        mapose.stitch_tracklets(config, [clip], transformer_checkpoint=wrong,
                                output_name=str(tmp_path / "x.h5"))
    other = tmp_path / "other"  # tracklets there, but no features shelve
    other.mkdir()
    shutil.copy(clip.parent / f"clip{SCORER}_el.pickle", other)
    with pytest.raises(FileNotFoundError, match="run transformer_reID|Run\\s+transformer_reID"):
        mapose.stitch_tracklets(config, [clip], transformer_checkpoint=good, destfolder=other)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="mapose\\[torch\\]"):
        mapose.stitch_tracklets(config, [clip], transformer_checkpoint=good)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_transformer_reid_argument_errors(reid_project):
    from mapose.reid.api import create_tracking_dataset, transformer_reID

    config, clip, _, _ = reid_project
    with pytest.raises(ValueError, match="multiple of 10"):
        transformer_reID(config, [clip], train_epochs=15)
    with pytest.raises(ValueError, match="track_method"):
        transformer_reID(config, [clip], track_method="ctd")
    with pytest.raises(ValueError, match="train_frac"):
        transformer_reID(config, [clip], train_frac=0)
    with pytest.raises(ValueError, match="n_triplets"):
        create_tracking_dataset(config, [clip], "ellipse", n_triplets=0)
    with pytest.raises(ValueError, match="PyTorch models only"):
        create_tracking_dataset(config, [clip], "ellipse", engine="tensorflow")
