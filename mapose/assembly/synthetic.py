"""Synthetic ``_full.pickle``-style detections with known animals (tests, benchmarks).

:func:`make_full_data` draws animals as jittered copies of a random template skeleton,
detects each bodypart with some probability, adds false positives, and scores every
candidate pair of a graph edge with a PAF-like affinity: high for two detections of the
same animal, low otherwise.  The result has DLC's layout (metadata, ``frame%0Nd`` keys,
``coordinates``/``confidence``/``costs`` and optional ``identity``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["make_full_data", "full_graph"]


def full_graph(n_bodyparts: int) -> list:
    """All ``(i, j)`` pairs with ``i < j`` (DLC's default multi-animal graph)."""
    return [[i, j] for i in range(n_bodyparts) for j in range(i + 1, n_bodyparts)]


def make_full_data(
    n_frames: int = 10,
    n_animals: int = 3,
    n_bodyparts: int = 12,
    n_unique: int = 0,
    graph=None,
    p_detect: float = 0.95,
    n_false_positives: float = 0.0,
    n_identities: int = 0,
    dtype=np.float32,
    seed: int = 0,
    empty_frames: float = 0.0,
    nan_confidence: float = 0.0,
    image_size: tuple = (640, 480),
    p_low_confidence: float = 0.1,
):
    """Make a DLC ``_full.pickle`` dict.

    Parameters
    ----------
    n_frames, n_animals, n_bodyparts : int
        Sizes (``n_bodyparts`` multi-animal bodyparts).
    n_unique : int
        Unique bodyparts appended after the multi-animal ones (one detection each).
    graph : list of (int, int), optional
        PAF graph (default: all pairs).
    p_detect : float
        Probability that a bodypart of an animal is detected.
    n_false_positives : float
        Mean number of spurious detections per bodypart and frame (Poisson).
    n_identities : int
        If > 0, add ``identity`` scores of shape (n_det, n_identities).
    dtype : numpy dtype
        dtype of confidences and costs (DLC files hold float16 or float32).
    empty_frames : float
        Fraction of frames without any detection.
    nan_confidence : float
        Fraction of detections whose confidence is NaN.
    p_low_confidence : float
        Fraction of true detections with a low confidence (uniform in [0, 0.15]).

    Returns
    -------
    dict
        ``{"metadata": ..., "frame000": {...}, ...}``.
    """
    rng = np.random.default_rng(seed)
    graph = full_graph(n_bodyparts) if graph is None else [list(e) for e in graph]
    template = rng.normal(0, 25, size=(n_bodyparts, 2))
    width = max(1, int(math.ceil(math.log10(max(n_frames, 2)))))
    names = [f"bp{i}" for i in range(n_bodyparts)] + [f"u{i}" for i in range(n_unique)]
    data = {
        "metadata": {
            "nms radius": 5.0,
            "minimal confidence": 0.01,
            "sigma": 1,
            "PAFgraph": graph,
            "PAFinds": np.arange(len(graph)),
            "all_joints": [[i] for i in range(len(names))],
            "all_joints_names": names,
            "nframes": n_frames,
        }
    }
    centers = rng.uniform([80, 80], [image_size[0] - 80, image_size[1] - 80], size=(n_animals, 2))
    for f in range(n_frames):
        centers += rng.normal(0, 2, size=centers.shape)
        coords, confs, owners, ids = [], [], [], []
        empty = rng.random() < empty_frames
        for b in range(n_bodyparts):
            xy, cf, ow = [], [], []
            if not empty:
                for a in range(n_animals):
                    if rng.random() < p_detect:
                        xy.append(centers[a] + template[b] + rng.normal(0, 2, 2))
                        cf.append(rng.uniform(0.3, 1.0) if rng.random() >= p_low_confidence else rng.uniform(0, 0.15))
                        ow.append(a)
                for _ in range(rng.poisson(n_false_positives)):
                    xy.append(rng.uniform([0, 0], image_size))
                    cf.append(rng.uniform(0.0, 0.6))
                    ow.append(-1)
            order = rng.permutation(len(xy))
            xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)[order]
            cf = np.asarray(cf, dtype=np.float64)[order]
            ow = np.asarray(ow, dtype=int)[order]
            if nan_confidence:
                cf[rng.random(len(cf)) < nan_confidence] = np.nan
            coords.append(np.round(xy, 3))
            confs.append(cf.astype(dtype).reshape(-1, 1))
            owners.append(ow)
            if n_identities:
                s = rng.uniform(0, 0.3, size=(len(ow), n_identities))
                for r, o in enumerate(ow):
                    if o >= 0:
                        s[r, o % n_identities] = rng.uniform(0.6, 1.0)
                ids.append(s.astype(dtype))
        for u in range(n_unique):
            if empty or rng.random() > p_detect:
                coords.append(np.zeros((0, 2)))
                confs.append(np.zeros((0, 1), dtype=dtype))
                if n_identities:
                    ids.append(np.zeros((0, n_identities), dtype=dtype))
            else:
                coords.append(rng.uniform([0, 0], image_size, size=(1, 2)))
                confs.append(np.asarray([[rng.uniform(0, 1)]], dtype=dtype))
                if n_identities:
                    ids.append(rng.uniform(0, 1, size=(1, n_identities)).astype(dtype))
        costs = {}
        for k, (s, t) in enumerate(graph):
            ns, nt = len(coords[s]), len(coords[t])
            m1 = rng.uniform(0, 0.3, size=(ns, nt))
            if s < n_bodyparts and t < n_bodyparts:
                same = (owners[s][:, None] == owners[t][None, :]) & (owners[s][:, None] >= 0)
                m1[same] = rng.uniform(0.5, 1.0, size=int(same.sum()))
            dist = np.sqrt(((coords[s][:, None] - coords[t][None]) ** 2).sum(-1)) / 8
            costs[k] = {"m1": np.round(m1, 3).astype(dtype), "distance": np.round(dist, 3).astype(dtype)}
        frame = {"coordinates": (coords,), "confidence": confs, "costs": costs}
        if n_identities:
            frame["identity"] = ids
        data[f"frame{str(f).zfill(width)}"] = frame
    return data
