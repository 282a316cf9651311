"""Model builder: timm-compatible backbones, DLC heads, snapshot loading, network parity."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mapose.models import build_pose_model, register_backbone  # noqa: E402
from mapose.models.backbones import TimmResNet  # noqa: E402
from mapose.models.heads import DeconvModule, DLCRNetHead, HeatmapHead  # noqa: E402
from mapose.models.pose_model import FramesModel, PoseModel, normalize_frames  # noqa: E402

MODEL_DIR = "dlc-models-pytorch/iteration-0/projANov23-trainset95shuffle1/train"
pytestmark = pytest.mark.torch


def _deconv(c_in, c_out, two=False):
    if two:
        return {"channels": [c_in, c_in // 2, c_out], "kernel_size": [3, 3], "strides": [2, 2]}
    return {"channels": [c_in, c_out], "kernel_size": [3], "strides": [2]}


def model_cfg(backbone, C, K=5, N=3, unique=1, identity=True, two=False):
    L = K * (K - 1) // 2
    graph = [[i, j] for i in range(K) for j in range(i + 1, K)]
    heads = {"bodypart": {
        "type": "DLCRNetHead", "num_stages": 5,
        "predictor": {"type": "PartAffinityFieldPredictor", "num_animals": N, "num_multibodyparts": K,
                      "num_uniquebodyparts": unique, "graph": graph, "edges_to_keep": list(range(L))},
        "heatmap_config": _deconv(C, K, two), "locref_config": _deconv(C, 2 * K, two),
        "paf_config": _deconv(C, 2 * L, two)}}
    if unique:
        heads["unique_bodypart"] = {"type": "HeatmapHead", "predictor": {"type": "HeatmapPredictor"},
                                    "heatmap_config": _deconv(C, unique), "locref_config": _deconv(C, 2 * unique)}
    if identity:
        heads["identity"] = {"type": "HeatmapHead", "predictor": {"type": "IdentityPredictor"},
                             "heatmap_config": _deconv(C, N)}
    return {"net_type": "x", "model": {"backbone": backbone, "backbone_output_channels": C, "heads": heads}}


@pytest.mark.smoke
@pytest.mark.parametrize("name,os_", [("resnet50_gn", 16), ("resnet50", 8), ("resnet50", 32)])
def test_resnet_shapes_and_dilation(name, os_):
    m = TimmResNet(name, os_).eval()
    H, W = 70, 90
    with torch.no_grad():
        y = m(torch.zeros(1, 3, H, W))
    h, w = H, W
    for _ in range(int(math.log2(os_))):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    assert y.shape == (1, 2048, h, w)
    norm = type(m.bn1).__name__
    assert norm == ("GroupNorm" if name.endswith("_gn") else "BatchNorm2d")
    if os_ == 16:  # timm: block 0 of a dilated stage keeps the previous dilation
        assert m.layer4[0].conv2.dilation == (1, 1) and m.layer4[1].conv2.dilation == (2, 2)
        assert m.layer4[0].downsample[0].stride == (1, 1)


def test_state_dict_key_counts_match_dlc():
    """dlc-inference-spec §3.6: resnet_50 + PAF + unique + identity has 199 keys, DLCRNet 393."""
    m = build_pose_model(model_cfg({"type": "ResNet", "model_name": "resnet50_gn", "output_stride": 16}, 2048))
    keys = list(m.state_dict())
    assert len(keys) == 199 and sum(k.startswith("backbone.") for k in keys) == 159
    assert "heads.bodypart.hm_ref_layers.4.weight" in keys and "heads.identity.heatmap_head.deconv_layers.0.bias" in keys
    assert [s.stride for s in m.head_specs] == [4.0, 8.0, 8.0]
    d = build_pose_model(model_cfg({"type": "DLCRNet", "model_name": "resnet50", "output_stride": 16}, 2304))
    assert len(d.state_dict()) == 393
    assert "backbone.conv_block5.1.running_var" in d.state_dict()


def test_dlcrnet_stride32_shapes():
    """dlc-inference-spec §3.4: stride-32 DLCRNet with two deconvs gives 8H'+3 grids."""
    cfg = model_cfg({"type": "DLCRNet", "model_name": "resnet50", "output_stride": 32}, 2304,
                    unique=0, identity=False, two=True)
    m = build_pose_model(cfg).eval()
    with torch.no_grad():
        hm, lr, paf = m(torch.zeros(1, 3, 64, 96))
    assert hm.shape[-2:] == (8 * 2 + 3, 8 * 3 + 3) and paf.shape[1] == 20 and lr.shape[1] == 10
    assert m.head_specs[0].stride == 4.0


@pytest.mark.smoke
def test_deconv_sizes():
    x = torch.zeros(1, 4, 5, 7)
    assert DeconvModule([4, 2], [3], [2])(x).shape[-2:] == (11, 15)  # 2n+1
    assert HeatmapHead({"channels": [4, 3, 2], "kernel_size": [2, 2], "strides": [2, 2]})(x)[0].shape[-2:] == (20, 28)
    with pytest.raises(ValueError, match="channels"):
        DeconvModule([4, 2, 1], [3], [2])


