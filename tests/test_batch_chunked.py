"""Chunked tracking/stitching: DLC's numbers, flat memory, resume, joins at boundaries."""
from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch.chunked import ChunkOptions, match_tracks, track_in_chunks  # noqa: E402
from mapose.batch.synthetic import SyntheticDetections  # noqa: E402

pd = pytest.importorskip("pandas")
tracklets_mod = pytest.importorskip("mapose.tracking.tracklets")
stitcher_mod = pytest.importorskip("mapose.stitching.stitcher")

CFG = dict(variant=0, pafthreshold=0.1, method="m1", minimalnumberofconnections=6, pcutoff=0.1,
           topktoretain=3, withid=False, boundingboxslack=0, iou_threshold=0.6, max_age=1,
           min_hits=1)


def _run(synth, out, chunk, overlap=30, source=None):
    return track_in_chunks(source or synth.assemblies, synth.n_frames, out,
                           joints=synth.bodyparts, scorer="S", inference_cfg=CFG,
                           n_tracks=synth.n_animals,
                           options=ChunkOptions(chunk_frames=chunk, overlap=overlap))


def _whole_video_df(synth):
    """DLC's whole-video path with mapose's tracker and stitcher."""
    asm = synth.assemblies(0, synth.n_frames)
    tr = tracklets_mod.build_tracklets(asm, "ellipse", CFG, synth.bodyparts, "S", synth.n_frames)
    st = stitcher_mod.TrackletStitcher.from_dict_of_dict(tr, synth.n_animals)
    st.build_graph()
    st.stitch()
    return st.format_df()


def test_one_chunk_equals_whole_video_stitch(tmp_path):
    synth = SyntheticDetections(600, 3, 6, seed=3)
    info = _run(synth, tmp_path / "x_el.h5", chunk=1000)
    ours = pd.read_hdf(tmp_path / "x_el.h5", key="tracks")
    ref = _whole_video_df(synth)
    assert info["chunks"] == 1 and not (tmp_path / "x_el_chunks").exists()
    assert ours.columns.equals(ref.columns) and ours.index.equals(ref.index)
    np.testing.assert_array_equal(ours.to_numpy(), ref.to_numpy())


def _gt_identity(synth, df):
    """(n_frames, n_tracks) index of the ground-truth animal each track is on (-1: none)."""
    xy, _ = synth.keypoints(0, len(df))
    tr = df.to_numpy().reshape(len(df), synth.n_animals, synth.n_bodyparts, 3)[..., :2]
    d = np.nanmean(np.linalg.norm(tr[:, :, None] - xy[:, None], axis=-1), axis=-1)
    ident = np.where(np.isfinite(d).any(-1), np.nanargmin(np.where(np.isfinite(d), d, np.inf), -1), -1)
    return ident


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
def test_chunk_boundaries_keep_identities(tmp_path):
    synth = SyntheticDetections(2400, 3, 6, seed=5)
    _run(synth, tmp_path / "c_el.h5", chunk=400, overlap=30)
    df = pd.read_hdf(tmp_path / "c_el.h5")
    assert len(df) <= synth.n_frames and df.shape[1] == 3 * 6 * 3
    ident = _gt_identity(synth, df)
    for b in range(400, len(df), 400):
        before, after = ident[b - 5:b], ident[b:b + 5]
        for k in range(synth.n_animals):
            lo = before[:, k][before[:, k] >= 0]
            hi = after[:, k][after[:, k] >= 0]
            if len(lo) and len(hi):
                assert lo[-1] == hi[0], f"track {k} switched animal at chunk boundary {b}"
    # and overall the chunked result is as good as the whole-video stitch
    whole = _gt_identity(synth, _whole_video_df(synth))
    switches = lambda ident: int(sum(  # noqa: E731
        np.count_nonzero(np.diff(c[c >= 0])) for c in ident.T))
    assert switches(ident) <= switches(whole) + 2


def test_memory_is_flat_in_video_length(tmp_path):
    peaks = []
    for n in (1000, 4000):
        synth = SyntheticDetections(n, 3, 6, seed=1)
        tracemalloc.start()
        _run(synth, tmp_path / f"m{n}_el.h5", chunk=250, overlap=20)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks


