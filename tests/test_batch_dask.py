"""Dask submission: same outputs as a local run; a killed worker loses nothing."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch import run_videos  # noqa: E402

distributed = pytest.importorskip("distributed")
pytestmark = [
    pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found"),
    pytest.mark.slow,
]

_ALL = ["_full.pickle", "_meta.pickle", "_assemblies.pickle", "_el.pickle", "_el.h5",
        "_progress.json"]


def _outputs(folder, stems):
    return {(s, sfx): Path(folder, s + H.SCORER + sfx).read_bytes()
            for s in stems for sfx in _ALL if sfx != "_progress.json"}


def test_local_cluster_matches_local_run(tmp_path):
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b", "c"))
    local = run_videos(config, videos, scorer=H.SCORER, destfolder=tmp_path / "local",
                       stage_funcs=H.REPLAY, post_workers=0, print_table=False)
    dask = run_videos(config, videos, scorer=H.SCORER, destfolder=tmp_path / "dask",
                      stage_funcs=H.REPLAY, cluster="local:2", print_table=False)
    assert local.ok and dask.ok
    assert [r.video for r in dask] == [r.video for r in local]
    assert [(r.status, r.frames, r.tracks) for r in dask] == [("done", 150, 3)] * 3
    assert _outputs(tmp_path / "dask", "abc") == _outputs(tmp_path / "local", "abc")
    # the work ran in worker processes, not here
    assert all(r.worker and not r.worker.endswith(f":{__import__('os').getpid()}") for r in dask)


def test_killed_worker_task_reruns_elsewhere(tmp_path):
    """A worker dies mid-write of a tracklets file; Dask reruns the task, which resumes."""
    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    kill = tmp_path / "kill"
    opts = {"kill_once": str(kill)}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        res = run_videos(config, videos, scorer=H.SCORER, stage_funcs=H.REPLAY,
                         scheduler=client, track_kwargs=opts, print_table=False)
        assert client.status == "running"  # a client passed in stays open
    assert res.ok, res.table()
    assert sorted(p.name for p in kill.iterdir()) == ["track-a", "track-b"]
    for r, v in zip(res, videos):
        assert r.attempts == 2  # the first attempt died with its worker
        # resumed: the network outputs of the dead attempt were kept, not recomputed
        assert r.stages["analyze"].status == "skipped"
        assert r.stages["track"].status == "done" and r.stages["stitch"].status == "done"
        for sfx in _ALL[:-1]:
            out = v.parent / (v.stem + H.SCORER + sfx)
            assert out.read_bytes() == H.recorded(sfx).read_bytes(), sfx
        assert not list(v.parent.glob(f".{v.stem}*.part"))


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("mapose.batch.cluster.CONNECT_TIMEOUT", "1s")
    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    with pytest.raises(OSError, match="Dask scheduler"):
        run_videos(config, videos, scorer=H.SCORER, scheduler="tcp://127.0.0.1:1",
                   print_table=False)


def test_long_video_split_into_chunk_tasks(tmp_path):
    """chunk_frames on a cluster: chunks are tracked in parallel tasks, then joined."""
    pytest.importorskip("mapose.tracking.tracklets")
    import numpy as np
    import pandas as pd

    config, videos = H.make_project(tmp_path / "proj", names=("a", "b"))
    res = run_videos(config, videos, stage_funcs={"analyze": H.replay_analyze}, cluster="local:2",
                     chunk_frames=60, chunk_overlap=20, print_table=False)
    assert res.ok, res.table()
    dlc = pd.read_hdf(H.recorded("_el.h5"))
    for r, v in zip(res, videos):
        st = r.stages["stitch"]
        # 150 frames / 60 -> 3 chunks, all computed by chunk tasks before the join
        assert st.info["chunk_tasks"] == 3 and st.info["chunks_reused"] == 3
        ours = pd.read_hdf(v.parent / (v.stem + H.SCORER + "_el.h5"))
        np.testing.assert_array_equal(ours.to_numpy(), dlc.to_numpy())
        assert not (v.parent / (v.stem + H.SCORER + "_el_chunks")).exists()
