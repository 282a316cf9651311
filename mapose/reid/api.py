"""``transformer_reID`` and ``create_tracking_dataset``: DLC 3.0.2's unsupervised ReID.

Steps (each callable on its own, as in DeepLabCut):

1. :func:`create_tracking_dataset` re-runs the pose model over each video, writes the
   keypoint backbone features (``<video><scorer>_bpt_features.pickle`` shelve, see
   :mod:`mapose.reid.features`) and mines triplets from the tracker's tracklets
   (``_triplet_vector.npy``, see :mod:`mapose.reid.triplets`);
2. :func:`~mapose.reid.train.train_tracking_transformer` trains the transformer and
   saves ``dlc_transreid_<epoch>.pth`` in the shuffle's ``train`` folder;
3. :func:`mapose.stitch_tracklets` with ``transformer_checkpoint`` stitches with
   appearance weights and writes ``<video><scorer>_el_tr.h5``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["create_tracking_dataset", "transformer_reID", "extract_features"]


def extract_features(config, videos, video_extensions=None, shuffle=1, trainingsetindex=0,
                     destfolder=None, batch_size=None, cropping=None, modelprefix="",
                     robust_nframes=False, *, device=None, progress=True) -> str:
    """Step 1a: write each video's ``_bpt_features.pickle`` shelve; returns the scorer.

    Parameters are :func:`create_tracking_dataset`'s (without the mining).
    """
    from mapose.inference.analyze import _check_transform, _full_metadata, _read_pose_cfg, runner_head_specs
    from mapose.inference.predictor import BottomUpPredictor
    from mapose.inference.project_model import find_project_model
    from mapose.inference.video import probe_video
    from mapose.io.config import config_get
    from mapose.io.project import list_videos
    from mapose.reid.features import FeatureShelfWriter, _FeatureRunner, extract_video_features, features_path

    pm = find_project_model(config, shuffle, trainingsetindex, None, modelprefix)
    _check_transform(pm)
    cfg = pm.cfg
    if batch_size is None:
        batch_size = int(config_get(cfg, "batch_size", 1) or 1)
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}.")
    if cropping is None and cfg.get("cropping", False):
        cropping = [cfg.get("x1"), cfg.get("x2"), cfg.get("y1"), cfg.get("y2")]
    video_list = list_videos(videos, video_extensions)
    if not video_list:
        raise ValueError(f"no videos found in {videos!r} (video_extensions={video_extensions!r}).")
    pose_cfg = _read_pose_cfg(pm)
    runner = _FeatureRunner(pm.build_model(), device=device)
    predictor = BottomUpPredictor(runner_head_specs(runner, pm))
    predictor.identity = None  # DLC's feature runner keeps the assembler's row order
    for video in video_list:
        info = probe_video(video, cropping)
        out = features_path(video, pm.scorer, destfolder)
        if progress:
            print(f"Extracting ReID features of {video}: {info.n_frames} frames -> {out.name}")
        n_expected = info.n_frames or None
        with FeatureShelfWriter(out, _full_metadata(pm, pose_cfg, n_expected), n_expected) as writer:
            n = extract_video_features(runner, predictor, info, writer, int(batch_size), progress)
            if n == 0:
                raise ValueError(f"video '{video}' produced no frames.")
    return pm.scorer


def create_tracking_dataset(config, videos, track_method, video_extensions=None, shuffle=1,
                            trainingsetindex=0, gputouse=None, destfolder=None, batch_size=None,
                            cropping=None, TFGPUinference=True, modelprefix="",
                            robust_nframes=False, n_triplets=1000, engine=None, *, device=None,
                            random_state=0, progress=True) -> str:
    """Create the ReID training data: keypoint features and mined triplets (DLC's function).

    Signature of ``deeplabcut.create_tracking_dataset`` (DLC's top-level, engine-dispatching
    version).

    Parameters
    ----------
    config : str or os.PathLike
        The project's ``config.yaml``.
    videos : list of str or os.PathLike
        Videos (or folders) already analysed and tracked with ``track_method``.
    track_method : str
        ``"ellipse"``, ``"box"`` or ``"skeleton"``.
    video_extensions, shuffle, trainingsetindex, modelprefix, destfolder
        As in :func:`mapose.analyze_videos`.
    gputouse : int, optional
        Alias of ``device`` (an int picks ``cuda:<n>``).
    batch_size : int, optional
        Frames per network call (default: the config's ``batch_size``).
    TFGPUinference : bool
        TensorFlow-only; ignored.
    engine : None or "pytorch"
        mapose runs DLC 3 PyTorch models only; ``"tensorflow"`` raises a ValueError.
    cropping : list of int, optional
        ``[x1, x2, y1, y2]`` (default: the config's crop when ``cropping: true``).
    robust_nframes : bool
        Accepted for DLC compatibility; frames are always counted while decoding.
    n_triplets : int, default 1000
        Triplets mined per video.
    device : str, optional
        Torch device (default: CUDA when available).
    random_state : None, int or numpy.random.RandomState, default 0
        Mining generator.  ``0`` reproduces a fresh DeepLabCut session (DLC seeds NumPy's
        global generator with 0 at import); ``None`` uses NumPy's global generator.
    progress : bool, default True

    Returns
    -------
    str
        The scorer name.
    """
    from mapose.io.project import list_videos
    from mapose.reid.triplets import create_triplets_dataset

    _check_track_method(track_method)
    if engine is not None and str(getattr(engine, "value", engine)).lower() not in ("pytorch", "torch"):
        raise ValueError(f"engine={engine!r}: mapose runs DeepLabCut 3 PyTorch models only; pass "
                         "engine=None or 'pytorch' (use DeepLabCut for TensorFlow models).")
    if device is None and gputouse is not None:
        device = gputouse
    if isinstance(n_triplets, bool) or not isinstance(n_triplets, (int, np.integer)) or n_triplets < 1:
        raise ValueError(f"n_triplets must be a positive int; got {n_triplets!r}.")
    scorer = extract_features(config, videos, video_extensions, shuffle, trainingsetindex,
                              destfolder, batch_size, cropping, modelprefix, robust_nframes,
                              device=device, progress=progress)
    create_triplets_dataset(list_videos(videos, video_extensions), scorer, track_method,
                            n_triplets=n_triplets, destfolder=destfolder, random_state=random_state)
    return scorer


def _check_track_method(track_method):
    if track_method not in ("ellipse", "box", "skeleton"):
        raise ValueError(f"track_method must be 'ellipse', 'box' or 'skeleton' (the trackers whose "
                         f"tracklets are mined); got {track_method!r}.")


def transformer_reID(config, videos, video_extensions=None, shuffle=1, trainingsetindex=0,
                     track_method="ellipse", n_tracks=None, n_triplets=1000, train_epochs=100,
                     train_frac=0.8, modelprefix="", destfolder=None, *, device=None,
                     random_state=0, seed=None, progress=True):
    """Train a ReID transformer on the videos' tracklets and stitch with it (DLC's function).

    Needs ``analyze_videos`` (with tracking) to have run with ``track_method`` first.
    Writes the features shelve and triplets next to the videos (or in ``destfolder``),
    ``dlc_transreid_<epoch>.pth`` every 10 epochs plus ``dlc_transreid_results.pickle``
    into the shuffle's ``train`` folder, and the stitched ``<video><scorer>_el_tr.h5``.

    Parameters
    ----------
    config, videos, video_extensions, shuffle, trainingsetindex, modelprefix, destfolder
        As in :func:`mapose.analyze_videos`.
    track_method : str, default "ellipse"
        Tracker whose tracklets are mined and stitched.
    n_tracks : int, optional
        Number of animals for stitching (default: the config's individuals).
    n_triplets : int, default 1000
    train_epochs : int, default 100
        A multiple of 10 (checkpoints are written every 10 epochs and stitching uses
        ``dlc_transreid_<train_epochs>.pth``).
    train_frac : float, default 0.8
        Share of each video's triplets used for training; the rest measures accuracy.

    Keyword-only (mapose): ``device`` (torch device), ``random_state`` (mining and split
    generator; ``0`` reproduces a fresh DeepLabCut session, None uses NumPy's global
    generator), ``seed`` (``torch.manual_seed`` before the model is built), ``progress``.

    Returns
    -------
    list of pathlib.Path
        The ``_tr`` track files written.
    """
    from mapose.inference.project_model import find_project_model
    from mapose.reid.train import train_tracking_transformer
    from mapose.reid.triplets import as_random_state
    from mapose.stitching.api import stitch_tracklets

    _check_track_method(track_method)
    if (isinstance(train_epochs, bool) or not isinstance(train_epochs, (int, np.integer))
            or train_epochs < 10 or train_epochs % 10):
        raise ValueError(f"train_epochs must be a positive multiple of 10 (checkpoints are saved "
                         f"every 10 epochs and stitching uses the last); got {train_epochs!r}.")
    if not 0 < float(train_frac) <= 1:
        raise ValueError(f"train_frac must be in (0, 1]; got {train_frac!r}.")
    pm = find_project_model(config, shuffle, trainingsetindex, None, modelprefix)
    # one generator through mining and the split: DLC's global-generator sequence
    rng = as_random_state(random_state)
    scorer = create_tracking_dataset(config, videos, track_method, video_extensions=video_extensions,
                                     shuffle=shuffle, trainingsetindex=trainingsetindex,
                                     destfolder=destfolder, modelprefix=modelprefix,
                                     n_triplets=n_triplets, device=device, random_state=rng,
                                     progress=progress)
    train_dir = pm.model_folder / "train"
    train_tracking_transformer(config, scorer, videos, video_extensions, train_frac, modelprefix,
                               train_epochs, ckpt_folder=train_dir, destfolder=destfolder,
                               random_state=rng, seed=seed, device=device, progress=progress)
    checkpoint = Path(train_dir) / f"dlc_transreid_{train_epochs}.pth"
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    return stitch_tracklets(config, videos, video_extensions=video_extensions, shuffle=shuffle,
                            trainingsetindex=trainingsetindex, track_method=track_method,
                            modelprefix=modelprefix, n_tracks=n_tracks,
                            transformer_checkpoint=checkpoint, destfolder=destfolder)
