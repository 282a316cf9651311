"""Synthetic multi-animal detections of any length, generated chunk by chunk.

Every frame is a pure function of ``(seed, frame index)``, so a chunk can be produced
without the frames before it and a 100k-frame "video" costs no memory until a chunk is
asked for.  Animals move on smooth closed-form paths (sums of sinusoids) that cross each
other, body parts sit on a rigid skeleton that turns with the heading, keypoints are
jittered, some go missing, and a few animals disappear for a while (so tracks fragment
and stitching has work to do).

Two layouts:

* :meth:`SyntheticDetections.assemblies` — DLC 3's ``_assemblies.pickle`` frames
  ``{frame: ndarray (n_animals_visible, n_bodyparts, 4)}`` (x, y, score, -1);
* :meth:`SyntheticDetections.full_frames` — classic ``_full.pickle`` frames (per-body-part
  peaks and PAF ``costs``) for the Assembler, plus :meth:`metadata`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticDetections:
    """Parameters of a synthetic detection stream.

    Parameters
    ----------
    n_frames : int
    n_animals : int
    n_bodyparts : int
    seed : int
    width, height : int
        Arena in pixels.
    p_missing : float
        Probability that a keypoint is not detected.
    jitter : float
        Keypoint noise (pixels, standard deviation).
    """

    n_frames: int
    n_animals: int = 3
    n_bodyparts: int = 12
    seed: int = 0
    width: int = 640
    height: int = 480
    p_missing: float = 0.05
    jitter: float = 1.0

    def __post_init__(self):
        for name in ("n_frames", "n_animals", "n_bodyparts"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}.")

    @property
    def bodyparts(self) -> list[str]:
        return [f"bp{i}" for i in range(self.n_bodyparts)]

    @property
    def graph(self) -> list[list[int]]:
        """A chain plus skip links: every body part has 2-4 neighbours."""
        k = self.n_bodyparts
        edges = [[i, i + 1] for i in range(k - 1)] + [[i, i + 2] for i in range(k - 2)]
        return edges

    def _params(self):
        rng = np.random.default_rng(self.seed)
        a = self.n_animals
        return {
            "freq": rng.uniform(0.002, 0.01, (a, 2, 2)),
            "phase": rng.uniform(0, 2 * math.pi, (a, 2, 2)),
            "amp": rng.uniform(0.15, 0.35, (a, 2, 2)),
            "offsets": np.stack([
                np.linspace(-25, 25, self.n_bodyparts),
                rng.uniform(-6, 6, self.n_bodyparts),
            ], axis=1),
            # each animal disappears for `gap` frames every `period` frames
            "period": rng.integers(800, 2000, a),
            "gap": rng.integers(5, 40, a),
            "shift": rng.integers(0, 800, a),
        }

    def keypoints(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth keypoints and visibility for frames ``[start, stop)``.

        Returns
        -------
        xy : ndarray of shape (stop - start, n_animals, n_bodyparts, 2), float64
        visible : ndarray of shape (stop - start, n_animals), bool
        """
        if not 0 <= start <= stop <= self.n_frames:
            raise ValueError(f"frames [{start}, {stop}) outside [0, {self.n_frames}).")
        p = self._params()
        t = np.arange(start, stop, dtype=np.float64)[:, None, None, None]
        wave = p["amp"] * np.sin(2 * math.pi * p["freq"] * t + p["phase"])  # (T, A, 2, 2)
        centre = 0.5 + wave.sum(axis=-1)  # (T, A, 2) in [0, 1] roughly
        centre = centre * np.array([self.width, self.height])
        dwave = (p["amp"] * 2 * math.pi * p["freq"]
                 * np.cos(2 * math.pi * p["freq"] * t + p["phase"])).sum(axis=-1)
        heading = np.arctan2(dwave[..., 1], dwave[..., 0])  # (T, A)
        c, s = np.cos(heading), np.sin(heading)
        ox, oy = p["offsets"][:, 0], p["offsets"][:, 1]
        xy = np.empty(c.shape + (self.n_bodyparts, 2))
        xy[..., 0] = centre[..., 0, None] + c[..., None] * ox - s[..., None] * oy
        xy[..., 1] = centre[..., 1, None] + s[..., None] * ox + c[..., None] * oy
        frames = np.arange(start, stop)[:, None]
        visible = ((frames + p["shift"]) % p["period"]) >= p["gap"]
        return xy, visible

    def _uniform(self, start: int, stop: int, stream: int, shape) -> np.ndarray:
        """Uniforms in [0, 1) that depend only on (seed, frame, stream, position).

        A vectorised splitmix64 hash of a counter: any chunking of the frames gives the
        same numbers, and generating a chunk costs microseconds per frame.
        """
        per_frame = int(np.prod(shape))
        frames = np.arange(start, stop, dtype=np.uint64)[:, None]
        pos = np.arange(per_frame, dtype=np.uint64)[None, :]
        with np.errstate(over="ignore"):
            z = (frames * np.uint64(per_frame) + pos) * np.uint64(8) + np.uint64(stream)
            z = z + np.uint64(self.seed) * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return ((z >> np.uint64(11)).astype(np.float64) / float(1 << 53)).reshape(
            (stop - start,) + tuple(shape))

    def detections(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Noisy detections for frames ``[start, stop)`` (all animals, visible or not).

        Returns
        -------
        data : ndarray of shape (stop - start, n_animals, n_bodyparts, 4), float64
            x, y, score, identity (-1); undetected keypoints are ``(nan, nan, 0, nan)``.
        visible : ndarray of shape (stop - start, n_animals), bool
        """
        xy, visible = self.keypoints(start, stop)
        shape = (self.n_animals, self.n_bodyparts)
        u1 = self._uniform(start, stop, 0, shape)
        u2 = self._uniform(start, stop, 1, shape)
        r = self.jitter * np.sqrt(-2.0 * np.log1p(-u1))  # Box-Muller
        data = np.empty(xy.shape[:-1] + (4,))
        data[..., 0] = xy[..., 0] + r * np.cos(2 * math.pi * u2)
        data[..., 1] = xy[..., 1] + r * np.sin(2 * math.pi * u2)
        data[..., 2] = 0.7 + 0.3 * self._uniform(start, stop, 2, shape)
        data[..., 3] = -1
        miss = self._uniform(start, stop, 3, shape) < self.p_missing
        data[miss] = (np.nan, np.nan, 0.0, np.nan)
        return data, visible

    def assemblies(self, start: int, stop: int) -> dict:
        """DLC 3 ``_assemblies.pickle`` frames for ``[start, stop)``, keyed by global index.

        Returns
        -------
        dict of int to ndarray of shape (n_visible, n_bodyparts, 4), float64
            Columns x, y, score, identity (-1).  Missing keypoints are
            ``(nan, nan, 0, nan)``, as in DLC 3.0.2's files.
        """
        data, visible = self.detections(start, stop)
        every = visible.all(axis=1)
        return {f: data[k] if every[k] else data[k][visible[k]]
                for k, f in enumerate(range(start, stop))}

    def metadata(self) -> dict:
        """The ``"metadata"`` entry of a classic ``_full.pickle``."""
        graph = self.graph
        return {
            "nms radius": 5, "minimal confidence": 0.01, "sigma": 1,
            "PAFgraph": graph, "PAFinds": np.arange(len(graph)),
            "all_joints": [[i] for i in range(self.n_bodyparts)],
            "all_joints_names": self.bodyparts, "nframes": self.n_frames,
        }

    def full_frames(self, start: int, stop: int) -> dict:
        """Classic ``_full.pickle`` frames (peaks + PAF costs) for ``[start, stop)``.

        Keys are DLC's ``"frame%0Nd"`` names for the global index.  Peaks of a body part
        are listed animal by animal without the animals out of view; a keypoint the
        network "missed" is a weak peak (confidence 0.02, below DLC's ``pcutoff``) at a
        noisy position, as real heatmaps produce; ``m1`` is high (0.8-1.0) between the
        two ends of a true limb and low (0-0.1) across animals; ``distance`` is the peak
        distance in stride-8 cells.
        """
        width = max(1, math.ceil(math.log10(self.n_frames))) if self.n_frames > 1 else 1
        data, visible = self.detections(start, stop)
        xy_true, _ = self.keypoints(start, stop)
        a = self.n_animals
        missed = ~np.isfinite(data[..., 0])
        data[..., :2] = np.where(missed[..., None], xy_true + 3.0, data[..., :2])
        data[..., 2] = np.where(missed, 0.02, data[..., 2])
        ok = np.broadcast_to(visible[:, :, None], data.shape[:3])  # (T, A, B)
        xy = data[..., :2].astype(np.float32)
        conf = data[..., 2:3].astype(np.float32)
        eye = np.eye(a, dtype=bool)
        costs_all = []
        for e, (s_, t_) in enumerate(self.graph):
            u = self._uniform(start, stop, 8 + e, (a, a))
            m1 = np.where(eye, 0.8 + 0.2 * u, 0.1 * u).astype(np.float32)
            d = (np.linalg.norm(xy[:, :, None, s_] - xy[:, None, :, t_], axis=-1) / 8.0).astype(np.float32)
            costs_all.append((m1, d))
        full = ok.all(axis=(1, 2))
        out = {}
        for k, f in enumerate(range(start, stop)):
            if full[k]:
                coords = [xy[k, :, b] for b in range(self.n_bodyparts)]
                confs = [conf[k, :, b] for b in range(self.n_bodyparts)]
                costs = {e: {"m1": m1[k], "distance": d[k]} for e, (m1, d) in enumerate(costs_all)}
            else:
                rows = [np.flatnonzero(ok[k, :, b]) for b in range(self.n_bodyparts)]
                coords = [xy[k, r, b] for b, r in enumerate(rows)]
                confs = [conf[k, r, b] for b, r in enumerate(rows)]
                costs = {}
                for e, (s_, t_) in enumerate(self.graph):
                    m1, d = costs_all[e]
                    ix = np.ix_(rows[s_], rows[t_])
                    costs[e] = {"m1": m1[k][ix], "distance": d[k][ix]}
            out["frame" + str(f).zfill(width)] = {
                "coordinates": (coords,), "confidence": confs, "costs": costs,
            }
        return out
