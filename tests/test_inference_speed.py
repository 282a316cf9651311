"""Speed options of the network runners change nothing but float rounding.

Frame-parallel workers split a batch across threads: outputs must equal one plain forward
pass of the same model (project A's trained ResNet-50-GN + DLCRNet head) on every frame,
including uneven splits and batches smaller than the number of workers; the user's torch
thread settings must survive the runner.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from _fixture_helpers import write_ramp_video as _write_video

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def project_model(project_a):
    from mapose.inference.project_model import find_project_model

    return find_project_model(project_a / "config.yaml", 1, 0, None, "")


@pytest.fixture(scope="module")
def model(project_model):
    """The trained network, built once (runners only wrap it)."""
    return project_model.build_model().eval()


@pytest.fixture(scope="module")
def frames():
    # 5 frames: splits 3+2 over 2 workers, 2+2+1 over 3
    return np.random.default_rng(0).integers(0, 256, (5, 64, 96, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def plain_outputs(project_model, frames):
    """One frame at a time through the plain PoseModel (normalised in NumPy)."""
    from mapose.models.pose_model import normalize_frames

    model = project_model.build_model().eval()  # own copy: runners make theirs channels_last
    outs = []
    with torch.no_grad():
        for f in frames:
            x = torch.from_numpy(normalize_frames(f[None, ..., ::-1]))
            outs.append([o.numpy() for o in model(x)])
    return {name: np.concatenate([o[i] for o in outs]) for i, name in enumerate(model.output_names)}


def _assert_close(got, want):
    assert list(got) == list(want)
    for k in want:
        assert got[k].shape == want[k].shape and got[k].dtype == np.float32
        scale = float(np.abs(want[k]).max())
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=2e-5 * max(scale, 1.0), err_msg=k)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_torch_workers_equal_plain_forward(model, frames, plain_outputs, workers):
    from mapose.inference.runners import TorchRunner

    runner = TorchRunner(model, device="cpu", workers=workers)
    try:
        assert runner.workers == workers
        _assert_close(runner(frames), plain_outputs)
        one = runner(frames[2:3])  # a batch smaller than the workers: no split
        _assert_close(one, {k: v[2:3] for k, v in plain_outputs.items()})
    finally:
        runner.close()
    # after close the runner still works, on the calling thread
    _assert_close(runner(frames[:2]), {k: v[:2] for k, v in plain_outputs.items()})


def test_torch_workers_keep_user_thread_settings(model):
    from mapose.inference.runners import TorchRunner

    before = torch.get_num_threads()
    seen = {}
    try:
        torch.set_num_threads(2)
        runner = TorchRunner(model, device="cpu", workers=2)
        assert runner.workers == 2 and runner._threads_per_worker == 1
        worker_threads = set(runner._pool.map(lambda _: torch.get_num_threads(), range(8)))
        assert worker_threads == {1}
        assert torch.get_num_threads() == 2  # this thread untouched

        t = threading.Thread(target=lambda: seen.setdefault("new", torch.get_num_threads()))
        t.start()
        t.join()
        assert seen["new"] == 2  # the process-wide default is the user's again
        runner.close()
    finally:
        torch.set_num_threads(before)


def test_split_workers_rule_and_errors():
    from mapose.inference.runners import _chunks, split_workers

    assert split_workers(None, 2) == (2, 1)
    assert split_workers(None, 1) == (1, 1)
    assert split_workers(2, 16) == (2, 8)
    assert split_workers(4, 2) == (4, 1)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers must be a positive int"):
            split_workers(bad, 2)
    assert _chunks(4, 2) == [slice(0, 2), slice(2, 4)]
    assert _chunks(5, 3) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert _chunks(1, 4) == [slice(0, 1)]


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from mapose.inference.export import export_onnx

    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "a.onnx")


def _assert_onnx_close(got, want):
    # ONNX Runtime's own kernels: same tolerance as the ONNX engine's DLC parity test
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, rtol=0, atol=2e-4 * max(float(np.abs(w).max()), 1.0), err_msg=k)


@pytest.mark.onnx
def test_onnx_workers_equal_plain_forward(onnx_path, frames, plain_outputs):
    from mapose.inference.runners import OnnxRunner

    for workers in (1, 2, 3):
        runner = OnnxRunner(onnx_path, device="cpu", workers=workers)
        assert runner.workers == workers and runner.device == "cpu"
        got = runner(frames)
        runner.close()
        _assert_onnx_close(got, plain_outputs)
    with pytest.raises(ValueError, match="intra_op_num_threads"):
        OnnxRunner(onnx_path, device="cpu", intra_op_num_threads=0)
    with pytest.raises(ValueError, match="workers"):
        OnnxRunner(onnx_path, device="cpu", workers=0)
    with pytest.raises(FileNotFoundError, match="export_model"):
        OnnxRunner(onnx_path.with_name("missing.onnx"), device="cpu")


@pytest.mark.onnx
def test_onnx_optimized_graph_cache(onnx_path, frames, plain_outputs, tmp_path):
    import os
    import shutil

    from mapose.inference.runners import OnnxRunner

    src = tmp_path / "m.onnx"
    shutil.copy(onnx_path, src)
    plain = OnnxRunner(src, device="cpu", cache_optimized=False)
    assert plain.model_path == src and list(tmp_path.iterdir()) == [src]
    want = plain(frames[:2])

    first = OnnxRunner(src, device="cpu")
    cached = first.model_path
    assert cached != src and cached.parent == tmp_path and cached.is_file()
    assert cached.name.startswith("m.optimized-ort") and cached.suffix == ".onnx"

    def weights():
        return sorted(p.name for p in tmp_path.glob(cached.name + ".*.data"))

    # the graph, and its weights in one file beside it (mapped, not parsed); no temp left
    (data,) = weights()
    assert (tmp_path / data).stat().st_size > 0.9 * src.stat().st_size
    assert cached.stat().st_size < 0.1 * src.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.onnx", cached.name, data])
    stamp = cached.stat().st_mtime_ns
    second = OnnxRunner(src, device="cpu")
    assert second.model_path == cached and cached.stat().st_mtime_ns == stamp  # reused
    for runner in (first, second):
        got = runner(frames[:2])
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-6 * max(float(np.abs(want[k]).max()), 1.0))
    _assert_onnx_close(second(frames), plain_outputs)

    # a re-exported model (newer file) invalidates the cache; the old weights file goes
    # once it is over a minute old (younger ones may be a concurrent writer's); the open
    # sessions keep their mapping
    def reexported():  # the cache dated before the model (no dates in the future)
        before = src.stat().st_mtime_ns - 10**9
        os.utime(cached, ns=(before, before))

    reexported()
    os.utime(tmp_path / data)  # young, however long the steps above took
    third = OnnxRunner(src, device="cpu")
    assert third.model_path == cached and cached.stat().st_mtime_ns > stamp
    (data3,) = [d for d in weights() if d != data]
    assert data in weights()
    old = (tmp_path / data3).stat().st_mtime - 120
    os.utime(tmp_path / data3, (old, old))
    reexported()
    os.utime(tmp_path / data)
    fourth = OnnxRunner(src, device="cpu")
    assert fourth.model_path == cached
    (data4,) = [d for d in weights() if d not in (data, data3)]  # data3 removed, data still young
    assert data3 not in weights()
    for p in (data, data4):
        old = (tmp_path / p).stat().st_mtime - 120
        os.utime(tmp_path / p, (old, old))
    _assert_onnx_close(second(frames), plain_outputs)
    _assert_onnx_close(third(frames), plain_outputs)

    # weights lost: the runner optimises in memory and drops the broken cache, the next
    # start rebuilds it (and removes the old weight files)
    (tmp_path / data4).unlink()
    damaged = OnnxRunner(src, device="cpu")
    assert damaged.model_path == src and not cached.exists()
    _assert_onnx_close(damaged(frames), plain_outputs)
    assert OnnxRunner(src, device="cpu").model_path == cached and len(weights()) == 1

    # the cache cannot be written: optimise in memory, no error, nothing left behind
    for p in tmp_path.glob(cached.name + "*"):
        p.unlink()
    cached.mkdir()
    fallback = OnnxRunner(src, device="cpu")
    assert fallback.model_path == src
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.onnx", cached.name])
    _assert_onnx_close(fallback(frames), plain_outputs)


@pytest.mark.parametrize("batch_size, workers, sizes", [
    (1, 2, [2, 2, 1]),    # DLC's default batch of 1 still feeds both workers
    (4, 2, [4, 1]),       # enough frames per batch: batches as asked
    (2, 3, [3, 2]),
    (3, 1, [3, 2]),       # plain runner
])
def test_run_video_feeds_every_worker(tmp_path, batch_size, workers, sizes):
    from mapose.inference.pipeline import run_video
    from mapose.inference.video import probe_video

    info = probe_video(_write_video(tmp_path / "v.avi", 5))
    seen, got = [], []

    class Runner:
        def __call__(self, frames):
            seen.append(len(frames))
            return {"level": frames[:, 0, 0, 0].astype(np.float32)}

    runner = Runner()
    runner.workers = workers
    times = run_video(runner, lambda out: list(out["level"]), info, batch_size,
                      lambda i, pred: got.append((i, pred)), progress=False)
    assert seen == sizes
    assert [i for i, _ in got] == list(range(5))
    np.testing.assert_allclose([p for _, p in got], [0, 10, 20, 30, 40], atol=2)  # FFV1 is lossless
    assert times.n_frames == 5


class _SlowFirstRunner:
    """A runner with ``submit``: every other batch takes longer, so later batches finish
    first; records how many batches were in flight at once."""

    workers = 2

    def __init__(self, fail_at=None):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(4)
        self.in_flight = self.max_in_flight = self.n = 0
        self.lock = threading.Lock()
        self.fail_at = fail_at

    def _run(self, frames, k):
        import time

        time.sleep(0.05 if k % 2 == 0 else 0.0)
        with self.lock:
            self.in_flight -= 1
        if k == self.fail_at:
            raise RuntimeError(f"network failed on batch {k}")
        return {"level": frames[:, 0, 0, 0].astype(np.float32)}

    def submit(self, frames):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.n += 1
        return self.pool.submit(self._run, frames.copy(), self.n - 1)


def test_run_video_batches_in_flight_keep_frame_order(tmp_path):
    from mapose.inference.pipeline import run_video
    from mapose.inference.video import probe_video

    info = probe_video(_write_video(tmp_path / "v.avi", 11))
    got = []
    runner = _SlowFirstRunner()
    times = run_video(runner, lambda out: list(out["level"]), info, 2,
                      lambda i, pred: got.append((i, pred)), progress=False)
    assert runner.n == 6 and runner.max_in_flight == 2  # one batch queued behind the running one
    assert [i for i, _ in got] == list(range(11)) and times.n_frames == 11
    np.testing.assert_allclose([p for _, p in got], 10 * np.arange(11), atol=2)
    # a failing batch surfaces as the error of the call; the batches before it were delivered
    got.clear()
    with pytest.raises(RuntimeError, match="batch 3"):
        run_video(_SlowFirstRunner(fail_at=3), lambda out: list(out["level"]), info, 2,
                  lambda i, pred: got.append(i), progress=False)
    assert got == list(range(6))


def test_run_video_does_not_bypass_forwarding_wrappers(tmp_path):
    """A wrapper that transforms frames and forwards other attributes to the runner it
    wraps (like the HRNet padding adapter) is called, not the inner runner's submit."""
    from mapose.inference.pipeline import run_video
    from mapose.inference.video import probe_video

    class Brighter:
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, frames):
            return self.inner.submit(frames + 1).result()

        def __getattr__(self, name):
            return getattr(self.inner, name)

    info = probe_video(_write_video(tmp_path / "v.avi", 5))
    got = []
    run_video(Brighter(_SlowFirstRunner()), lambda out: list(out["level"]), info, 2,
              lambda i, pred: got.append(pred), progress=False)
    np.testing.assert_allclose(got, 10 * np.arange(5) + 1, atol=2)


