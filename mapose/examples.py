"""A small synthetic DLC file set, generated locally (no DeepLabCut data needed).

:func:`make_example_poses` draws smooth random trajectories for a few animals;
:func:`write_example_set` writes them in every DLC file format mapose reads:
``_full.pickle`` (PyTorch layout, and the TF layout with PAF costs), a shelve
``_full.pickle``, ``_meta.pickle``, ``_assemblies.pickle``, ``_el.pickle`` tracklets and
stitched ``_el.h5``/``_el.csv`` tracks.  ``mapose info --example`` uses it, and so do the
I/O tests and benchmarks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ExamplePoses", "make_example_poses", "write_example_set", "EXAMPLE_SCORER"]

EXAMPLE_SCORER = "DLC_Resnet50_exampleNov23shuffle1_snapshot_best-50"


@dataclass
class ExamplePoses:
    """Ground-truth poses of the example.

    Attributes
    ----------
    xy : ndarray of shape (n_frames, n_animals, n_bodyparts, 2), float32
        Keypoints in pixels; NaN where a keypoint is missing.
    conf : ndarray of shape (n_frames, n_animals, n_bodyparts), float32
        Confidence in [0, 1]; 0 where missing.
    unique_xy : ndarray of shape (n_frames, n_unique, 2), float32
    unique_conf : ndarray of shape (n_frames, n_unique), float32
    """

    xy: np.ndarray
    conf: np.ndarray
    unique_xy: np.ndarray
    unique_conf: np.ndarray
    bodyparts: list = field(default_factory=list)
    unique_bodyparts: list = field(default_factory=list)
    individuals: list = field(default_factory=list)
    frame_size: tuple = (320, 256)

    @property
    def n_frames(self) -> int:
        return self.xy.shape[0]


def make_example_poses(n_frames: int = 60, n_animals: int = 3, n_bodyparts: int = 4,
                       n_unique: int = 1, missing: float = 0.05, seed: int = 0,
                       frame_size=(320, 256)) -> ExamplePoses:
    """Smooth random-walk animals with a fixed body shape and some missing keypoints.

    Parameters
    ----------
    n_frames, n_animals, n_bodyparts, n_unique : int
        Sizes (n_animals and n_bodyparts >= 1, n_frames >= 0, n_unique >= 0).
    missing : float
        Probability that a keypoint is missing (NaN, confidence 0).
    seed : int
        Random seed; the same arguments always give the same poses.
    """
    for name, v, lo in (("n_frames", n_frames, 0), ("n_animals", n_animals, 1),
                        ("n_bodyparts", n_bodyparts, 1), ("n_unique", n_unique, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}.")
    if not 0 <= missing < 1:
        raise ValueError(f"missing must be in [0, 1), got {missing!r}.")
    rng = np.random.default_rng(seed)
    w, h = frame_size
    steps = rng.normal(0, 2.0, size=(n_frames, n_animals, 2))
    start = rng.uniform([40, 40], [w - 40, h - 40], size=(n_animals, 2))
    centers = start + np.cumsum(steps, axis=0)
    centers = np.abs(np.mod(centers - 20, 2 * (np.array([w, h]) - 40))
                     - (np.array([w, h]) - 40)) + 20  # reflect at the borders
    offsets = np.stack([np.linspace(-12, 12, n_bodyparts), np.zeros(n_bodyparts)], axis=1)
    angle = np.cumsum(rng.normal(0, 0.05, size=(n_frames, n_animals)), axis=0)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1),
                    np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    xy = centers[:, :, None, :] + np.einsum("faij,bj->fabi", rot, offsets)
    xy += rng.normal(0, 0.5, size=xy.shape)
    conf = rng.uniform(0.6, 1.0, size=xy.shape[:3])
    gone = rng.random(xy.shape[:3]) < missing
    xy[gone] = np.nan
    conf[gone] = 0.0
    uxy = rng.uniform([0, 0], [w, h], size=(n_frames, n_unique, 2))
    uconf = rng.uniform(0.5, 1.0, size=(n_frames, n_unique))
    return ExamplePoses(
        xy=xy.astype(np.float32), conf=conf.astype(np.float32),
        unique_xy=uxy.astype(np.float32), unique_conf=uconf.astype(np.float32),
        bodyparts=[f"bodypart{i + 1}" for i in range(n_bodyparts)],
        unique_bodyparts=[f"unique{i + 1}" for i in range(n_unique)],
        individuals=[f"animal{i}" for i in range(n_animals)],
        frame_size=(int(w), int(h)),
    )


def _full_metadata(p: ExamplePoses, graph=None) -> dict:
    names = p.bodyparts + p.unique_bodyparts
    from mapose.io.full_pickle import frame_key_width

    return {
        "nms radius": None, "minimal confidence": None, "sigma": 1,
        "PAFgraph": graph, "PAFinds": np.arange(len(graph or []), dtype=np.int64),
        "all_joints": [[i] for i in range(len(names))], "all_joints_names": names,
        "nframes": p.n_frames, "key_str_width": frame_key_width(p.n_frames),
    }


def pytorch_full_dict(p: ExamplePoses) -> dict:
    """``_full.pickle`` content in DLC 3's PyTorch layout (assembled animals, costs None)."""
    from mapose.io.full_pickle import frame_key

    data = {"metadata": _full_metadata(p)}
    for f in range(p.n_frames):
        coords = [np.ascontiguousarray(p.xy[f, :, b]) for b in range(len(p.bodyparts))]
        confs = [p.conf[f, :, b][:, None].copy() for b in range(len(p.bodyparts))]
        coords += [p.unique_xy[f, u][None].copy() for u in range(len(p.unique_bodyparts))]
        confs += [p.unique_conf[f, u].reshape(1, 1).copy() for u in range(len(p.unique_bodyparts))]
        data[frame_key(f, p.n_frames)] = {"coordinates": (coords,), "confidence": confs, "costs": None}
    return data


