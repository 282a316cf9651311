"""Backbone features at the predicted keypoints: DLC's ``_bpt_features.pickle`` shelve.

Format (DeepLabCut 3.0.2 PyTorch, ``create_tracking_dataset``)
--------------------------------------------------------------
A :mod:`shelve` database named ``<video stem><scorer>_bpt_features.pickle`` (with the
``dbm.dumb`` backend the files are ``….pickle.dat``/``.dir``/``.bak``) holding

``"metadata"``
    the same dict as a shelved ``_full.pickle`` (``"nframes"`` = frames written,
    ``"key_str_width"`` = ``W``);
``"frame" + str(i).zfill(W)``, ``W = ceil(log10(n_frames))``
    ``{"coordinates": (n, K, 2), "features": (n, K, C) float64}``: one row per assembled
    animal of the frame (rows whose every value is negative or NaN are dropped),
    coordinates with NaN for missing keypoints.

The feature of keypoint ``(x, y)`` is the backbone output column at the grid cell
``rint((x, y) / (input_size / feature_size))`` (clipped to the grid) — taken only when
the cell's ``gx + gy > 0`` (so never the corner cell (0, 0)), zeros otherwise; NaN
coordinates count as 0.
"""
from __future__ import annotations

import dbm
import os
import pickle
import warnings
from pathlib import Path

import numpy as np

from mapose.io.atomic import CommitOnSuccess

__all__ = [
    "bodypart_features", "FeatureShelf", "FeatureShelfWriter", "query_feature_by_coord",
    "features_path", "extract_video_features",
]

FEATURES_SUFFIX = "_bpt_features.pickle"


def features_path(video, scorer: str, destfolder=None) -> Path:
    """``<destfolder or video folder>/<video stem><scorer>_bpt_features.pickle``."""
    from mapose.io.project import output_stem

    stem = output_stem(video, scorer, destfolder)
    return stem.parent / (stem.name + FEATURES_SUFFIX)


def bodypart_features(features: np.ndarray, poses: np.ndarray, input_size) -> tuple[np.ndarray, np.ndarray]:
    """Backbone features at each keypoint of each animal (DLC's ``PrepareBackboneFeatures``).

    Parameters
    ----------
    features : ndarray of shape (C, h, w)
        Backbone output of one image.
    poses : ndarray of shape (N, K, D), D >= 2
        Predicted animals in network-input pixels (``[x, y, ...]``; rows that are entirely
        negative or NaN are padding and dropped).
    input_size : tuple of (int, int)
        ``(width, height)`` of the network input image.

    Returns
    -------
    coordinates : ndarray of shape (n, K, 2)
        ``poses[..., :2]`` of the kept rows, in the dtype of ``poses`` (NaN kept).
    bodypart_feats : ndarray of shape (n, K, C), float64
    """
    features = np.asarray(features)
    poses = np.asarray(poses)
    if features.ndim != 3:
        raise ValueError(f"features must have shape (C, h, w); got {features.shape}.")
    if poses.ndim != 3 or poses.shape[2] < 2:
        raise ValueError(f"poses must have shape (n_animals, n_keypoints, >=2); got {poses.shape}.")
    in_w, in_h = (float(v) for v in input_size)
    if not (in_w > 0 and in_h > 0):
        raise ValueError(f"input_size must be a positive (width, height); got {input_size!r}.")
    C, h, w = features.shape
    with np.errstate(invalid="ignore"):
        keep = ~np.all((poses < 0) | np.isnan(poses), axis=(1, 2))
    poses = poses[keep]
    coords = poses[..., :2].copy()
    n, K = poses.shape[:2]
    out = np.zeros((n, K, C))
    if n == 0:
        return coords, out
    # float64 division, as DLC's float32 poses / (python float stride) tuple promote
    xy = np.nan_to_num(poses[..., :2], nan=0).astype(np.float64) / np.array([in_w / w, in_h / h])
    gx = np.clip(np.rint(xy[..., 0]).astype(np.int64), 0, w - 1)
    gy = np.clip(np.rint(xy[..., 1]).astype(np.int64), 0, h - 1)
    valid = (gx + gy) > 0
    out[valid] = features[:, gy[valid], gx[valid]].T
    return coords, out


