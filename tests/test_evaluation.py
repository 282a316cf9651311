"""evaluate_tracks: MOT metrics, key-point error and OKS mAP against hand-computed values."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("motmetrics")

from mapose.evaluation.tracks import evaluate_tracks, format_summary, load_keypoints_h5, oks_map  # noqa: E402

BODYPARTS = ["snout", "leftear", "rightear", "spine", "tailbase"]


def make_tracks(n_frames=60, n_animals=3, seed=0):
    """Smooth, well separated poses, shape (F, N, 5, 2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None]
    centres = np.stack([60 + 120 * i + 10 * np.sin(0.1 * t + i) for i in range(n_animals)], axis=1)[..., 0]
    ys = 100 + 8 * np.cos(0.07 * t + np.arange(n_animals))
    offsets = np.array([[20, 0], [12, 8], [12, -8], [0, 0], [-20, 0]], float)
    xy = np.zeros((n_frames, n_animals, 5, 2))
    xy[..., 0] = centres[..., None] + offsets[:, 0]
    xy[..., 1] = ys[..., None] + offsets[:, 1]
    return xy + rng.normal(0, 0.01, xy.shape)


def write_tracks(path, xy, likelihood=None, names=None, scorer="DLC_test", index=None):
    n_frames, n_animals, n_parts, _ = xy.shape
    lik = np.ones(xy.shape[:-1]) if likelihood is None else likelihood
    lik = np.where(np.isnan(xy[..., 0]), np.nan, lik)
    names = names or [f"ind{i + 1}" for i in range(n_animals)]
    cols = pd.MultiIndex.from_product([[scorer], names, BODYPARTS[:n_parts], ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    values = np.concatenate([xy, lik[..., None]], axis=-1).reshape(n_frames, -1)
    df = pd.DataFrame(values, columns=cols, index=np.arange(n_frames) if index is None else index)
    df.to_hdf(path, key="tracks", format="table", mode="w")
    return path


@pytest.fixture
def gt_file(tmp_path):
    xy = make_tracks()
    return xy, write_tracks(tmp_path / "gt.h5", xy, names=["a", "b", "c"])


@pytest.mark.smoke
def test_perfect_tracks(tmp_path, gt_file):
    xy, gt = gt_file
    pred = write_tracks(tmp_path / "pred.h5", xy[:, ::-1])  # track names/order do not matter
    r = evaluate_tracks(pred, gt)
    assert r["mota"] == 1.0 and r["idf1"] == 1.0
    assert r["id_switches"] == 0 and r["fragmentations"] == 0
    assert r["false_positives"] == 0 and r["misses"] == 0
    assert r["num_objects"] == 180 and r["num_frames"] == 60
    assert r["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert r["oks_map"] == pytest.approx(1.0) and r["oks_mar"] == pytest.approx(1.0)
    assert "MOTA 1.000" in format_summary(r)


@pytest.mark.smoke
def test_identity_swap_counts(tmp_path, gt_file):
    xy, gt = gt_file
    pred_xy = xy.copy()
    pred_xy[30:, [0, 1]] = xy[30:, [1, 0]]  # tracks 0 and 1 exchange animals at frame 30
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", pred_xy), gt)
    assert r["id_switches"] == 2
    assert r["mota"] == pytest.approx(1 - 2 / 180)
    # best global assignment keeps 30 of 60 frames for each swapped track: IDTP = 30+30+60
    assert r["idf1"] == pytest.approx(2 * 120 / (2 * 120 + 60 + 60))
    assert r["rmse"] == pytest.approx(0.0, abs=1e-9)  # poses are right, only identities swapped


def test_missing_and_extra_tracks(tmp_path, gt_file):
    xy, gt = gt_file
    far = xy[:, :1] + 1000.0  # a track far from every animal: a false positive every frame
    pred_xy = np.concatenate([xy[:, :2], far], axis=1)  # animal c never tracked
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", pred_xy), gt)
    assert r["misses"] == 60 and r["false_positives"] == 60
    assert r["mota"] == pytest.approx(1 - 120 / 180)
    assert r["recall"] == pytest.approx(2 / 3) and r["precision"] == pytest.approx(2 / 3)
    assert r["mostly_tracked"] == 2 and r["mostly_lost"] == 1


def test_keypoint_rmse_per_bodypart(tmp_path, gt_file):
    xy, gt = gt_file
    pred_xy = xy.copy()
    pred_xy[:, :, 0] += [3.0, 4.0]   # snout off by 5 px
    pred_xy[:, 1, 4] += [0.0, 2.0]   # one animal's tail base off by 2 px
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", pred_xy), gt)
    per = r["rmse_per_bodypart"]
    assert per["snout"] == pytest.approx(5.0, abs=1e-6)
    assert per["tailbase"] == pytest.approx(math.sqrt(4 / 3), abs=1e-6)
    assert per["spine"] == pytest.approx(0.0, abs=1e-6)
    expected = math.sqrt((25 * 180 + 4 * 60) / (5 * 180))
    assert r["rmse"] == pytest.approx(expected, abs=1e-6)
    assert r["n_keypoint_pairs"] == 900


def test_max_dist_turns_far_matches_into_errors(tmp_path, gt_file):
    xy, gt = gt_file
    pred_xy = xy + [6.0, 8.0]  # every key point 10 px away
    r_loose = evaluate_tracks(write_tracks(tmp_path / "pred.h5", pred_xy), gt, max_dist=12)
    assert r_loose["mota"] == 1.0 and r_loose["motp"] == pytest.approx(10.0, abs=1e-6)
    r_strict = evaluate_tracks(tmp_path / "pred.h5", gt, max_dist=9)
    assert r_strict["misses"] == 180 and r_strict["false_positives"] == 180
    assert r_strict["mota"] == pytest.approx(-1.0)


def test_pcutoff_hides_low_likelihood(tmp_path, gt_file):
    xy, gt = gt_file
    lik = np.ones(xy.shape[:-1])
    lik[:, 2] = 0.2  # third animal tracked with low confidence
    pred = write_tracks(tmp_path / "pred.h5", xy, likelihood=lik)
    assert evaluate_tracks(pred, gt)["misses"] == 0
    assert evaluate_tracks(pred, gt, pcutoff=0.6)["misses"] == 60


def test_hidden_ground_truth_keypoints_are_not_scored(tmp_path):
    xy = make_tracks()
    gt_xy = xy.copy()
    gt_xy[:, 0, 1] = np.nan       # left ear of animal a never visible
    gt_xy[10:20, 1] = np.nan      # animal b hidden for 10 frames: not an object there
    gt = write_tracks(tmp_path / "gt.h5", gt_xy)
    pred_xy = xy.copy()
    pred_xy[:, 0, 1] += 50.0      # a wrong, but unscored, key point
    pred_xy[10:20, 1] = np.nan
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", pred_xy), gt)
    assert r["num_objects"] == 170 and r["mota"] == 1.0
    assert r["rmse_per_bodypart"]["leftear"] == pytest.approx(0.0, abs=1e-6)


def test_empty_predictions(tmp_path, gt_file):
    xy, gt = gt_file
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", np.full_like(xy, np.nan)), gt)
    assert r["mota"] == 0.0 and r["misses"] == 180 and r["num_predictions"] == 0
    assert math.isnan(r["rmse"]) and r["oks_map"] == 0.0


def test_predictions_shorter_than_ground_truth(tmp_path, gt_file):
    # stitched tracks stop at the last tracked frame: later frames count as misses
    xy, gt = gt_file
    r = evaluate_tracks(write_tracks(tmp_path / "pred.h5", xy[:40]), gt)
    assert r["misses"] == 60 and r["false_positives"] == 0


def test_collected_data_ground_truth(tmp_path):
    xy = make_tracks(n_frames=60)
    pred = write_tracks(tmp_path / "pred.h5", xy)
    frames = [3, 17, 42]
    index = pd.MultiIndex.from_tuples([("labeled-data", "vid", f"img{f:03d}.png") for f in frames])
    cols = pd.MultiIndex.from_product([["lab"], ["m1", "m2", "m3"], BODYPARTS, ["x", "y"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(xy[frames].reshape(3, -1), columns=cols, index=index)
    df.to_hdf(tmp_path / "CollectedData_lab.h5", key="keypoints", mode="w")
    table = load_keypoints_h5(tmp_path / "CollectedData_lab.h5")
    assert table.frames.tolist() == frames and table.individuals == ["m1", "m2", "m3"]
    r = evaluate_tracks(pred, tmp_path / "CollectedData_lab.h5")
    assert r["num_frames"] == 3 and r["num_objects"] == 9 and r["mota"] == 1.0
    # string paths index (older DLC), Windows separators
    df.index = [f"labeled-data\\vid\\img{f:03d}.png" for f in frames]
    df.to_hdf(tmp_path / "CollectedData_old.h5", key="df_with_missing", mode="w")
    assert load_keypoints_h5(tmp_path / "CollectedData_old.h5").frames.tolist() == frames


def test_collected_data_of_several_videos_is_refused(tmp_path):
    cols = pd.MultiIndex.from_product([["lab"], ["m1"], BODYPARTS[:2], ["x", "y"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    index = pd.MultiIndex.from_tuples([("labeled-data", "v1", "img001.png"), ("labeled-data", "v2", "img001.png")])
    pd.DataFrame(np.ones((2, 4)), columns=cols, index=index).to_hdf(tmp_path / "gt.h5", key="keypoints", mode="w")
    with pytest.raises(ValueError, match="several videos"):
        load_keypoints_h5(tmp_path / "gt.h5")


def test_single_animal_and_unique_bodyparts(tmp_path):
    xy = make_tracks(n_frames=20, n_animals=1)
    cols = pd.MultiIndex.from_product([["s"], BODYPARTS, ["x", "y", "likelihood"]],
                                      names=["scorer", "bodyparts", "coords"])
    vals = np.concatenate([xy[:, 0], np.ones((20, 5, 1))], axis=-1).reshape(20, -1)
    pd.DataFrame(vals, columns=cols).to_hdf(tmp_path / "single.h5", key="df_with_missing", mode="w")
    r = evaluate_tracks(tmp_path / "single.h5", tmp_path / "single.h5")
    assert r["mota"] == 1.0 and r["n_individuals"] == 1
    # a 'single' individual (unique body parts) is not tracked and is ignored
    path = write_tracks(tmp_path / "withsingle.h5", make_tracks(n_frames=20, n_animals=2),
                        names=["ind1", "single"])
    assert load_keypoints_h5(path).individuals == ["ind1"]


def test_real_dlc_tracks_against_dlc_labels(project_a):
    """DLC 3.0.2's own tracks of project A scored on its 40 labelled frames.

    Independent reference: brute force over all track->animal permutations per frame.
    """
    pred_h5 = project_a / "videos" / "synthADLC_Resnet50_projANov23shuffle1_snapshot_best-50_el.h5"
    gt_h5 = project_a / "labeled-data" / "synthA" / "CollectedData_ref.h5"
    r = evaluate_tracks(pred_h5, gt_h5)
    labelled = [int(x) for x in (project_a / "labeled_frame_indices.txt").read_text().split()]
    assert r["num_frames"] == len(labelled) == 40
    pred = load_keypoints_h5(pred_h5)
    gt = load_keypoints_h5(gt_h5)
    assert gt.frames.tolist() == sorted(labelled)
    sq, n, misses = np.zeros(5), np.zeros(5), 0
    for f, g in zip(gt.frames, gt.xy):
        p = pred.xy[np.searchsorted(pred.frames, f)] if f in pred.frames else np.full_like(g, np.nan)
        d = np.hypot(*(g[:, None] - p[None]).transpose(3, 0, 1, 2))  # (G, P, B)
        with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(d, axis=-1)
        mean[~(mean <= r["max_dist"])] = np.inf
        best, best_perm = np.inf, None
        for perm in itertools.permutations(range(p.shape[0]), g.shape[0]):
            cost = sum(mean[i, j] if np.isfinite(mean[i, j]) else 1e9 for i, j in enumerate(perm))
            if cost < best:
                best, best_perm = cost, perm
        for i, j in enumerate(best_perm):
            if np.isfinite(mean[i, j]):
                ok = ~np.isnan(d[i, j])
                sq[ok] += d[i, j][ok] ** 2
                n[ok] += 1
            elif not np.isnan(g[i]).all():
                misses += 1
    np.testing.assert_allclose([r["rmse_per_bodypart"][b] for b in gt.bodyparts], np.sqrt(sq / n), rtol=1e-9)
    assert r["misses"] == misses
    # DLC's model reached ~1 px test error; its tracks are good but not perfect
    assert 0.8 < r["mota"] <= 1.0 and r["rmse"] < 5.0


def test_oks_map_hand_computed():
    # one frame, one animal with a 40x20 box; every key point 1.0 px off in x
    true = np.array([[[0, 0], [40, 0], [40, 20], [0, 20], [20, 10]]], float)[None]
    pred = true + [1.0, 0.0]
    sigma = 0.072
    s2 = (40 + np.spacing(1)) * (20 + np.spacing(1))
    oks = math.exp(-1.0 / (2 * s2 * (2 * sigma) ** 2))
    res = oks_map(pred, np.ones((1, 1)), true, oks_sigma=sigma)
    thresholds = np.linspace(0.5, 0.95, 10)
    assert res["mAP"] == pytest.approx(np.mean(thresholds <= oks))
    # an unmatched extra prediction is a false positive: harmless when ranked last...
    pred2 = np.concatenate([pred, pred + 500], axis=1)
    assert oks_map(pred2, np.array([[1.0, 0.5]]), true, oks_sigma=sigma)["mAP"] == pytest.approx(res["mAP"])
    # ...and halves the precision when ranked first
    assert oks_map(pred2, np.array([[0.5, 1.0]]), true, oks_sigma=sigma)["mAP"] == pytest.approx(res["mAP"] / 2)


def test_oks_map_ranking_by_score():
    # two frames; the confident prediction is right, the unconfident one wrong
    true = np.array([[[0, 0], [30, 0], [30, 30]]], float)[None].repeat(2, axis=0)
    pred = true.copy()
    pred[1] += 100.0
    res = oks_map(pred, np.array([[0.9], [0.1]]), true)
    # precision 1 up to recall 0.5 then 0.5: mean over 101 recall points
    expected = (51 * 1.0 + 50 * 0.0) / 101
    assert res["mAP"] == pytest.approx(expected)
    assert res["mAR"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_max_dist(tmp_path, gt_file, bad):
    _, gt = gt_file
    with pytest.raises(ValueError, match="max_dist"):
        evaluate_tracks(gt, gt, max_dist=bad)


def test_bad_files(tmp_path, gt_file):
    _, gt = gt_file
    with pytest.raises(FileNotFoundError, match="predicted_h5"):
        evaluate_tracks(tmp_path / "nope.h5", gt)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="ground_truth_h5"):
        evaluate_tracks(gt, tmp_path / "junk.h5")
    other = make_tracks(n_frames=5)
    cols = pd.MultiIndex.from_product([["s"], ["ind1"], ["nose"], ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    pd.DataFrame(other[:, 0, :1].reshape(5, -1).repeat(2, axis=1)[:, :3], columns=cols).to_hdf(
        tmp_path / "nose.h5", key="tracks", mode="w")
    with pytest.raises(ValueError, match="nothing in common"):
        evaluate_tracks(tmp_path / "nose.h5", gt)
    flat = pd.DataFrame(np.ones((3, 2)), columns=["x", "y"])
    flat.to_hdf(tmp_path / "flat.h5", key="df", mode="w")
    with pytest.raises(ValueError, match="MultiIndex"):
        evaluate_tracks(tmp_path / "flat.h5", gt)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_animals=st.integers(1, 4), swap_at=st.integers(1, 19))
def test_property_relabelling_and_swaps(tmp_path_factory, seed, n_animals, swap_at):
    tmp = tmp_path_factory.mktemp("prop")
    xy = make_tracks(n_frames=20, n_animals=n_animals, seed=seed)
    gt = write_tracks(tmp / "gt.h5", xy)
    perm = np.random.default_rng(seed).permutation(n_animals)
    r = evaluate_tracks(write_tracks(tmp / "p.h5", xy[:, perm]), gt)
    assert r["mota"] == 1.0 and r["idf1"] == 1.0 and r["id_switches"] == 0
    if n_animals >= 2:
        sw = xy.copy()
        sw[swap_at:, [0, 1]] = xy[swap_at:, [1, 0]]
        r2 = evaluate_tracks(write_tracks(tmp / "s.h5", sw), gt)
        assert r2["id_switches"] == 2
        assert r2["idf1"] < 1.0 and r2["rmse"] == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), p=st.integers(1, 5), g=st.integers(1, 5), k=st.integers(1, 8))
def test_oks_matrix_matches_scalar_reference(seed, p, g, k):
    from mapose.evaluation.tracks import _oks, _oks_matrix

    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 50, (p, k, 2))
    true = pred[:1].repeat(g, 0) + rng.normal(0, 5, (g, k, 2))
    pred[rng.random((p, k)) < 0.2] = np.nan
    true[rng.random((g, k)) < 0.3] = np.nan
    ref = np.array([[_oks(a, b, 0.072) for b in true] for a in pred])
    np.testing.assert_allclose(_oks_matrix(pred, true, 0.072), ref, rtol=1e-12, atol=0)


def test_evaluate_command(tmp_path, gt_file, capsys):
    import json

    from mapose.cli import main

    xy, gt = gt_file
    pred = write_tracks(tmp_path / "pred.h5", xy)
    assert main(["evaluate", str(pred), str(gt), "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "MOTA 1.000" in out and "IDF1 1.000" in out
    assert json.loads((tmp_path / "m.json").read_text())["id_switches"] == 0
    assert main(["evaluate", str(tmp_path / "missing.h5"), str(gt)]) == 1
    assert "predicted_h5" in capsys.readouterr().err


def test_real_dlc_files_layouts(unittest_data):
    # DLC's fixed-format tracks (key /df) with a unique-body-part 'single' individual
    table = load_keypoints_h5(unittest_data / "montblanc_tracks.h5")
    assert table.individuals == ["bird1", "bird2", "bird3"] and len(table.frames) == 180
    assert table.bodyparts == ["head", "tail", "leftwing", "rightwing"]
    r = evaluate_tracks(unittest_data / "montblanc_tracks.h5", unittest_data / "montblanc_tracks.h5")
    assert r["mota"] == 1.0 and r["num_frames"] == 180
    # a CollectedData-style table spanning two videos is refused with a clear message
    with pytest.raises(ValueError, match="several videos"):
        load_keypoints_h5(unittest_data / "trimouse_calib.h5", "ground_truth_h5")
