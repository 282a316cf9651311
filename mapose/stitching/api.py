"""``stitch_tracklets``: DeepLabCut's project-level stitching entry point."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from mapose.stitching.stitcher import TrackletStitcher

__all__ = ["stitch_tracklets", "identity_weighted_distance"]


class identity_weighted_distance:  # noqa: N801 - used like a function, as in DLC
    """DLC's weight when tracklets carry identities: ``(0.01 if same id else 1) * distance``.

    :meth:`TrackletStitcher.build_graph` recognises it and computes it vectorised.
    """

    def __call__(self, t1, t2):
        w = 0.01 if t1.identity == t2.identity else 1
        return w * t1.distance_to(t2)


def stitch_tracklets(
    config_path,
    videos,
    video_extensions=None,
    shuffle=1,
    trainingsetindex=0,
    n_tracks=None,
    animal_names=None,
    min_length=10,
    split_tracklets=True,
    prestitch_residuals=True,
    max_gap=None,
    weight_func=None,
    destfolder=None,
    modelprefix="",
    track_method="",
    output_name="",
    transformer_checkpoint="",
    save_as_csv=False,
    **kwargs,
):
    """Stitch each video's tracklets into ``n_tracks`` tracks (DLC's ``stitch_tracklets``).

    Reads ``<video stem><scorer><_el|_bx|_sk>.pickle`` from ``destfolder`` (default: the
    video's folder) and writes ``<video stem><scorer><_el|_bx|_sk>.h5`` (key ``"tracks"``,
    table format) next to it, plus ``.csv`` with ``save_as_csv``.

    Parameters
    ----------
    config_path : str or os.PathLike
        The project's ``config.yaml``.
    videos : list of str or os.PathLike
        Videos (or folders of videos) whose tracklets to stitch.
    video_extensions : str or sequence of str, optional
        Only videos with these extensions (and when scanning folders).
    shuffle, trainingsetindex, modelprefix
        Select the model (and so the scorer name in the file names).
    n_tracks : int, optional
        Number of tracks; default ``len(animal_names)``.
    animal_names : list of str, optional
        Individual names for the columns; default the config's ``individuals``.  If they
        are fewer than ``n_tracks``, the columns are ``ind1..indN`` (as DLC).
    min_length, split_tracklets, prestitch_residuals, max_gap, weight_func
        See :class:`~mapose.stitching.stitcher.TrackletStitcher`.  When the tracklets carry
        identities and ``weight_func`` is None, links between tracklets of the same
        identity cost 100 times less (DLC's rule).
    destfolder : str, optional
        Folder holding the tracklet pickles and receiving the tracks.
    track_method : str, optional
        ``"ellipse"``, ``"box"`` or ``"skeleton"``; default from the config.
    output_name : str, optional
        Output file name (default: the pickle name with ``.h5``).
    transformer_checkpoint : str or os.PathLike, optional
        A ``dlc_transreid_<epoch>.pth`` from :func:`mapose.transformer_reID`: links are
        weighted by appearance, ``int(100 * -(cos + 1) / 2)`` between the ReID embeddings
        of the earlier tracklet's last frame and the later one's first frame (float64 on
        the CPU, as DLC), read from the video's ``_bpt_features.pickle``; ``weight_func``
        and identities are then ignored and the output is ``…_el_tr.h5`` (suffix ``tr``).
        Needs torch.
    save_as_csv : bool, default False
        Also write a ``.csv``.

    Returns
    -------
    list of pathlib.Path
        The track files written (DLC returns None; a list is as falsy-safe for scripts).

    Raises
    ------
    ValueError
        Bad ``track_method`` (``"ctd"`` has no tracklets), ``n_tracks`` and
        ``animal_names`` of different lengths, a checkpoint that is not a ReID checkpoint or
        does not fit the features (keypoints / feature size).
    FileNotFoundError
        Missing config or videos, missing ``transformer_checkpoint`` (also a ValueError), or
        a missing features shelve (run transformer_reID first).
    ImportError
        ``transformer_checkpoint`` without torch installed (names the extra).
    """
    from mapose.io.config import read_config
    from mapose.io.project import TRACK_METHODS, get_scorer_name, get_track_method, list_videos, output_stem

    if kwargs:
        warnings.warn(f"stitch_tracklets ignores unknown arguments {sorted(kwargs)}.", UserWarning, stacklevel=2)
    reid_model = None
    if transformer_checkpoint:
        from mapose._optional import require

        require("torch", "stitching with a transformer_checkpoint")
        from mapose.reid.model import load_checkpoint

        reid_model = load_checkpoint(transformer_checkpoint, dtype=require("torch").float64)
    cfg = read_config(config_path)
    track_method = get_track_method(cfg, track_method=track_method)
    if track_method == "ctd":
        raise ValueError(
            "track_method='ctd' (CTD tracking) writes tracks directly and has no tracklets to "
            "stitch; use 'ellipse', 'box' or 'skeleton'."
        )
    if n_tracks is not None:
        if isinstance(n_tracks, bool) or not isinstance(n_tracks, (int, np.integer)) or n_tracks < 1:
            raise ValueError(f"n_tracks must be a positive integer; got {n_tracks!r}.")
    if animal_names is not None and n_tracks is not None and len(animal_names) != n_tracks:
        raise ValueError(
            f"animal_names has {len(animal_names)} names but n_tracks={n_tracks}; pass as many "
            "names as tracks, or only one of the two."
        )
    if animal_names is None:
        animal_names = list(cfg.get("individuals") or [])
    if n_tracks is None:
        n_tracks = len(animal_names)
        if n_tracks < 1:
            raise ValueError(
                "The config lists no individuals, so the number of tracks is unknown; pass n_tracks."
            )
    scorer = get_scorer_name(cfg, shuffle, trainingsetindex, modelprefix=modelprefix)
    suffix = TRACK_METHODS[track_method]
    written = []
    for video in list_videos(videos, video_extensions):
        stem = output_stem(video, scorer, destfolder)
        pickle_file = stem.parent / (stem.name + suffix + ".pickle")
        if not pickle_file.exists():
            print(f"{pickle_file} not found. Run convert_detections2tracklets (or analyze_videos "
                  "with auto_track=True) for this video first.")
            continue
        shelf = None
        if reid_model is not None:
            from mapose.reid.features import FeatureShelf, features_path

            # checked before the (slower) stitcher is built, as DLC opens it first
            shelf = FeatureShelf(features_path(video, scorer, destfolder))
        try:
            stitcher = TrackletStitcher.from_pickle(
                pickle_file, n_tracks, min_length, split_tracklets, prestitch_residuals
            )
            if reid_model is not None:
                from mapose.reid.stitching import TransformerWeight

                wf = TransformerWeight(reid_model, shelf)
                wf.prepare(stitcher.tracklets)
            else:
                wf = weight_func
                if wf is None and any(t.identity != -1 for t in stitcher.tracklets):
                    wf = identity_weighted_distance()
            stitcher.build_graph(max_gap=max_gap, weight_func=wf)
        finally:
            if shelf is not None:
                shelf.close()
        stitcher.stitch()
        suffix_out = "tr" if reid_model is not None else ""
        written.append(stitcher.write_tracks(output_name, suffix_out, animal_names, save_as_csv))
    return written
