"""Inference post-processing kernels and a small end-to-end predictor/network case."""
import numpy as np

from mapose.kernels.peaks import find_peaks, paf_costs


def _maps(animals, bodyparts, frames, h=65, w=81, seed=0):
    """Heatmap logits with one Gaussian bump per animal and bodypart, plus random PAFs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    hm = np.full((frames, bodyparts, h, w), -8.0, np.float32)
    for f in range(frames):
        for k in range(bodyparts):
            for _ in range(animals):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                hm[f, k] += 16 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0)
    lr = rng.normal(scale=0.2, size=(frames, 2 * bodyparts, h, w)).astype(np.float32)
    graph = [[i, j] for i in range(bodyparts) for j in range(i + 1, bodyparts)]
    paf = rng.normal(size=(frames, 2 * len(graph), h, w)).astype(np.float32)
    return hm, lr, paf, graph


class Peaks:
    params = [[1, 3, 6], [5, 12], [4, 16]]
    param_names = ["animals", "bodyparts", "frames"]

    def setup(self, animals, bodyparts, frames):
        self.hm, self.lr, self.paf, self.graph = _maps(animals, bodyparts, frames)
        self.peaks = find_peaks(self.hm, self.lr, stride=4.0)

    def time_find_peaks(self, animals, bodyparts, frames):
        find_peaks(self.hm, self.lr, stride=4.0)

    def time_paf_costs(self, animals, bodyparts, frames):
        paf_costs(self.paf, self.peaks, self.graph)

    def peakmem_find_peaks(self, animals, bodyparts, frames):
        find_peaks(self.hm, self.lr, stride=4.0)


class Predictor:
    """Peaks + PAF costs + assembly (DLC's PartAffinityFieldPredictor) per batch."""

    params = [[1, 3, 6], [5, 12], [4, 16]]
    param_names = ["animals", "bodyparts", "frames"]

    def setup(self, animals, bodyparts, frames):
        from mapose.inference.predictor import BottomUpPredictor
        from mapose.models.specs import HeadSpec

        hm, lr, paf, graph = _maps(animals, bodyparts, frames)
        self.out = {"bodypart/heatmap": hm, "bodypart/locref": lr, "bodypart/paf": paf}
        pred = {"num_animals": animals, "num_multibodyparts": bodyparts, "graph": graph}
        self.predictor = BottomUpPredictor(
            [HeadSpec("bodypart", "DLCRNetHead", ("heatmap", "locref", "paf"), 4.0, pred)])

    def time_predict(self, animals, bodyparts, frames):
        self.predictor(self.out)


def _require_onnx():
    """asv skips a benchmark whose setup raises NotImplementedError."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise NotImplementedError("onnx / onnxruntime not installed") from None


def _network_cfg():
    graph = [[i, j] for i in range(5) for j in range(i + 1, 5)]

    def dc(c_out):
        return {"channels": [2048, c_out], "kernel_size": [3], "strides": [2]}

    return {"net_type": "resnet_50", "model": {
        "backbone": {"type": "ResNet", "model_name": "resnet50_gn", "output_stride": 16},
        "heads": {"bodypart": {
            "type": "DLCRNetHead", "num_stages": 5,
            "predictor": {"num_animals": 3, "num_multibodyparts": 5, "graph": graph},
            "heatmap_config": dc(5), "locref_config": dc(10), "paf_config": dc(20)}}}}


def _network():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch not installed")
    from mapose.models import build_pose_model

    torch.manual_seed(0)
    return build_pose_model(_network_cfg()).eval()


class NetworkCPU:
    """ResNet-50-GN + DLCRNet head forward on CPU (torch), 320x256 frames.

    ``workers``: "auto" splits the batch across single-threaded workers (the default),
    "1" is one multi-threaded forward pass.  ``optimize``: the inference rewrites
    (Winograd, fused head, oneDNN; the default) or the model as trained.
    """

    params = [[1, 4], ["1", "auto"], [True, False]]
    param_names = ["frames", "workers", "optimize"]
    timeout = 300

    def setup(self, frames, workers, optimize):
        from mapose.inference.runners import TorchRunner

        self.runner = TorchRunner(_network(), device="cpu", workers=None if workers == "auto" else int(workers),
                                  optimize=optimize)
        self.frames = np.random.default_rng(0).integers(0, 255, (frames, 256, 320, 3), dtype=np.uint8)

    def teardown(self, frames, workers, optimize):
        self.runner.close()

    def time_forward(self, frames, workers, optimize):
        self.runner(self.frames)


class Conv3x3:
    """One 3x3 stride-1 convolution of ResNet-50 at a 320x256 input, 2 frames, 1 thread:
    oneDNN's direct convolution vs Winograd F(2x2, 3x3)."""

    params = [[(128, 40, 32, 1), (256, 20, 16, 1), (512, 20, 16, 1), (512, 20, 16, 2)],
              ["onednn", "winograd"]]
    param_names = ["channels_h_w_dilation", "impl"]

    def setup(self, shape, impl):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch not installed")
        from mapose.models.winograd import WinogradConv2d

        self.torch = torch
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        c, h, w, d = shape
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(c, c, 3, padding=d, dilation=d, bias=False).eval()
        self.x = torch.randn(2, c, h, w).contiguous(memory_format=torch.channels_last)
        if impl == "winograd":
            self.fn = WinogradConv2d(conv)
        else:
            self.fn = lambda x: torch.ops.aten.mkldnn_convolution(
                x, conv.weight.detach(), None, conv.padding, conv.stride, conv.dilation, 1)

    def teardown(self, shape, impl):
        self.torch.set_num_threads(self.threads)

    def time_conv(self, shape, impl):
        with self.torch.inference_mode():
            self.fn(self.x)


class NetworkONNX:
    """The same network exported to ONNX, on ONNX Runtime's CPU provider."""

    params = [[1, 4], ["1", "auto"], [True, False]]
    param_names = ["frames", "workers", "optimize"]
    timeout = 600

    def setup_cache(self):
        import tempfile

        _require_onnx()
        from mapose.inference.export import export_onnx

        folder = tempfile.mkdtemp(prefix="mapose_asv_")
        net = _network()
        return {opt: str(export_onnx(net, f"{folder}/net-{opt}.onnx", optimize=opt)) for opt in (True, False)}

    def setup(self, paths, frames, workers, optimize):
        from mapose.inference.runners import OnnxRunner

        self.runner = OnnxRunner(paths[optimize], device="cpu", workers=None if workers == "auto" else int(workers))
        self.frames = np.random.default_rng(0).integers(0, 255, (frames, 256, 320, 3), dtype=np.uint8)

    def teardown(self, paths, frames, workers, optimize):
        self.runner.close()

    def time_forward(self, paths, frames, workers, optimize):
        self.runner(self.frames)


class RunnerStart:
    """Fixed cost before the first frame: an ONNX Runtime session from the cached optimised
    graph (every analyze_videos(engine="onnx") call pays it once)."""

    timeout = 300

    def setup_cache(self):
        import tempfile

        _require_onnx()
        from mapose.inference.export import export_onnx
        from mapose.inference.runners import OnnxRunner

        folder = tempfile.mkdtemp(prefix="mapose_asv_start_")
        path = str(export_onnx(_network(), f"{folder}/net.onnx"))
        OnnxRunner(path, device="cpu").close()  # writes the optimised-graph cache
        return path

    def time_onnx_runner_start(self, path):
        from mapose.inference.runners import OnnxRunner

        OnnxRunner(path, device="cpu").close()


class HeadUpsamplingONNX:
    """DLCRNet's fused size-doubling transposed convolution (2048 -> 163 channels, 16x20 ->
    32x40, 2 frames) in ONNX Runtime, 1 thread: ConvTranspose vs the Winograd F(2, 2)
    MatMul form the export uses (graph v5)."""

    params = [["convtranspose", "winograd"]]
    param_names = ["impl"]
    timeout = 300

    def setup_cache(self):
        import tempfile
        import warnings

        _require_onnx()
        import torch

        from mapose.models.winograd import WinogradConvTranspose2d

        folder = tempfile.mkdtemp(prefix="mapose_asv_convt_")
        torch.manual_seed(0)
        conv = torch.nn.ConvTranspose2d(2048, 163, 3, stride=2, padding=1, output_padding=1).eval()
        paths = {}
        for impl, module in (("convtranspose", conv), ("winograd", WinogradConvTranspose2d(conv).eval())):
            paths[impl] = f"{folder}/{impl}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (torch.zeros(1, 2048, 16, 20),), paths[impl], input_names=["x"],
                                  output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                                  opset_version=17, dynamo=False)
        return paths

    def setup(self, paths, impl):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(paths[impl], opts, providers=["CPUExecutionProvider"])
        self.x = np.maximum(np.random.default_rng(0).normal(size=(2, 2048, 16, 20)), 0).astype(np.float32)

    def time_upsample(self, paths, impl):
        self.session.run(None, {"x": self.x})
