"""Start-up of ``analyze_videos``: decoding before the model is ready, batches in flight
through the HRNet padding wrapper, the garbage collector left as it was, the ``setup``
stage, and errors while the model loads (nothing half-written, the decoder stopped).
"""
from __future__ import annotations

import gc
import threading
import time
import warnings

import numpy as np
import pytest

from mapose.inference.transforms import OFFSET_KEY, AutoPadding, PaddingRunner
from _fixture_helpers import write_ramp_video as _write_video


class _Pending:
    def __init__(self, fn, frames):
        self._fn, self._frames = fn, frames

    def result(self):
        return self._fn(self._frames)


class _SubmitRunner:
    """Records what reaches it through ``__call__`` and ``submit``."""

    workers = 2

    def __init__(self):
        self.calls, self.submits = [], []

    def _out(self, frames):
        return {"bodypart/heatmap": frames[:, :1, :1, :1].astype(np.float32).transpose(0, 3, 1, 2),
                "shape": np.array([frames.shape[1], frames.shape[2]], np.float32)}

    def __call__(self, frames):
        self.calls.append(frames.shape)
        return self._out(frames)

    def submit(self, frames):
        self.submits.append(frames.shape)
        return _Pending(self._out, frames.copy())


@pytest.mark.smoke
def test_padding_runner_submit_equals_call():
    inner = _SubmitRunner()
    pr = PaddingRunner(inner, AutoPadding(32, 32, position="center"))
    frames = np.random.default_rng(0).integers(0, 256, (3, 50, 60, 3), dtype=np.uint8)
    want = pr(frames)
    pending = pr.submit(frames)
    assert inner.submits == [(3, 64, 64, 3)]  # the padded batch went to the inner submit
    got = pending.result()
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    np.testing.assert_array_equal(got[OFFSET_KEY], [2.0, 7.0])
    # two batches in flight with different sizes keep their own offsets
    a, b = pr.submit(frames[:1]), pr.submit(np.zeros((2, 64, 70, 3), np.uint8))
    assert not b.result()[OFFSET_KEY][1] and b.result()[OFFSET_KEY][0] == 13.0
    np.testing.assert_array_equal(a.result()[OFFSET_KEY], [2.0, 7.0])


@pytest.mark.smoke
def test_padding_runner_submit_without_inner_submit():
    """A wrapped plain callable runs the batch at submission; result() is the same."""
    seen = []

    def runner(frames):
        seen.append(frames.shape)
        return {"x": frames.sum(axis=(1, 2, 3)).astype(np.float32)}

    pr = PaddingRunner(runner, AutoPadding(32, 32))
    frames = np.ones((2, 40, 64, 3), np.uint8)
    pending = pr.submit(frames)
    assert seen == [(2, 64, 64, 3)]  # already ran
    out = pending.result()
    np.testing.assert_array_equal(out["x"], pr(frames)["x"])
    assert set(out) == {"x", OFFSET_KEY}


def test_run_video_uses_padding_submit(tmp_path):
    """run_video queues batches through the wrapper's own submit (HRNet gets batches in
    flight) and every frame comes back in order with the offset."""
    from mapose.inference.pipeline import run_video
    from mapose.inference.video import probe_video

    inner = _SubmitRunner()
    pr = PaddingRunner(inner, AutoPadding(32, 32, position="center"))
    info = probe_video(_write_video(tmp_path / "v.avi", 7))
    got = []

    def predictor(outputs):
        return [(float(v), tuple(outputs[OFFSET_KEY])) for v in outputs["bodypart/heatmap"][:, 0, 0, 0]]

    times = run_video(pr, predictor, info, 2, lambda i, p: got.append((i, p)), progress=False)
    assert not inner.calls and inner.submits == [(2, 32, 32, 3)] * 3 + [(1, 32, 32, 3)]
    assert [i for i, _ in got] == list(range(7)) and times.n_frames == 7
    # centre padding of 24x32 -> 32x32: 4 rows on top, none on the left
    assert {p[1] for _, p in got} == {(0.0, 4.0)}


@pytest.mark.smoke
def test_reader_batch_size():
    from mapose.inference.pipeline import reader_batch_size

    assert reader_batch_size(1, 2) == 2 and reader_batch_size(4, 2) == 4
    assert reader_batch_size(3, None) == 3 and reader_batch_size(1, 1) == 1


