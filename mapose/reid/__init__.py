"""Appearance-based re-identification for stitching (DLC's ``transformer_reID``).

Submodules load lazily (torch is imported only by the model, training and stitching):

:mod:`.features`   backbone features at keypoints, the ``_bpt_features.pickle`` shelve
:mod:`.triplets`   triplet mining (``TrackletStitcher.mine``) and ``_triplet_vector.npy``
:mod:`.model`      the DLCTransReID network and its checkpoints
:mod:`.train`      DLC's training recipe
:mod:`.stitching`  appearance link weights for ``stitch_tracklets``
:mod:`.api`        ``create_tracking_dataset``, ``transformer_reID``
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "transformer_reID": "mapose.reid.api",
    "create_tracking_dataset": "mapose.reid.api",
    "extract_features": "mapose.reid.api",
    "train_tracking_transformer": "mapose.reid.train",
    "create_triplets_dataset": "mapose.reid.triplets",
    "mine": "mapose.reid.triplets",
    "DLCTransReID": "mapose.reid.model",
    "load_checkpoint": "mapose.reid.model",
    "save_checkpoint": "mapose.reid.model",
    "FeatureShelf": "mapose.reid.features",
    "query_feature_by_coord": "mapose.reid.features",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mapose.reid' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