def test_resume_after_crash_skips_finished_chunks(tmp_path):
    synth = SyntheticDetections(1000, 3, 6, seed=2)
    calls = []

    def crashing(start, stop):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt("power cut")
        return synth.assemblies(start, stop)

    with pytest.raises(KeyboardInterrupt):
        _run(synth, tmp_path / "x_el.h5", chunk=250, source=crashing)
    assert not (tmp_path / "x_el.h5").exists()  # never a partial final file
    done = sorted(p.name for p in (tmp_path / "x_el_chunks").glob("chunk_*.npy"))
    assert done == ["chunk_000000.npy", "chunk_000001.npy"]
    calls.clear()
    info = _run(synth, tmp_path / "x_el.h5", chunk=250, source=crashing)
    assert calls == [470, 720] and info["resumed"] == 2  # chunks 2 and 3 only
    _run(synth, tmp_path / "ref_el.h5", chunk=250)
    np.testing.assert_array_equal(pd.read_hdf(tmp_path / "x_el.h5").to_numpy(),
                                  pd.read_hdf(tmp_path / "ref_el.h5").to_numpy())
    assert not (tmp_path / "x_el_chunks").exists()


def test_checkpoints_of_other_settings_are_not_reused(tmp_path):
    synth = SyntheticDetections(600, 3, 6, seed=2)
    out = tmp_path / "y_el.h5"
    track_in_chunks(synth.assemblies, 600, out, joints=synth.bodyparts, scorer="S",
                    inference_cfg=CFG, n_tracks=3, keep_chunks=True,
                    options=ChunkOptions(chunk_frames=200, overlap=20))
    calls = []

    def counting(start, stop):
        calls.append(start)
        return synth.assemblies(start, stop)

    # same settings: everything reused; another overlap: everything recomputed
    info = track_in_chunks(counting, 600, out, joints=synth.bodyparts, scorer="S",
                           inference_cfg=CFG, n_tracks=3, keep_chunks=True,
                           options=ChunkOptions(chunk_frames=200, overlap=20))
    assert calls == [] and info["resumed"] == 3
    info = track_in_chunks(counting, 600, out, joints=synth.bodyparts, scorer="S",
                           inference_cfg=CFG, n_tracks=3,
                           options=ChunkOptions(chunk_frames=200, overlap=30))
    assert calls == [0, 170, 370] and info["resumed"] == 0


def test_no_detections_gives_empty_tracks_file(tmp_path):
    synth = SyntheticDetections(300, 2, 4)
    info = track_in_chunks(lambda a, b: {}, 300, tmp_path / "e_el.h5", joints=synth.bodyparts,
                           scorer="S", inference_cfg=CFG, n_tracks=2,
                           options=ChunkOptions(chunk_frames=100, overlap=10), save_as_csv=True)
    df = pd.read_hdf(tmp_path / "e_el.h5", key="tracks")
    assert df.empty and list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert info["frames"] == 0 and any("no tracks" in w for w in info["warnings"])
    assert (tmp_path / "e_el.csv").exists()


def test_csv_streams_like_dlc(tmp_path):
    synth = SyntheticDetections(500, 2, 4, seed=4)
    track_in_chunks(synth.assemblies, 500, tmp_path / "s_el.h5", joints=synth.bodyparts,
                    scorer="S", inference_cfg=dict(CFG, topktoretain=2), n_tracks=2,
                    options=ChunkOptions(chunk_frames=200, overlap=20), save_as_csv=True)
    h5 = pd.read_hdf(tmp_path / "s_el.h5")
    csv = pd.read_csv(tmp_path / "s_el.csv", header=[0, 1, 2, 3], index_col=0)
    np.testing.assert_allclose(csv.to_numpy(), h5.to_numpy(), rtol=1e-12)
    assert csv.columns.tolist() == h5.columns.tolist()


