"""Triplet mining for the ReID transformer (DLC's ``TrackletStitcher.mine`` and
``create_triplets_dataset``).

A triplet is ``(anchor, positive, negative)``, each ``(keypoints (K, 2) int, frame)``:

* the anchor tracklet is drawn with probability proportional to its mean likelihood,
  among tracklets that overlap others in time (others are redrawn);
* the negative is the overlapping tracklet nearest to it (``distance_to``), at an anchor
  frame drawn uniformly from their common frames;
* the positive is the anchor tracklet at another of its frames.

The feature rows of each member are then looked up in the ``_bpt_features.pickle``
shelve (:func:`mapose.reid.features.query_feature_by_coord`) and saved as
``<video stem><scorer>_triplet_vector.npy``, float64 of shape (N, 3, K, C).

Randomness: DLC draws from NumPy's global legacy generator, seeded with 0 when
DeepLabCut is imported.  :func:`mine` uses the global generator too unless given a
``random_state``; :func:`create_triplets_dataset` and :func:`mapose.reid.transformer_reID`
default to ``RandomState(0)``, which reproduces a fresh DeepLabCut session's triplets
without touching the global generator.
"""
from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = ["mine", "overlap_lookup", "save_train_triplets", "create_triplets_dataset",
           "generate_train_triplets_from_pickle", "create_train_using_pickle", "triplets_path",
           "as_random_state"]

TRIPLETS_SUFFIX = "_triplet_vector.npy"


def as_random_state(random_state):
    """``None`` → NumPy's global generator (``np.random``), int → ``RandomState(int)``,
    a ``RandomState`` passes through."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return np.random.RandomState(int(random_state))
    raise TypeError(f"random_state must be None, an int seed or a numpy.random.RandomState; got "
                    f"{type(random_state).__name__} {random_state!r}.")


def triplets_path(video, scorer: str, destfolder=None) -> Path:
    """``<destfolder or video folder>/<video stem><scorer>_triplet_vector.npy``."""
    from mapose.io.project import output_stem

    stem = output_stem(video, scorer, destfolder)
    return stem.parent / (stem.name + TRIPLETS_SUFFIX)


def overlap_lookup(tracklets) -> dict:
    """DLC's ``_lu_overlap``: tracklet → list of tracklets sharing a frame with it.

    Lists are in the order of ``tracklets`` (DLC scans pairs in that order), which decides
    ties of the nearest-negative choice.
    """
    lu: dict = {}
    for t1, t2 in combinations(tracklets, 2):
        if np.isin(t1.inds, t2.inds).any():
            lu.setdefault(t1, []).append(t2)
            lu.setdefault(t2, []).append(t1)
    return lu


def mine(stitcher, n_samples: int, random_state=None) -> list:
    """Mine ``n_samples`` triplets from a stitcher's tracklets (``TrackletStitcher.mine``).

    Parameters
    ----------
    stitcher : TrackletStitcher
    n_samples : int
        Triplets to return (``>= 0``).
    random_state : None, int or numpy.random.RandomState
        None draws from NumPy's global generator exactly as DLC does.

    Returns
    -------
    list of tuple
        ``((anchor (K, 2) int, frame), (positive (K, 2) int, frame), (negative (K, 2) int,
        frame))``; anchor and negative share the frame.

    Raises
    ------
    ValueError
        No two tracklets overlap in time (DLC's "No overlapping tracklets found."), or the
        overlapping tracklets all have zero likelihood (DLC would loop forever).
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise ValueError(f"n_samples must be a non-negative int; got {n_samples!r}.")
    rng = as_random_state(random_state)
    tracklets = list(stitcher.tracklets)
    lu = getattr(stitcher, "_lu_overlap", None)
    if not lu:
        lu = overlap_lookup(tracklets)
    if not lu:
        raise ValueError(
            "No overlapping tracklets found: triplets need two animals visible in the same "
            "frame (anchor and negative). Mine from a video where animals are tracked "
            "simultaneously (check n_tracks / the tracker's output).")
    p = np.asarray([t.likelihood for t in tracklets], dtype=np.float64)
    p = np.where(np.isfinite(p), p, 0.0)  # DLC: NaN probabilities make np.random.choice raise
    if not any(p[i] > 0 for i, t in enumerate(tracklets) if lu.get(t)):
        raise ValueError("Every tracklet that overlaps another has zero mean likelihood, so no "
                         "anchor can be drawn; check the tracklets' likelihood column.")
    p /= p.sum()
    triplets = []
    while len(triplets) != n_samples:
        # an index draw consumes the generator exactly as choice over the tracklets
        tracklet = tracklets[rng.choice(len(tracklets), p=p)]
        others = lu.get(tracklet)
        if not others:
            continue
        neg_t = others[int(np.argmin([tracklet.distance_to(t) for t in others]))]
        # a Python set of the frame numbers, as DLC builds it: its iteration order decides
        # which frame a given draw picks
        common = set(tracklet.inds).intersection(neg_t.inds)
        ind_anchor = rng.choice(list(common))
        ind_pos = rng.choice(tracklet.inds[tracklet.inds != ind_anchor])
        # missing keypoints (NaN) cast to INT64_MIN, as in DLC; the feature lookup then
        # discards them (their differences exceed 9000)
        with np.errstate(invalid="ignore"):
            anchor = tracklet.get_data_at(ind_anchor)[:, :2].astype(int)
            neg = neg_t.get_data_at(ind_anchor)[:, :2].astype(int)
            pos = tracklet.get_data_at(ind_pos)[:, :2].astype(int)
        triplets.append(((anchor, ind_anchor), (pos, ind_pos), (neg, ind_anchor)))
    return triplets


def save_train_triplets(feature_fname, triplets, out_name) -> int:
    """Look the triplets' features up in the shelve and save ``(N, 3, K, C)`` float64.

    Triplets with a frame missing from the shelve are skipped (DLC).  Written atomically
    and streamed through a memory map, so memory does not grow with ``N``.

    Returns
    -------
    int
        Triplets saved.
    """
    from mapose.io.atomic import atomic_path
    from mapose.reid.features import FeatureShelf, query_feature_by_coord

    with FeatureShelf(feature_fname) as shelf:
        # DLC derives the key width from the number of shelve keys; the width recorded in
        # the shelve is the writer's own, which also holds when DLC's count is off by one
        key = shelf.frame_key
        keep = [tr for tr in triplets if all(key(m[1]) in shelf for m in tr)]
        out_name = Path(os.fspath(out_name))
        cache: dict[str, dict] = {}

        def frame(k):
            if k not in cache:
                if len(cache) > 64:
                    cache.clear()
                cache[k] = shelf[k]
            return cache[k]

        if not keep:
            with atomic_path(out_name) as tmp:
                np.save(tmp, np.zeros((0,)))
            return 0
        first = query_feature_by_coord(frame(key(keep[0][0][1])), keep[0][0][0])
        with atomic_path(out_name) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64,
                                            shape=(len(keep), 3) + first.shape)
            for i, tr in enumerate(keep):
                for j, (coord, ind) in enumerate(tr):
                    arr[i, j] = query_feature_by_coord(frame(key(ind)), coord)
            arr.flush()
            del arr
    return len(keep)


