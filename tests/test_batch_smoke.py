"""Data-free checks of the batch package (also run against the installed wheel)."""
from __future__ import annotations

import argparse
import os

import numpy as np
import pytest

from mapose.batch import ProgressRecord, format_table, parse_cluster, run_videos
from mapose.batch import cli
from mapose.batch.stages import StageReport
from mapose.batch.synthetic import SyntheticDetections
from mapose.batch.video import VideoReport


def _parser():
    return cli.add_arguments(argparse.ArgumentParser(prog="mapose analyze"))


@pytest.mark.smoke
def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="either scheduler"):
        run_videos("c.yaml", ["v.avi"], scheduler="tcp://x:1", cluster="local:2")
    with pytest.raises(ValueError, match="local:N"):
        run_videos("c.yaml", ["v.avi"], cluster="remote")
    with pytest.raises(ValueError, match="local:N"):
        run_videos("c.yaml", ["v.avi"], cluster="local:0")
    with pytest.raises(ValueError, match="post_workers"):
        run_videos("c.yaml", ["v.avi"], post_workers=-1)
    with pytest.raises(FileNotFoundError, match="config"):
        run_videos(tmp_path / "missing.yaml", ["v.avi"])
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="checkpoint_every"):
            run_videos("c.yaml", ["v.avi"], checkpoint_every=bad)


@pytest.mark.smoke
def test_progress_record_roundtrip(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc" * 100)
    rec = ProgressRecord.load(tmp_path / "p.json", video="v.avi")
    assert rec.stages == {} and rec.attempts == 0
    rec.mark_done("track", [f], seconds=1.5, frames=10, info={"tracks": 2})
    again = ProgressRecord.load(tmp_path / "p.json")
    assert again.stage_done("track", tmp_path) and again.stages["track"]["frames"] == 10
    # a copy with a new mtime but identical bytes still counts
    os.utime(f, ns=(5, 5))
    assert again.stage_done("track", tmp_path)
    f.write_bytes(b"abd" * 100)
    os.utime(f, ns=(6, 6))
    assert not again.stage_done("track", tmp_path)
    f.unlink()
    assert not again.stage_done("track", tmp_path)
    (tmp_path / "p.json").write_text("{not json")
    assert ProgressRecord.load(tmp_path / "p.json").stages == {}


@pytest.mark.smoke
def test_help_lists_batch_options():
    text = _parser().format_help()
    for opt in ("--scheduler", "--cluster", "--post-workers", "--destfolder", "--batch-size",
                "--no-auto-track", "--checkpoint-every", "VIDEO_OR_DIR"):
        assert opt in text
    with pytest.raises(SystemExit):  # scheduler and cluster are exclusive
        _parser().parse_args(["c.yaml", "v.avi", "--scheduler", "tcp://x:1", "--cluster", "local:2"])


@pytest.mark.smoke
def test_parse_cluster():
    assert parse_cluster("local:3") == 3
    for bad in ("local", "local:x", "tcp://a:1", "local:-1"):
        with pytest.raises(ValueError, match="local:N"):
            parse_cluster(bad)


@pytest.mark.smoke
def test_format_table_statuses_and_errors():
    ok = VideoReport(video="/x/a.avi", stages={
        "analyze": StageReport("analyze", seconds=2.0, frames=100, outputs=["/x/a_full.pickle"]),
        "track": StageReport("track", status="skipped", frames=100),
        "stitch": StageReport("stitch", seconds=0.5, frames=100, info={"tracks": 2},
                              outputs=["/x/a_el.h5"], warnings=["UserWarning: w"]),
    })
    bad = VideoReport(video="/x/b.avi", error="track: ValueError: boom",
                      stages={"analyze": StageReport("analyze", status="skipped")})
    text = format_table([ok, bad], seconds=3.0)
    lines = text.splitlines()
    assert lines[0].split() == ["video", "status", "frames", "net", "fps", "track", "fps",
                                "stitch", "fps", "tracks", "warnings", "output"]
    a = lines[2].split()
    assert a == ["a.avi", "resumed", "100", "50.0", "-", "200", "2", "1", "a_el.h5"]
    assert lines[3].split()[:2] == ["b.avi", "failed"]
    assert lines[4].strip() == "error: track: ValueError: boom"
    assert lines[-1] == "2 videos: 1 ok (0 already complete), 1 failed, 3.0 s"
    assert ok.status == "resumed" and bad.status == "failed" and not bad.ok


@pytest.mark.smoke
def test_synthetic_detections_are_chunk_independent():
    s = SyntheticDetections(500, n_animals=4, n_bodyparts=5, seed=7)
    whole = s.assemblies(0, 500)
    parts = {}
    for a in range(0, 500, 123):
        parts.update(s.assemblies(a, min(a + 123, 500)))
    assert list(whole) == list(parts) == list(range(500))
    assert all(np.array_equal(whole[k], parts[k], equal_nan=True) for k in whole)
    shapes = {whole[k].shape[1:] for k in whole}
    assert shapes == {(5, 4)}
    assert min(len(v) for v in whole.values()) < 4  # animals leave the view sometimes
    missing = np.concatenate([v[..., 0].ravel() for v in whole.values()])
    assert 0.01 < np.isnan(missing).mean() < 0.15
    full = s.full_frames(0, 20)
    assert list(full)[0] == "frame000" and set(full["frame000"]) == {"coordinates", "confidence", "costs"}
    assert len(full["frame000"]["costs"]) == len(s.graph)
    with pytest.raises(ValueError, match="n_animals"):
        SyntheticDetections(10, n_animals=0)
