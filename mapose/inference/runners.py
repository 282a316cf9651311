"""Network runners: torch (CPU/CUDA) and ONNX Runtime, one interface.

Both take a batch of decoded frames, uint8 (B, H, W, 3) in OpenCV's BGR order, and return
``{"<head>/<key>": float32 ndarray (B, C, h, w)}``.  Normalisation (DLC's exact float32
arithmetic) runs inside the network graph (:class:`mapose.models.pose_model.FramesModel`),
so only uint8 pixels travel to the device.

GPU specifics are kept small and go through the same code as the CPU path: pinned host
buffers and ``non_blocking`` copies for CUDA, optional ``half`` precision, and the CUDA
execution provider for ONNX Runtime when available.
"""
from __future__ import annotations

import numpy as np

from mapose._optional import require

__all__ = ["TorchRunner", "OnnxRunner", "resolve_device"]


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
    """

    engine = "torch"

    def __init__(self, model, device=None, half: bool = False, bgr: bool = True,
                 channels_last: bool = True):
        torch = require("torch", "running pose networks")
        from mapose.models.pose_model import FramesModel

        self.torch = torch
        self.device = torch.device(resolve_device(device))
        if half and self.device.type != "cuda":
            raise ValueError("half=True needs a CUDA device (float16 convolutions are slow or "
                             "missing on CPU); drop half or use device='cuda'.")
        self.half = bool(half)
        net = FramesModel(model, bgr=bgr, channels_last=channels_last).eval().to(self.device)
        if self.half:
            net = net.half()
        self.net = net
        self.output_names = tuple(model.output_names)
        self._pinned = None

    def _to_device(self, frames: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(frames))
        if self.device.type != "cuda":
            return t
        # page-locked staging buffer reused across batches; async host->device copy
        if self._pinned is None or self._pinned.shape != t.shape:
            self._pinned = self.torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        self._pinned.copy_(t)
        return self._pinned.to(self.device, non_blocking=True)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            outs = self.net(self._to_device(frames))
            return {name: o.float().cpu().numpy() for name, o in zip(self.output_names, outs)}


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
        Threads for ONNX Runtime (default: its own choice).
    """

    engine = "onnx"

    def __init__(self, path, device=None, intra_op_num_threads: int | None = None):
        ort = require("onnxruntime", "ONNX inference")
        available = ort.get_available_providers()
        want_cuda = device is None or str(device).lower() == "auto" or str(device).startswith("cuda")
        if device is not None and str(device).startswith("cuda") and "CUDAExecutionProvider" not in available:
            raise ValueError(f"device={device!r} needs onnxruntime-gpu (CUDAExecutionProvider); "
                             f"available providers: {available}. Install 'mapose[gpu]' or use device='cpu'.")
        providers = (["CUDAExecutionProvider"] if want_cuda and "CUDAExecutionProvider" in available else [])
        providers.append("CPUExecutionProvider")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_num_threads:
            opts.intra_op_num_threads = int(intra_op_num_threads)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.device = "cuda" if providers[0] == "CUDAExecutionProvider" else "cpu"

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(frames, dtype=np.uint8)})
        return dict(zip(self.output_names, outs))