@pytest.mark.parametrize("engine", ["torch", pytest.param("onnx", marks=pytest.mark.onnx)])
def test_runner_submit_equals_call(model, onnx_path, frames, plain_outputs, engine):
    from mapose.inference.runners import OnnxRunner, TorchRunner

    for workers in (1, 2, 3):
        if engine == "torch":
            runner = TorchRunner(model, device="cpu", workers=workers)
        else:
            runner = OnnxRunner(onnx_path, device="cpu", workers=workers)
        pending = [runner.submit(frames), runner.submit(frames[:1]), runner.submit(frames[1:4])]
        got = [p.result() for p in pending]
        want = runner(frames)
        runner.close()
        for k in want:  # same chunks on the same kernels: the same numbers
            np.testing.assert_array_equal(got[0][k], want[k], err_msg=f"{engine} {workers} {k}")
        # other batch sizes round differently inside the kernels
        check = _assert_close if engine == "torch" else _assert_onnx_close
        check(got[0], plain_outputs)
        check({k: np.concatenate([got[1][k], got[2][k]]) for k in want}, {k: v[:4] for k, v in plain_outputs.items()})


def _net_outputs(net, frames):
    with torch.inference_mode():
        outs = net(torch.from_numpy(frames))
    return {name: o.numpy() for name, o in zip(net.output_names, outs)}


