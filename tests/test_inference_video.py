"""BatchReader / run_video starting mid-video (resumed runs): same frames as a full read."""
from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from mapose.inference.video import BatchReader, probe_video  # noqa: E402


def _write_clip(path, n_frames=23, fourcc="mp4v"):
    # an inter-frame codec (P-frames), where a container seek could land on a keyframe
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (64, 48))
    assert writer.isOpened()
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(n_frames):
        frame = base.copy()
        frame[:, (i * 2) % 64:(i * 2) % 64 + 6] = 255 - 10 * (i % 20)
        writer.write(frame)
    writer.release()
    return path


def _read_all(reader):
    starts, frames = [], []
    try:
        for start, batch in reader:
            starts.append(start)
            frames.append(batch.copy())
    finally:
        reader.close()
    return starts, (np.concatenate(frames) if frames else np.empty((0,)))


@pytest.mark.parametrize("start_frame", [0, 1, 7, 22])
def test_start_frame_equals_tail_of_full_read(tmp_path, start_frame):
    info = probe_video(_write_clip(tmp_path / "clip.mp4"))
    _, full = _read_all(BatchReader(info, batch_size=4))
    starts, tail = _read_all(BatchReader(info, batch_size=4, start_frame=start_frame))
    assert starts[0] == start_frame and np.all(np.diff(starts) == 4)
    np.testing.assert_array_equal(tail, full[start_frame:])


def test_start_frame_at_end_reads_nothing(tmp_path):
    info = probe_video(_write_clip(tmp_path / "clip.mp4", n_frames=5))
    starts, frames = _read_all(BatchReader(info, batch_size=2, start_frame=5))
    assert starts == [] and frames.size == 0


def test_start_frame_beyond_video_is_a_clear_error(tmp_path):
    info = probe_video(_write_clip(tmp_path / "clip.mp4", n_frames=5))
    with pytest.raises(ValueError, match="start at frame 9 .* only 5 frames"):
        _read_all(BatchReader(info, batch_size=2, start_frame=9))
    with pytest.raises(ValueError, match="start_frame must be >= 0"):
        BatchReader(info, batch_size=2, start_frame=-1)


def test_run_video_passes_absolute_frame_indices(tmp_path):
    from mapose.inference.pipeline import run_video

    info = probe_video(_write_clip(tmp_path / "clip.mp4", n_frames=10))
    seen = []

    def runner(frames):
        return {"mean": frames.reshape(len(frames), -1).mean(axis=1)}

    def predictor(outputs):
        return list(outputs["mean"])

    run_video(runner, predictor, info, 3, lambda i, p: seen.append((i, p)), progress=False,
              start_frame=4)
    _, full = _read_all(BatchReader(info, batch_size=10))
    assert [i for i, _ in seen] == list(range(4, 10))
    np.testing.assert_allclose([p for _, p in seen], full[4:].reshape(6, -1).mean(axis=1))


@pytest.mark.parametrize("dynamic", [False, True])
def test_progress_bar_runs_for_both_loops(tmp_path, capsys, dynamic):
    from types import SimpleNamespace

    from mapose.inference.pipeline import DynamicCropper, run_video, run_video_dynamic

    info = probe_video(_write_clip(tmp_path / "clip.mp4", n_frames=6))
    seen = []

    def runner(frames):
        return {"n": np.zeros(len(frames))}

    def predictor(outputs):
        # no keypoints: the dynamic cropper keeps the full frame
        return [SimpleNamespace(poses=np.full((1, 2, 3), np.nan)) for _ in outputs["n"]]

    if dynamic:
        cropper = DynamicCropper(threshold=0.5, margin=0, width=info.width, height=info.height)
        run_video_dynamic(runner, predictor, info, cropper, lambda i, p: seen.append(i),
                          progress=True)
    else:
        run_video(runner, predictor, info, 2, lambda i, p: seen.append(i), progress=True,
                  start_frame=2)
    assert seen == (list(range(6)) if dynamic else list(range(2, 6)))
    assert "frame" in capsys.readouterr().err