def tf_full_dict(p: ExamplePoses) -> dict:
    """``_full.pickle`` content in the classic TF layout: raw peaks + PAF ``costs``.

    Detections per bodypart are the visible keypoints in shuffled order; costs along a
    chain graph give high ``m1`` to same-animal pairs.
    """
    from mapose.io.full_pickle import frame_key

    nb = len(p.bodyparts)
    graph = [[i, i + 1] for i in range(nb - 1)]
    meta = _full_metadata(p, graph)
    meta.pop("key_str_width")
    meta["nms radius"], meta["minimal confidence"] = 5.0, 0.01
    rng = np.random.default_rng(1)
    data = {"metadata": meta}
    for f in range(p.n_frames):
        coords, confs, owners = [], [], []
        for b in range(nb):
            vis = np.flatnonzero(~np.isnan(p.xy[f, :, b, 0]))
            vis = vis[rng.permutation(len(vis))]
            owners.append(vis)
            coords.append(p.xy[f, vis, b].astype(np.float64))
            confs.append(p.conf[f, vis, b][:, None])
        for u in range(len(p.unique_bodyparts)):
            coords.append(p.unique_xy[f, u][None].astype(np.float64))
            confs.append(p.unique_conf[f, u].reshape(1, 1))
        costs = {}
        for k, (s, t) in enumerate(graph):
            same = (owners[s][:, None] == owners[t][None, :]).astype(np.float32)
            m1 = np.round(0.9 * same + 0.05, 3).astype(np.float32)
            d = np.linalg.norm(coords[s][:, None] - coords[t][None], axis=-1) / 8 + 1e-9
            costs[k] = {"m1": m1, "distance": np.round(d, 3).astype(np.float32)}
        data[frame_key(f, p.n_frames)] = {"coordinates": (coords,), "confidence": confs, "costs": costs}
    return data


def assemblies_dict(p: ExamplePoses):
    """PyTorch-layout assemblies ``(n, n_bodyparts, 4)`` per frame and ``single``."""
    nb = len(p.bodyparts)
    out, single = {}, {}
    for f in range(p.n_frames):
        a = np.concatenate([p.xy[f], p.conf[f][..., None],
                            -np.ones((p.xy.shape[1], nb, 1))], axis=-1).astype(np.float64)
        keep = ~np.all(np.isnan(a[..., 0]), axis=1)
        out[f] = a[keep]
        if p.unique_bodyparts:
            single[f] = np.concatenate([p.unique_xy[f], p.unique_conf[f][:, None]], -1).astype(np.float64)
    return out, single


def tracklets_dict(p: ExamplePoses, scorer: str = EXAMPLE_SCORER) -> dict:
    """Tracklet pickle content (PyTorch order): ``header``, ``single``, one id per animal."""
    from mapose.io.full_pickle import frame_key
    from mapose.io.tracklets_pickle import make_tracklet_header

    nb = len(p.bodyparts)
    tr = {"header": make_tracklet_header(scorer, p.bodyparts + p.unique_bodyparts)}
    if p.unique_bodyparts:
        tr["single"] = {f: np.concatenate([p.unique_xy[f], p.unique_conf[f][:, None]], -1).astype(np.float64)
                        for f in range(p.n_frames)}
    for a in range(p.xy.shape[1]):
        frames = {}
        for f in range(p.n_frames):
            if np.all(np.isnan(p.xy[f, a, :, 0])):
                continue
            frames[frame_key(f, p.n_frames)] = np.concatenate(
                [p.xy[f, a], p.conf[f, a][:, None], -np.ones((nb, 1))], -1).astype(np.float64)
        tr[np.int64(a)] = frames
    return tr


