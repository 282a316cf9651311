"""SORT trackers and build_tracklets: per-sequence time and peak memory."""
import numpy as np

from mapose.core import trackingutils as tu
from mapose.tracking.tracklets import build_tracklets


def _frames(n_animals, n_bpts, n_frames, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(100, 900, (n_animals, 2))
    offsets = rng.normal(0, 20, (n_animals, n_bpts, 2))
    vel = rng.normal(0, 3, (n_animals, 2))
    out = []
    for _ in range(n_frames):
        centers = centers + vel
        xy = centers[:, None] + offsets + rng.normal(0, 2, offsets.shape)
        data = np.concatenate([xy, rng.uniform(0.5, 1, (n_animals, n_bpts, 1)), -np.ones((n_animals, n_bpts, 1))], 2)
        out.append(data[rng.permutation(n_animals)])
    return out


class Trackers:
    params = [["ellipse", "box", "skeleton"], [3, 10], [5, 12], [500]]
    param_names = ["tracker", "animals", "bodyparts", "frames"]

    def setup(self, tracker, animals, bodyparts, frames):
        self.frames = _frames(animals, bodyparts, frames)
        self.boxes = [tu.calc_bboxes_from_keypoints(f) for f in self.frames]
        self.xy = [np.ascontiguousarray(f[..., :2]) for f in self.frames]

    def time_track(self, tracker, animals, bodyparts, frames):
        if tracker == "ellipse":
            t = tu.SORTEllipse(1, 1, 0.6)
            for xy in self.xy:
                t.track(xy)
        elif tracker == "box":
            t = tu.SORTBox(1, 1, 0.3)
            for b in self.boxes:
                t.track(b)
        else:
            t = tu.SORTSkeleton(bodyparts, 20, 3, 0.5)
            for xy in self.xy:
                t.track(xy)


class BuildTracklets:
    params = [["ellipse", "box"], [3, 10], [500, 5000]]
    param_names = ["tracker", "animals", "frames"]

    def setup(self, tracker, animals, frames):
        self.data = {i: f for i, f in enumerate(_frames(animals, 8, frames))}
        self.cfg = {"topktoretain": animals, "pcutoff": 0.1, "boundingboxslack": 0,
                    "iou_threshold": 0.6, "max_age": 1, "min_hits": 1}
        self.joints = [f"b{i}" for i in range(8)]

    def time_build_tracklets(self, tracker, animals, frames):
        build_tracklets(self.data, tracker, self.cfg, self.joints, "S", frames)

    def peakmem_build_tracklets(self, tracker, animals, frames):
        build_tracklets(self.data, tracker, self.cfg, self.joints, "S", frames)
