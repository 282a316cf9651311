"""Streamed whole-video tracking and stitching (mapose.batch.streaming) equals the dict path.

References: mapose's DLC-parity ``build_tracklets`` + ``write_tracklets_pickle`` and
``TrackletStitcher.write_tracks`` (themselves tested against DeepLabCut 3.0.2's files),
DLC's own files for project A, and ``read_assemblies_pickle``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.batch.streaming import (stitcher_from_compact, track_and_stitch,  # noqa: E402
                                    write_tracklets_pickle_streamed, write_tracks_streamed)
from mapose.io.assemblies_pickle import (AssembliesPickleWriter, iter_assemblies_pickle,  # noqa: E402
                                         read_assemblies_pickle, write_assemblies_pickle)
from mapose.io.safe_pickle import read_pickle  # noqa: E402
from mapose.tracking.tracklets import (TrackletBuilder, build_tracklets,  # noqa: E402
                                       build_tracklets_compact)

pd = pytest.importorskip("pandas")

CFG = dict(topktoretain=3, pcutoff=0.1, iou_threshold=0.6, max_age=1, min_hits=1,
           boundingboxslack=0)
ASM_A = H.recorded("_assemblies.pickle")


def _same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert [(k, type(k)) for k in a] == [(k, type(k)) for k in b]
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, pd.MultiIndex):
        assert a.equals(b) and a.names == b.names
    else:
        assert a == b


def _inputs(name):
    if name == "projA":
        path = ASM_A
    else:
        path = H.SHARED_DATA / "dlc-unittest" / f"{name}_assemblies.pickle"
    if not path.exists():
        pytest.skip(f"{path} not found")
    asm, single = read_assemblies_pickle(path)
    n_bpts = next(a.shape[1] for a in asm.values() if a.shape[1])
    joints = [f"bp{i}" for i in range(n_bpts)]
    unique = [f"u{i}" for i in range(next(iter(single.values())).shape[0])] if single else []
    return path, asm, single, joints, unique


@pytest.mark.parametrize("name,method,topk,identity_only", [
    ("projA", "ellipse", 3, False), ("projA", "box", 3, False), ("projA", "skeleton", 3, False),
    ("projA", "ellipse", 1, False), ("montblanc", "ellipse", 3, False),
    ("montblanc", "skeleton", 3, False), ("trimouse", "box", 3, True),
])
def test_compact_tracking_writes_the_same_tracklet_pickle(tmp_path, name, method, topk,
                                                          identity_only):
    from mapose.io.tracklets_pickle import write_tracklets_pickle

    path, asm, single, joints, unique = _inputs(name)
    cfg = dict(CFG, topktoretain=topk)
    n = max(asm) + 1
    ref = build_tracklets(dict(asm, single=single), method, cfg, joints + unique, "S", n,
                          unique_bodyparts=unique or None, identity_only=identity_only)
    write_tracklets_pickle(tmp_path / "ref.pickle", ref)
    builder = TrackletBuilder(method, cfg, joints + unique, "S", n, None, unique or None,
                              identity_only)
    frames = ((k, v) for k, v in iter_assemblies_pickle(path) if k != "single")
    store = build_tracklets_compact(frames, builder)
    write_tracklets_pickle_streamed(tmp_path / "ours.pickle", store, builder, single)
    _same(read_pickle(tmp_path / "ours.pickle"), read_pickle(tmp_path / "ref.pickle"))
    assert store.n_rows == sum(len(v) for k, v in ref.items() if k not in ("header", "single"))


@pytest.mark.parametrize("name,rows", [("projA", 7), ("projA", 100_000), ("montblanc", 13)])
def test_streamed_tracks_equal_write_tracks(tmp_path, name, rows):
    from mapose.stitching.stitcher import TrackletStitcher

    path, asm, single, joints, unique = _inputs(name)
    n = max(asm) + 1
    ref = build_tracklets(dict(asm, single=single), "ellipse", CFG, joints + unique, "S", n,
                          unique_bodyparts=unique or None)
    ref_st = TrackletStitcher.from_dict_of_dict(dict(ref), 3)
    ref_st.build_graph()
    ref_st.stitch()
    ref_st.write_tracks(tmp_path / "ref.h5", animal_names=["a", "b", "c"], save_as_csv=True)
    builder = TrackletBuilder("ellipse", CFG, joints + unique, "S", n, None, unique or None)
    st = track_and_stitch(((k, v) for k, v in asm.items()), builder, n_tracks=3,
                          single=single if unique else None)
    assert [len(t) for t in st.tracks] == [len(t) for t in ref_st.tracks]
    write_tracks_streamed(st, tmp_path / "ours.h5", ["a", "b", "c"], save_as_csv=True, rows=rows)
    ours, theirs = pd.read_hdf(tmp_path / "ours.h5"), pd.read_hdf(tmp_path / "ref.h5")
    pd.testing.assert_frame_equal(ours, theirs)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    if unique:
        assert "single" in ours.columns.get_level_values("individuals")


def test_streamed_stages_equal_dlc_functions_and_files(tmp_path):
    """The default batch stages (streamed) vs convert_detections2tracklets + stitch_tracklets."""
    from mapose import convert_detections2tracklets, stitch_tracklets
    from mapose.batch import run_videos

    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    res = run_videos(config, videos, stage_funcs={"analyze": H.replay_analyze}, post_workers=0,
                     save_as_csv=True, print_table=False)
    assert res.ok, res.table()
    assert res.reports[0].stages["track"].info["rows"] > 0  # the streamed stage ran
    direct = tmp_path / "direct"
    direct.mkdir()
    for sfx in H.STAGE_SUFFIXES["analyze"]:
        (direct / ("a" + H.SCORER + sfx)).write_bytes(H.recorded(sfx).read_bytes())
    convert_detections2tracklets(str(config), [str(videos[0])], destfolder=str(direct))
    stitch_tracklets(str(config), [str(videos[0])], destfolder=str(direct), save_as_csv=True)
    ours, ref = videos[0].parent / ("a" + H.SCORER), direct / ("a" + H.SCORER)
    _same(read_pickle(str(ours) + "_el.pickle"), read_pickle(str(ref) + "_el.pickle"))
    pd.testing.assert_frame_equal(pd.read_hdf(str(ours) + "_el.h5"), pd.read_hdf(str(ref) + "_el.h5"))
    assert Path(str(ours) + "_el.csv").read_bytes() == Path(str(ref) + "_el.csv").read_bytes()
    np.testing.assert_array_equal(pd.read_hdf(str(ours) + "_el.h5").to_numpy(),
                                  pd.read_hdf(H.recorded("_el.h5")).to_numpy())


def test_compact_tracklets_use_bytes_per_detection_not_objects():
    """Tracking memory: compact rows vs DLC's dict of dicts on the same 6000 frames."""
    import tracemalloc

    from mapose.batch.synthetic import SyntheticDetections

    synth = SyntheticDetections(6000, n_animals=3, n_bodyparts=12, seed=3)
    cfg = dict(CFG)

    def frames():
        for start in range(0, synth.n_frames, 500):
            yield from synth.assemblies(start, min(start + 500, synth.n_frames)).items()

    tracemalloc.start()
    store = build_tracklets_compact(frames(), TrackletBuilder("ellipse", cfg, synth.bodyparts,
                                                              "S", synth.n_frames))
    compact = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracemalloc.start()
    ref = build_tracklets(dict(frames()), "ellipse", cfg, synth.bodyparts, "S", synth.n_frames)
    del ref["header"]
    as_dicts = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    n = store.n_rows
    assert n == sum(len(v) for v in ref.values()) > 15_000
    per_row = 16 + 12 * 4 * 8
    assert compact < 1.35 * n * per_row, (compact / n, per_row)  # blocks of 4096 rows
    # DLC's dict shares the frame's arrays (views), so the gain is the per-row objects
    assert compact < 0.85 * as_dicts, (as_dicts, compact)