def tracks_dataframe(p: ExamplePoses, scorer: str = EXAMPLE_SCORER):
    """Stitched-tracks DataFrame (scorer, individuals, bodyparts, coords), float64."""
    import pandas as pd

    n, na, nb = p.xy.shape[:3]
    vals = np.concatenate([p.xy, p.conf[..., None]], -1).astype(np.float64)
    vals[np.isnan(vals[..., 0]), 2] = np.nan  # stitched tracks: likelihood NaN where x is
    cols = pd.MultiIndex.from_product([[scorer], p.individuals, p.bodyparts, ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(vals.reshape(n, -1), columns=cols, index=range(n))
    if p.unique_bodyparts:
        u = np.concatenate([p.unique_xy, p.unique_conf[..., None]], -1).astype(np.float64)
        ucols = pd.MultiIndex.from_product([[scorer], ["single"], p.unique_bodyparts,
                                            ["x", "y", "likelihood"]], names=cols.names)
        df = df.join(pd.DataFrame(u.reshape(n, -1), columns=ucols, index=range(n)), how="outer")
    return df


def write_example_set(folder, n_frames: int = 60, n_animals: int = 3, n_bodyparts: int = 4,
                      n_unique: int = 1, seed: int = 0, video_name: str = "example") -> dict:
    """Write a complete synthetic DLC output set into ``folder``.

    Returns
    -------
    dict[str, pathlib.Path]
        Kind → file path (``"full"``, ``"full_tf"``, ``"full_shelve"``, ``"meta"``,
        ``"assemblies"``, ``"tracklets"``, ``"tracks_h5"``, ``"tracks_csv"``).
    """
    from mapose.io.assemblies_pickle import write_assemblies_pickle
    from mapose.io.full_pickle import write_full_pickle
    from mapose.io.meta_pickle import write_meta_pickle
    from mapose.io.tracklets_pickle import write_tracklets_pickle
    from mapose.io.tracks_h5 import write_tracks_csv, write_tracks_h5

    folder = Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    p = make_example_poses(n_frames, n_animals, n_bodyparts, n_unique, seed=seed)
    stem = folder / (video_name + EXAMPLE_SCORER)
    tf_stem = folder / (video_name + "tf" + "DLC_resnet50_exampleNov23shuffle1_30000")
    shelf_stem = folder / (video_name + "shelf" + EXAMPLE_SCORER)
    paths = {
        "full": Path(f"{stem}_full.pickle"),
        "full_tf": Path(f"{tf_stem}_full.pickle"),
        "full_shelve": Path(f"{shelf_stem}_full.pickle"),
        "meta": Path(f"{stem}_meta.pickle"),
        "assemblies": Path(f"{stem}_assemblies.pickle"),
        "tracklets": Path(f"{stem}_el.pickle"),
        "tracks_h5": Path(f"{stem}_el.h5"),
        "tracks_csv": Path(f"{stem}_el.csv"),
    }
    full = pytorch_full_dict(p)
    write_full_pickle(paths["full"], full)
    write_full_pickle(paths["full_tf"], tf_full_dict(p))
    write_full_pickle(paths["full_shelve"], full, use_shelve=True)
    write_meta_pickle(paths["meta"], {
        "start": 0.0, "stop": 1.0, "run_duration": 1.0, "Scorer": EXAMPLE_SCORER,
        "pytorch-config": {"net_type": "resnet_50", "method": "bu",
                           "metadata": {"bodyparts": p.bodyparts,
                                        "unique_bodyparts": p.unique_bodyparts,
                                        "individuals": p.individuals}},
        "fps": 25.0, "batch_size": 4, "frame_dimensions": p.frame_size, "nframes": p.n_frames,
        "iteration (active-learning)": 0, "training set fraction": 0.95, "cropping": False,
        "cropping_parameters": [0, p.frame_size[0], 0, p.frame_size[1]],
        "individuals": p.individuals, "bodyparts": p.bodyparts,
        "unique_bodyparts": p.unique_bodyparts,
    })
    asm, single = assemblies_dict(p)
    write_assemblies_pickle(paths["assemblies"], asm, single)
    write_tracklets_pickle(paths["tracklets"], tracklets_dict(p))
    df = tracks_dataframe(p)
    write_tracks_h5(paths["tracks_h5"], df, key="tracks", format="table")
    write_tracks_csv(paths["tracks_csv"], df)
    return paths
