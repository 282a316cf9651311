"""From raw network outputs to assembled animals (DLC 3's bottom-up predictors).

:class:`BottomUpPredictor` turns one batch of head outputs (NumPy arrays) into per-frame
:class:`FramePrediction` objects exactly as DLC's ``PartAffinityFieldPredictor``,
``HeatmapPredictor`` (unique body parts), ``IdentityPredictor`` and the bottom-up
post-processor do:

1. peaks + locref + PAF costs (compiled kernels, :mod:`mapose.kernels.peaks`);
2. per image ``Assembler.empty(num_animals, ...)._assemble(frame, 0)`` with DLC's
   hard-wired defaults (pcutoff 0.1, min_n_links 2, max_overlap 0.8);
3. ``poses`` (N, K, 5) = ``[x, y, score, group, mean affinity]``, unfilled rows -1,
   missing keypoints (NaN, NaN, 0, NaN);
4. with an identity head: keypoint identity scores sampled from the ×stride-upsampled,
   sigmoided identity map at ``rint`` input coordinates, then rows reordered by a
   maximising assignment of mean ``score × id_score``.

Dataclass :class:`PredictorSettings` holds the tunables read from ``pytorch_config.yaml``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mapose.kernels.peaks import find_peaks, heatmap_argmax, paf_costs

__all__ = ["PredictorSettings", "FramePrediction", "BottomUpPredictor", "identity_scores_at"]


@dataclass(frozen=True)
class PredictorSettings:
    """Tunables of the PAF predictor (``model.heads.bodypart.predictor``)."""

    num_animals: int
    num_multibodyparts: int
    graph: tuple
    edges_to_keep: tuple
    nms_radius: int = 5
    sigma: float = 1.0
    locref_stdev: float = 7.2801
    min_affinity: float = 0.05
    apply_sigmoid: bool = True
    clip_scores: bool = False
    threshold: float = 0.01  # hard-coded in DLC 3
    add_discarded: bool = False
    force_fusion: bool = False

    @classmethod
    def from_predictor_cfg(cls, cfg: dict) -> "PredictorSettings":
        graph = tuple(tuple(int(v) for v in e) for e in (cfg.get("graph") or []))
        edges = cfg.get("edges_to_keep")
        edges = tuple(range(len(graph))) if edges is None else tuple(int(e) for e in edges)
        return cls(
            num_animals=int(cfg["num_animals"]),
            num_multibodyparts=int(cfg["num_multibodyparts"]),
            graph=graph,
            edges_to_keep=edges,
            nms_radius=int(cfg.get("nms_radius", 5)),
            sigma=float(cfg.get("sigma", 1.0)),
            locref_stdev=float(cfg.get("locref_stdev", 7.2801)),
            min_affinity=float(cfg.get("min_affinity", 0.05)),
            apply_sigmoid=bool(cfg.get("apply_sigmoid", True)),
            clip_scores=bool(cfg.get("clip_scores", False)),
        )


@dataclass
class FramePrediction:
    """Predictions for one frame (network-input pixel coordinates).

    Attributes
    ----------
    poses : ndarray of shape (N, K, 5), float32
        ``[x, y, score, group, affinity]``; unfilled rows are -1.
    unique : ndarray of shape (U, 3), float32 or None
    identity : ndarray of shape (N, K, n_ids), float32 or None
    """

    poses: np.ndarray
    unique: np.ndarray | None = None
    identity: np.ndarray | None = None
    n_peaks: int = 0
    extra: dict = field(default_factory=dict)


def _aa_taps(out_idx: np.ndarray, in_size: int, out_size: int):
    """torch's antialiased bilinear weights (upsampling) for output indices.

    Returns (start (M,), weights (M, T)) so that value = sum_t w[:, t] * v[start + t].
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    center = scale * (out_idx.astype(np.float64) + 0.5)
    xmin = np.maximum((center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum((center + support + 0.5).astype(np.int64), in_size)
    taps = int(math.ceil(support)) * 2 + 1
    t = np.arange(taps)[None, :]
    j = xmin[:, None] + t
    w = np.maximum(0.0, 1.0 - np.abs((j - center[:, None] + 0.5) * invscale))
    w[j >= xmax[:, None]] = 0.0
    total = w.sum(1, keepdims=True)
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    return np.minimum(j, in_size - 1), w


def identity_scores_at(id_logits: np.ndarray, xy: np.ndarray, stride: float) -> np.ndarray:
    """Identity scores at input coordinates, as DLC's IdentityPredictor + post-processor.

    The identity logits (n_ids, h, w) are (conceptually) resized to
    ``(int(h*stride), int(w*stride))`` with antialiased bilinear interpolation, passed
    through a sigmoid and read at ``[clip(rint(y)), clip(rint(x))]``.  Only the sampled
    pixels are computed.  Non-finite coordinates give zeros.

    Parameters
    ----------
    id_logits : ndarray of shape (n_ids, h, w)
    xy : ndarray of shape (M, 2)

    Returns
    -------
    ndarray of shape (M, n_ids), float32
    """
    n_ids, h, w = id_logits.shape
    H, W = int(h * stride), int(w * stride)
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    out = np.zeros((len(xy), n_ids), np.float32)
    ok = np.isfinite(xy).all(1)
    if not ok.any() or H == 0 or W == 0:
        return out
    yi = np.clip(np.rint(xy[ok, 1]), 0, H - 1).astype(np.int64)
    xi = np.clip(np.rint(xy[ok, 0]), 0, W - 1).astype(np.int64)
    ry, wy = _aa_taps(yi, h, H)
    rx, wx = _aa_taps(xi, w, W)
    m = id_logits.astype(np.float32)
    # (M, n_ids): sum over taps
    val = np.zeros((len(yi), n_ids), np.float64)
    for a in range(wy.shape[1]):
        for b in range(wx.shape[1]):
            val += (wy[:, a] * wx[:, b])[:, None] * m[:, ry[:, a], rx[:, b]].T
    out[ok] = (1.0 / (1.0 + np.exp(-val))).astype(np.float32)
    return out


def _make_frame_assembler(s: PredictorSettings):
    """``frame_dict -> (assemblies, unique)`` with the PAF predictor's fixed Assembler settings."""
    graph = [list(e) for e in s.graph]
    try:
        from mapose.assembly.assembler import Assembler
    except ImportError:  # assembler not built in this checkout: the NumPy reference works too
        Assembler = None
    if Assembler is not None:
        asm = Assembler.empty(s.num_animals, s.num_multibodyparts, 0, graph,
                              paf_inds=list(s.edges_to_keep), min_affinity=s.min_affinity,
                              add_discarded=s.add_discarded, force_fusion=s.force_fusion)
        return lambda frame: asm._assemble(frame, 0)
    from types import SimpleNamespace

    from mapose.kernels.assembly_ref import FrameAssembler

    params = SimpleNamespace(
        max_n_individuals=s.num_animals, n_multibodyparts=s.num_multibodyparts,
        n_keypoints=s.num_multibodyparts, graph=graph, paf_inds=list(s.edges_to_keep),
        greedy=False, pcutoff=0.1, min_affinity=s.min_affinity, min_n_links=2, max_overlap=0.8,
        identity_only=False, nan_policy="little", force_fusion=s.force_fusion,
        add_discarded=s.add_discarded, window_size=0, method="m1", gamma=0.0,
    )
    fa = FrameAssembler(params)
    return lambda frame: fa.assemble(frame, 0)


class BottomUpPredictor:
    """Batch predictor for DLC bottom-up PAF models.

    Parameters
    ----------
    head_specs : sequence of :class:`mapose.models.pose_model.HeadSpec`
        From the model (names ``bodypart``, ``unique_bodypart``, ``identity``).
    """

    def __init__(self, head_specs):
        specs = {s.name: s for s in head_specs}
        if "bodypart" not in specs or specs["bodypart"].type != "DLCRNetHead" and "paf" not in specs["bodypart"].keys:
            raise ValueError(
                "mapose analyses bottom-up multi-animal PAF models only (a 'bodypart' head "
                "with heatmap/locref/paf outputs); this model has heads "
                f"{sorted(specs)}. Single-animal and top-down models are not supported yet."
            )
        self.bodypart = specs["bodypart"]
        self.settings = PredictorSettings.from_predictor_cfg(self.bodypart.predictor)
        self.unique = specs.get("unique_bodypart")
        self.identity = specs.get("identity")
        self.n_unique = 0
        if self.unique is not None:
            p = self.unique.predictor
            self._unique_kw = dict(
                locref_std=float(p.get("locref_std", p.get("locref_stdev", 7.2801))),
                apply_sigmoid=bool(p.get("apply_sigmoid", False)),
                clip_scores=bool(p.get("clip_scores", True)),
            )
        self._assemble_frame = _make_frame_assembler(self.settings)

    def __call__(self, outputs: dict[str, np.ndarray]) -> list[FramePrediction]:
        """Predict every frame of a batch.

        Parameters
        ----------
        outputs : dict
            ``"<head>/<key>"`` -> ndarray (B, C, h, w) float32, as produced by the runners.
        """
        s = self.settings
        hm = outputs["bodypart/heatmap"]
        B = hm.shape[0]
        peaks = find_peaks(hm, outputs["bodypart/locref"], stride=self.bodypart.stride,
                           nms_radius=s.nms_radius, sigma=s.sigma, threshold=s.threshold,
                           locref_std=s.locref_stdev, apply_sigmoid=s.apply_sigmoid,
                           center="floor")
        costs = paf_costs(outputs["bodypart/paf"], peaks, s.graph, s.edges_to_keep)
        unique = None
        if self.unique is not None:
            unique = heatmap_argmax(outputs["unique_bodypart/heatmap"],
                                    outputs.get("unique_bodypart/locref"),
                                    stride=self.unique.stride, **self._unique_kw)
        results = []
        for b in range(B):
            coords, confs = peaks.image_lists(b)
            poses = self._assemble(coords, confs, costs[b])
            pred = FramePrediction(poses=poses, unique=None if unique is None else unique[b],
                                   n_peaks=int(peaks.offsets[(b + 1) * s.num_multibodyparts]
                                               - peaks.offsets[b * s.num_multibodyparts]))
            if self.identity is not None:
                self._apply_identity(pred, outputs["identity/heatmap"][b])
            results.append(pred)
        return results

    def _assemble(self, coords, confs, costs) -> np.ndarray:
        s = self.settings
        K, N = s.num_multibodyparts, s.num_animals
        poses = np.full((N, K, 5), -1.0, np.float32)
        if not any(len(c) for c in coords):
            return poses
        frame = {"coordinates": (coords,), "confidence": confs, "costs": costs}
        assemblies, _ = self._assemble_frame(frame)
        if not assemblies:
            return poses
        for j, a in enumerate(assemblies[:N]):
            poses[j, :, :4] = a.data[:, :4]
            poses[j, :, 4] = a.affinity
        if s.clip_scores:
            np.clip(poses[..., 2], 0.0, 1.0, out=poses[..., 2])
        return poses

    def _apply_identity(self, pred: FramePrediction, id_logits: np.ndarray) -> None:
        N, K = pred.poses.shape[:2]
        ids = identity_scores_at(id_logits, pred.poses[..., :2].reshape(-1, 2),
                                 self.identity.stride).reshape(N, K, -1)
        conf = pred.poses[..., 2:3].astype(np.float64)
        cost = (conf * ids).mean(axis=1)  # (rows, ids)
        from mapose.kernels.lap import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost, maximize=True)
        new_order = np.arange(N)
        new_order[cols] = rows
        pred.poses = pred.poses[new_order]
        pred.identity = ids[new_order]