def test_assemblies_writer_and_reader(tmp_path):
    path, asm, single, _, _ = _inputs("montblanc")
    write_assemblies_pickle(tmp_path / "ref.pickle", asm, single)
    with AssembliesPickleWriter(tmp_path / "ours.pickle") as w:
        for k, v in asm.items():
            w.add(k, v, single.get(k))
    _same(read_pickle(tmp_path / "ours.pickle"), read_pickle(tmp_path / "ref.pickle"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours.pickle", "ref.pickle"]
    # DLC's TF layout (lists, frames unsorted): read whole and yielded sorted
    items = list(iter_assemblies_pickle(path))
    assert items[-1][0] == "single" and [k for k, _ in items[:-1]] == sorted(asm)
    for k, v in items[:-1]:
        np.testing.assert_array_equal(v, asm[k])
    # DLC 3's layout: "single" first, frames one by one
    items = list(iter_assemblies_pickle(ASM_A))
    ref_a, ref_s = read_assemblies_pickle(ASM_A)
    assert items[0] == ("single", ref_s) and [k for k, _ in items[1:]] == list(ref_a)


def test_assemblies_writer_errors_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="frame_index"):
        with AssembliesPickleWriter(tmp_path / "x.pickle") as w:
            w.add(-1, np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"expected \(n_assemblies, n_bodyparts, 4\)"):
        with AssembliesPickleWriter(tmp_path / "x.pickle") as w:
            w.add(0, np.zeros((1, 3, 3)))
    assert not list(tmp_path.iterdir())


def test_out_of_order_assemblies_are_an_error(tmp_path):
    import pickle

    bad = tmp_path / "bad_assemblies.pickle"
    bad.write_bytes(pickle.dumps({"single": {}, 1: np.zeros((1, 3, 4)), 0: np.zeros((1, 3, 4))}))
    with pytest.raises(ValueError, match="increasing int frame indices"):
        list(iter_assemblies_pickle(bad))


def test_streamed_writer_errors(tmp_path):
    _, asm, _, joints, _ = _inputs("projA")
    builder = TrackletBuilder("ellipse", CFG, joints, "S", 150)
    store = build_tracklets_compact(asm.items(), builder)
    st = stitcher_from_compact(store, 3, header=builder.header)
    with pytest.raises(ValueError, match="stitch"):
        write_tracks_streamed(st, tmp_path / "t.h5")
    st.build_graph()
    st.stitch()
    with pytest.raises(ValueError, match="rows must be a positive int"):
        write_tracks_streamed(st, tmp_path / "t.h5", rows=0)
    assert not list(tmp_path.iterdir())
    empty = build_tracklets_compact(iter(()), builder)
    with pytest.raises(OSError, match="Tracklets are empty"):
        stitcher_from_compact(empty, 3)


def test_stitch_stage_reads_the_track_stage_arrays_only_for_that_pickle(tmp_path):
    from mapose.batch.stages import VideoJob
    from mapose.batch.streaming import (_sidecar_dir, streaming_stitch_stage,
                                        streaming_track_stage)

    config, videos = H.make_project(tmp_path / "proj", names=("a",))
    dest = videos[0].parent
    for sfx in H.STAGE_SUFFIXES["analyze"]:
        (dest / ("a" + H.SCORER + sfx)).write_bytes(H.recorded(sfx).read_bytes())
    job = VideoJob(config=str(config), video=str(videos[0]), scorer=H.SCORER, destfolder=str(dest))
    pkl, h5 = job.stage_outputs("track")[0], job.stage_outputs("stitch")[0]
    streaming_track_stage(job)
    assert _sidecar_dir(pkl).is_dir()
    rep = streaming_stitch_stage(job)
    assert rep.info["tracklets_from"] == "arrays" and not _sidecar_dir(pkl).exists()
    first = pd.read_hdf(h5)
    np.testing.assert_array_equal(first.to_numpy(), pd.read_hdf(H.recorded("_el.h5")).to_numpy())
    # a tracklet pickle replaced after tracking (here: DLC's own) is read, not the arrays
    streaming_track_stage(job)
    pkl.write_bytes(H.recorded("_el.pickle").read_bytes())
    rep = streaming_stitch_stage(job)
    assert rep.info["tracklets_from"] == "pickle"
    pd.testing.assert_frame_equal(pd.read_hdf(h5), first)
    # damaged arrays beside an intact pickle: the pickle is read
    streaming_track_stage(job)
    data = _sidecar_dir(pkl) / "data.npy"
    data.write_bytes(data.read_bytes()[:-100])
    rep = streaming_stitch_stage(job)
    assert rep.info["tracklets_from"] == "pickle"
    pd.testing.assert_frame_equal(pd.read_hdf(h5), first)