def test_backbone_registry_plugin():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, stride=8, padding=1)

        def forward(self, x):
            return self.conv(x)

    register_backbone("test_plugin", lambda cfg: (Tiny(), 16, 8.0))
    cfg = model_cfg({"type": "whatever"}, 16, unique=0, identity=False)
    cfg["net_type"] = "test_plugin_v1"
    m = build_pose_model(cfg).eval()
    assert m.head_specs[0].stride == 2.0 and "backbone.conv.weight" in m.state_dict()
    with torch.no_grad():
        assert m(torch.zeros(2, 3, 32, 32))[0].shape == (2, 5, 17, 17)
    with pytest.raises(ValueError, match="not supported"):
        build_pose_model(model_cfg({"type": "Swin"}, 16))
    # HRNet is supported (tests/test_models_hrnet.py); an unknown variant is a clear error
    with pytest.raises(ValueError, match="hrnet_w31"):
        build_pose_model(model_cfg({"type": "HRNet", "model_name": "hrnet_w31"}, 31))


def test_frames_model_equals_numpy_normalisation():
    m = build_pose_model(model_cfg({"type": "ResNet", "model_name": "resnet50", "output_stride": 32}, 2048,
                                   unique=0, identity=False)).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 40, 56, 3), dtype=np.uint8)
    with torch.no_grad():
        a = m(torch.from_numpy(normalize_frames(frames[..., ::-1])))
        b = FramesModel(m, bgr=True)(torch.from_numpy(frames))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


# --- DLC's trained project A -------------------------------------------------------------

def _project_a_model(project_a):
    from mapose.io.pytorch_config import read_pytorch_config
    from mapose.models.snapshot import load_pose_model

    pcfg = read_pytorch_config(project_a / MODEL_DIR)
    return pcfg, load_pose_model(pcfg, project_a / MODEL_DIR / "snapshot-best-050.pt")


def test_project_a_snapshot_loads_and_matches_dlc_outputs(project_a):
    pcfg, model = _project_a_model(project_a)
    d = np.load(project_a / "raw_outputs/synthA_frame0050.npz")
    x = normalize_frames(d["frame_rgb"][None])
    np.testing.assert_array_equal(x, d["input"])  # bit-exact preprocessing
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(x)).numpy()
        outs = dict(zip(model.output_names, (o.numpy() for o in model(torch.from_numpy(x)))))
    np.testing.assert_allclose(feats, d["backbone.features"], atol=5e-5)
    for key in ("heatmap", "locref", "paf"):
        np.testing.assert_allclose(outs[f"bodypart/{key}"], d[f"out.bodypart.{key}"], atol=2e-4)
    assert model.snapshot_metadata["epoch"] == 50


def test_snapshot_mismatch_and_missing_file(project_a, tmp_path):
    from mapose.models.snapshot import load_pose_model

    pcfg, _ = _project_a_model(project_a)
    bad = copy.deepcopy(dict(pcfg))
    bad["model"] = copy.deepcopy(dict(pcfg["model"]))
    heads = copy.deepcopy(dict(bad["model"]["heads"]))
    heads["bodypart"]["heatmap_config"]["channels"] = [2048, 6]
    bad["model"]["heads"] = heads
    with pytest.raises(ValueError, match="does not match"):
        load_pose_model(bad, project_a / MODEL_DIR / "snapshot-best-050.pt")
    with pytest.raises(FileNotFoundError, match="snapshot"):
        load_pose_model(pcfg, tmp_path / "snapshot-001.pt")
    junk = tmp_path / "snapshot-002.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read snapshot"):
        load_pose_model(pcfg, junk)


def test_pose_model_rejects_bad_config():
    with pytest.raises(ValueError, match="model.heads"):
        PoseModel.from_config({"model": {"backbone": {"type": "ResNet"}}})
    with pytest.raises(ValueError, match="head type"):
        PoseModel.from_config({"model": {"backbone": {"type": "ResNet", "model_name": "resnet50"},
                                         "heads": {"x": {"type": "Transformer"}}}})


@pytest.mark.parametrize("backbone,C,two", [
    ({"type": "ResNet", "model_name": "resnet50_gn", "output_stride": 16}, 2048, False),
    ({"type": "DLCRNet", "model_name": "resnet50", "output_stride": 32}, 2304, True),
])
def test_head_specs_from_config_match_built_model(backbone, C, two):
    """The torch-free specs (used by the ONNX engine) equal the built model's."""
    from mapose.models.specs import head_specs_from_config

    cfg = model_cfg(backbone, C, two=two)
    with torch.device("meta"):
        built = build_pose_model(cfg).head_specs
    assert head_specs_from_config(cfg) == built
    assert head_specs_from_config(model_cfg({"type": "Plugin"}, 8)) is None


@pytest.mark.smoke
@pytest.mark.parametrize("stages", [0, 1, 3, 5])
def test_dlcrnet_head_fuse_equals_separate_layers(stages):
    """fuse(): one transposed conv for convt1..4 and the stages' feature part as one conv
    give the separate layers' outputs (float64, so only the summation order differs)."""
    torch.manual_seed(stages)
    head = DLCRNetHead(_deconv(16, 3), _deconv(16, 6), _deconv(16, 4), num_stages=stages,
                       features_dim=8).double().eval()
    for m in head.modules():  # default init leaves the stage convs' outputs tiny
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, std=0.3)
            torch.nn.init.normal_(m.bias, std=0.3)
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        want = head(x)
        keys = set(head.state_dict())
        fused = copy.deepcopy(head).fuse()
        got = fused(x)
    assert fused.superseded and not head.superseded
    new_keys = set(fused.state_dict()) - keys
    assert keys < set(fused.state_dict()) and all(k.split(".")[0] in ("convt_fused", "stage_feat", "stage_hp")
                                                 for k in new_keys)
    assert (fused.stage_feat is None) == (stages == 0)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12 * float(w.abs().max()))