@pytest.mark.smoke
def test_match_tracks_recovers_permutation():
    rng = np.random.default_rng(0)
    prev = rng.uniform(0, 500, (20, 4, 5, 3))
    perm = np.array([2, 0, 3, 1])
    cur = prev[:, perm] + rng.normal(0, 0.5, prev.shape)  # cur track j is prev track perm[j]
    m = match_tracks(prev, cur)
    assert np.array_equal(m, np.argsort(perm))
    assert np.allclose(cur[:, m], prev, atol=3)
    # a track missing on one side still gets a slot; the others stay matched
    cur2 = cur.copy()
    cur2[:, 1] = np.nan
    m = match_tracks(prev, cur2)
    assert sorted(m) == [0, 1, 2, 3]
    ok = [i for i in range(4) if m[i] != 1]
    assert np.allclose(cur2[:, m[ok]], prev[:, ok], atol=3)


@pytest.mark.smoke
def test_chunk_options_validation():
    with pytest.raises(ValueError, match="chunk_frames"):
        ChunkOptions(chunk_frames=5)
    with pytest.raises(ValueError, match="overlap"):
        ChunkOptions(chunk_frames=100, overlap=100)
    assert ChunkOptions(chunk_frames=100, overlap=10).ranges(250) == [
        (0, 0, 100), (90, 100, 200), (190, 200, 250)]
    with pytest.raises(ValueError, match="n_frames"):
        track_in_chunks(lambda a, b: {}, -1, "x.h5", joints=["a"], scorer="S",
                        inference_cfg=CFG, n_tracks=1)


@pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")
@pytest.mark.parametrize("chunk,overlap", [(1000, 50), (60, 20)])
def test_batch_chunked_mode_matches_dlc_tracks(tmp_path, chunk, overlap):
    """run_videos(chunk_frames=...) on project A's DLC assemblies gives DLC's _el.h5."""
    from mapose.batch import run_videos

    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    res = run_videos(config, videos, stage_funcs={"analyze": H.replay_analyze},
                     chunk_frames=chunk, chunk_overlap=overlap, post_workers=0, print_table=False)
    assert res.ok, res.table()
    assert list(res.reports[0].stages) == ["analyze", "stitch"]
    assert res.reports[0].tracks == 3
    ours = pd.read_hdf(videos[0].parent / ("a" + H.SCORER + "_el.h5"))
    dlc = pd.read_hdf(H.recorded("_el.h5"))
    assert ours.columns.equals(dlc.columns) and ours.index.equals(dlc.index)
    np.testing.assert_array_equal(ours.to_numpy(), dlc.to_numpy())


def _write_pytorch_assemblies(path, asm, single=None):
    from mapose.io.assemblies_pickle import AssembliesPickleWriter

    n_bpts = next(a.shape[1] for a in asm.values() if a.shape[1])
    with AssembliesPickleWriter(path) as w:
        for f in range(max(asm) + 1):
            w.add(f, asm.get(f, np.empty((0, n_bpts, 4))), (single or {}).get(f))


@pytest.mark.parametrize("layout", ["tf", "pytorch"])
def test_unique_bodyparts_are_written_like_the_whole_video_stitch(tmp_path, layout):
    """chunked mode used to drop "single"; now its columns equal format_df's."""
    from mapose.batch.chunked import AssembliesStream
    from mapose.io.assemblies_pickle import read_assemblies_pickle

    src = H.SHARED_DATA / "dlc-unittest" / "montblanc_assemblies.pickle"
    if not src.exists():
        pytest.skip("DLC unit-test data not found")
    asm, single = read_assemblies_pickle(src)
    path = src
    if layout == "pytorch":
        path = tmp_path / "m_assemblies.pickle"
        _write_pytorch_assemblies(path, asm, single)
    joints = [f"bp{i}" for i in range(4)]
    unique = [f"u{i}" for i in range(next(iter(single.values())).shape[0])]
    n = max(asm) + 1
    tr = tracklets_mod.build_tracklets(dict(asm, single=single), "ellipse", CFG, joints + unique,
                                       "S", n, unique_bodyparts=unique)
    st = stitcher_mod.TrackletStitcher.from_dict_of_dict(tr, 3)
    st.build_graph()
    st.stitch()
    ref = st.format_df()
    get = AssembliesStream(path)
    track_in_chunks(get, n, tmp_path / "m_el.h5", joints=joints, scorer="S", inference_cfg=CFG,
                    n_tracks=3, options=ChunkOptions(chunk_frames=1000, overlap=30),
                    unique_bodyparts=unique, get_single=get.single)
    ours = pd.read_hdf(tmp_path / "m_el.h5", key="tracks")
    assert "single" in ours.columns.get_level_values("individuals")
    assert ours.columns.equals(ref.columns) and ours.index.equals(ref.index)
    np.testing.assert_array_equal(ours.to_numpy(), ref.to_numpy())
    # several chunks: the "single" columns do not depend on the chunking
    track_in_chunks(get, n, tmp_path / "c_el.h5", joints=joints, scorer="S", inference_cfg=CFG,
                    n_tracks=3, options=ChunkOptions(chunk_frames=50, overlap=20),
                    unique_bodyparts=unique, get_single=get.single)
    chunked = pd.read_hdf(tmp_path / "c_el.h5", key="tracks")
    pd.testing.assert_frame_equal(chunked.xs("single", axis=1, level="individuals"),
                                  ours.xs("single", axis=1, level="individuals"))