def test_inference_rewrites_equal_plain_model(model, frames, plain_outputs):
    from collections import Counter

    from mapose.models.heads import DLCRNetHead
    from mapose.models.pose_model import (
        FramesModel,
        GroupNormDepthwiseAffine,
        InferenceOptions,
        _OneDNNConv2d,
        optimize_for_inference,
    )
    from mapose.models.winograd import WinogradConv2d, WinogradConvTranspose2d

    before = {k: v.clone() for k, v in model.state_dict().items()}
    cases = [
        # project A: layer3 blocks 1-5 (256 ch) and layer4 blocks 0-2 (512 ch, two dilated)
        (InferenceOptions(), 8, 0, True),
        (InferenceOptions(winograd=False), 0, 0, True),
        (InferenceOptions(fuse_heads=False, onednn=False), 8, 0, False),
        # + layer1/2 and the fused head's feature part of all stage convs (128 -> 5 x 25
        # channels); the stages' own 25 -> 25 convs are below 64 input channels, the
        # separate (unused) stage convs are left alone
        (InferenceOptions(winograd_min_channels=64, winograd_min_out_channels=1), 14 + 1, 0, True),
        # the ONNX export's choice: + layer2 blocks 1-3 and the stages' feature part; the
        # fused 2048 -> 163 upsampling in F(2, 2) form (the narrow final deconvs stay)
        (InferenceOptions(winograd_min_channels=128, winograd_transposed=True), 8 + 3 + 1, 1, True),
        # unfused: convt4 (2048 -> 128) qualifies, convt1-3 (5, 10, 20 outputs) do not
        (InferenceOptions(fuse_heads=False, winograd_transposed=True), 8, 1, False),
        (InferenceOptions(winograd=False, winograd_transposed=True), 0, 1, True),  # independent switches
        (InferenceOptions(groupnorm_affine_conv=True), 8, 0, True),
    ]
    for opts, n_winograd, n_transposed, fused in cases:
        fast = optimize_for_inference(model, opts)
        kinds = Counter(type(m) for m in fast.modules())
        assert kinds[WinogradConv2d] == n_winograd, opts
        assert kinds[WinogradConvTranspose2d] == n_transposed, opts
        # ResNet-50-GN: the stem, 3 per bottleneck (16) and 4 downsample norms
        assert kinds[GroupNormDepthwiseAffine] == (53 if opts.groupnorm_affine_conv else 0), opts
        assert kinds[torch.nn.GroupNorm] == (0 if opts.groupnorm_affine_conv else 53), opts
        assert (kinds[_OneDNNConv2d] > 0) == opts.onednn
        head = fast.heads["bodypart"]
        assert isinstance(head, DLCRNetHead) and (head.convt_fused is not None) == fused
        _assert_close(_net_outputs(FramesModel(fast, channels_last=True).eval(), frames), plain_outputs)
    # the given model is untouched
    assert not any(isinstance(m, (WinogradConv2d, _OneDNNConv2d)) for m in model.modules())
    assert model.heads["bodypart"].convt_fused is None
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())
    with pytest.raises(TypeError, match="InferenceOptions"):
        optimize_for_inference(model, {"winograd": False})


