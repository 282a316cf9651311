"""Frame-level resume of the network stage (mapose.batch.network).

The network is :class:`_batch_helpers.FakeRunner` (head outputs computed from the pixels,
so cheap and batch-independent); peaks, PAF costs, assembly and every writer are mapose's
real ones.  Each test interrupts a video mid-way (an exception, SIGKILL, a killed Dask
worker), reruns it, counts the frames the network ran on, and compares the files with an
uninterrupted run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch import run_videos  # noqa: E402
from mapose.io.full_pickle import read_full_pickle, resume_paths  # noqa: E402
from mapose.io.safe_pickle import read_pickle  # noqa: E402

pytest.importorskip("cv2")
pytestmark = pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")

N = 24          # frames in the clip
EVERY = 4       # checkpoint interval (frames)
BATCH = 2
FAKE = {"analyze": H.fake_network_stage}
OUTS = ("_full.pickle", "_assemblies.pickle")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("netproj")
    config, _ = H.make_project(root / "proj", names=())
    clip = H.make_clip(root / "proj" / "videos" / "clip.avi", N)
    return config, clip


def _run(project, dest, log, **opts):
    config, clip = project
    kw = {"batch_size": BATCH, "fake_log": str(log)}
    kw.update(opts.pop("analyze", {}))
    return run_videos(config, [clip], auto_track=False, analyze_kwargs=kw,
                      checkpoint_every=opts.pop("every", EVERY), stage_funcs=FAKE,
                      print_table=False, destfolder=str(dest), **opts)


def _out(dest, sfx):
    return Path(dest) / ("clip" + H.SCORER + sfx)


@pytest.fixture(scope="module")
def reference(project, tmp_path_factory):
    """An uninterrupted run."""
    dest = tmp_path_factory.mktemp("ref")
    res = _run(project, dest, dest / "log")
    assert res.ok, res.table()
    assert H.forward_frames(dest / "log") == N
    return dest


def _assert_same_outputs(dest, ref):
    for sfx in OUTS:
        assert _out(dest, sfx).read_bytes() == _out(ref, sfx).read_bytes(), sfx
    a = read_pickle(_out(dest, "_meta.pickle"))["data"]
    b = read_pickle(_out(ref, "_meta.pickle"))["data"]
    timing = {"start", "stop", "run_duration"}
    assert {k: v for k, v in a.items() if k not in timing} == \
        {k: v for k, v in b.items() if k not in timing}
    # no checkpoint left behind once finished
    assert not any(p.exists() for p in resume_paths(_out(dest, "_full.pickle")).values())
    assert not list(Path(dest).glob(".*spool"))


def test_uninterrupted_stage_equals_analyze_videos(project, reference, tmp_path, monkeypatch):
    """Same frames, assemblies and metadata as mapose.analyze_videos with the same network."""
    import mapose.inference.analyze as A

    monkeypatch.setattr(A, "_make_runner", lambda *a, **k: H.FakeRunner(H.PROJECT_A_HEADS))
    config, clip = project
    A.analyze_videos(str(config), [str(clip)], destfolder=str(tmp_path), batch_size=BATCH,
                     auto_track=False, progress=False)
    ours, theirs = (read_full_pickle(_out(d, "_full.pickle")) for d in (reference, tmp_path))
    assert list(ours) == list(theirs) and len(ours) == N + 1
    for key in theirs:
        H_assert_equal(ours[key], theirs[key])
    H_assert_equal(read_pickle(_out(reference, "_assemblies.pickle")),
                   read_pickle(_out(tmp_path, "_assemblies.pickle")))
    n_animals = sum(len(a) for k, a in read_pickle(_out(reference, "_assemblies.pickle")).items()
                    if k != "single")
    assert n_animals > N  # the fake network does produce animals to assemble


def H_assert_equal(a, b):
    """Recursive equality of pickled structures (arrays by value, dtype and shape)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            H_assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            H_assert_equal(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b or (a != a and b != b)


@pytest.mark.parametrize("fail_after", [10, 1])
def test_exception_mid_video_then_resume(project, reference, tmp_path, fail_after):
    first = _run(project, tmp_path, tmp_path / "log1",
                 analyze={"kill_after": fail_after, "kill_mode": "raise"})
    assert not first.ok and "injected failure" in first.reports[0].error
    ran = H.forward_frames(tmp_path / "log1")
    assert ran == -(-fail_after // BATCH) * BATCH
    # nothing that looks finished
    assert not any(_out(tmp_path, s).exists() for s in OUTS + ("_meta.pickle",))
    done = (ran // EVERY) * EVERY if ran < N else 0
    again = _run(project, tmp_path, tmp_path / "log2")
    assert again.ok, again.table()
    info = again.reports[0].stages["analyze"].info
    assert info["resumed_from"] == done
    assert H.forward_frames(tmp_path / "log2") == N - done == info["forward_frames"]
    assert again.reports[0].frames == N
    _assert_same_outputs(tmp_path, reference)


def test_sigkill_mid_video_then_resume(project, reference, tmp_path):
    """A process killed with SIGKILL after the network ran 14 frames.

    Post-processing trails the network by up to three batches (two queued, one in the
    predictor), so the last checkpoint is at frame 4, 8 or 12; the rerun runs exactly the
    frames after it.
    """
    config, clip = project
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        import _batch_helpers as H
        from mapose.batch import run_videos
        run_videos({str(config)!r}, [{str(clip)!r}], auto_track=False,
                   analyze_kwargs={{"batch_size": {BATCH}, "fake_log": {str(tmp_path / 'log1')!r},
                                   "kill_after": 14}},
                   checkpoint_every={EVERY}, stage_funcs={{"analyze": H.fake_network_stage}},
                   print_table=False, destfolder={str(tmp_path)!r})
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert H.forward_frames(tmp_path / "log1") == 14
    assert resume_paths(_out(tmp_path, "_full.pickle"))["record"].exists()
    again = _run(project, tmp_path, tmp_path / "log2")
    assert again.ok, again.table()
    done = again.reports[0].stages["analyze"].info["resumed_from"]
    assert done in (4, 8, 12)
    assert H.forward_frames(tmp_path / "log2") == N - done
    assert again.reports[0].attempts == 2
    _assert_same_outputs(tmp_path, reference)


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "record"])
def test_damaged_checkpoint_restarts_cleanly(project, reference, tmp_path, damage):
    first = _run(project, tmp_path, tmp_path / "log1",
                 analyze={"kill_after": 16, "kill_mode": "raise"})
    assert not first.ok
    paths = resume_paths(_out(tmp_path, "_full.pickle"))
    if damage == "corrupt":
        data = bytearray(paths["spool"].read_bytes())
        data[len(data) // 3] ^= 0xFF
        paths["spool"].write_bytes(bytes(data))
    elif damage == "truncate":
        data = paths["spool"].read_bytes()
        paths["spool"].write_bytes(data[: len(data) // 2])
    else:
        paths["record"].write_text("{not json")
    again = _run(project, tmp_path, tmp_path / "log2")
    assert again.ok, again.table()
    rep = again.reports[0].stages["analyze"]
    assert rep.info["resumed_from"] == 0 and H.forward_frames(tmp_path / "log2") == N
    assert any("unusable" in w and "starting over" in w for w in rep.warnings), rep.warnings
    _assert_same_outputs(tmp_path, reference)


def test_other_settings_do_not_resume(project, reference, tmp_path):
    """A checkpoint made with batch_size 2 is not continued with batch_size 4."""
    first = _run(project, tmp_path, tmp_path / "log1",
                 analyze={"kill_after": 12, "kill_mode": "raise"})
    assert not first.ok
    again = _run(project, tmp_path, tmp_path / "log2", analyze={"batch_size": 4})
    assert again.ok
    rep = again.reports[0].stages["analyze"]
    assert rep.info["resumed_from"] == 0 and H.forward_frames(tmp_path / "log2") == N
    assert any("other inputs or settings" in w for w in rep.warnings)
    # per-frame outputs do not depend on the batch size: same detections
    for sfx in OUTS:
        assert _out(tmp_path, sfx).read_bytes() == _out(reference, sfx).read_bytes(), sfx
    assert read_pickle(_out(tmp_path, "_meta.pickle"))["data"]["batch_size"] == 4


def test_shelve_layout_resumes(project, tmp_path):
    ref = tmp_path / "ref"
    assert _run(project, ref, tmp_path / "log0", analyze={"use_shelve": True}).ok
    dest = tmp_path / "out"
    assert not _run(project, dest, tmp_path / "log1",
                    analyze={"use_shelve": True, "kill_after": 18, "kill_mode": "raise"}).ok
    assert resume_paths(_out(dest, "_full.pickle"))["shelf"].is_dir()
    again = _run(project, dest, tmp_path / "log2", analyze={"use_shelve": True})
    assert again.ok, again.table()
    assert again.reports[0].stages["analyze"].info["resumed_from"] == 16
    assert H.forward_frames(tmp_path / "log2") == N - 16
    a, b = read_full_pickle(_out(dest, "_full.pickle")), read_full_pickle(_out(ref, "_full.pickle"))
    H_assert_equal(a, b)
    assert a["metadata"]["nframes"] == N
    assert _out(dest, "_assemblies.pickle").read_bytes() == _out(ref, "_assemblies.pickle").read_bytes()
    assert not resume_paths(_out(dest, "_full.pickle"))["shelf"].exists()


def test_save_as_df_rows_resume(project, tmp_path):
    pd = pytest.importorskip("pandas")
    ref = tmp_path / "ref"
    assert _run(project, ref, tmp_path / "log0", analyze={"save_as_df": True}).ok
    dest = tmp_path / "out"
    assert not _run(project, dest, tmp_path / "log1",
                    analyze={"save_as_df": True, "kill_after": 6, "kill_mode": "raise"}).ok
    assert _run(project, dest, tmp_path / "log2", analyze={"save_as_df": True}).ok
    assert H.forward_frames(tmp_path / "log2") == N - 4
    a = pd.read_hdf(Path(str(_out(dest, "")) + ".h5"))
    b = pd.read_hdf(Path(str(_out(ref, "")) + ".h5"))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == N


def test_finished_video_is_skipped_not_resumed(project, reference, tmp_path):
    assert _run(project, tmp_path, tmp_path / "log1").ok
    again = _run(project, tmp_path, tmp_path / "log2")
    assert again.reports[0].status == "skipped" and H.forward_frames(tmp_path / "log2") == 0


@pytest.mark.slow
def test_killed_dask_worker_resumes_mid_video(project, reference, tmp_path):
    """Dask: the worker dies (SIGKILL) mid-video; the rerun task resumes at the checkpoint."""
    pytest.importorskip("distributed")
    config, clip = project
    res = run_videos(config, [clip], auto_track=False, cluster="local:1", retries=2,
                     analyze_kwargs={"batch_size": BATCH, "fake_log": str(tmp_path / "log"),
                                     "kill_after": 14, "kill_marker": str(tmp_path / "killed")},
                     checkpoint_every=EVERY, stage_funcs=FAKE, print_table=False,
                     destfolder=str(tmp_path))
    assert res.ok, res.table()
    assert (tmp_path / "killed").exists()
    # 14 frames before the kill, then those after the last checkpoint (frame 4, 8 or 12)
    done = res.reports[0].stages["analyze"].info["resumed_from"]
    assert done in (4, 8, 12)
    assert H.forward_frames(tmp_path / "log") == 14 + (N - done)
    _assert_same_outputs(tmp_path, reference)


@pytest.mark.slow
def test_fake_head_shapes_match_the_real_network(project):
    pytest.importorskip("torch")
    config, _ = project
    assert H.head_shapes(config) == H.PROJECT_A_HEADS


def test_crash_while_committing_resumes_at_the_end(project, reference, tmp_path, monkeypatch):
    """Killed after the last frame, before the files were written: nothing is rerun."""
    import mapose.io.meta_pickle as mp

    real = mp.write_meta_pickle

    def crash(*a, **k):
        raise KeyboardInterrupt("power cut while writing the outputs")

    monkeypatch.setattr(mp, "write_meta_pickle", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(project, tmp_path, tmp_path / "log1")
    assert H.forward_frames(tmp_path / "log1") == N
    assert not any(_out(tmp_path, s).exists() for s in OUTS)
    monkeypatch.setattr(mp, "write_meta_pickle", real)
    again = _run(project, tmp_path, tmp_path / "log2")
    assert again.ok, again.table()
    assert again.reports[0].stages["analyze"].info["resumed_from"] == N
    assert H.forward_frames(tmp_path / "log2") == 0
    _assert_same_outputs(tmp_path, reference)
