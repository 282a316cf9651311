"""Appearance weights for stitching: ``stitch_tracklets(..., transformer_checkpoint=...)``.

For a candidate link from tracklet ``a`` (ending first) to ``b``, DLC looks up the
backbone features of ``a``'s last frame and ``b``'s first frame in the features shelve
(:func:`mapose.reid.features.query_feature_by_coord`), embeds both with the ReID model in
float64 on the CPU and uses ``-(cos + 1) / 2`` as the weight (so ``int(100 * w)`` lies in
[-100, 0]: similar appearance = cheaper link).

mapose embeds each tracklet end point once, in one batch, instead of twice per link.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TransformerWeight"]


class TransformerWeight:
    """``weight_func(t1, t2)`` for :meth:`TrackletStitcher.build_graph` from a ReID model.

    Parameters
    ----------
    model : DLCTransReID
        In eval mode (converted to float64 here, as DLC does).
    shelf : FeatureShelf
        The video's ``_bpt_features.pickle``.
    """

    def __init__(self, model, shelf):
        from mapose._optional import require

        self.torch = require("torch", "ReID-transformer stitching")
        self.model = model.double().eval()
        self.shelf = shelf
        self._emb: dict = {}

    def _query(self, tracklet, row: int):
        from mapose.reid.features import query_feature_by_coord

        ind = int(tracklet.inds[row])
        key = self.shelf.frame_key(ind)
        if key not in self.shelf:
            raise ValueError(
                f"frame {ind} ({key!r}) is missing from the features shelve '{self.shelf.path}'; "
                "it was extracted from a different (shorter) video or an interrupted run. "
                "Re-run transformer_reID / create_tracking_dataset for this video.")
        feats = np.asarray(query_feature_by_coord(self.shelf[key], tracklet.data[row][:, :2]))
        m = self.model
        if feats.shape != (m.num_kpts, m.feature_dim):
            raise ValueError(
                f"features in '{self.shelf.path}' have shape {feats.shape} per animal but the "
                f"transformer checkpoint expects ({m.num_kpts} keypoints, {m.feature_dim} "
                "features): the checkpoint was trained with another pose model or project. "
                "Pass the checkpoint trained on these features (or re-run transformer_reID).")
        return feats

    def prepare(self, tracklets) -> None:
        """Embed the first and last frame of every tracklet in one float64 batch."""
        todo = [(t, row) for t in tracklets for row in (0, -1) if (id(t), row) not in self._emb]
        if not todo:
            return
        x = np.stack([self._query(t, row) for t, row in todo]).astype(np.float64)
        with self.torch.no_grad():
            emb = self.model(self.torch.from_numpy(x))
        for (t, row), e in zip(todo, emb):
            self._emb[(id(t), row)] = e

    def similarity(self, t1, t2) -> float:
        """``(cos(e_end(t1), e_start(t2)) + 1) / 2`` with ``t1`` ending before ``t2`` starts."""
        if not t1 < t2:
            t1, t2 = t2, t1
        self.prepare([t1, t2])
        a = self._emb[(id(t1), -1)][None]
        b = self._emb[(id(t2), 0)][None]
        cos = self.torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-6)
        return (float(cos[0]) + 1) / 2

    def __call__(self, t1, t2) -> float:
        return -self.similarity(t1, t2)