def query_feature_by_coord(frame: dict, ref_coord: np.ndarray) -> np.ndarray:
    """Feature rows ``(K, C)`` of the animal of ``frame`` that ``ref_coord`` belongs to.

    DLC's rule: ``diff = coordinates - ref_coord``; differences below 0 or above 9000
    become NaN; the animal with the smallest mean remaining difference wins (NaN-only
    animals are skipped; if every animal is, the first one is taken).

    Parameters
    ----------
    frame : dict
        A shelve entry ``{"coordinates": (n, K, 2), "features": (n, K, C)}``.
    ref_coord : ndarray of shape (K, 2)
    """
    coords = np.asarray(frame["coordinates"])
    feats = np.asarray(frame["features"])
    if len(coords) == 0:
        raise ValueError("this frame holds no animal in the features shelve, so no feature "
                         "can be looked up; was it extracted with the same pose model as the "
                         "tracklets?")
    diff = (coords - np.asarray(ref_coord)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff[(diff > 9000) | (diff < 0)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN animals: "mean of empty slice"
        means = np.nanmean(diff, axis=(1, 2))
    finite = np.isfinite(means)
    idx = int(np.flatnonzero(finite)[np.argmin(means[finite])]) if finite.any() else 0
    return feats[idx]


class FeatureShelfWriter(CommitOnSuccess):
    """Stream per-frame features into DLC's shelve, atomically on :meth:`close`.

    Parameters
    ----------
    path : str or os.PathLike
        ``…_bpt_features.pickle``.
    metadata : dict
        The ``"metadata"`` entry (``nframes``/``key_str_width`` are filled in).
    n_frames : int or None
        Frames in the video (sets the key width; None → 5, DLC's unknown-length width).
    """

    def __init__(self, path, metadata: dict, n_frames=None):
        from mapose.io.full_pickle import FullPickleWriter

        # same container and key rules as a shelved _full.pickle
        self._writer = FullPickleWriter(path, metadata, n_frames=n_frames, use_shelve=True)

    def add(self, frame_index: int, coordinates: np.ndarray, features: np.ndarray) -> str:
        return self._writer.add(frame_index, {"coordinates": coordinates, "features": features})

    @property
    def n_written(self) -> int:
        return self._writer.n_written

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()


class FeatureShelf:
    """Read-only, lazy view of a ``_bpt_features.pickle`` shelve (entries load on access).

    Entries are unpickled with mapose's restricted unpickler.  Use as a context manager.

    Raises
    ------
    FileNotFoundError
        The shelve does not exist (run ``transformer_reID``/``create_tracking_dataset``).
    ValueError
        It exists but cannot be opened (corrupt or incomplete).
    """

    def __init__(self, path):
        self.path = Path(os.fspath(path))
        try:
            kind = dbm.whichdb(str(self.path))
        except OSError:
            kind = None
        if not kind:
            raise FileNotFoundError(
                f"features shelve '{self.path}' does not exist. Run "
                "transformer_reID (or create_tracking_dataset) for this video first, with the "
                "same shuffle, trainingsetindex, modelprefix and destfolder.")
        try:
            self._db = dbm.open(str(self.path), "r")
        except Exception as exc:  # dbm.error types differ per backend
            raise ValueError(f"features shelve '{self.path}' cannot be opened ({type(exc).__name__}: "
                             f"{exc}); it is corrupt or incomplete. Re-run create_tracking_dataset.") from exc
        self._cache: dict[str, object] = {}

    def _load(self, key: str):
        from mapose.io.safe_pickle import loads

        raw = self._db[key.encode("utf-8")]
        try:
            return loads(raw)
        except pickle.UnpicklingError:
            raise
        except Exception as exc:
            raise ValueError(f"features shelve '{self.path}': entry {key!r} is truncated or "
                             f"corrupt ({type(exc).__name__}: {exc}).") from exc

    def __getitem__(self, key: str):
        return self._load(str(key))

    def __contains__(self, key) -> bool:
        return str(key).encode("utf-8") in self._db

    def keys(self) -> list[str]:
        return [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in self._db.keys()]

    def __len__(self) -> int:
        return len(self._db.keys())

    @property
    def metadata(self) -> dict:
        if "metadata" not in self._cache:
            self._cache["metadata"] = self._load("metadata") if "metadata" in self else {}
        return self._cache["metadata"]

    @property
    def key_width(self) -> int:
        """Zero padding of the frame keys (from the metadata, else from the first key)."""
        width = self.metadata.get("key_str_width") if isinstance(self.metadata, dict) else None
        if width is not None:
            return int(width)
        for k in self.keys():
            if k.startswith("frame"):
                return len(k) - len("frame")
        return 0

    def frame_key(self, index: int) -> str:
        return "frame" + str(int(index)).zfill(self.key_width)

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _FeatureRunner:
    """Run the pose network on uint8 frames and return its heads and its backbone output.

    ``{"<head>/<key>": (B, C, h, w), "backbone/features": (B, C_backbone, h, w)}``, float32.
    The frames go through mapose's :class:`~mapose.models.pose_model.FramesModel` (DLC's
    exact normalisation), around a module that runs the backbone once and feeds the
    heads, as :class:`~mapose.models.pose_model.PoseModel` does.
    """

    def __init__(self, model, device=None):
        from mapose._optional import require
        from mapose.inference.runners import resolve_device
        from mapose.models.pose_model import FramesModel

        self.torch = require("torch", "extracting ReID features")
        nn = self.torch.nn

        class WithFeatures(nn.Module):
            def __init__(self, pose_model):
                super().__init__()
                self.backbone = pose_model.backbone
                self.heads = pose_model.heads
                self.head_specs = pose_model.head_specs
                self.output_names = tuple(pose_model.output_names) + ("backbone/features",)

            def forward(self, x):
                features = self.backbone(x)
                out = [o for head in self.heads.values() for o in head(features)]
                return (*out, features)

        self.device = self.torch.device(resolve_device(device))
        wrapped = WithFeatures(model)
        self.net = FramesModel(wrapped, bgr=True, channels_last=True).eval().to(self.device)
        self.output_names = wrapped.output_names

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        t = self.torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        with self.torch.inference_mode():
            outs = self.net(t)
            return {name: np.ascontiguousarray(o.float().cpu().numpy())
                    for name, o in zip(self.output_names, outs)}


def extract_video_features(runner, predictor, info, shelf_writer: FeatureShelfWriter,
                           batch_size: int = 1, progress: bool = False) -> int:
    """Run the pose model over a video and write every frame's keypoint features.

    Streams: at most a few decoded batches are in memory at once.

    Returns
    -------
    int
        Frames written.
    """
    from mapose.inference.pipeline import run_video

    input_size = (info.width, info.height)

    def predict_with_features(outputs):
        # the backbone output travels with each frame's prediction to the writer
        feats = outputs["backbone/features"]
        return [(pred, feats[b]) for b, pred in enumerate(predictor(outputs))]

    def on_frame(index, pred_and_features):
        pred, feats = pred_and_features
        coords, bpt = bodypart_features(feats, pred.poses, input_size)
        shelf_writer.add(index, coords, bpt)

    run_video(runner, predict_with_features, info, batch_size, on_frame, progress=progress)
    return shelf_writer.n_written
