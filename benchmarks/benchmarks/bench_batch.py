"""Batch analysis at scale: peak memory vs video length, post-network stage speed.

``PeakMemory`` runs assembly → tracking → stitching on synthetic detections of 10k, 50k
and 100k frames (3 animals × 12 body parts, classic ``_full.pickle`` frames with PAF
costs, generated chunk by chunk so the input itself costs no memory):

* ``peakmem_streamed``: the batch runner's default (whole-video, DLC-exact) stages as
  files: assemblies streamed into ``_assemblies.pickle``, read back frame by frame,
  tracked into compact arrays, tracklet pickle written item by item, stitched, tracks
  ``.h5`` written in blocks (:mod:`mapose.batch.streaming`) — grows only by the compact
  tracklet arrays the global stitch needs;
* ``peakmem_chunked``: :func:`mapose.batch.chunked.track_in_chunks` (5000-frame chunks)
  — peak memory should be the same for every length;
* ``peakmem_whole_video``: DLC's layout, the whole video's assemblies, tracklet dict and
  stitcher in memory at once (what DLC's ``convert_detections2tracklets`` +
  ``stitch_tracklets`` do) — grows linearly with the length.

``Throughput`` times the chunked and streamed post-network pipelines over animals × body
parts.
"""
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mapose.batch.chunked import ChunkOptions, assembled_source, track_in_chunks
from mapose.batch.synthetic import SyntheticDetections

CFG = dict(variant=0, pafthreshold=0.1, method="m1", minimalnumberofconnections=6, pcutoff=0.1,
           topktoretain=3, withid=False, boundingboxslack=0, iou_threshold=0.6, max_age=1,
           min_hits=1)


def _chunked(synth, out, chunk=5000):
    cfg = dict(CFG, topktoretain=synth.n_animals)
    source = assembled_source(synth.full_frames, synth.metadata(),
                              n_multibodyparts=synth.n_bodyparts, inference_cfg=cfg)
    return track_in_chunks(source, synth.n_frames, out, joints=synth.bodyparts, scorer="S",
                           inference_cfg=cfg, n_tracks=synth.n_animals,
                           options=ChunkOptions(chunk_frames=chunk, overlap=50))


def _streamed(synth, folder, chunk=5000):
    """The default batch stages' data path, on files (assemble → track → stitch)."""
    from mapose.batch.streaming import (_stitch, read_compact_sidecar_arrays, write_compact_sidecar,
                                        write_tracklets_pickle_streamed, write_tracks_streamed)
    from mapose.io.assemblies_pickle import AssembliesPickleWriter, iter_assemblies_pickle
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.tracking.tracklets import TrackletBuilder, build_tracklets_compact

    cfg = dict(CFG, topktoretain=synth.n_animals)
    source = assembled_source(synth.full_frames, synth.metadata(),
                              n_multibodyparts=synth.n_bodyparts, inference_cfg=cfg)
    folder = Path(folder)
    asm = folder / "v_assemblies.pickle"
    with AssembliesPickleWriter(asm) as writer:
        for start in range(0, synth.n_frames, chunk):
            stop = min(start + chunk, synth.n_frames)
            got = source(start, stop)
            for f in range(start, stop):
                writer.add(f, got.get(f, np.empty((0, synth.n_bodyparts, 4))))
            del got
    builder = TrackletBuilder("ellipse", cfg, synth.bodyparts, "S", synth.n_frames)
    frames = ((k, v) for k, v in iter_assemblies_pickle(asm) if k != "single")
    store = build_tracklets_compact(frames, builder)
    write_tracklets_pickle_streamed(folder / "v_el.pickle", store, builder)
    write_compact_sidecar(folder / "v_el.pickle", store, builder)
    del store
    # the stitch stage: the track stage's arrays (the pickle is not parsed again), taken
    # by the stitcher without a copy and released by stitch() once the tracks are built
    ids, frames, data, _single, header = read_compact_sidecar_arrays(folder / "v_el.pickle")
    stitcher = TrackletStitcher.from_arrays(ids, frames, data, synth.n_animals, header=header)
    del ids, frames, data
    _stitch(stitcher)
    write_tracks_streamed(stitcher, folder / "v_el.h5")


def _whole_video(synth, out):
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.tracking.tracklets import build_tracklets

    cfg = dict(CFG, topktoretain=synth.n_animals)
    source = assembled_source(synth.full_frames, synth.metadata(),
                              n_multibodyparts=synth.n_bodyparts, inference_cfg=cfg)
    assemblies = {}
    for start in range(0, synth.n_frames, 5000):  # assembling in pieces saves nothing later
        assemblies.update(source(start, min(start + 5000, synth.n_frames)))
    tracklets = build_tracklets(assemblies, "ellipse", cfg, synth.bodyparts, "S", synth.n_frames)
    stitcher = TrackletStitcher.from_dict_of_dict(tracklets, synth.n_animals)
    stitcher.build_graph()
    stitcher.stitch()
    stitcher.format_df().to_hdf(out, key="tracks", format="table", mode="w")


class PeakMemory:
    params = [[10_000, 50_000, 100_000]]
    param_names = ["frames"]
    timeout = 1200
    number = 1
    repeat = 1

    def setup(self, frames):
        self.tmp = Path(tempfile.mkdtemp())
        self.synth = SyntheticDetections(frames, n_animals=3, n_bodyparts=12, seed=0)

    def teardown(self, frames):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def peakmem_streamed(self, frames):
        _streamed(self.synth, self.tmp)

    def peakmem_chunked(self, frames):
        _chunked(self.synth, self.tmp / "c_el.h5")

    def peakmem_whole_video(self, frames):
        _whole_video(self.synth, self.tmp / "w_el.h5")


class Throughput:
    params = [[3, 10], [6, 12], [2000]]
    param_names = ["animals", "bodyparts", "frames"]
    timeout = 600

    def setup(self, animals, bodyparts, frames):
        self.tmp = Path(tempfile.mkdtemp())
        self.synth = SyntheticDetections(frames, n_animals=animals, n_bodyparts=bodyparts, seed=1)
        # warm imports/kernels so the timing is the pipeline, not first use
        _chunked(SyntheticDetections(100, animals, bodyparts, seed=2), self.tmp / "w_el.h5", chunk=100)

    def teardown(self, *args):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def time_assemble_track_stitch_chunked(self, animals, bodyparts, frames):
        _chunked(self.synth, self.tmp / "t_el.h5", chunk=1000)

    def time_assemble_track_stitch_streamed(self, animals, bodyparts, frames):
        _streamed(self.synth, self.tmp, chunk=1000)

    def time_synthetic_input_only(self, animals, bodyparts, frames):
        # the share of the above spent generating the input (not part of mapose's cost)
        for start in range(0, frames, 1000):
            self.synth.full_frames(start, min(start + 1000, frames))


def _check():  # pragma: no cover - quick manual run: python bench_batch.py
    import resource
    import sys
    import time

    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    mode = sys.argv[2] if len(sys.argv) > 2 else "chunked"
    b = PeakMemory()
    b.setup(frames)
    t = time.perf_counter()
    getattr(b, f"peakmem_{mode}")(frames)
    print(f"{mode} {frames} frames: {time.perf_counter() - t:.1f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    b.teardown(frames)


if __name__ == "__main__":  # pragma: no cover
    _check()
