"""analyze_videos / export_model end to end on DLC's project A (a short clip of its video).

The project is mirrored into tmp_path (config, model configs, a symlink to the snapshot),
so DLC's read-only files are never written to.  Every comparison is against the files DLC
3.0.2's own ``analyze_videos`` wrote for the same frames.
"""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from _fixture_helpers import write_clip

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.torch

SCORER = "DLC_Resnet50_projANov23shuffle1_snapshot_best-50"
SHUFFLE_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1"
N_CLIP = 6


def make_project(src: Path, dst: Path, n_frames: int = N_CLIP) -> Path:
    """Light copy of project A with an n-frame clip; returns config.yaml."""
    (dst / "videos").mkdir(parents=True)
    shutil.copy(src / "config.yaml", dst / "config.yaml")
    for sub in ("train", "test"):
        (dst / SHUFFLE_DIR / sub).mkdir(parents=True)
    for f in ("train/pytorch_config.yaml", "test/pose_cfg.yaml", "test/inference_cfg.yaml"):
        shutil.copy(src / SHUFFLE_DIR / f, dst / SHUFFLE_DIR / f)
    for p in (dst / SHUFFLE_DIR).rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(dst / "config.yaml", 0o644)
    os.symlink(src / SHUFFLE_DIR / "train/snapshot-best-050.pt", dst / SHUFFLE_DIR / "train/snapshot-best-050.pt")
    if n_frames:
        write_clip(src / "videos/synthA.avi", dst / "videos/clip.avi", n_frames)
    return dst / "config.yaml"


@pytest.fixture(scope="module")
def analyzed(project_a, tmp_path_factory):
    """One torch analysis of the clip (auto_track=False, save_as_df=True)."""
    import mapose

    root = tmp_path_factory.mktemp("projA")
    config = make_project(project_a, root)
    scorer = mapose.analyze_videos(config, [root / "videos/clip.avi"], auto_track=False,
                                   save_as_df=True, save_as_csv=True, progress=False)
    return root, config, scorer


def _load(p):
    with open(p, "rb") as fh:
        return pickle.load(fh)


def _compare_full(ours, dlc, n, atol):
    for i in range(n):
        a, b = ours[f"frame{i}"], dlc[f"frame{i:03d}"]
        assert a.keys() == b.keys()
        assert a["costs"] is None and isinstance(a["coordinates"], tuple)
        for k in range(5):
            ca, cb = a["coordinates"][0][k], b["coordinates"][0][k]
            assert ca.dtype == cb.dtype == np.float32 and ca.shape == cb.shape == (3, 2)
            np.testing.assert_array_equal(np.isnan(ca), np.isnan(cb))
            np.testing.assert_allclose(ca, cb, atol=atol, equal_nan=True)
            np.testing.assert_allclose(a["confidence"][k], b["confidence"][k], atol=atol)


def test_full_pickle_matches_dlc(analyzed, project_a):
    root, _, scorer = analyzed
    assert scorer == SCORER
    ours = _load(root / f"videos/clip{SCORER}_full.pickle")
    dlc = _load(project_a / f"videos/synthA{SCORER}_full.pickle")
    meta = dict(ours["metadata"])
    ref = dict(dlc["metadata"])
    assert meta["nframes"] == N_CLIP and meta["key_str_width"] == 1
    for key in ("nms radius", "minimal confidence", "sigma", "PAFgraph", "all_joints", "all_joints_names"):
        assert meta[key] == ref[key]
    assert meta["PAFinds"].dtype == ref["PAFinds"].dtype and meta["PAFinds"].size == 0
    assert list(ours) == ["metadata"] + [f"frame{i}" for i in range(N_CLIP)]
    # batch size 4 as DLC; tiny float differences from torch versions only
    _compare_full(ours, dlc, N_CLIP, atol=2e-4)