def test_torch_runner_plain_path(model, frames, plain_outputs):
    from mapose.inference.runners import TorchRunner
    from mapose.models.winograd import WinogradConv2d

    fast = TorchRunner(model, device="cpu", workers=1)
    plain = TorchRunner(model, device="cpu", workers=1, optimize=False)
    assert plain.net.model is model and fast.net.model is not model
    assert any(isinstance(m, WinogradConv2d) for m in fast.net.modules())
    assert not any(isinstance(m, WinogradConv2d) for m in plain.net.modules())
    got_fast, got_plain = fast(frames), plain(frames)
    _assert_close(got_plain, plain_outputs)
    _assert_close(got_fast, got_plain)
    with pytest.raises(TypeError, match="optimize must be"):
        TorchRunner(model, device="cpu", optimize="yes")


@pytest.mark.onnx
def test_onnx_export_plain_and_optimized(model, onnx_path, frames, plain_outputs, tmp_path):
    import onnx

    from mapose.inference.export import export_onnx
    from mapose.inference.runners import OnnxRunner

    plain_path = export_onnx(model, tmp_path / "plain.onnx", optimize=False)
    ops, depthwise = {}, {}
    for name, path in (("plain", plain_path), ("fast", onnx_path)):
        nodes = onnx.load(str(path)).graph.node
        ops[name] = [node.op_type for node in nodes]
        depthwise[name] = sum(node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)
                              for node in nodes)
        runner = OnnxRunner(path, device="cpu", workers=1, cache_optimized=False)
        _assert_onnx_close(runner(frames), plain_outputs)
    # fused head: one transposed conv for convt1..4, in F(2, 2) form as 16 MatMuls; 12
    # Winograd convs (layer2 blocks 1-3, layer3 blocks 1-5, layer4, the stages' feature
    # part) as 16 MatMuls each
    assert ops["plain"].count("ConvTranspose") == 7 and ops["fast"].count("ConvTranspose") == 3
    assert ops["plain"].count("MatMul") == 0 and ops["fast"].count("MatMul") == 16 * 13
    # Winograd; the 2 x 5 stage convs became 5 narrow ones plus the Winograd feature part;
    # each of the 53 GroupNorms' affine (one Mul and Add each in the plain graph) is a
    # depthwise Conv
    assert ops["plain"].count("Conv") - ops["fast"].count("Conv") == 11 + 5 - 53
    assert ops["plain"].count("InstanceNormalization") == ops["fast"].count("InstanceNormalization") == 53
    assert depthwise == {"plain": 0, "fast": 53}
    with pytest.raises(TypeError, match="optimize must be"):
        export_onnx(model, tmp_path / "x.onnx", optimize=None)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("engine", ["torch", pytest.param("onnx", marks=pytest.mark.onnx)])
def test_optimized_runners_match_dlc_raw_outputs(project_a, model, engine, tmp_path):
    """DLC 3.0.2's own network outputs for four frames of project A's video: the
    optimized runners (the defaults) stay within the plain model's parity tolerance."""
    from mapose.inference.runners import OnnxRunner, TorchRunner

    ds = [np.load(project_a / f"raw_outputs/synthA_frame{i:04d}.npz") for i in (0, 50, 108, 149)]
    frames = np.stack([d["frame_rgb"][..., ::-1] for d in ds])  # runners take BGR
    if engine == "torch":
        runner = TorchRunner(model, device="cpu")
    else:
        pytest.importorskip("onnxruntime")
        from mapose.inference.export import export_onnx

        runner = OnnxRunner(export_onnx(model, tmp_path / "a.onnx"), device="cpu", cache_optimized=False)
    out = runner(frames)
    runner.close()
    for i, d in enumerate(ds):
        for key in ("heatmap", "locref", "paf"):
            np.testing.assert_allclose(out[f"bodypart/{key}"][i], d[f"out.bodypart.{key}"][0], rtol=0, atol=2e-4,
                                       err_msg=f"{engine} frame {i} {key}")
