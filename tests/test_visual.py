"""Visual checks: labeled videos, detection / tracklet videos, trajectory and affinity plots.

Pixel tests decode the written videos and look at known coordinates; the DLC 3.0.2 videos
shipped with project A are the reference for the labeled and all-detection videos.  One
frame of every kind is saved as PNG in the test's tmp folder for a person to look at.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cv2 = pytest.importorskip("cv2")

from mapose.visualization._render import (  # noqa: E402
    colormap_bgr, draw_disk, line_aa_pixels, render_video,
)

SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
STEM = "synthA" + SCORER


# --------------------------------------------------------------------------- helpers

def _disk_reference(h, w, x, y, r):
    """Obviously-correct disk: every pixel centre strictly inside the circle."""
    mask = np.zeros((h, w), bool)
    for i in range(h):
        for j in range(w):
            mask[i, j] = ((i - y) / r) ** 2 + ((j - x) / r) ** 2 < 1
    return mask


def _read_frames(path, indices=None):
    cap = cv2.VideoCapture(str(path))
    frames = []
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if indices is None or i in indices:
            frames.append(f)
        i += 1
    cap.release()
    return frames, i


@pytest.fixture
def proj_a(project_a, tmp_path):
    """A writable copy of project A (config, model folder for the scorer, video + DLC outputs)."""
    root = tmp_path / "projA"
    (root / "videos").mkdir(parents=True)
    shutil.copy(project_a / "config.yaml", root / "config.yaml")
    train = project_a / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"
    dst = root / "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"
    dst.mkdir(parents=True)
    shutil.copy(train / "pytorch_config.yaml", dst)
    for snap in train.glob("snapshot-*.pt"):
        (dst / snap.name).touch()  # only the names matter for the scorer
    src = project_a / "videos"
    for name in ["synthA.avi", f"{STEM}_el.h5", f"{STEM}_meta.pickle", f"{STEM}_full.pickle",
                 f"{STEM}_el.pickle", f"{STEM}_assemblies.pickle"]:
        shutil.copy(src / name, root / "videos" / name)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def _no_temporaries(folder: Path):
    return not [p for p in folder.rglob("*") if p.name.startswith(".") and ".part" in p.name]


# --------------------------------------------------------------------------- drawing primitives

@pytest.mark.smoke
@settings(max_examples=60, deadline=None)
@given(x=st.floats(-8, 40), y=st.floats(-8, 30), r=st.sampled_from([0.5, 1.0, 2.5, 6.0, 12.0]),
       alpha=st.sampled_from([1.0, 0.5]))
def test_draw_disk_matches_reference(x, y, r, alpha):
    h, w = 24, 32
    img = np.full((h, w, 3), 10, np.uint8)
    draw_disk(img, x, y, r, np.array([200, 100, 50], np.uint8), alpha)
    ref = _disk_reference(h, w, x, y, r)
    painted = np.any(img != 10, axis=2)
    assert np.array_equal(painted, ref)
    if ref.any():
        expected = np.trunc(np.array([200, 100, 50]) * alpha + 10 * (1 - alpha)).astype(np.uint8)
        assert (img[ref] == expected).all()


@pytest.mark.smoke
def test_draw_disk_ignores_nonfinite_and_outside():
    img = np.zeros((10, 10, 3), np.uint8)
    draw_disk(img, np.nan, 3, 4, (255, 255, 255))
    draw_disk(img, 100, 100, 4, (255, 255, 255))
    assert not img.any()


@pytest.mark.smoke
@settings(max_examples=80, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40))
def test_line_aa_pixels_cover_segment(r0, c0, r1, c1):
    rr, cc = line_aa_pixels(r0, c0, r1, c1)
    pts = set(zip(rr.tolist(), cc.tolist()))
    assert (r0, c0) in pts and (r1, c1) in pts
    # every pixel lies within one pixel of the ideal segment
    d = np.array([r1 - r0, c1 - c0], float)
    for r, c in pts:
        v = np.array([r - r0, c - c0], float)
        t = 0.0 if not d.any() else np.clip(v @ d / (d @ d), 0, 1)
        assert np.hypot(*(v - t * d)) <= 1.5
    # and the main Bresenham path is 8-connected: one pixel per step along the major axis
    n_major = max(abs(r1 - r0), abs(c1 - c0)) + 1
    assert len(pts) >= n_major


@pytest.mark.smoke
def test_colormap_matches_matplotlib():
    mpl = pytest.importorskip("matplotlib")
    got = colormap_bgr("rainbow", 3)
    ref = (mpl.colormaps["rainbow"](np.linspace(0, 1, 3))[:, :3] * 255).astype(np.uint8)[:, ::-1]
    assert np.array_equal(got, ref)
    with pytest.raises(ValueError, match="colormap"):
        colormap_bgr("no-such-map", 3)


def test_render_video_frames_in_order_and_atomic(tmp_path):
    src = tmp_path / "counter.avi"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        w.write(np.full((48, 64, 3), i * 6, np.uint8))
    w.release()
    seen = []

    def paint(i, img):
        seen.append((i, int(img[0, 0, 0])))

    out = tmp_path / "out.mp4"
    n = render_video(src, out, paint)
    assert n == 40 and [i for i, _ in seen] == list(range(40))
    assert all(abs(v - 6 * i) <= 3 for i, v in seen)  # MJPG is lossy; order is what matters
    with pytest.raises(ValueError, match="only 40 frames"):
        render_video(src, tmp_path / "short.mp4", paint, n_required=41)
    assert not (tmp_path / "short.mp4").exists() and _no_temporaries(tmp_path)


# --------------------------------------------------------------------------- labeled video

def test_create_labeled_video_matches_dlc(proj_a, project_a, tmp_path):
    import mapose
    from mapose.io.tracks_h5 import read_tracks

    cfg = proj_a / "config.yaml"
    video = proj_a / "videos" / "synthA.avi"
    assert mapose.create_labeled_video(cfg, [video], color_by="individual") == [True]
    out = proj_a / "videos" / f"{STEM}_el_id_p60_labeled.mp4"
    assert out.is_file()
    frames, n = _read_frames(out)
    assert n == 150 and frames[0].shape == (256, 320, 3)

    # a marker of the individual's colour at a confident keypoint
    df = read_tracks(proj_a / "videos" / f"{STEM}_el.h5")
    colors = colormap_bgr("rainbow", 3)
    checked = 0
    for k, animal in enumerate(sorted(set(df.columns.get_level_values("individuals")))):
        sub = df.xs((animal, "snout"), level=("individuals", "bodyparts"), axis=1)
        row = sub.droplevel("scorer", axis=1).iloc[60]
        if row["likelihood"] > 0.6:
            x, y = int(round(row["x"])), int(round(row["y"]))
            assert np.abs(frames[60][y, x].astype(int) - colors[k]).max() <= 12
            checked += 1
    assert checked >= 2
    cv2.imwrite(str(tmp_path / "labeled_frame060.png"), frames[60])

    # DLC 3.0.2's own labeled video of the same tracks: same pixels up to encoder noise
    ref, n_ref = _read_frames(project_a / "videos" / f"{STEM}_el_id_p60_labeled.mp4", {0, 60, 149})
    ours = [frames[i] for i in (0, 60, 149)]
    assert n_ref == n
    for a, b in zip(ours, ref):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0

    # existing output is kept unless overwrite=True
    mtime = out.stat().st_mtime_ns
    assert mapose.create_labeled_video(cfg, [video], color_by="individual") == [True]
    assert out.stat().st_mtime_ns == mtime


def test_create_labeled_video_options(proj_a, tmp_path):
    import mapose

    cfg = proj_a / "config.yaml"
    video = proj_a / "videos" / "synthA.avi"
    mapose.create_labeled_video(
        cfg, str(video), draw_skeleton=True, trailpoints=3, displayedbodyparts=["snout", "spine"],
        displayedindividuals=["animal0", "animal1"], save_frames=True, Frames2plot=[5, 7],
        pcutoff=0.5, confidence_to_alpha=True)
    out = proj_a / "videos" / f"{STEM}_el_bp_p50_labeled.mp4"
    frames, n = _read_frames(out, {5})
    assert n == 150
    saved = sorted(p.name for p in (proj_a / "videos" / "temp-synthA").iterdir())
    assert saved == ["file005.png", "file007.png"]
    shutil.copy(proj_a / "videos" / "temp-synthA" / "file005.png", tmp_path / "labeled_options_frame005.png")

    mapose.create_labeled_video(cfg, [video], keypoints_only=True, codec="mp4v")
    frames, _ = _read_frames(proj_a / "videos" / f"{STEM}_el_bp_p60_labeled.mp4", {10})
    img = frames[0]
    assert (img.max(axis=2) < 30).mean() > 0.8  # black background, only the dots
    cv2.imwrite(str(tmp_path / "keypoints_only_frame010.png"), img)


def test_create_labeled_video_bad_input(proj_a, tmp_path):
    import mapose

    cfg = proj_a / "config.yaml"
    video = proj_a / "videos" / "synthA.avi"
    with pytest.raises(ValueError, match="displayedbodyparts"):
        mapose.create_labeled_video(cfg, [video], displayedbodyparts=["nose"])
    with pytest.raises(ValueError, match="displayedindividuals"):
        mapose.create_labeled_video(cfg, [video], displayedindividuals=["mouse9"])
    with pytest.raises(ValueError, match="color_by"):
        mapose.create_labeled_video(cfg, [video], color_by="animal")
    with pytest.raises(FileNotFoundError, match="filterpredictions"):
        mapose.create_labeled_video(cfg, [video], filtered=True)
    with pytest.raises(FileNotFoundError):
        mapose.create_labeled_video(cfg, [proj_a / "videos" / "missing.avi"])
    with pytest.raises(FileNotFoundError, match="config"):
        mapose.create_labeled_video(proj_a / "nope.yaml", [video])

    # a shorter video than the tracks: clear error, nothing written
    short = proj_a / "videos" / "short" / "synthA.avi"
    short.parent.mkdir()
    cap = cv2.VideoCapture(str(video))
    w = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 256))
    for _ in range(20):
        w.write(cap.read()[1])
    w.release()
    for name in (f"{STEM}_el.h5",):
        shutil.copy(proj_a / "videos" / name, short.parent / name)
    with pytest.raises(ValueError, match="20 frames"):
        mapose.create_labeled_video(cfg, [short])
    assert not list(short.parent.glob("*_labeled.mp4")) and _no_temporaries(short.parent)

    # another frame size in the metadata than the video: clear error
    other = proj_a / "videos" / "other" / "synthA.avi"
    other.parent.mkdir()
    w = cv2.VideoWriter(str(other), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 128))
    for _ in range(150):
        w.write(np.zeros((128, 160, 3), np.uint8))
    w.release()
    for name in (f"{STEM}_el.h5", f"{STEM}_meta.pickle"):
        shutil.copy(proj_a / "videos" / name, other.parent / name)
    with pytest.raises(ValueError, match="320x256"):
        mapose.create_labeled_video(cfg, [other])


# --------------------------------------------------------------------------- all detections

def test_create_video_with_all_detections(proj_a, project_a, tmp_path):
    import mapose
    from mapose.io.full_pickle import read_full_pickle

    cfg = proj_a / "config.yaml"
    out = mapose.create_video_with_all_detections(cfg, [proj_a / "videos" / "synthA.avi"])
    assert out == [proj_a / "videos" / f"{STEM}_full.mp4"]
    frames, n = _read_frames(out[0], {30})
    assert n == 150 and frames[0].shape == (256, 320, 3)
    data = read_full_pickle(proj_a / "videos" / f"{STEM}_full.pickle")
    colors = colormap_bgr("rainbow", 5)
    det = data["frame030"]
    # the last body part is drawn last, so its markers are never covered
    xy, conf = det["coordinates"][0][4], det["confidence"][4].ravel()
    hits = 0
    for (x, y), p in zip(xy, conf):
        if p >= 0.6:
            assert np.abs(frames[0][int(round(y)), int(round(x))].astype(int) - colors[4]).max() <= 12
            hits += 1
    assert hits >= 2
    cv2.imwrite(str(tmp_path / "all_detections_frame030.png"), frames[0])
    ref, n_ref = _read_frames(project_a / "videos" / f"{STEM}_full.mp4", {30})
    assert n_ref == n and np.abs(ref[0].astype(int) - frames[0].astype(int)).mean() < 1.0

    # destfolder: pickle read from and video written there; subsets; bad names
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copy(proj_a / "videos" / f"{STEM}_full.pickle", dest)
    out2 = mapose.create_video_with_all_detections(
        cfg, [proj_a / "videos" / "synthA.avi"], destfolder=dest, displayedbodyparts=["snout"])
    assert out2 == [dest / f"{STEM}_full.mp4"] and out2[0].is_file()
    (tmp_path / "d2").mkdir()
    shutil.copy(proj_a / "videos" / f"{STEM}_full.pickle", tmp_path / "d2")
    with pytest.raises(ValueError, match="displayedbodyparts"):
        mapose.create_video_with_all_detections(cfg, [proj_a / "videos" / "synthA.avi"], destfolder=tmp_path / "d2",
                                                displayedbodyparts=["tail"])
    assert not list((tmp_path / "d2").glob("*.mp4")) and _no_temporaries(tmp_path / "d2")
    with pytest.raises(FileNotFoundError, match="analyze_videos"):
        mapose.create_video_with_all_detections(cfg, [proj_a / "videos" / "synthA.avi"], destfolder=tmp_path / "d3")


def test_all_detections_tf_layout_and_mismatch(unittest_data, tmp_path):
    """A classic (TF) _full.pickle of another video is refused with a clear error."""
    from mapose.visualization.videos import _flatten_frame
    from mapose.io.full_pickle import read_full_pickle

    data = read_full_pickle(unittest_data / "montblanc_full.pickle")
    label, x, y, p = _flatten_frame(data["frame000"])
    n_expected = sum(len(np.asarray(c).reshape(-1, 2)) for c in data["frame000"]["coordinates"][0]
                     if np.any(np.nan_to_num(np.asarray(c))))
    assert len(label) == len(x) == len(p) == n_expected
    assert np.all(np.diff(label) >= 0)  # body part order, as DLC flattens


# --------------------------------------------------------------------------- pickled tracks

def test_video_from_pickled_tracklets(proj_a, tmp_path):
    from mapose.io.tracklets_pickle import read_tracklets_pickle
    from mapose.utils.make_labeled_video import create_video_from_pickled_tracks
    from mapose.visualization.tracks import track_color

    video = proj_a / "videos" / "synthA.avi"
    out = create_video_from_pickled_tracks(str(video), str(proj_a / "videos" / f"{STEM}_el.pickle"))
    assert out == proj_a / "videos" / "synthA" / "synthADLClabeled.avi"
    frames, n = _read_frames(out, {40})
    raw, _ = _read_frames(video, {40})
    assert n == 150 and frames[0].shape == (256, 320, 3)
    tracks = read_tracklets_pickle(proj_a / "videos" / f"{STEM}_el.pickle")
    img, orig = frames[0].astype(int), raw[0].astype(int)
    n_tracks = 0
    for tid, frames_of in tracks.items():
        if tid in ("header", "single") or "frame040" not in frames_of:
            continue
        xyp = np.asarray(frames_of["frame040"])[:, :3]
        vis = xyp[:, 2] > 0.6
        x, y = xyp[vis][0, :2]
        assert np.abs(img[int(round(y)), int(round(x))] - track_color(tid)).max() <= 40
        # the id label above the topmost keypoint changed the frame there
        top = xyp[vis][np.argmin(xyp[vis, 1])]
        y0, x0 = int(top[1]) - 20, int(top[0])
        box = (slice(max(y0, 0), max(y0 + 14, 1)), slice(max(x0, 0), x0 + 16))
        assert np.abs(img[box] - orig[box]).mean() > 10
        n_tracks += 1
    assert n_tracks == 3
    cv2.imwrite(str(tmp_path / "tracklets_frame040.png"), frames[0])


def test_video_from_pickled_assemblies_and_errors(proj_a, unittest_data, tmp_path):
    from mapose.visualization.tracks import create_video_from_pickled_tracks, load_pickled_tracks

    video = proj_a / "videos" / "synthA.avi"
    out = create_video_from_pickled_tracks(video, proj_a / "videos" / f"{STEM}_assemblies.pickle",
                                           destfolder=str(tmp_path / "o"), output_name="assemblies.mp4")
    frames, n = _read_frames(out, {0})
    assert n == 150
    cv2.imwrite(str(tmp_path / "assemblies_frame000.png"), frames[0])
    frames_data = load_pickled_tracks(proj_a / "videos" / f"{STEM}_assemblies.pickle")
    assert [lab for lab, _, _ in frames_data[0]] == ["0", "1", "2"]

    # legacy int-keyed tracklets and the "single" tracklet of montblanc
    legacy = load_pickled_tracks(unittest_data / "trimouse_tracklets.pickle")
    assert len(legacy) == 50 and all(len(v) == 3 for v in legacy.values())
    mb = load_pickled_tracks(unittest_data / "montblanc_tracklets.pickle")
    assert any(lab == "single" for items in mb.values() for lab, _, _ in items)

    # montblanc has 180 frames: more than synthA's 150 -> refused, nothing written
    with pytest.raises(ValueError, match="150 frames"):
        create_video_from_pickled_tracks(video, unittest_data / "montblanc_tracklets.pickle",
                                         destfolder=str(tmp_path / "bad"))
    assert not list((tmp_path / "bad").glob("*.avi")) if (tmp_path / "bad").exists() else True
    with pytest.raises(ValueError, match="_full.pickle"):
        create_video_from_pickled_tracks(video, proj_a / "videos" / f"{STEM}_full.pickle", destfolder=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pickle_file"):
        create_video_from_pickled_tracks(video, tmp_path / "none_el.pickle")
    with pytest.raises(FileNotFoundError, match="video"):
        create_video_from_pickled_tracks(tmp_path / "none.avi", proj_a / "videos" / f"{STEM}_el.pickle")


# --------------------------------------------------------------------------- plots

def _png_ok(path: Path, min_side=100):
    img = cv2.imread(str(path))
    assert img is not None and min(img.shape[:2]) >= min_side
    assert img.std() > 5  # not a blank canvas
    return img


def test_plot_trajectories(proj_a, tmp_path):
    pytest.importorskip("matplotlib")
    import mapose

    files = mapose.plot_trajectories(proj_a / "config.yaml", [proj_a / "videos" / "synthA.avi"],
                                     displayedindividuals=["animal0"], resolution=50)
    folder = proj_a / "videos" / "plot-poses" / "synthA"
    assert sorted(p.name for p in files) == sorted(
        f"{k}animal0.png" for k in ("trajectory", "plot", "plot-likelihood", "hist"))
    for p in files:
        assert p.parent == folder
        _png_ok(p, 100)
    shutil.copy(folder / "plotanimal0.png", tmp_path / "trajectory_plot.png")
    with pytest.raises(ValueError, match="displayedindividuals"):
        mapose.plot_trajectories(proj_a / "config.yaml", [proj_a / "videos" / "synthA.avi"],
                                 displayedindividuals=["mouse"])


def _brute_within_between(data, metadata):
    """Reference split: O(n²) greedy matching with explicit distances, same off-by-one."""
    train = set(np.asarray(metadata["data"]["trainIndices"]).ravel().tolist())
    graph = data["metadata"]["PAFgraph"]
    within, between = {}, {}
    for pos, (key, entry) in enumerate(data.items()):
        if key == "metadata" or pos not in train:
            continue
        gt = entry["groundtruth"][2]
        gt = gt[gt.index.get_level_values("individuals") != "single"]
        bpts = list(dict.fromkeys(gt.index.get_level_values("bodyparts")))
        animals = list(dict.fromkeys(gt.index.get_level_values("individuals")))
        table = {(a, bp, c): v for (_, a, bp, c), v in gt.items()}
        lookup = {}
        for b, bp in enumerate(bpts):
            g = np.array([[table.get((a, bp, c), np.nan) for c in ("x", "y")] for a in animals])
            det = np.asarray(entry["prediction"]["coordinates"][0][b], float).reshape(-1, 2)
            gi = [i for i in range(len(g)) if np.isfinite(g[i]).all()]
            di = [j for j in range(len(det)) if np.isfinite(det[j]).all()]
            if not gi or not di:
                continue
            dist = np.array([[np.hypot(*(g[i] - det[j])) for j in di] for i in gi])
            near = np.argsort(dist, axis=1, kind="stable")[:, :3]
            order = np.argsort(dist.min(axis=1))
            taken, m = set(), {}
            for q in order:
                for j in near[q]:
                    if j not in taken:
                        taken.add(j)
                        m[gi[q]] = di[j]
                        break
                if len(taken) == len(di):
                    break
            lookup[b] = m
        for k, v in entry["prediction"]["costs"].items():
            s, t = graph[k]
            if s not in lookup or t not in lookup:
                continue
            paf = np.asarray(v["m1"])
            mask = np.zeros(paf.shape, bool)
            for a in set(lookup[s]) & set(lookup[t]):
                mask[lookup[s][a], lookup[t][a]] = True
            within.setdefault(k, []).extend(paf[mask].tolist())
            between.setdefault(k, []).extend(paf[~mask].tolist())
    return within, between


def test_edge_affinity_split_and_plot(unittest_data, tmp_path):
    pytest.importorskip("matplotlib")
    from mapose.io.safe_pickle import read_pickle
    from mapose.utils import plot_edge_affinity_distributions
    from mapose.visualization.plots import (
        _edge_affinity_figure, separability_auc, within_between_affinities,
    )

    data = read_pickle(unittest_data / "trimouse_eval.pickle")
    meta = read_pickle(unittest_data / "trimouse_meta.pickle")
    (w, _), (b, _) = within_between_affinities(data, meta)
    rw, rb = _brute_within_between(data, meta)
    assert sorted(w) == sorted(rw) and len(w) == 66
    for k in rw:
        assert np.allclose(w[k], rw[k]) and np.allclose(b[k], rb[k])
    # within-animal affinities are high, between-animal low: AUC close to 1 on a trained model
    aucs = [separability_auc(b[k], w[k]) for k in w]
    assert min(aucs) > 0.9
    # the histogram AUC agrees with the rank (Mann-Whitney) AUC up to binning
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(w[0], b[0]).statistic / (len(w[0]) * len(b[0]))
    assert abs(aucs[0] - u) < 0.05

    fig, edges = _edge_affinity_figure(unittest_data / "trimouse_eval.pickle", ["snout"], (10, 7))
    assert edges == list(range(11))  # the 11 edges touching the snout
    assert sum(ax.axison for ax in fig.axes) == 11

    out = plot_edge_affinity_distributions(str(unittest_data / "trimouse_eval.pickle"),
                                           include_bodyparts=["snout", "leftear"],
                                           output_name=str(tmp_path / "costdist.png"), dpi=80)
    assert out == tmp_path / "costdist.png"
    _png_ok(out, 300)
    with pytest.raises(ValueError, match="include_bodyparts"):
        plot_edge_affinity_distributions(unittest_data / "trimouse_eval.pickle", include_bodyparts=["wing"],
                                         output_name=str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="ground truth"):
        plot_edge_affinity_distributions(unittest_data / "trimouse_full.pickle", output_name=str(tmp_path / "y.png"))
    with pytest.raises(FileNotFoundError):
        plot_edge_affinity_distributions(tmp_path / "missing_full.pickle")


def test_label_command(proj_a):
    from mapose.cli import main

    rc = main(["label", str(proj_a / "config.yaml"), str(proj_a / "videos" / "synthA.avi"),
               "--color-by", "individual", "--detections"])
    assert rc == 0
    assert (proj_a / "videos" / f"{STEM}_el_id_p60_labeled.mp4").is_file()
    assert (proj_a / "videos" / f"{STEM}_full.mp4").is_file()
    assert main(["label", str(proj_a / "config.yaml"), str(proj_a / "videos" / "nope.avi")]) == 1
