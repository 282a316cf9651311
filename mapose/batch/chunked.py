"""Tracking and stitching in bounded chunks: memory flat in video length, resumable.

DLC's post-network stages hold a whole video at once: the ``_assemblies.pickle`` dict,
the tracklet dict, and every :class:`~mapose.stitching.tracklet.Tracklet` the stitcher
solves over.  For long recordings (hours at 30-100 fps) :func:`track_in_chunks` instead

1. takes ``chunk_frames`` frames of assemblies at a time (plus ``overlap`` frames shared
   with the previous chunk) from a source that can produce any frame range,
2. runs mapose's DLC tracker (``build_tracklets``) and stitcher (``TrackletStitcher``) on
   that chunk alone and saves the chunk's ``n_tracks`` tracks as a checkpoint file
   (``<stem><scorer>_<el>_chunks/chunk_000012.npy``, renamed into place when complete;
   a manifest in that folder ties the checkpoints to their inputs and settings),
3. joins consecutive chunks by matching their tracks on the overlapping frames (optimal
   assignment of mean keypoint distances), and streams the result into the tracks
   ``.h5`` (DLC's layout, key ``"tracks"``, table format) chunk by chunk.

Peak memory is set by ``chunk_frames``, not by the video length (the batch stage reads
DLC's ``_assemblies.pickle`` frame by frame, :class:`AssembliesStream`, keeping only the
current chunk and the unique body parts as one compact array), and an interrupted run
resumes at the first chunk without a checkpoint.  Chunks
are independent, so they also run in parallel (one Dask task each) before the join.

Differences from the whole-video stitch (why this is opt-in): the stitcher's optimisation
is global within a chunk but greedy across chunk boundaries, so identities can differ
from DLC's on long videos where two animals swap exactly at a boundary; tracklets are
split at chunk boundaries (``min_length`` applies per chunk).  Unique body parts
(``single``) are written as DLC's stitch writes them (columns after the tracks, a row for
every frame that has them).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mapose.io.atomic import atomic_open, atomic_path



@dataclass(frozen=True)
class ChunkOptions:
    """Tunables of chunked tracking.

    Parameters
    ----------
    chunk_frames : int, default 5000
        Frames per chunk (memory grows with this, not with the video).
    overlap : int, default 50
        Frames shared by consecutive chunks, used to match their tracks.
    min_length : int, default 10
        ``TrackletStitcher`` minimum tracklet length (per chunk).
    split_tracklets, prestitch_residuals : bool
        As in ``stitch_tracklets``.
    max_gap : int or None
        As in ``stitch_tracklets`` (None: 1.5 × the largest gap in the chunk).
    """

    chunk_frames: int = 5000
    overlap: int = 50
    min_length: int = 10
    split_tracklets: bool = True
    prestitch_residuals: bool = True
    max_gap: int | None = None

    def __post_init__(self):
        if isinstance(self.chunk_frames, bool) or not isinstance(self.chunk_frames, (int, np.integer)) \
                or self.chunk_frames < 20:
            raise ValueError(f"chunk_frames must be an int >= 20; got {self.chunk_frames!r}. "
                             "Use a few thousand frames per chunk.")
        if not isinstance(self.overlap, (int, np.integer)) or not 1 <= self.overlap < self.chunk_frames:
            raise ValueError(f"overlap must be an int in [1, chunk_frames); got {self.overlap!r}.")

    def ranges(self, n_frames: int) -> list[tuple[int, int, int]]:
        """``(start, core_start, stop)`` per chunk; ``[start, core_start)`` is the overlap."""
        out = []
        for core in range(0, n_frames, self.chunk_frames):
            stop = min(core + self.chunk_frames, n_frames)
            out.append((max(0, core - self.overlap), core, stop))
        return out


def _empty_tracks(n, n_tracks, n_bpts):
    return np.full((n, n_tracks, n_bpts, 3), np.nan)


def track_chunk(assemblies: dict, start: int, stop: int, *, n_tracks: int, joints: list,
                scorer: str, inference_cfg: dict, track_method: str = "ellipse",
                options: ChunkOptions = ChunkOptions()) -> tuple[np.ndarray, list[str]]:
    """Track and stitch frames ``[start, stop)`` on their own.

    Parameters
    ----------
    assemblies : dict of int to ndarray of shape (n_animals, n_bodyparts, 4)
        Assemblies keyed by *global* frame index (frames without animals may be absent).
    start, stop : int
    n_tracks : int
    joints : list of str
        Multi-animal body part names.
    scorer : str
    inference_cfg : dict
        DLC's inference configuration (``topktoretain``, ``pcutoff``, tracker settings).
    track_method : str
    options : ChunkOptions

    Returns
    -------
    tracks : ndarray of shape (stop - start, n_tracks, n_bodyparts, 3), float64
        x, y, likelihood per track; NaN where a track has no data.
    warnings : list of str
        Problems met (e.g. no tracklet long enough: the chunk is left empty).
    """
    from mapose.stitching.stitcher import TrackletStitcher
    from mapose.tracking.tracklets import build_tracklets

    n = stop - start
    n_bpts = len(joints)
    out = _empty_tracks(n, n_tracks, n_bpts)
    notes: list[str] = []
    local = {f - start: np.asarray(a) for f, a in assemblies.items() if start <= f < stop}
    if not local:
        return out, [f"frames {start}-{stop - 1}: no detections"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracklets = build_tracklets(local, track_method, inference_cfg, list(joints), scorer, n)
        try:
            stitcher = TrackletStitcher.from_dict_of_dict(
                tracklets, n_tracks, min_length=options.min_length,
                split_tracklets=options.split_tracklets,
                prestitch_residuals=options.prestitch_residuals)
            stitcher.build_graph(max_gap=options.max_gap)
            stitcher.stitch()
            flat = stitcher.concatenate_data()
            first = stitcher._first_frame_out
            out[first:first + len(flat)] = flat.reshape(len(flat), n_tracks, n_bpts, 3)
        except OSError as exc:  # "Tracklets are empty": nothing long enough in this chunk
            notes.append(f"frames {start}-{stop - 1}: {exc}")
    notes += [f"frames {start}-{stop - 1}: {w.message}" for w in caught]
    return out, notes


def _centroids(tracks):
    """(n, n_tracks, 2) likelihood-free mean keypoint position per frame (NaN if none)."""
    xy = tracks[..., :2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(xy, axis=2)


def match_tracks(prev_tail: np.ndarray, cur_head: np.ndarray) -> np.ndarray:
    """Permutation of the current chunk's tracks that continues the previous chunk's.

    Parameters
    ----------
    prev_tail : ndarray of shape (n_overlap, n_tracks, n_bodyparts, 3)
        The previous chunk's (already ordered) tracks on the overlap frames.
    cur_head : ndarray of shape (n_overlap, n_tracks, n_bodyparts, 3)
        The current chunk's tracks on the same frames.

    Returns
    -------
    perm : ndarray of shape (n_tracks,), int
        ``cur[:, perm]`` lines up with ``prev``.  Cost = mean keypoint distance over
        frames both tracks cover; pairs with no common frame cost more than any real
        match, so tracks only seen on one side keep the order of the others.
    """
    from mapose.kernels.lap import linear_sum_assignment

    n_tracks = prev_tail.shape[1]
    d = np.linalg.norm(prev_tail[:, :, None, :, :2] - cur_head[:, None, :, :, :2], axis=-1)
    finite = np.isfinite(d)
    counts = finite.sum(axis=(0, 3))
    sums = np.where(finite, d, 0).sum(axis=(0, 3))
    cost = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    big = (np.nanmax(cost[np.isfinite(cost)]) if np.isfinite(cost).any() else 0.0) + 1e6
    # no common frame: fall back to the distance of the centroids' nearest observations
    pc, cc = _centroids(prev_tail), _centroids(cur_head)
    for i in range(n_tracks):
        for j in range(n_tracks):
            if np.isfinite(cost[i, j]):
                continue
            pi = pc[:, i][np.isfinite(pc[:, i, 0])]
            cj = cc[:, j][np.isfinite(cc[:, j, 0])]
            cost[i, j] = big + (np.linalg.norm(pi[-1] - cj[0]) if len(pi) and len(cj) else big)
    _, cols = linear_sum_assignment(cost)
    return np.asarray(cols, dtype=np.intp)


def _columns(scorer, animal_names, joints):
    import pandas as pd

    return pd.MultiIndex.from_product(
        [[scorer], list(animal_names), list(joints), ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"])


def _manifest(n_frames, joints, scorer, inference_cfg, n_tracks, track_method, options,
              source_id) -> dict:
    return {"version": 1, "n_frames": int(n_frames), "joints": list(joints), "scorer": scorer,
            "inference_cfg": {k: inference_cfg[k] for k in sorted(inference_cfg)},
            "n_tracks": int(n_tracks), "track_method": track_method,
            "options": {k: getattr(options, k) for k in ChunkOptions.__dataclass_fields__},
            "source": source_id}


def open_chunk_dir(chunk_dir, manifest: dict) -> Path:
    """Create ``chunk_dir``, or replace it when its checkpoints were made for other inputs.

    A chunk counts as finished when ``chunk_%06d.npy`` exists: it is renamed into place
    only when complete, and the manifest (frames, body parts, tracker settings, chunking,
    input fingerprint) guarantees it belongs to this very computation.

    Safe for chunk tasks of one video starting at the same time (Dask): the check and the
    set-up run under an exclusive lock on ``<chunk_dir>.lock``, and a folder is prepared
    under a private name with its manifest inside before it is renamed into place, so a
    task never empties a folder that a sibling already set up and fills.
    """
    chunk_dir = Path(chunk_dir)
    mpath = chunk_dir / "manifest.json"
    want = json.loads(json.dumps(manifest))
    chunk_dir.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(_lock_path(chunk_dir)):
        try:
            current = json.loads(mpath.read_text())
        except FileNotFoundError:
            current = None
        except (OSError, ValueError):
            current = "unreadable"
        if current == want:
            return chunk_dir
        if chunk_dir.exists():
            # checkpoints of another computation, or of unknown origin (no manifest)
            stale = chunk_dir.with_name(f"{chunk_dir.name}.stale{uuid.uuid4().hex}")
            os.rename(chunk_dir, stale)
            shutil.rmtree(stale, ignore_errors=True)
        fresh = chunk_dir.with_name(f"{chunk_dir.name}.new{uuid.uuid4().hex}")
        fresh.mkdir()
        (fresh / "manifest.json").write_text(json.dumps(manifest))
        os.rename(fresh, chunk_dir)
    return chunk_dir


def _lock_path(chunk_dir: Path) -> Path:
    return chunk_dir.with_name(chunk_dir.name + ".lock")


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """Hold an OS lock on ``path`` (released by the OS too if the process dies)."""
    with open(path, "a+b") as handle:
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def chunk_file(chunk_dir, i: int) -> Path:
    return Path(chunk_dir) / f"chunk_{i:06d}.npy"


def compute_chunk(get_assemblies, i: int, chunk_dir, *, n_frames: int, joints, scorer,
                  inference_cfg, n_tracks, track_method="ellipse",
                  options: ChunkOptions = ChunkOptions()) -> list[str]:
    """Track + stitch chunk ``i`` into its checkpoint file unless it exists; return warnings.

    Chunks are independent, so they may run in any order and in parallel (one Dask task
    each); :func:`join_chunks` then needs all of them.
    """
    path = chunk_file(chunk_dir, i)
    notes_path = path.with_suffix(".json")
    if path.exists():
        try:
            return json.loads(notes_path.read_text())
        except (OSError, ValueError):
            return []
    start, _core, stop = options.ranges(int(n_frames))[i]
    tracks, notes = track_chunk(get_assemblies(start, stop), start, stop, n_tracks=n_tracks,
                                joints=joints, scorer=scorer, inference_cfg=inference_cfg,
                                track_method=track_method, options=options)
    with atomic_open(notes_path, "w", encoding="utf-8") as fh:
        json.dump(notes, fh)
    with atomic_path(path) as tmp:  # last: its existence marks the chunk finished
        with open(tmp, "wb") as fh:
            np.save(fh, tracks)
    return notes


def join_chunks(chunk_dir, output_h5, *, n_frames: int, joints, scorer, n_tracks,
                animal_names=None, options: ChunkOptions = ChunkOptions(),
                save_as_csv: bool = False, unique_bodyparts=None,
                get_single: Callable[[int, int], dict] | None = None) -> tuple[int, list[str]]:
    """Stream finished chunks, matched across their overlaps, into the tracks file(s).

    ``unique_bodyparts`` and ``get_single(start, stop) -> {frame: (n_unique, 3)}`` add
    DLC's ``"single"`` columns (the stitcher's outer join: a row for every frame that has
    unique body parts, even past the last tracked frame).

    Returns
    -------
    frames : int
        Rows written (DLC's index: 0 up to the last tracked frame).
    warnings : list of str
    """
    import pandas as pd

    ranges = options.ranges(int(n_frames))
    missing = [i for i in range(len(ranges)) if not chunk_file(chunk_dir, i).exists()]
    if missing:
        raise FileNotFoundError(f"chunks {missing[:5]} of {len(ranges)} are not finished in "
                                f"{chunk_dir}; run compute_chunk for them first.")
    if not animal_names or len(animal_names) < n_tracks:
        animal_names = [f"ind{i}" for i in range(1, n_tracks + 1)]
    animal_names = list(animal_names)[:n_tracks]
    n_bpts = len(joints)
    output_h5 = Path(output_h5)
    columns = _columns(scorer, animal_names, joints)
    unique = list(unique_bodyparts or []) if get_single is not None else []
    if unique:
        columns = columns.append(_columns(scorer, ["single"], unique))
    csv_path = output_h5.with_suffix(".csv")
    written = 0
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp_h5 = stack.enter_context(atomic_path(output_h5))
        tmp_csv = stack.enter_context(atomic_path(csv_path)) if save_as_csv else None
        pending = 0  # all-NaN rows not yet written: DLC's index stops at the last tracked frame
        prev_tail = None
        first_csv = True
        with pd.HDFStore(tmp_h5, mode="w") as store:
            for i, (start, core, stop) in enumerate(ranges):
                tracks = np.load(chunk_file(chunk_dir, i))
                if prev_tail is not None and core > start:
                    perm = match_tracks(prev_tail, tracks[: core - start])
                    tracks = tracks[:, perm]
                prev_tail = tracks[max(0, len(tracks) - options.overlap):].copy()
                block = tracks[core - start:].reshape(stop - core, n_tracks * n_bpts * 3)
                has = np.isfinite(block).any(axis=1)
                if unique:
                    sblock = np.full((stop - core, len(unique) * 3), np.nan)
                    for f, arr in get_single(core, stop).items():
                        sblock[f - core] = np.asarray(arr, np.float64)[:, :3].reshape(-1)
                        has[f - core] = True
                    block = np.concatenate([block, sblock], axis=1)
                last = int(np.flatnonzero(has)[-1]) + 1 if has.any() else 0
                if last:
                    rows_start = core - pending
                    rows = np.concatenate([np.full((pending, block.shape[1]), np.nan), block[:last]])
                    df = pd.DataFrame(rows, columns=columns,
                                      index=pd.RangeIndex(rows_start, core + last))
                    store.append("tracks", df, format="table", index=False)
                    if save_as_csv:
                        df.to_csv(tmp_csv, mode="w" if first_csv else "a", header=first_csv)
                        first_csv = False
                    written = core + last
                    pending = 0
                pending += (stop - core) - last
            if written == 0:
                notes.append("no tracks in the whole video: the tracks file is empty")
                # pandas cannot store an empty *table*; the fixed format keeps the columns
                store.put("tracks", pd.DataFrame(columns=columns, dtype=float), format="fixed",
                          track_times=False)
        if save_as_csv and first_csv:
            pd.DataFrame(columns=columns, dtype=float).to_csv(tmp_csv)
    return written, notes


def track_in_chunks(get_assemblies: Callable[[int, int], dict], n_frames: int, output_h5, *,
                    joints: list, scorer: str, inference_cfg: dict, n_tracks: int,
                    animal_names=None, track_method: str = "ellipse",
                    options: ChunkOptions = ChunkOptions(), save_as_csv: bool = False,
                    source_id=None, keep_chunks: bool = False, unique_bodyparts=None,
                    get_single: Callable[[int, int], dict] | None = None) -> dict:
    """Track, stitch and write a video's tracks chunk by chunk (see module docstring).

    Parameters
    ----------
    get_assemblies : callable ``(start, stop) -> dict``
        Assemblies for frames ``[start, stop)`` keyed by global frame index, each an
        ndarray of shape (n_animals, n_bodyparts, 4).
    n_frames : int
    output_h5 : str or os.PathLike
        Final tracks file (``<stem><scorer>_el.h5``); ``.csv`` beside it with ``save_as_csv``.
    joints, scorer, inference_cfg, n_tracks, track_method, options
        See :func:`track_chunk`.
    animal_names : list of str, optional
        Column names of the tracks (default ``ind1..indN``, as DLC).
    source_id : json-serialisable, optional
        Identifies the input (e.g. the assemblies file's fingerprint): checkpoints made
        from another input are discarded instead of reused.
    keep_chunks : bool
        Keep the checkpoint folder ``<output stem>_chunks/`` after the join.
    unique_bodyparts : list of str, optional
    get_single : callable ``(start, stop) -> dict``, optional
        Unique body parts per frame (``{frame: (n_unique, 3)}``): written as the
        ``"single"`` individual, as DLC's stitch does.

    Returns
    -------
    dict
        ``frames`` (rows written), ``chunks``, ``warnings`` (list of str), ``seconds``,
        ``resumed`` (chunks found finished from an earlier run).
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise ValueError(f"n_frames must be an int >= 0; got {n_frames!r}.")
    if isinstance(n_tracks, bool) or not isinstance(n_tracks, (int, np.integer)) or n_tracks < 1:
        raise ValueError(f"n_tracks must be an int >= 1; got {n_tracks!r}.")
    output_h5 = Path(output_h5)
    t0 = time.perf_counter()
    chunk_dir = chunk_dir_for(output_h5)
    open_chunk_dir(chunk_dir, _manifest(n_frames, joints, scorer, inference_cfg, n_tracks,
                                        track_method, options, source_id))
    ranges = options.ranges(int(n_frames))
    resumed = sum(chunk_file(chunk_dir, i).exists() for i in range(len(ranges)))
    notes: list[str] = []
    for i in range(len(ranges)):
        notes += compute_chunk(get_assemblies, i, chunk_dir, n_frames=n_frames, joints=joints,
                               scorer=scorer, inference_cfg=inference_cfg, n_tracks=n_tracks,
                               track_method=track_method, options=options)
    written, w = join_chunks(chunk_dir, output_h5, n_frames=n_frames, joints=joints,
                             scorer=scorer, n_tracks=n_tracks, animal_names=animal_names,
                             options=options, save_as_csv=save_as_csv,
                             unique_bodyparts=unique_bodyparts, get_single=get_single)
    if not keep_chunks:
        shutil.rmtree(chunk_dir, ignore_errors=True)
        _lock_path(chunk_dir).unlink(missing_ok=True)
    return {"frames": written, "chunks": len(ranges), "warnings": notes + w,
            "seconds": time.perf_counter() - t0, "resumed": resumed}


def chunk_dir_for(output_h5) -> Path:
    """``<stem><scorer>_el_chunks/`` beside the tracks file: the chunk checkpoints."""
    output_h5 = Path(output_h5)
    return output_h5.with_name(output_h5.stem + "_chunks")


# -- sources -------------------------------------------------------------------------------
def assembled_source(get_full_frames: Callable[[int, int], dict], metadata: dict, *,
                     n_multibodyparts: int, inference_cfg: dict,
                     n_threads: int = 1) -> Callable[[int, int], dict]:
    """Turn a source of classic ``_full.pickle`` frames into a source of assemblies.

    Each call assembles only the requested frames with mapose's compiled
    :class:`~mapose.assembly.assembler.Assembler`, configured from ``inference_cfg``
    as DLC's ``convert_detections2tracklets`` does (``topktoretain``, ``pcutoff``,
    ``pafthreshold``, ``minimalnumberofconnections``).

    Parameters
    ----------
    get_full_frames : callable ``(start, stop) -> dict``
        ``{"frame%0Nd": frame dict}`` for frames ``[start, stop)`` in order.
    metadata : dict
        The ``"metadata"`` entry of the full pickle (graph, PAF indices, joint names).
    n_multibodyparts : int
    inference_cfg : dict
    n_threads : int, default 1

    Returns
    -------
    callable ``(start, stop) -> dict of int to ndarray (n_animals, n_bodyparts, 4)``
    """
    from mapose.assembly.assembler import Assembler

    def get(start, stop):
        data = {"metadata": metadata}
        data.update(get_full_frames(start, stop))
        if len(data) == 1:
            return {}
        asm = Assembler(
            data, max_n_individuals=int(inference_cfg.get("topktoretain", 1)),
            n_multibodyparts=n_multibodyparts, pcutoff=inference_cfg.get("pcutoff", 0.1),
            min_affinity=inference_cfg.get("pafthreshold", 0.05),
            min_n_links=int(inference_cfg.get("minimalnumberofconnections", 2)),
            n_threads=n_threads)
        asm.assemble(n_threads=n_threads)
        arrays = asm.assemblies.arrays() if hasattr(asm.assemblies, "arrays") else {
            k: np.stack([a.data for a in v]) for k, v in asm.assemblies.items() if v}
        return {start + k: v for k, v in arrays.items() if v is not None}

    return get


class AssembliesStream:
    """A chunk source over an ``_assemblies.pickle`` that reads it frame by frame.

    Calls for increasing ranges (chunks in order, each overlapping the previous one)
    continue one pass over the file and keep only the frames still needed; a range that
    starts before them restarts the pass.  Unique body parts (``"single"``, stored first
    by DLC 3) are kept as one compact array.

    Parameters
    ----------
    path : str or os.PathLike
        DLC 3's (or DLC 2's TF-layout, read whole) ``_assemblies.pickle``.

    Attributes
    ----------
    n_frames : int or None
        1 + the largest frame index, once a pass reached the end of the file.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._it = None
        self._buf: dict = {}
        self._low = 0         # frames below this were dropped from the buffer
        self._next = 0        # the pass has yielded every frame below this
        self._done = False
        self._single_frames = None
        self._single = None
        self._single_checked = False
        self.n_frames = None

    def _restart(self):
        from mapose.io.assemblies_pickle import iter_assemblies_pickle

        self._it = iter_assemblies_pickle(self.path)
        self._buf, self._low, self._next, self._done = {}, 0, 0, False

    def _advance(self, stop: int) -> None:
        if self._it is None:
            self._restart()
        while not self._done and self._next < stop:
            try:
                key, value = next(self._it)
            except StopIteration:
                self._done = True
                self.n_frames = self._next
                break
            if key == "single":
                self._keep_single(value)
                continue
            if key >= self._low:
                self._buf[key] = value
            self._next = key + 1

    def _keep_single(self, single: dict) -> None:
        if self._single is not None or not single:
            return
        frames = np.fromiter((int(k) for k in single), np.int64, len(single))
        first = np.asarray(next(iter(single.values())), np.float64)
        data = np.full((len(frames),) + first.shape, np.nan)
        for i, v in enumerate(single.values()):
            data[i] = np.asarray(v, np.float64)
        order = np.argsort(frames, kind="stable")
        self._single_frames, self._single = frames[order], data[order]

    def __call__(self, start: int, stop: int) -> dict:
        """Assemblies of frames ``[start, stop)`` with at least one animal."""
        if start < self._low:
            self._restart()
        self._advance(stop)
        for f in [f for f in self._buf if f < start]:
            del self._buf[f]
        self._low = start
        return {f: np.asarray(a) for f, a in self._buf.items() if f < stop and len(a)}

    def _find_single(self) -> None:
        from mapose.io.assemblies_pickle import iter_assemblies_pickle

        self._single_checked = True
        it = iter_assemblies_pickle(self.path)
        try:
            for key, value in it:  # DLC 3: the first item; TF layout: the last
                if key == "single":
                    self._keep_single(value)
                    return
        finally:
            it.close()

    def single(self, start: int, stop: int) -> dict:
        """Unique body parts ``{frame: (n_unique, 3)}`` of frames ``[start, stop)``."""
        if self._single is None and not self._single_checked:
            self._find_single()
        if self._single is None:
            return {}
        a, b = np.searchsorted(self._single_frames, [start, stop])
        return {int(f): self._single[i] for i, f in zip(range(a, b), self._single_frames[a:b])}

    def count_frames(self) -> int:
        """1 + the largest frame index (one pass over the file if not known yet)."""
        if self.n_frames is None:
            self._restart()
            self._advance(np.iinfo(np.int64).max)
            self._restart()
        return int(self.n_frames)


def assemblies_pickle_source(path) -> tuple[Callable[[int, int], dict], int]:
    """A source over DLC 3's ``_assemblies.pickle``, read frame by frame.

    Returns
    -------
    get : AssembliesStream
        ``get(start, stop) -> dict``; ``get.single(start, stop)`` for unique body parts.
    n_frames : int
        1 + the largest frame index in the file (0 if it holds none).
    """
    get = AssembliesStream(path)
    return get, get.count_frames()


# -- batch stage ----------------------------------------------------------------------------
def job_setup(job) -> dict:
    """Everything chunked tracking needs for a batch job (project config, frames, options)."""
    from mapose.batch.progress import fingerprint
    from mapose.batch.stages import read_n_frames
    from mapose.io.config import (individuals, multianimal_bodyparts, read_config,
                                  unique_bodyparts)
    from mapose.io.inference_cfg import read_inference_cfg
    from mapose.io.project import get_model_folder

    cfg = read_config(job.config)
    joints = multianimal_bodyparts(cfg)
    names = job.animal_names or individuals(cfg)
    model = get_model_folder(cfg, job.shuffle, job.trainingsetindex, job.modelprefix)
    inference_cfg = dict(read_inference_cfg(Path(model) / "test" / "inference_cfg.yaml", cfg))
    asm_path = job.path("_assemblies.pickle")
    n_frames = read_n_frames(job)
    if n_frames is None:
        n_frames = AssembliesStream(asm_path).count_frames()
    opts = ChunkOptions(chunk_frames=int(job.chunk_frames), overlap=int(job.chunk_overlap),
                        **{k: v for k, v in job.stitch_kwargs.items()
                           if k in ("min_length", "split_tracklets", "prestitch_residuals", "max_gap")})
    fp = fingerprint(asm_path)
    return dict(joints=joints, unique=unique_bodyparts(cfg), names=names,
                n_tracks=job.n_tracks or len(names),
                inference_cfg=inference_cfg, n_frames=int(n_frames), options=opts,
                out=job.stage_outputs("stitch")[0], asm_path=asm_path,
                source_id={"size": fp["size"], "digest": fp["digest"]})


def n_chunks(job) -> int:
    """How many chunks a batch job's video splits into (after its network stage)."""
    setup = job_setup(job)
    return len(setup["options"].ranges(setup["n_frames"]))


def chunk_task(job, i: int, *_deps) -> list[str]:
    """Compute chunk ``i`` of a batch job (one Dask task; ``_deps`` orders it after the network)."""
    s = job_setup(job)
    chunk_dir = open_chunk_dir(chunk_dir_for(s["out"]), _manifest(
        s["n_frames"], s["joints"], job.scorer, s["inference_cfg"], s["n_tracks"],
        job.track_method, s["options"], s["source_id"]))
    get = AssembliesStream(s["asm_path"])
    return compute_chunk(get, i, chunk_dir, n_frames=s["n_frames"], joints=s["joints"],
                         scorer=job.scorer, inference_cfg=s["inference_cfg"],
                         n_tracks=s["n_tracks"], track_method=job.track_method,
                         options=s["options"])


def chunked_stitch_stage(job):
    """Batch stage: ``_assemblies.pickle`` → tracks ``.h5`` chunk by chunk (no tracklet pickle).

    The assemblies are read frame by frame (:class:`AssembliesStream`); unique body parts
    are written as the ``"single"`` individual.

    Used by :func:`mapose.batch.run_videos` when ``chunk_frames`` is set.  Finished
    chunks (checkpoint files) are reused, so a rerun resumes mid-video, and chunks that
    Dask tasks computed in parallel are only joined here.
    """
    from mapose.batch.stages import StageReport, summarize_tracks

    s = job_setup(job)
    get = AssembliesStream(s["asm_path"])
    info = track_in_chunks(get, s["n_frames"], s["out"], joints=s["joints"], scorer=job.scorer,
                           inference_cfg=s["inference_cfg"], n_tracks=s["n_tracks"],
                           animal_names=s["names"], track_method=job.track_method,
                           options=s["options"], save_as_csv=job.save_as_csv,
                           source_id=s["source_id"], unique_bodyparts=s["unique"],
                           get_single=get.single if s["unique"] else None)
    _frames, tracks = summarize_tracks(s["out"])
    return StageReport("stitch", frames=s["n_frames"], warnings=info["warnings"][:20],
                       info={"tracks": tracks, "chunks": info["chunks"],
                             "chunks_reused": info["resumed"]})
