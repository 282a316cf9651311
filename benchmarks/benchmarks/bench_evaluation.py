"""evaluate_tracks (MOTA/IDF1 via py-motmetrics, RMSE, OKS mAP) and the demo renderer."""
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _write(path, xy, lik):
    import pandas as pd

    f, n, k, _ = xy.shape
    cols = pd.MultiIndex.from_product([["s"], [f"ind{i}" for i in range(n)], [f"bp{j}" for j in range(k)],
                                       ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    vals = np.concatenate([xy, lik[..., None]], axis=-1).reshape(f, -1)
    pd.DataFrame(vals, columns=cols).to_hdf(path, key="tracks", format="table", mode="w")


class EvaluateTracks:
    params = [[3, 10], [5, 12], [300, 3000]]
    param_names = ["animals", "bodyparts", "frames"]
    timeout = 600

    def setup(self, animals, bodyparts, frames):
        from compare_evaluation import make_case

        self.tmp = Path(tempfile.mkdtemp())
        true, pred = make_case(frames, animals, bodyparts)
        _write(self.tmp / "gt.h5", true, np.where(np.isnan(true[..., 0]), np.nan, 1.0))
        _write(self.tmp / "pred.h5", pred[..., :2], pred[..., 2])
        self.true, self.pred = true, pred
        kept = ~np.isnan(pred[..., 0])
        self.scores = np.where(kept, pred[..., 2], 0).sum(-1) / np.maximum(kept.sum(-1), 1)

    def teardown(self, animals, bodyparts, frames):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_evaluate_tracks(self, animals, bodyparts, frames):
        from mapose.evaluation.tracks import evaluate_tracks

        evaluate_tracks(self.tmp / "pred.h5", self.tmp / "gt.h5")

    def time_oks_map(self, animals, bodyparts, frames):
        from mapose.evaluation.tracks import oks_map

        oks_map(self.pred[..., :2], self.scores, self.true)

    def peakmem_evaluate_tracks(self, animals, bodyparts, frames):
        from mapose.evaluation.tracks import evaluate_tracks

        evaluate_tracks(self.tmp / "pred.h5", self.tmp / "gt.h5")


class RenderDemoVideo:
    params = [[1, 3, 6], [100, 300]]
    param_names = ["animals", "frames"]
    timeout = 300

    def setup(self, animals, frames):
        self.tmp = Path(tempfile.mkdtemp())

    def teardown(self, animals, frames):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_render_video(self, animals, frames):
        from mapose.demo.render import SceneConfig, render_video

        render_video(self.tmp / "v.avi", SceneConfig(n_animals=animals, n_frames=frames))