def test_assemblies_meta_and_h5_match_dlc(analyzed, project_a):
    import pandas as pd

    root, _, _ = analyzed
    ours = _load(root / f"videos/clip{SCORER}_assemblies.pickle")
    dlc = _load(project_a / f"videos/synthA{SCORER}_assemblies.pickle")
    assert list(ours) == ["single"] + list(range(N_CLIP)) and ours["single"] == {}
    for i in range(N_CLIP):
        assert ours[i].dtype == dlc[i].dtype and ours[i].shape == dlc[i].shape
        np.testing.assert_allclose(ours[i], dlc[i], atol=2e-4, equal_nan=True)
    from mapose.io.meta_pickle import read_meta_pickle

    meta = read_meta_pickle(root / f"videos/clip{SCORER}_meta.pickle")["data"]
    ref = read_meta_pickle(project_a / f"videos/synthA{SCORER}_meta.pickle")["data"]
    assert list(meta) == list(ref)
    for key in ("Scorer", "fps", "batch_size", "frame_dimensions", "cropping", "cropping_parameters",
                "individuals", "bodyparts", "unique_bodyparts", "training set fraction"):
        assert meta[key] == ref[key], key
    assert meta["nframes"] == N_CLIP
    df = pd.read_hdf(root / f"videos/clip{SCORER}.h5", "df_with_missing")
    ref_df = pd.read_hdf(project_a / f"analysis_manual/synthA{SCORER}.h5")
    assert df.columns.equals(ref_df.columns) and df.dtypes.iloc[0] == ref_df.dtypes.iloc[0]
    np.testing.assert_allclose(df.to_numpy(), ref_df.iloc[:N_CLIP].to_numpy(), atol=2e-4)
    assert (root / f"videos/clip{SCORER}.csv").is_file()


def test_existing_full_pickle_is_skipped(analyzed, capsys):
    import mapose

    root, config, _ = analyzed
    full = root / f"videos/clip{SCORER}_full.pickle"
    before = full.stat().st_mtime_ns
    mapose.analyze_videos(config, [root / "videos/clip.avi"], auto_track=False, progress=False)
    assert full.stat().st_mtime_ns == before
    assert "already analyzed" in capsys.readouterr().out


@pytest.mark.onnx
@pytest.mark.slow
def test_onnx_export_and_engine_match_dlc(analyzed, project_a, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import mapose

    root, config, _ = analyzed
    path = mapose.export_model(config)
    assert path.suffix == ".onnx" and path.is_file()
    assert path.parent.name == "DLC_projA_resnet_50_iteration-0_shuffle-1"
    # the graph version is in the name: an export from an older mapose is not reused
    from mapose.inference.export import _ONNX_GRAPH_VERSION

    assert path.name.endswith(f"_graph-v{_ONNX_GRAPH_VERSION}.onnx")
    mtime = path.stat().st_mtime_ns
    import onnx

    model = onnx.load(str(path))
    inp = model.graph.input[0]
    assert inp.name == "frames" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.name for o in model.graph.output] == ["bodypart/heatmap", "bodypart/locref", "bodypart/paf"]
    dest = tmp_path / "onnx_out"
    mapose.analyze_videos(config, [root / "videos/clip.avi"], auto_track=False, engine="onnx",
                          destfolder=dest, batch_size=3, progress=False)
    ours = _load(dest / f"clip{SCORER}_full.pickle")
    dlc = _load(project_a / f"videos/synthA{SCORER}_full.pickle")
    _compare_full(ours, dlc, N_CLIP, atol=5e-4)
    assert path.stat().st_mtime_ns == mtime  # analyze_videos ran export_model's file, not a new export
    assert sorted(p.name for p in path.parent.glob("*.onnx") if ".optimized-" not in p.name) == [path.name]
    pt = mapose.export_model(config, format="pytorch")
    blob = torch.load(pt, weights_only=True)
    assert set(blob) == {"config", "pose"} and blob["config"]["net_type"] == "resnet_50"


@pytest.mark.slow
def test_auto_track_matches_dlc_tracks(project_a, tmp_path):
    """auto_track=True: tracklets + stitched _el.h5 equal DLC's on the first 12 frames."""
    import warnings

    import pandas as pd

    import mapose

    config = make_project(project_a, tmp_path / "p", n_frames=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapose.analyze_videos(config, [tmp_path / "p/videos/clip.avi"], progress=False)
    folder = tmp_path / "p/videos"
    assert (folder / f"clip{SCORER}_el.pickle").is_file()
    df = pd.read_hdf(folder / f"clip{SCORER}_el.h5", "tracks")
    ref = pd.read_hdf(project_a / f"videos/synthA{SCORER}_el.h5", "tracks")
    assert df.columns.equals(ref.columns) and len(df) == 12
    np.testing.assert_allclose(df.to_numpy(), ref.iloc[:12].to_numpy(), atol=2e-4)


def test_failure_mid_video_leaves_nothing(analyzed, tmp_path, monkeypatch):
    import mapose
    from mapose.inference import analyze as an

    root, config, _ = analyzed

    class Boom:
        net = None

        def __call__(self, frames):
            raise RuntimeError("network exploded")

    monkeypatch.setattr(an, "_make_runner", lambda *a, **k: Boom())
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError, match="exploded"):
        mapose.analyze_videos(config, [root / "videos/clip.avi"], destfolder=dest, progress=False)
    assert list(dest.iterdir()) == []