def generate_train_triplets_from_pickle(path_to_track, n_triplets=1000, *, random_state=None) -> list:
    """Triplets mined from a tracklet pickle (DLC's helper: ``n_tracks=3``, default stitcher)."""
    from mapose.stitching.stitcher import TrackletStitcher

    return mine(TrackletStitcher.from_pickle(path_to_track, 3), int(n_triplets), random_state=random_state)


def create_train_using_pickle(feature_fname, path_to_pickle, out_name, n_triplets=1000, *,
                              random_state=None) -> int:
    """Mine triplets from ``path_to_pickle`` and save their features to ``out_name`` (DLC's helper)."""
    triplets = generate_train_triplets_from_pickle(path_to_pickle, n_triplets, random_state=random_state)
    return save_train_triplets(feature_fname, triplets, out_name)


def create_triplets_dataset(videos, dlcscorer, track_method, n_triplets=1000, destfolder=None,
                            *, random_state=None) -> list[Path]:
    """Mine triplets from each video's tracklets and save their features (DLC's function).

    Parameters
    ----------
    videos : list of str or os.PathLike
        Video files (their tracklets and features shelve must exist).
    dlcscorer : str
        Scorer name in the file names.
    track_method : str
        ``"ellipse"``, ``"box"`` or ``"skeleton"``: whose tracklets to mine.
    n_triplets : int, default 1000
    destfolder : str, optional
        Folder of the tracklets, features and output (default: each video's folder).
    random_state : None, int or numpy.random.RandomState
        Generator for the mining (None: NumPy's global one, as DLC).

    Returns
    -------
    list of pathlib.Path
        The ``_triplet_vector.npy`` files written.

    Raises
    ------
    ValueError
        Unknown ``track_method`` or missing tracklet pickle (run analyze_videos /
        convert_detections2tracklets first), no overlapping tracklets.
    FileNotFoundError
        Missing features shelve.
    """
    from mapose.io.project import TRACK_METHODS, output_stem
    from mapose.reid.features import features_path

    if track_method not in ("ellipse", "box", "skeleton"):
        raise ValueError(f"track_method must be 'ellipse', 'box' or 'skeleton' (the trackers "
                         f"that write tracklets); got {track_method!r}.")
    rng = as_random_state(random_state)
    written = []
    for video in videos:
        stem = output_stem(video, dlcscorer, destfolder)
        method = TRACK_METHODS[track_method]
        track_file = stem.parent / (stem.name + f"{method}.pickle")
        if not track_file.exists():
            raise ValueError(
                f"Tracklet file {track_file} does not exist. Please run `analyze_videos` "
                f"(or convert_detections2tracklets) with the {track_method} tracker before "
                "using the ReID transformer.")
        # DLC mines with n_tracks=3 whatever the project's animal count
        out = triplets_path(video, dlcscorer, destfolder)
        create_train_using_pickle(features_path(video, dlcscorer, destfolder), track_file, out,
                                  n_triplets, random_state=rng)
        written.append(out)
    return written
