"""Network runners: torch (CPU/CUDA) and ONNX Runtime, one interface.

Both take a batch of decoded frames, uint8 (B, H, W, 3) in OpenCV's BGR order, and return
``{"<head>/<key>": float32 ndarray (B, C, h, w)}``.  Normalisation (DLC's exact float32
arithmetic) runs inside the network graph (:class:`mapose.models.pose_model.FramesModel`),
so only uint8 pixels travel to the device.

On CPU a batch is split across ``workers`` threads that each run the network on their
share of the frames with ``threads // workers`` intra-op threads (default: one each).
Frame-level parallelism needs no barrier between the threads inside every operator, so it
beats one multi-threaded forward pass -- by 1.3-2x when other processes compete for the
cores, where OpenMP / ONNX Runtime thread teams wait on preempted members.  Every frame is
computed independently (GroupNorm, BatchNorm in eval, convolutions are per sample), so the
split changes nothing but float rounding inside the kernels.

GPU specifics are kept small and go through the same code as the CPU path: pinned host
buffers and ``non_blocking`` copies for CUDA, optional ``half`` precision, and the CUDA
execution provider for ONNX Runtime when available.
"""
from __future__ import annotations

import contextlib
import glob
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mapose._optional import require

__all__ = ["TorchRunner", "OnnxRunner", "resolve_device", "split_workers", "planned_workers"]


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_workers(workers, threads: int) -> tuple[int, int]:
    """How many frame-parallel workers, and intra-op threads for each.

    Parameters
    ----------
    workers : int or None
        Requested workers; None → one per thread.
    threads : int
        Total threads to use (>= 1).

    Returns
    -------
    (workers, threads_per_worker) : tuple of int
    """
    threads = max(1, int(threads))
    if workers is None:
        workers = threads
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive int or None (one per CPU thread); got {workers!r}.")
    workers = int(workers)
    return workers, max(1, threads // workers)


def _onnx_providers(ort, device) -> list[str]:
    """Execution providers for ``device``: CUDA first when asked for (or automatic) and present."""
    available = ort.get_available_providers()
    want_cuda = device is None or str(device).lower() == "auto" or str(device).startswith("cuda")
    if device is not None and str(device).startswith("cuda") and "CUDAExecutionProvider" not in available:
        raise ValueError(f"device={device!r} needs onnxruntime-gpu (CUDAExecutionProvider); "
                         f"available providers: {available}. Install 'mapose[gpu]' or use device='cpu'.")
    providers = (["CUDAExecutionProvider"] if want_cuda and "CUDAExecutionProvider" in available else [])
    return providers + ["CPUExecutionProvider"]


def planned_workers(engine: str, device=None) -> int:
    """The ``workers`` a runner of ``engine`` made with default settings will have.

    Known before the runner exists (building it takes a model load and, for ONNX Runtime,
    a session start), so video decoding can start with the right batch size meanwhile.

    Parameters
    ----------
    engine : {"torch", "onnx"}
    device : str, optional
        As given to the runner.

    Returns
    -------
    int
        Frame-parallel workers on CPU (one per intra-op thread), 1 on a GPU.
    """
    if engine == "onnx":
        ort = require("onnxruntime", "ONNX inference")
        if _onnx_providers(ort, device)[0] != "CPUExecutionProvider":
            return 1
        return split_workers(None, _available_cpus())[0]
    if engine == "torch":
        torch = require("torch", "running pose networks")
        if resolve_device(device).split(":")[0] != "cpu":
            return 1
        return split_workers(None, torch.get_num_threads())[0]
    raise ValueError(f"engine must be 'torch' or 'onnx'; got {engine!r}.")


def _chunks(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices of ``range(n)`` (the first ones larger)."""
    parts = max(1, min(parts, n))
    size, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + size + (i < extra)
        out.append(slice(start, stop))
        start = stop
    return out


def _start_torch_workers(torch, workers: int, threads: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, each already set to ``threads`` intra-op threads.

    Intra-op thread counts are per thread (OpenMP ICV, MKL's local setting), but
    ``torch.set_num_threads`` also stores the process-wide default that threads new to
    torch start from.  All workers are set up here, in parallel, before the default is put
    back to the caller's, so the user's other threads keep their setting.
    """
    default = torch.get_num_threads()
    barrier = threading.Barrier(workers)

    def setup():
        torch.get_num_threads()  # this thread's lazy init reads the default first
        torch.set_num_threads(threads)
        barrier.wait(timeout=60)  # one task per thread: none returns before all started

    pool = ThreadPoolExecutor(workers, thread_name_prefix="mapose-torch")
    for f in [pool.submit(setup) for _ in range(workers)]:
        f.result()
    torch.set_num_threads(default)
    return pool


def _cpu_signature() -> str:
    """Short hash of what the NCHWc graph depends on: CPU model and instruction set."""
    import hashlib
    import platform

    text = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _optimized_model(ort, path: Path, providers) -> Path:
    """Path of ONNX Runtime's optimised graph of ``path``, written on first use.

    The weights go to a separate file next to it (``<cached>.<token>.data``, named inside
    the graph): ONNX Runtime maps that file instead of parsing 140 MB of protobuf, which
    halves session start (ResNet-50 + DLCRNet: 0.38 -> 0.18 s).  ``token`` is unique per
    write, so a writer never touches the weights a concurrent reader maps; the graph file
    is renamed into place last (readers see a complete cache or none), then weight files
    of older caches are removed (a cache whose weights went missing anyway is dropped and
    rebuilt by :class:`OnnxRunner`).

    Returns ``path`` itself when the cache cannot be written (read-only folder, full disk):
    the session then optimises in memory as usual.
    """
    # "-x": weights in an external file; a cache of the older inline form is not reused
    key = f"ort{ort.__version__}-{_cpu_signature()}-x"
    cached = path.with_name(f"{path.stem}.optimized-{key}.onnx")
    token = f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
    tmp = cached.with_name(f".{cached.name}.{token}.tmp")
    data = cached.with_name(f"{cached.name}.{token}.data")
    try:
        if cached.is_file() and cached.stat().st_mtime >= path.stat().st_mtime:
            return cached
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(tmp)
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name", data.name)
        opts.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        opts.log_severity_level = 3  # the "hardware specific" notice is why the name has a key
        ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        os.replace(tmp, cached)  # atomic: a reader never sees half a model
        # older caches' weights; a file younger than a minute may be a concurrent writer's
        # whose graph is about to replace ours
        now = time.time()
        for old in cached.parent.glob(f"{glob.escape(cached.name)}.*.data"):
            with contextlib.suppress(OSError):
                if old != data and now - old.stat().st_mtime > 60:
                    old.unlink()
        return cached
    except Exception:  # noqa: BLE001 - unwritable folder (ORT raises its own types);
        # a broken model fails again, with ORT's message, when the caller opens `path`
        with contextlib.suppress(OSError):
            data.unlink()
        return path
    finally:
        if tmp.exists():
            tmp.unlink()


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _Done:
    """A result computed at submission, behind the ``result()`` interface of a future."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value


class _Batch:
    """One batch's chunks in flight on a worker pool; ``result()`` joins them in order."""

    __slots__ = ("_futures",)

    def __init__(self, futures):
        self._futures = futures

    def result(self) -> dict[str, np.ndarray]:
        return _merge([f.result() for f in self._futures])


def _submit(runner, frames: np.ndarray):
    """``runner.submit``: the batch's chunks go to the worker pool's queue at once."""
    if runner._pool is None:
        return _Done(runner._forward(frames))
    return _Batch([runner._pool.submit(runner._forward, frames[s])
                   for s in _chunks(len(frames), runner.workers)])


def resolve_device(device) -> str:
    """DLC's device rule: ``None``/``"auto"`` → ``"cuda"`` if available else ``"cpu"``."""
    torch = require("torch", "running pose networks")
    if device is None or str(device).lower() == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(device, int) and not isinstance(device, bool):
        return f"cuda:{device}"
    dev = str(device)
    if dev.isdigit():
        return f"cuda:{dev}"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use "
                         "device='cpu' (or None for automatic choice).")
    if dev.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N' or 'auto'.")
    return dev


class TorchRunner:
    """Run a :class:`~mapose.models.pose_model.PoseModel` with torch.

    Parameters
    ----------
    model : PoseModel
        In eval mode, weights loaded.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``None`` → automatic.
    half : bool, default False
        float16 weights and activations (CUDA only; outputs are returned as float32).
    bgr : bool, default True
        Frames arrive in BGR order (OpenCV).
    channels_last : bool, default True
        Run convolutions in NHWC memory format (faster with oneDNN / cuDNN).
    workers : int, optional
        CPU only: frame-parallel worker threads a batch is split across (see the module
        docstring); None → one per intra-op thread (``torch.get_num_threads()``), 1 → a
        single multi-threaded forward pass.  Ignored on CUDA.
    optimize : bool or InferenceOptions, default True
        Run a rewritten copy of ``model``
        (:func:`~mapose.models.pose_model.optimize_for_inference`: fused head layers,
        Winograd 3x3 convolutions and oneDNN for the rest on CPU); False runs ``model``
        as it is.  Outputs agree up to float rounding (~1e-6 relative).
    """

    engine = "torch"

    def __init__(self, model, device=None, half: bool = False, bgr: bool = True,
                 channels_last: bool = True, workers: int | None = None, optimize=True):
        torch = require("torch", "running pose networks")
        from mapose.models.pose_model import FramesModel, optimized_if_asked

        self.torch = torch
        self.device = torch.device(resolve_device(device))
        if half and self.device.type != "cuda":
            raise ValueError("half=True needs a CUDA device (float16 convolutions are slow or "
                             "missing on CPU); drop half or use device='cuda'.")
        self.half = bool(half)
        model = optimized_if_asked(model, optimize, self.device)
        net = FramesModel(model, bgr=bgr, channels_last=channels_last).eval().to(self.device)
        if self.half:
            net = net.half()
        self.net = net
        self.output_names = tuple(model.output_names)
        self._pinned = None
        self.workers, self._threads_per_worker = 1, None
        self._pool = None
        if self.device.type == "cpu":
            self.workers, self._threads_per_worker = split_workers(workers, torch.get_num_threads())
        if self.workers > 1:
            self._pool = _start_torch_workers(torch, self.workers, self._threads_per_worker)

    def _to_device(self, frames: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(frames))
        if self.device.type != "cuda":
            return t
        # page-locked staging buffer reused across batches; async host->device copy
        if self._pinned is None or self._pinned.shape != t.shape:
            self._pinned = self.torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        self._pinned.copy_(t)
        return self._pinned.to(self.device, non_blocking=True)

    def _forward(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            outs = self.net(self._to_device(frames))
            return {name: o.float().cpu().numpy() for name, o in zip(self.output_names, outs)}

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        if self._pool is None or len(frames) < 2:
            return self._forward(frames)
        return _merge(list(self._pool.map(self._forward, [frames[s] for s in _chunks(len(frames), self.workers)])))

    def submit(self, frames: np.ndarray):
        """Start a batch and return at once: an object whose ``result()`` is ``self(frames)``.

        With frame-parallel workers the batch's chunks join the pool's queue, so with the
        next batch submitted before this one is collected (what
        :func:`~mapose.inference.pipeline.run_video` does) a worker that finishes its
        share starts on the next batch instead of waiting for the slowest share -- on a
        machine shared with decoding, post-processing or other processes the shares
        rarely finish together.  Without workers the batch runs here, synchronously.
        ``frames`` must not be modified until the result is collected.
        """
        return _submit(self, frames)

    def close(self) -> None:
        """Stop the worker threads (also done when the runner is garbage collected)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


class OnnxRunner:
    """Run an exported ONNX model (see :func:`mapose.inference.export.export_onnx`).

    Parameters
    ----------
    path : str or Path
        ``.onnx`` file with input ``frames`` (uint8 B×H×W×3) and outputs named
        ``"<head>/<key>"``.
    device : str, optional
        ``"cuda"`` uses the CUDA execution provider (onnxruntime-gpu), ``"cpu"`` the CPU
        one; ``None`` picks CUDA when available.
    intra_op_num_threads : int, optional
        Total CPU threads (default: the CPUs this process may use).
    workers : int, optional
        CPU only: frame-parallel worker threads a batch is split across, each running the
        session with ``intra_op_num_threads // workers`` threads; None → one per thread,
        1 → one multi-threaded run.  Ignored with CUDA.
    cache_optimized : bool, default True
        CPU only: keep ONNX Runtime's fully optimised graph (NCHWc layouts, fusions) next to
        ``path`` and load that on later runs; optimising costs seconds at every session
        start otherwise.  The file name carries the ONNX Runtime version and a CPU
        signature because the NCHWc graph depends on the machine; it is rebuilt when
        ``path`` is newer, and skipped where the folder is read-only.
    """

    engine = "onnx"

    def __init__(self, path, device=None, intra_op_num_threads: int | None = None,
                 workers: int | None = None, cache_optimized: bool = True):
        ort = require("onnxruntime", "ONNX inference")
        providers = _onnx_providers(ort, device)
        self.device = "cuda" if providers[0] == "CUDAExecutionProvider" else "cpu"
        if intra_op_num_threads is not None and (isinstance(intra_op_num_threads, bool)
                                                 or int(intra_op_num_threads) < 1):
            raise ValueError(f"intra_op_num_threads must be a positive int or None; got {intra_op_num_threads!r}.")
        self.workers, threads = 1, int(intra_op_num_threads or 0)
        if self.device == "cpu":
            self.workers, threads = split_workers(workers, threads or _available_cpus())
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        path = Path(os.fspath(path))
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: '{path}'; export it with "
                                    "mapose.export_model(config) or mapose.inference.export.export_onnx.")
        model_path = path
        if cache_optimized and self.device == "cpu":
            model_path = _optimized_model(ort, path, providers)
            if model_path != path:  # already optimised for this machine
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        # one session serves all workers (run() is thread-safe); with one thread per
        # worker each run executes on its calling thread
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=providers)
        except Exception:  # noqa: BLE001 - a damaged cache (weights file deleted, disk error)
            if model_path == path:
                raise
            with contextlib.suppress(OSError):
                model_path.unlink()  # rebuilt on the next start
            model_path = path
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        self.model_path = model_path
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self._pool = (ThreadPoolExecutor(self.workers, thread_name_prefix="mapose-onnx")
                      if self.workers > 1 else None)

    def _forward(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(frames, dtype=np.uint8)})
        return dict(zip(self.output_names, outs))

    __call__ = TorchRunner.__call__
    submit = TorchRunner.submit
    close = TorchRunner.close
    __del__ = TorchRunner.__del__
