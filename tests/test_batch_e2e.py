"""The batch runner with mapose's real stages (network, tracking, stitching)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch import run_videos  # noqa: E402

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")


def test_real_post_stages_in_worker_match_direct_calls_and_dlc(tmp_path):
    convert = pytest.importorskip("mapose.tracking.convert")
    api = pytest.importorskip("mapose.stitching.api")
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    res = run_videos(config, videos, stage_funcs={"analyze": H.replay_analyze},
                     post_workers=1, save_as_csv=True, print_table=False)
    assert res.ok, res.table()
    assert [r.tracks for r in res] == [3, 3] and [r.frames for r in res] == [150, 150]
    assert all(r.worker != res.reports[0].stages["analyze"] for r in res)
    # the same calls made directly, in another folder
    direct = tmp_path / "direct"
    direct.mkdir()
    for sfx in H.STAGE_SUFFIXES["analyze"]:
        shutil.copy(H.recorded(sfx), direct / ("a" + H.SCORER + sfx))
    convert.convert_detections2tracklets(str(config), [str(videos[0])], destfolder=str(direct))
    api.stitch_tracklets(str(config), [str(videos[0])], destfolder=str(direct), save_as_csv=True)
    ours = pd.read_hdf(videos[0].parent / ("a" + H.SCORER + "_el.h5"))
    ref = pd.read_hdf(direct / ("a" + H.SCORER + "_el.h5"))
    dlc = pd.read_hdf(H.recorded("_el.h5"))
    pd.testing.assert_frame_equal(ours, ref)
    np.testing.assert_array_equal(ours.to_numpy(), dlc.to_numpy())
    # skip on the second run; a corrupted tracklets file is redone with its stitch
    (videos[1].parent / ("b" + H.SCORER + "_el.pickle")).write_bytes(b"\x80\x05garbage")
    again = run_videos(config, videos, post_workers=1, save_as_csv=True, print_table=False)
    assert again.ok and [r.status for r in again] == ["skipped", "resumed"]
    assert again.reports[1].stages["track"].status == "done"


@pytest.mark.slow
def test_real_network_on_short_clip_then_skip(tmp_path):
    """A 4-frame clip of project A's video through mapose's analyze_videos."""
    pytest.importorskip("torch")
    pytest.importorskip("mapose.inference.analyze")
    import cv2

    config, _ = H.make_project(tmp_path / "proj", names=())
    clip = tmp_path / "proj" / "videos" / "clip.avi"
    cap = cv2.VideoCapture(str(H.PROJECT_A / "videos" / "synthA.avi"))
    writer = None
    for _ in range(4):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"FFV1"), 25,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    cap.release()
    res = run_videos(config, [clip], auto_track=False, analyze_kwargs={"batch_size": 4,
                     "device": "cpu", "progress": False}, print_table=False)
    assert res.ok, res.table()
    rep = res.reports[0]
    assert rep.stages["analyze"].status == "done" and rep.frames == 4
    assert rep.stages["analyze"].fps > 0
    for sfx in H.STAGE_SUFFIXES["analyze"]:
        assert (clip.parent / ("clip" + H.SCORER + sfx)).stat().st_size > 0
    again = run_videos(config, [clip], auto_track=False, print_table=False)
    assert again.reports[0].status == "skipped"