def test_assemblies_stream_equals_dict_lookup(tmp_path):
    from mapose.batch.chunked import AssembliesStream, assemblies_pickle_source

    synth = SyntheticDetections(700, 3, 6, seed=7)
    asm = synth.assemblies(0, 700)
    asm[650] = np.empty((0, 6, 4))  # a frame without animals
    path = tmp_path / "s_assemblies.pickle"
    _write_pytorch_assemblies(path, asm)
    get, n = assemblies_pickle_source(path)
    assert n == 700
    ranges = ChunkOptions(chunk_frames=200, overlap=30).ranges(700)
    for start, _core, stop in ranges + ranges[:1] + ranges[2:]:  # in order, then a restart
        got = get(start, stop)
        want = {f: a for f, a in asm.items() if start <= f < stop and len(a)}
        assert list(got) == list(want)
        for f in want:
            np.testing.assert_array_equal(got[f], want[f])
    assert get.single(0, 700) == {}
    assert AssembliesStream(path).count_frames() == 700


def test_assemblies_stream_memory_is_flat(tmp_path):
    from mapose.batch.chunked import AssembliesStream

    peaks = []
    for n in (1000, 8000):
        synth = SyntheticDetections(n, 3, 12, seed=1)
        path = tmp_path / f"a{n}.pickle"
        _write_pytorch_assemblies(path, synth.assemblies(0, n))
        get = AssembliesStream(path)
        tracemalloc.start()
        total = 0
        for start, _core, stop in ChunkOptions(chunk_frames=250, overlap=20).ranges(n):
            total += len(get(start, stop))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert total > n
    assert peaks[1] < 1.3 * peaks[0], peaks  # 8x the frames, same memory


@pytest.mark.parametrize("start", ["no manifest", "other manifest", "absent"])
def test_parallel_chunk_tasks_never_empty_each_others_folder(tmp_path, start):
    """Chunk tasks of one video start together (Dask): none may wipe a sibling's chunk."""
    import threading

    from mapose.batch.chunked import chunk_file, open_chunk_dir

    manifest = {"version": 1, "n_frames": 10}
    for round_ in range(15):  # a race shows up in some rounds only
        folder = tmp_path / f"r{round_}" / "c_chunks"
        if start != "absent":
            folder.mkdir(parents=True)
            chunk_file(folder, 99).write_bytes(b"stale")
            if start == "other manifest":
                (folder / "manifest.json").write_text(json.dumps(dict(manifest, n_frames=3)))
        barrier = threading.Barrier(8)
        errors = []

        def task(i):
            try:
                barrier.wait()
                d = open_chunk_dir(folder, manifest)
                chunk_file(d, i).write_bytes(b"done")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=task, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        names = sorted(p.name for p in folder.glob("chunk_*"))
        assert names == [f"chunk_{i:06d}.npy" for i in range(8)]  # the stale one is gone
        # no temporaries left beside it
        assert sorted(p.name for p in folder.parent.iterdir()) == ["c_chunks", "c_chunks.lock"]
    folder = tmp_path / "r0" / "c_chunks"
    manifest = {"version": 1, "n_frames": 10}
    # other settings: the folder is emptied once, then reused
    d = open_chunk_dir(folder, dict(manifest, n_frames=11))
    assert not list(d.glob("chunk_*"))
    assert sorted(p.name for p in folder.parent.iterdir()) == ["c_chunks", "c_chunks.lock"]
