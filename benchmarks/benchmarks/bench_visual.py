"""Labeled-video rendering (create_labeled_video, create_video_with_all_detections)."""
import shutil
import tempfile
from pathlib import Path

from ._visual_project import make_project


class LabeledVideo:
    params = [[1, 3, 6], [5, 12], [100, 300]]
    param_names = ["animals", "bodyparts", "frames"]
    timeout = 300

    def setup(self, animals, bodyparts, frames):
        self.tmp = Path(tempfile.mkdtemp())
        self.config, self.video = make_project(self.tmp, animals, bodyparts, frames)

    def teardown(self, animals, bodyparts, frames):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_create_labeled_video(self, animals, bodyparts, frames):
        from mapose.visualization.videos import create_labeled_video

        create_labeled_video(self.config, [self.video], color_by="individual", draw_skeleton=True,
                             overwrite=True)

    def time_create_video_with_all_detections(self, animals, bodyparts, frames):
        from mapose.visualization.videos import create_video_with_all_detections

        out = create_video_with_all_detections(self.config, [self.video])
        for p in out:
            p.unlink()

    def peakmem_create_labeled_video(self, animals, bodyparts, frames):
        from mapose.visualization.videos import create_labeled_video

        create_labeled_video(self.config, [self.video], overwrite=True)
