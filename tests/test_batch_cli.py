"""``mapose analyze`` batch front end and the analyze_videos(scheduler=...) bridge."""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch import cli  # noqa: E402

pytestmark = pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")


def _parser():
    return cli.add_arguments(argparse.ArgumentParser(prog="mapose analyze"))


def _place_dlc_outputs(video):
    for sfx in ["_full.pickle", "_meta.pickle", "_assemblies.pickle", "_el.pickle", "_el.h5"]:
        dst = video.parent / (video.stem + H.SCORER + sfx)
        dst.write_bytes(H.recorded(sfx).read_bytes())


def test_one_bad_video_others_go_on_exit_code(tmp_path):
    """A corrupt video fails in the real network stage; the complete one is skipped."""
    config, videos = H.make_project(tmp_path / "proj", names=("a_good",))
    _place_dlc_outputs(videos[0])
    bad = videos[0].parent / "b_bad.avi"
    bad.write_bytes(b"this is not a video")
    out = io.StringIO()
    args = _parser().parse_args([str(config), str(videos[0].parent), "--post-workers", "0"])
    code = cli.run(args, file=out)
    table = out.getvalue()
    assert code == 1
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["video", "status"]
    row_good = next(line for line in lines if line.startswith("a_good.avi"))
    row_bad = next(line for line in lines if line.startswith("b_bad.avi"))
    assert row_good.split()[1] == "skipped" and row_bad.split()[1] == "failed"
    assert "error: analyze:" in table and "1 failed" in table
    # no half-written output for the bad video
    assert not list(videos[0].parent.glob("b_bad*.pickle"))


def test_all_complete_exit_zero(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    for v in videos:
        _place_dlc_outputs(v)
    out = io.StringIO()
    code = cli.run(_parser().parse_args([str(config), *map(str, videos)]), file=out)
    assert code == 0 and "2 ok (2 already complete)" in out.getvalue()


def test_bad_snapshot_index_text():
    with pytest.raises(ValueError, match="snapshot-index"):
        cli._snapshot_index("latest")
    assert cli._snapshot_index("-1") == -1 and cli._snapshot_index("best") == "best"


def test_run_from_analyze_videos_routes_arguments(tmp_path, monkeypatch):
    seen = {}

    def fake_run_videos(config, videos, **kw):
        seen.update(kw)
        from mapose.batch.runner import BatchResult
        return BatchResult(reports=[], scorer="S")

    monkeypatch.setattr("mapose.batch.runner.run_videos", fake_run_videos)
    scorer = cli.run_from_analyze_videos(
        "c.yaml", ["v.avi"], cluster="local:2", videotype="mp4", shuffle=2, batch_size=8,
        device="cpu", identity_only=True, inference_cfg=None, n_tracks=3, overwrite=True,
        save_as_csv=False, cropping=None)
    assert scorer == "S"
    assert seen["cluster"] == "local:2" and seen["video_extensions"] == "mp4"
    assert seen["shuffle"] == 2 and seen["n_tracks"] == 3 and seen["overwrite"] is True
    assert seen["analyze_kwargs"] == {"batch_size": 8, "device": "cpu"}
    assert seen["track_kwargs"] == {"identity_only": True}


def test_run_from_analyze_videos_raises_after_failures(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    (videos[0].parent / "b.avi").write_bytes(b"garbage")
    _place_dlc_outputs(videos[0])
    with pytest.raises(RuntimeError, match="1 of 2 videos failed"):
        cli.run_from_analyze_videos(str(config), [str(videos[0].parent)], post_workers=0)