# --- bad input ---------------------------------------------------------------------------

@pytest.fixture()
def bare_project(project_a, tmp_path):
    return make_project(project_a, tmp_path / "p", n_frames=0)


def _edit_config(config, **changes):
    from mapose.io.config import read_config, write_config

    cfg = read_config(config)
    cfg.update(changes)
    write_config(config, cfg)


def test_missing_and_corrupt_videos(bare_project, tmp_path):
    import mapose

    with pytest.raises(FileNotFoundError, match="nope.avi"):
        mapose.analyze_videos(bare_project, [tmp_path / "nope.avi"], progress=False)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(ValueError, match="bad.avi"):
        mapose.analyze_videos(bare_project, [bad], progress=False)
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"FFV1"), 25, (32, 32)).release()
    with pytest.raises(ValueError, match="empty.avi"):
        mapose.analyze_videos(bare_project, [empty], progress=False)
    assert not list(tmp_path.glob("*DLC_*"))


def test_project_errors(bare_project, tmp_path):
    import mapose

    video = tmp_path / "v.avi"
    with pytest.raises(ValueError, match="engine"):
        mapose.analyze_videos(bare_project, [video], engine="tensorrt")
    with pytest.raises(ValueError, match="dynamic"):  # dynamic cropping needs batch size 1
        mapose.analyze_videos(bare_project, [video], dynamic=(True, 0.5, 10), batch_size=2)
    with pytest.raises(FileNotFoundError, match="config"):
        mapose.analyze_videos(tmp_path / "nowhere/config.yaml", [video])
    with pytest.raises(FileNotFoundError, match="shuffle 7"):
        mapose.analyze_videos(bare_project, [video], shuffle=7)
    snap = bare_project.parent / SHUFFLE_DIR / "train/snapshot-best-050.pt"
    snap.unlink()
    with pytest.raises(ValueError, match="snapshot"):
        mapose.analyze_videos(bare_project, [video])
    _edit_config(bare_project, multianimalbodyparts=["snout", "leftear", "rightear", "spine", "tail"])
    with pytest.raises(ValueError, match="body parts"):
        mapose.export_model(bare_project)
    _edit_config(bare_project, multianimalproject=False)
    with pytest.raises(ValueError, match="single-animal"):
        mapose.analyze_videos(bare_project, [video])


def test_cropping_from_config(project_a, tmp_path):
    """config.yaml cropping: predictions in cropped-frame coordinates, crop in the meta file."""
    import mapose
    from mapose.io.meta_pickle import read_meta_pickle

    config = make_project(project_a, tmp_path / "p", n_frames=3)
    _edit_config(config, cropping=True, x1=160, x2=320, y1=128, y2=256)
    mapose.analyze_videos(config, [tmp_path / "p/videos/clip.avi"], auto_track=False, progress=False,
                          batch_size=2)
    meta = read_meta_pickle(tmp_path / f"p/videos/clip{SCORER}_meta.pickle")["data"]
    assert meta["cropping"] is True and meta["cropping_parameters"] == [160, 320, 128, 256]
    assert meta["frame_dimensions"] == (160, 128) and meta["batch_size"] == 2
    full = _load(tmp_path / f"p/videos/clip{SCORER}_full.pickle")
    xy = np.concatenate([c for c in full["frame0"]["coordinates"][0]])
    xy = xy[np.isfinite(xy).all(1) & (xy >= 0).all(1)]
    assert len(xy) and (xy[:, 0] < 160 + 8).all() and (xy[:, 1] < 128 + 8).all()
    with pytest.raises(ValueError, match="cropping"):
        mapose.analyze_videos(config, [tmp_path / "p/videos/clip.avi"], cropping=(50, 10, 0, 5),
                              overwrite=True, progress=False)


def test_runner_device_errors():
    from mapose.inference.runners import resolve_device

    assert resolve_device("cpu") == "cpu" and resolve_device(None) in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda:0")


def test_cli_reports_errors_without_traceback(bare_project, tmp_path, capsys):
    from mapose.cli import main

    assert main(["analyze", str(bare_project), str(tmp_path / "missing.avi"), "--no-track"]) == 1
    assert "missing.avi" in capsys.readouterr().err
    (bare_project.parent / SHUFFLE_DIR / "train/snapshot-best-050.pt").unlink()
    assert main(["export", str(bare_project)]) == 1
    assert "snapshot" in capsys.readouterr().err
