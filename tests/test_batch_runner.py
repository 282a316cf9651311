"""Batch runner: pipelining, skip/resume from checkpoints, failure isolation, the table.

Stages are replays of DeepLabCut 3.0.2's recorded outputs for project A (see
``tests/_batch_helpers.py``), so every final file can be compared byte for byte with
what DLC wrote.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch import run_videos  # noqa: E402

pytestmark = pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")


def _run(config, videos, log=None, post_workers=0, **kw):
    opts = {"log": str(log)} if log else {}
    kw.setdefault("analyze_kwargs", dict(opts))
    kw.setdefault("track_kwargs", dict(opts))
    kw.setdefault("stitch_kwargs", dict(opts))
    kw.setdefault("stage_funcs", H.REPLAY)
    return run_videos(config, videos, scorer=H.SCORER, post_workers=post_workers,
                      print_table=False, **kw)


def _assert_outputs_equal_dlc(video, csv=False):
    stem = Path(video).parent / (Path(video).stem + H.SCORER)
    sfx = ["_full.pickle", "_meta.pickle", "_assemblies.pickle", "_el.pickle", "_el.h5"]
    sfx += ["_el.csv"] if csv else []
    for s in sfx:
        assert Path(str(stem) + s).read_bytes() == H.recorded(s).read_bytes(), s


def test_three_videos_all_stages(tmp_path):
    config, videos = H.make_project(tmp_path / "proj")
    log = tmp_path / "log.txt"
    res = _run(config, videos, log, save_as_csv=True)
    assert res.ok and res.exit_code == 0 and len(res) == 3
    for v, r in zip(videos, res):
        assert r.status == "done" and r.video == str(v)
        assert r.frames == 150 and r.tracks == 3
        _assert_outputs_equal_dlc(v, csv=True)
        rec = json.loads((v.parent / (v.stem + H.SCORER + "_progress.json")).read_text())
        assert list(rec["stages"]) == ["analyze", "track", "stitch"]
        assert rec["attempts"] == 1
    ran = [(s, v) for s, v, *_ in H.read_log(log)]
    assert ran == [(s, v) for v in ("v1", "v2", "v3") for s in ("analyze", "track", "stitch")]
    table = res.table()
    assert table.splitlines()[0].split()[:3] == ["video", "status", "frames"]
    assert "v2.avi" in table and "_el.h5" in table and "3 ok" in table


def test_second_run_skips_everything(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    log = tmp_path / "log.txt"
    _run(config, videos, log)
    n = len(H.read_log(log))
    res = _run(config, videos, log)
    assert res.ok and [r.status for r in res] == ["skipped", "skipped"]
    assert len(H.read_log(log)) == n  # no stage ran again
    assert all(r.tracks == 3 and r.frames == 150 for r in res)
    assert "2 already complete" in res.table()
    # overwrite=True redoes all stages
    res = _run(config, videos, log, overwrite=True)
    assert [r.status for r in res] == ["done", "done"]
    assert len(H.read_log(log)) == 2 * n


def test_failure_is_isolated_then_resumes(tmp_path):
    config, videos = H.make_project(tmp_path / "proj")
    log = tmp_path / "log.txt"
    res = _run(config, videos, log, stitch_kwargs={"log": str(log), "fail": ["v2"]})
    assert not res.ok and res.exit_code == 1
    assert [r.status for r in res] == ["done", "failed", "done"]
    bad = res.reports[1]
    assert bad.error.startswith("stitch: RuntimeError: injected failure")
    assert "error: stitch: RuntimeError" in res.table() and "1 failed" in res.table()
    assert not (videos[1].parent / ("v2" + H.SCORER + "_el.h5")).exists()
    # fixed: the rerun resumes v2 at stitching, the others are complete
    n = len(H.read_log(log))
    res = _run(config, videos, log)
    assert res.ok and [r.status for r in res] == ["skipped", "resumed", "skipped"]
    assert [(s, v) for s, v, *_ in H.read_log(log)[n:]] == [("stitch", "v2")]
    assert res.reports[1].stages["analyze"].status == "skipped"
    _assert_outputs_equal_dlc(videos[1])


def test_truncated_output_is_never_trusted(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    log = tmp_path / "log.txt"
    _run(config, videos, log)
    tracklets = videos[0].parent / ("a" + H.SCORER + "_el.pickle")
    data = tracklets.read_bytes()
    tracklets.write_bytes(data[: len(data) // 3])
    n = len(H.read_log(log))
    res = _run(config, videos, log)
    assert res.ok and res.reports[0].status == "resumed"
    # tracking redone, and stitching after it because its input changed
    assert [s for s, *_ in H.read_log(log)[n:]] == ["track", "stitch"]
    _assert_outputs_equal_dlc(videos[0])


def test_rewritten_output_same_size_is_rerun(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    log = tmp_path / "log.txt"
    _run(config, videos, log)
    h5 = videos[0].parent / ("a" + H.SCORER + "_el.h5")
    data = bytearray(h5.read_bytes())
    data[100] ^= 0xFF
    h5.write_bytes(bytes(data))
    os.utime(h5, ns=(1, 1))
    n = len(H.read_log(log))
    _run(config, videos, log)
    assert [s for s, *_ in H.read_log(log)[n:]] == ["stitch"]


def test_complete_outputs_without_record_are_adopted(tmp_path):
    """Videos DLC (or a run without records) finished are skipped after a full read."""
    config, videos = H.make_project(tmp_path / "proj", names=("a_done", "b_cut"))
    for v in videos:
        for sfx in ["_full.pickle", "_meta.pickle", "_assemblies.pickle", "_el.pickle", "_el.h5"]:
            dst = v.parent / (v.stem + H.SCORER + sfx)
            dst.write_bytes(H.recorded(sfx).read_bytes())
    # "cut": DLC was interrupted while writing its tracklets pickle (non-atomic writer)
    cut = videos[1].parent / ("b_cut" + H.SCORER + "_el.pickle")
    cut.write_bytes(cut.read_bytes()[:5000])
    log = tmp_path / "log.txt"
    res = _run(config, videos, log)
    assert res.ok
    assert res.reports[0].status == "skipped"
    assert {r.status for r in res.reports[0].stages.values()} == {"adopted"}
    assert [(s, v) for s, v, *_ in H.read_log(log)] == [("track", "b_cut"), ("stitch", "b_cut")]
    _assert_outputs_equal_dlc(videos[1])


def test_stale_part_files_are_removed(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    part = videos[0].parent / (".a" + H.SCORER + "_el.pickle.x1y2.pickle.part")
    part.write_bytes(b"half")
    other = videos[0].parent / ".unrelated.part"
    other.write_bytes(b"keep")
    assert _run(config, videos).ok
    assert not part.exists() and other.exists()


def test_network_overlaps_post_processing(tmp_path):
    """Tracking/stitching of video k-1 runs in a worker while the network runs on k."""
    config, videos = H.make_project(tmp_path / "proj")
    log = tmp_path / "log.txt"
    opts = {"log": str(log), "delay": 1.0}
    post = {"log": str(log), "delay": 0.5}
    res = _run(config, videos, post_workers=1, analyze_kwargs=opts, track_kwargs=post,
               stitch_kwargs=post)
    assert res.ok
    ev = {(s, v): (t0, t1, pid) for s, v, t0, t1, pid in H.read_log(log)}
    main_pid = os.getpid()
    assert all(ev[("analyze", v)][2] == main_pid for v in ("v1", "v2", "v3"))
    assert all(ev[("track", v)][2] != main_pid for v in ("v1", "v2", "v3"))
    for prev, nxt in (("v1", "v2"), ("v2", "v3")):
        # post-processing of prev started before the network finished nxt
        assert ev[("track", prev)][0] < ev[("analyze", nxt)][1]
    # in order, and the stages of one video never overlap each other
    for v in ("v1", "v2", "v3"):
        assert ev[("analyze", v)][1] <= ev[("track", v)][0] <= ev[("stitch", v)][0]


def test_dead_post_worker_is_retried(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    kill = tmp_path / "kill"
    res = _run(config, videos, post_workers=1, analyze_kwargs={},
               track_kwargs={"kill_once": str(kill)}, stitch_kwargs={})
    assert res.ok, res.table()
    assert sorted(p.name for p in kill.iterdir()) == ["track-a", "track-b"]
    for v in videos:
        _assert_outputs_equal_dlc(v)
        assert not list(v.parent.glob(f".{v.stem}*.part"))


def test_auto_track_false_runs_network_only(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    res = _run(config, videos, auto_track=False, post_workers=1)
    assert res.ok and list(res.reports[0].stages) == ["analyze"]
    assert not (videos[0].parent / ("a" + H.SCORER + "_el.pickle")).exists()


def test_destfolder_and_directory_input(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    (videos[0].parent / "a_labeled.mp4").write_bytes(b"")  # DLC's own outputs are not inputs
    out = tmp_path / "out"
    res = _run(config, [videos[0].parent], destfolder=out)
    assert res.ok and [Path(r.video).name for r in res] == ["a.avi", "b.avi"]
    assert (out / ("b" + H.SCORER + "_el.h5")).read_bytes() == H.recorded("_el.h5").read_bytes()
    assert (out / ("a" + H.SCORER + "_progress.json")).exists()


def test_no_videos_found(tmp_path):
    config, _ = H.make_project(tmp_path / "proj", names=())
    with pytest.raises(FileNotFoundError, match="no videos found"):
        _run(config, [tmp_path / "proj" / "videos"])


def test_unwritable_destfolder_fails_video_not_batch(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = _run(config, videos, destfolder=blocker)
    assert not res.ok and "cannot write" in res.reports[0].error


def test_script_without_main_guard(tmp_path):
    """DLC users' scripts rarely have ``if __name__ == "__main__"``: the worker must not re-run them."""
    import subprocess

    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    script = tmp_path / "analyse.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import _batch_helpers as H\n"
        "from mapose.batch import run_videos\n"
        f"res = run_videos({str(config)!r}, {[str(v) for v in videos]!r}, scorer=H.SCORER,\n"
        "                 stage_funcs=H.REPLAY, post_workers=1)\n"
        "print('RUNS', flush=True)\n"
        "sys.exit(res.exit_code)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("RUNS") == 1
    assert "2 ok" in out.stdout
