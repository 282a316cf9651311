"""Generated tracklet workloads with known ground truth (tests and benchmarks).

:func:`fragmented_tracklets` simulates ``n_animals`` smooth trajectories and cuts each
into tracklets separated by short detection gaps, the way a frame-to-frame tracker
fragments real recordings.  The result is a dict in DLC's tracklet-pickle layout, so both
mapose and DeepLabCut can stitch it, plus each tracklet's true animal.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fragmented_tracklets"]


def fragmented_tracklets(n_animals=10, n_bodyparts=5, n_frames=1000, mean_length=60, max_gap=4,
                         residual_fraction=0.1, identity=False, seed=0, arena=1000.0, string_keys=True):
    """Tracklets of ``n_animals`` animals, fragmented at random.

    Parameters
    ----------
    n_animals, n_bodyparts, n_frames : int
        Problem size.
    mean_length : float
        Mean tracklet length in frames (geometric pieces).
    max_gap : int
        Gaps between consecutive pieces of one animal are 1..max_gap frames.
    residual_fraction : float
        Fraction of pieces cut short (2..6 frames) to create residuals.
    identity : bool
        Fill the 4th column with the true animal index (else -1).
    seed : int
        Random seed.
    arena : float
        Side of the square the animals move in (pixels).
    string_keys : bool
        ``"frame%0Nd"`` keys (DLC 3.x) instead of int keys.

    Returns
    -------
    tracklets : dict
        ``{"header": MultiIndex, np.int64(id): {frame_key: ndarray (n_bodyparts, 4)}}``.
    truth : dict
        ``{np.int64(id): animal index}``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    width = max(1, int(np.ceil(np.log10(max(n_frames, 2)))))
    # smooth trajectories: integrated noisy velocities, reflected at the walls
    vel = np.cumsum(rng.normal(0, 0.3, (n_frames, n_animals, 2)), axis=0)
    vel = np.clip(vel, -6, 6)
    pos = rng.uniform(0.1 * arena, 0.9 * arena, (n_animals, 2)) + np.cumsum(vel, axis=0)
    pos = np.abs(np.mod(pos, 2 * arena) - arena) if arena else pos
    offsets = rng.normal(0, 15, (n_animals, n_bodyparts, 2))
    xy = pos[:, :, None, :] + offsets[None] + rng.normal(0, 1.0, (n_frames, n_animals, n_bodyparts, 2))
    like = rng.uniform(0.6, 1.0, (n_frames, n_animals, n_bodyparts))

    tracklets = {}
    truth = {}
    next_id = 0
    for a in range(n_animals):
        f = int(rng.integers(0, max_gap + 1))
        while f < n_frames:
            if rng.random() < residual_fraction:
                length = int(rng.integers(2, 7))
            else:
                length = int(rng.geometric(1.0 / mean_length)) + 10
            stop = min(n_frames, f + length)
            piece = {}
            for k in range(f, stop):
                arr = np.empty((n_bodyparts, 4))
                arr[:, :2] = xy[k, a]
                arr[:, 2] = like[k, a]
                arr[:, 3] = a if identity else -1
                if n_bodyparts > 1 and rng.random() < 0.05:  # a missing keypoint
                    arr[int(rng.integers(n_bodyparts)), :2] = np.nan
                    arr[int(rng.integers(n_bodyparts)), 2] = 0.0
                piece["frame" + str(k).zfill(width) if string_keys else k] = arr
            tid = np.int64(next_id)
            tracklets[tid] = piece
            truth[tid] = a
            next_id += 1
            f = stop + int(rng.integers(1, max_gap + 1))
    # trackers report ids in order of appearance, not per animal
    order = sorted(tracklets, key=lambda t: (_first_frame(tracklets[t]), int(t)))
    scorer = "DLC_synthetic"
    bpts = [f"bodypart{i}" for i in range(n_bodyparts)]
    # object-dtype levels, as DLC writes them, so pandas 2 (DLC's) can unpickle the file
    header = pd.MultiIndex.from_arrays(
        [pd.Index([scorer] * 3 * n_bodyparts, dtype=object),
         pd.Index(np.repeat(bpts, 3).tolist(), dtype=object),
         pd.Index(["x", "y", "likelihood"] * n_bodyparts, dtype=object)],
        names=["scorer", "bodyparts", "coords"],
    )
    out = {t: tracklets[t] for t in order}
    out["header"] = header
    return out, truth


def _first_frame(piece) -> int:
    key = next(iter(piece))
    return int(key[5:]) if isinstance(key, str) else int(key)
