"""Shared generators and loaders for the tracking tests (no conftest changes needed)."""
from __future__ import annotations

import pickle

import numpy as np


def make_sequence(n_animals, n_bpts, n_frames, seed=0, p_missing_bpt=0.1, p_missing_animal=0.05):
    """Animals drifting with noisy keypoints; returns a list of (n, n_bpts, 4) frames.

    Keypoints go missing (NaN rows), whole animals drop out, and each frame's animal order
    is shuffled, like real assemblies.
    """
    rng = np.random.default_rng(seed)
    centers = rng.uniform(100, 900, (n_animals, 2))
    vel = rng.normal(0, 3, (n_animals, 2))
    offsets = rng.normal(0, 20, (n_animals, n_bpts, 2))
    frames = []
    for _ in range(n_frames):
        vel += rng.normal(0, 0.5, vel.shape)
        centers += vel
        poses = centers[:, None] + offsets + rng.normal(0, 2, offsets.shape)
        conf = rng.uniform(0.5, 1, (n_animals, n_bpts, 1))
        data = np.concatenate([poses, conf, -np.ones((n_animals, n_bpts, 1))], axis=2)
        data[rng.random((n_animals, n_bpts)) < p_missing_bpt] = np.nan
        data = data[rng.random(n_animals) >= p_missing_animal]
        frames.append(data[rng.permutation(len(data))])
    return frames


def load_pickle(path):
    # DLC's own test files (read-only, trusted); tracklet pickles hold a pandas header
    with open(path, "rb") as fh:
        return pickle.load(fh)


def montblanc_frames(unittest_data):
    """DLC's ``real_assemblies_montblanc`` fixture: {frame: (n, 4, 4)} in frame order, single."""
    temp = load_pickle(unittest_data / "montblanc_assemblies.pickle")
    single = temp.pop("single")
    frames = {}
    for k in sorted(temp):
        arrs = [np.asarray(a, dtype=float) for a in temp[k]]
        arrs = [a for a in arrs if not np.isnan(a[:, :2]).all()]
        if arrs:
            frames[k] = np.stack(arrs)
    return frames, single


def trimouse_frames(unittest_data):
    temp = load_pickle(unittest_data / "trimouse_assemblies.pickle")
    return {k: np.stack([np.asarray(a, dtype=float) for a in temp[k]]) for k in sorted(temp)}