@pytest.mark.parametrize("reader_batch, used", [(2, True), (3, False)])
def test_run_video_takes_a_started_reader(tmp_path, reader_batch, used):
    """A reader started before the runner existed is used when its batch size fits the
    runner; else it is closed and replaced, and no frame is lost either way."""
    from mapose.inference.pipeline import run_video
    from mapose.inference.video import BatchReader, probe_video

    info = probe_video(_write_video(tmp_path / "v.avi", 5))
    reader = BatchReader(info, reader_batch)
    time.sleep(0.05)  # it decodes ahead meanwhile
    sizes, got = [], []

    def runner(frames):
        sizes.append(len(frames))
        return {"level": frames[:, 0, 0, 0].astype(np.float32)}

    runner.workers = 2
    run_video(runner, lambda o: list(o["level"]), info, 1, lambda i, p: got.append((i, p)),
              progress=False, reader=reader)
    assert sizes == [2, 2, 1]
    assert [i for i, _ in got] == list(range(5))
    np.testing.assert_allclose([p for _, p in got], 10 * np.arange(5), atol=2)
    assert reader.n_taken == (3 if used else 0)
    assert not reader._thread.is_alive()  # closed either way


@pytest.mark.parametrize("engine", ["torch", pytest.param("onnx", marks=pytest.mark.onnx)])
def test_planned_workers_match_the_runner(engine, tmp_path):
    torch = pytest.importorskip("torch")
    from mapose.inference.runners import OnnxRunner, TorchRunner, planned_workers

    model = torch.nn.Conv2d(3, 2, 1)

    class Net(torch.nn.Module):
        output_names = ("a/b",)

        def __init__(self):
            super().__init__()
            self.conv = model

        def forward(self, x):
            return (self.conv(x),)

    if engine == "torch":
        runner = TorchRunner(Net().eval(), device="cpu", optimize=False)
    else:
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
        path = tmp_path / "m.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(Net().eval(), (torch.zeros(1, 3, 8, 8),), str(path), dynamo=False,
                              input_names=["frames"], output_names=["a/b"])
        runner = OnnxRunner(path, device="cpu")
    try:
        assert planned_workers(engine, "cpu") == runner.workers
    finally:
        runner.close()
    with pytest.raises(ValueError, match="engine"):
        planned_workers("tensorflow")


@pytest.mark.smoke
def test_gc_freeze_is_undone():
    from mapose.inference.analyze import _old_objects_frozen

    assert gc.get_freeze_count() == 0
    with _old_objects_frozen():
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    with pytest.raises(KeyError), _old_objects_frozen():  # also on errors
        raise KeyError("x")
    assert gc.get_freeze_count() == 0
    # a caller's own frozen objects stay frozen; a disabled collector is not touched
    gc.freeze()
    try:
        n = gc.get_freeze_count()
        with _old_objects_frozen():
            pass
        assert gc.get_freeze_count() == n
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        with _old_objects_frozen():
            assert gc.get_freeze_count() == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_analyze_videos_setup_stage_and_model_failure(project_a, tmp_path, monkeypatch):
    """On project A's clip: the stages add up with a ``setup`` stage, and a model that
    fails to load raises its own error with no output written and the decoder stopped."""
    pytest.importorskip("torch")
    from test_inference import make_project

    import mapose
    from mapose.inference import analyze

    config = make_project(project_a, tmp_path / "p", n_frames=6)
    video = config.parent / "videos" / "clip.avi"
    threads_before = {t.ident for t in threading.enumerate()}

    def broken(*a, **k):
        raise RuntimeError("snapshot unreadable")

    monkeypatch.setattr(analyze, "_make_runner", broken)
    with pytest.raises(RuntimeError, match="snapshot unreadable"):
        mapose.analyze_videos(config, [video], auto_track=False,
                              destfolder=tmp_path / "out", progress=False)
    assert list((tmp_path / "out").iterdir()) == []
    time.sleep(0.05)
    readers = [t for t in threading.enumerate()
               if t.name == "mapose-video-reader" and t.ident not in threads_before]
    assert readers == []
    assert gc.get_freeze_count() == 0
    monkeypatch.undo()

    mapose.analyze_videos(config, [video], auto_track=False,
                          destfolder=tmp_path / "out", progress=False, engine="torch")
    st = mapose.analyze_videos.last_times
    assert st.n_frames == 6 and st.setup > 0
    pipeline = st.total - st.setup
    assert 0 < st.network <= pipeline and st.total > st.setup
    assert gc.get_freeze_count() == 0


def test_scorer_matches_get_scorer_name(project_a):
    from mapose.inference.project_model import find_project_model
    from mapose.io.config import read_config
    from mapose.io.project import get_scorer_name

    pm = find_project_model(project_a / "config.yaml", 1, 0, None, "")
    cfg = read_config(project_a / "config.yaml")
    assert pm.scorer == get_scorer_name(cfg, 1, 0, None, "")
    for index in (0, -1):
        want = get_scorer_name(cfg, 1, 0, index, "")
        assert find_project_model(project_a / "config.yaml", 1, 0, index, "").scorer == want
