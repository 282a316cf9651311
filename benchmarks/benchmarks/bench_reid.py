"""ReID transformer path: keypoint features, triplet mining, the transformer, appearance links.

Workloads are generated: random backbone maps and poses (animals x body parts), and
:func:`mapose.stitching.synthetic.fragmented_tracklets` for mining and stitching
(animals x body parts x frames).  ``scripts/compare_reid_dlc.py`` runs the real pipeline
against DeepLabCut 3.0.2 on project A.
"""
import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np

from mapose.reid.features import FeatureShelf, FeatureShelfWriter, bodypart_features
from mapose.stitching.stitcher import TrackletStitcher
from mapose.stitching.synthetic import fragmented_tracklets

SIZES = [(3, 5, 300), (10, 8, 1000)]
C = 256  # backbone channels (ResNet-50 has 2048; the cost scales linearly)


class BodypartFeatures:
    params = [[(3, 5), (10, 20), (30, 40)]]
    param_names = ["animals_bodyparts"]

    def setup(self, size):
        n, k = size
        rng = np.random.default_rng(0)
        self.features = rng.normal(size=(2048, 16, 20)).astype(np.float32)
        self.poses = rng.uniform(0, 320, size=(n, k, 5)).astype(np.float32)

    def time_bodypart_features(self, size):
        bodypart_features(self.features, self.poses, (320, 256))


class Mining:
    params = [SIZES]
    param_names = ["animals_bodyparts_frames"]
    timeout = 300

    def setup(self, size):
        warnings.simplefilter("ignore")
        d, _ = fragmented_tracklets(size[0], size[1], size[2], mean_length=60, seed=size[2])
        self.stitcher = TrackletStitcher.from_dict_of_dict(copy.deepcopy(d), size[0])

    def time_mine_200(self, size):
        self.stitcher.mine(200, random_state=0)


class Transformer:
    params = [[1, 64, 512]]
    param_names = ["batch"]

    def setup(self, batch):
        import torch

        from mapose.reid.model import DLCTransReID

        torch.manual_seed(0)
        self.torch = torch
        self.model = DLCTransReID(2048, 5).eval()
        self.x = torch.randn(batch, 5, 2048)
        self.model64 = DLCTransReID(2048, 5).double().eval()
        self.x64 = self.x.double()

    def time_forward_float32(self, batch):
        with self.torch.no_grad():
            self.model(self.x)

    def time_forward_float64(self, batch):
        with self.torch.no_grad():
            self.model64(self.x64)


class AppearanceStitching:
    """Link weights from a features shelve (what stitch_tracklets does per video)."""

    params = [SIZES]
    param_names = ["animals_bodyparts_frames"]
    timeout = 300

    def setup(self, size):
        import torch

        from mapose.reid.model import DLCTransReID

        warnings.simplefilter("ignore")
        n_animals, n_bpts, n_frames = size
        d, _ = fragmented_tracklets(n_animals, n_bpts, n_frames, mean_length=60, seed=n_frames)
        self.stitcher = TrackletStitcher.from_dict_of_dict(copy.deepcopy(d), n_animals)
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "v_bpt_features.pickle"
        rng = np.random.default_rng(0)
        by_frame = {}
        for t in self.stitcher.tracklets + self.stitcher.residuals:
            for i, row in zip(t.inds, t.data):
                by_frame.setdefault(int(i), []).append(row[:, :2])
        with FeatureShelfWriter(self.path, {}, n_frames=n_frames) as w:
            for i in range(n_frames):
                coords = np.array(by_frame.get(i, np.zeros((0, n_bpts, 2))), np.float32).reshape(-1, n_bpts, 2)
                w.add(i, coords, rng.normal(size=(len(coords), n_bpts, C)))
        torch.manual_seed(0)
        self.model = DLCTransReID(C, n_bpts)

    def teardown(self, size):
        self.tmp.cleanup()

    def time_build_graph_with_transformer(self, size):
        from mapose.reid.stitching import TransformerWeight

        with FeatureShelf(self.path) as shelf:
            wf = TransformerWeight(self.model, shelf)
            wf.prepare(self.stitcher.tracklets)
            self.stitcher.build_graph(weight_func=wf)
