"""Dynamic cropping (``analyze_videos(dynamic=(True, threshold, margin))``, DLC spec §6.6)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from mapose.inference.pipeline import DynamicCropper
from mapose.inference.predictor import FramePrediction


def _pred(rows, unique=None):
    """FramePrediction from (N, K, 3) [x, y, score]; group/affinity columns filled."""
    rows = np.asarray(rows, np.float32)
    poses = np.concatenate([rows, np.zeros(rows.shape[:2] + (2,), np.float32)], axis=-1)
    poses[np.all(rows == -1, axis=-1)] = -1.0
    return FramePrediction(poses=poses, unique=None if unique is None else np.asarray(unique, np.float32))


@pytest.mark.smoke
def test_window_from_keypoints_then_offsets_next_frame():
    c = DynamicCropper(threshold=0.5, margin=10, width=320, height=256)
    frames = np.arange(256 * 320 * 3, dtype=np.uint8).reshape(1, 256, 320, 3)
    assert c.crop(frames) is frames  # starts uncropped
    p = _pred([[[50.2, 60.7, 0.9], [80.5, 100.1, 0.2]],
               [[np.nan, np.nan, 0.0], [70.0, 65.0, 0.4]]])
    c.update(p)
    # low-score keypoints count for the box; NaN ones do not
    assert c.window == (math.floor(50.2 - 10), math.floor(60.7 - 10), math.ceil(80.5 + 10),
                        math.ceil(100.1 + 10))
    crop = c.crop(frames)
    np.testing.assert_array_equal(crop, frames[:, 50:111, 40:91])
    assert crop.flags.c_contiguous
    # the next prediction is in the crop's coordinates; update shifts it by the origin
    p2 = _pred([[[1.0, 2.0, 0.8], [3.0, 4.0, 0.7]], [[-1, -1, -1], [-1, -1, -1]]],
               unique=[[5.0, 6.0, 0.9]])
    c.update(p2)
    np.testing.assert_allclose(p2.poses[0, :, :2], [[41.0, 52.0], [43.0, 54.0]])
    np.testing.assert_array_equal(p2.poses[1], -1.0)  # padding rows stay DLC's -1
    np.testing.assert_allclose(p2.unique[0], [45.0, 56.0, 0.9])
    # ... but take part in the window at their shifted position (40-1, 50-1), as in DLC
    assert c.window == (39 - 10, 49 - 10, 43 + 10, 54 + 10)


@pytest.mark.smoke
def test_reset_clip_and_errors():
    c = DynamicCropper(threshold=0.5, margin=10, width=100, height=80)
    c.update(_pred([[[5.0, 5.0, 0.9], [98.0, 79.0, 0.9]]]))
    assert c.window == (0, 0, 100, 80)  # clipped to the frame
    c.update(_pred([[[20.0, 20.0, 0.49], [30.0, 30.0, 0.1]]]))
    assert c.window is None  # nobody above threshold -> full frame
    c.update(_pred([[[20.0, 20.0, 0.9], [30.0, 30.0, 0.9]]]))
    c.update(_pred([[[np.nan, np.nan, 0.0]]]))
    assert c.window is None  # no usable keypoint -> full frame
    z = DynamicCropper(threshold=0.5, margin=0, width=100, height=80)
    z.update(_pred([[[7.0, 9.5, 0.9]]]))
    assert z.window is None  # zero-width box -> full frame
    with pytest.raises(ValueError, match="batch size 1"):
        c.crop(np.zeros((2, 80, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="frame size"):
        c.crop(np.zeros((1, 80, 90, 3), np.uint8))


def test_bad_dynamic_arguments():
    from mapose.inference.analyze import _dynamic_cropper, analyze_videos

    assert _dynamic_cropper((False, 0.5, 10)) is None and _dynamic_cropper(None) is None
    assert _dynamic_cropper((True, 0.6, 25)) == (0.6, 25)
    for bad, msg in [((True, 0.5), "triple"), ((True, "x", 10), "threshold"),
                     ((True, 0.5, -1), "margin"), ((True, 0.5, 2.5), "margin")]:
        with pytest.raises(ValueError, match=msg):
            _dynamic_cropper(bad)
    with pytest.raises(ValueError, match="batch_size=1"):
        analyze_videos(str(Path(__file__).parent / "missing.yaml"), [], batch_size=4,
                       dynamic=(True, 0.5, 10))


# -- end to end on DLC's project A --------------------------------------------------------
@pytest.fixture(scope="module")
def dynamic_run(project_a, tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import mapose.inference.analyze as A
    from test_inference import make_project

    root = tmp_path_factory.mktemp("dyn")
    config = make_project(project_a, root, n_frames=3)
    shapes = []
    make = A._make_runner

    def recording(*args, **kwargs):
        runner = make(*args, **kwargs)

        def call(frames):
            shapes.append(frames.shape[1:3])
            return runner(frames)

        call.net = getattr(runner, "net", None)
        return call

    A._make_runner = recording
    try:
        A.analyze_videos(config, [root / "videos/clip.avi"], auto_track=False, progress=False,
                         batch_size=1, dynamic=(True, 0.5, 10), destfolder=root / "dyn")
    finally:
        A._make_runner = make
    A.analyze_videos(config, [root / "videos/clip.avi"], auto_track=False, progress=False,
                     batch_size=3, destfolder=root / "full")
    return root, shapes


def _assemblies(folder):
    from mapose.io.safe_pickle import read_pickle

    return read_pickle(next(Path(folder).glob("*_assemblies.pickle")), what="assemblies")


@pytest.mark.torch
def test_dynamic_run_is_cropped_and_in_full_frame_coordinates(dynamic_run):
    from scipy.optimize import linear_sum_assignment

    root, shapes = dynamic_run
    dyn, full = _assemblies(root / "dyn"), _assemblies(root / "full")
    assert len(shapes) == 3 and shapes[0] == (256, 320)
    for t in range(1, 3):
        # the network saw the window computed from frame t-1's keypoints (all 3 animals
        # found, so no padding rows; NaN keypoints excluded), clipped to the frame
        kp = dyn[t - 1][..., :3].reshape(-1, 3)
        kp = kp[~np.isnan(kp).any(axis=1)]
        x0, x1 = max(math.floor(kp[:, 0].min() - 10), 0), min(math.ceil(kp[:, 0].max() + 10), 320)
        y0, y1 = max(math.floor(kp[:, 1].min() - 10), 0), min(math.ceil(kp[:, 1].max() + 10), 256)
        assert shapes[t] == (y1 - y0, x1 - x0)
        assert shapes[t][0] * shapes[t][1] < 0.6 * 256 * 320  # really cropped
    np.testing.assert_allclose(dyn[0], full[0], atol=1e-4)  # frame 0 is uncropped
    for t in range(1, 3):
        a, b = dyn[t], full[t]
        assert a.shape == b.shape == (3, 5, 4)
        dist = np.linalg.norm(a[:, None, :, :2] - b[None, :, :, :2], axis=-1)
        r, c = linear_sum_assignment(np.nanmean(dist, axis=-1))
        d = np.linalg.norm(a[r, :, :2] - b[c, :, :2], axis=-1)
        ok = (a[r, :, 2] > 0.5) & (b[c, :, 2] > 0.5)
        # crop origins are not stride-aligned, so the heatmap grid shifts: ~2 px, no bias;
        # a missing offset would put the animals tens of pixels away
        assert np.nanmedian(d[ok]) < 3.0 and np.nanmax(d[ok]) < 8.0
        bias = np.nanmean((a[r, :, :2] - b[c, :, :2])[ok], axis=0)
        assert np.all(np.abs(bias) < 1.5)
