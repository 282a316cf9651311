"""Whole-video tracking and stitching with memory that grows only by compact arrays.

DLC's post-network stages hold a video several times over as Python objects: the
``_assemblies.pickle`` dict, the tracklet dict of dicts (a key string and an ndarray
object per detection), the stitcher's tracklets and the whole tracks DataFrame (plus
PyTables' copies).  This module keeps DLC's *global* stitch (so the tracks are identical
to ``convert_detections2tracklets`` + ``stitch_tracklets``) and removes everything else:

* assemblies are read frame by frame (:func:`mapose.io.assemblies_pickle.iter_assemblies_pickle`)
  and tracked as they arrive (:class:`mapose.tracking.tracklets.TrackletBuilder`);
* tracklets are kept as flat arrays (:class:`mapose.tracking.tracklets.CompactTracklets`,
  ``16 + 32 × n_bodyparts`` bytes per detection), written to DLC's tracklet pickle item by
  item, and turned into the stitcher's :class:`~mapose.stitching.tracklet.Tracklet`
  arrays directly;
* the tracks ``.h5``/``.csv`` are written ``rows`` frames at a time
  (:func:`write_tracks_streamed`), never as one DataFrame.

What stays O(frames) is what a global stitch needs: the tracklets' float64 keypoints
(``32 × n_bodyparts`` bytes per detection).  The stitch stage reads them from the track
stage's sidecar into one array that :meth:`TrackletStitcher.from_arrays` takes without a
copy; ``stitch()`` builds the tracks and releases that array, so at most two copies exist
while the tracks are assembled and one afterwards.  :func:`streaming_track_stage` and :func:`streaming_stitch_stage` are the batch
runner's default tracking and stitching stages.
"""
from __future__ import annotations

import contextlib
import pickle
import warnings
from pathlib import Path

import numpy as np

from mapose.io.atomic import atomic_open, atomic_path

__all__ = ["tracklets_from_compact", "stitcher_from_compact", "write_tracklets_pickle_streamed",
           "write_tracks_streamed", "track_and_stitch", "streaming_track_stage",
           "streaming_stitch_stage"]

_SETITEMS_BATCH = 1000  # items per MARK ... SETITEMS group, as pickle's own batching


def _flat_padded(frames, data, flat, rows, tid):
    """One tracklet's ``(inds, data)`` with skeleton flat rows, laid out as
    ``TrackletStitcher.from_dict_of_dict`` lays out the dict of those rows: flat
    ``[x0, y0, 1, x1, ...]`` states fill x, y, likelihood of a NaN row next to
    ``(n_bodyparts, 4)`` rows; a tracklet of flat states only is ``(n, n_bodyparts, 3)``."""
    inds = frames[rows]
    is_flat = np.array([int(r) in flat for r in rows])
    n_bpts = data.shape[1]
    for r in rows[is_flat]:
        if flat[int(r)].size != 3 * n_bpts:
            raise ValueError(f"Tracklet {tid!r}: flat state of {flat[int(r)].size} values does not "
                             f"fit {n_bpts} body parts.")
    if is_flat.all():
        return inds, np.stack([flat[int(r)] for r in rows]).reshape(len(rows), n_bpts, 3)
    out = data[rows]
    for k in np.flatnonzero(is_flat):
        out[k] = np.nan
        out[k, :, :3] = flat[int(rows[k])].reshape(n_bpts, 3)
    return inds, out


def tracklets_from_compact(store):
    """The stitcher's :class:`Tracklet` list from a :class:`CompactTracklets`, in DLC's order.

    Equal to what ``TrackletStitcher.from_dict_of_dict`` builds from the tracklet dict
    of the same rows (first-appearance order, float64 data, skeleton flat rows padded
    the same way), without building that dict.
    """
    from mapose.stitching.tracklet import Tracklet

    ids, frames, data = store.arrays()
    flat = store.flat_rows
    out = []
    for tid, rows in store.groups():
        if flat and any(int(r) in flat for r in rows):
            inds, arr = _flat_padded(frames, data, flat, rows, tid)
            out.append(Tracklet(arr, inds))
        else:
            out.append(Tracklet(data[rows], frames[rows]))
    return out


def stitcher_from_compact(store, n_tracks: int, *, header=None, single: dict | None = None,
                          min_length: int = 10, split_tracklets: bool = True,
                          prestitch_residuals: bool = True):
    """A :class:`TrackletStitcher` over compact tracklets (``from_dict_of_dict``'s equal).

    Built with :meth:`TrackletStitcher.from_arrays` from the store's arrays (one gathered
    copy of the keypoints, released by ``stitch()``); stores with skeleton flat rows go
    through :func:`tracklets_from_compact`.

    Raises
    ------
    OSError
        No tracklet at all ("Tracklets are empty"), as ``from_dict_of_dict``.
    """
    from mapose.stitching.stitcher import TrackletStitcher

    if not store.n_rows:
        raise OSError("Tracklets are empty: no animal was tracked in this video. Check the "
                      "assemblies (pcutoff, detections) and the tracker settings.")
    args = (n_tracks, min_length, split_tracklets, prestitch_residuals)
    if not store.flat_rows:
        ids, frames, data = store.arrays()
        return TrackletStitcher.from_arrays(ids, frames, data, *args, header=header,
                                            single=single or None)
    stitcher = TrackletStitcher(tracklets_from_compact(store), *args)
    stitcher.header = header
    stitcher.single = _single_tracklet(single)
    return stitcher


def _single_tracklet(single: dict | None):
    """Unique body parts ``{frame: (n_unique, 3)}`` as a Tracklet (None if empty)."""
    from mapose.stitching.tracklet import Tracklet

    if not single:
        return None
    frames = np.array([int(k) for k in single], dtype=np.int64)
    data = np.stack([np.asarray(v, dtype=np.float64) for v in single.values()])
    if data.ndim == 2:  # flat (3 * n_unique,) rows
        data = data.reshape(len(data), -1, 3)
    return Tracklet(data, frames)


def _frag(obj) -> bytes:
    from mapose.io.full_pickle import pickle_fragment

    return pickle_fragment(obj)


def _write_dict_items(fh, items) -> None:
    """``MARK (key value)* SETITEMS`` groups for the dict on top of the stack."""
    batch = []
    for k, v in items:
        batch.append(_frag(k) + _frag(v))
        if len(batch) == _SETITEMS_BATCH:
            fh.write(pickle.MARK + b"".join(batch) + pickle.SETITEMS)
            batch = []
    if batch:
        fh.write(pickle.MARK + b"".join(batch) + pickle.SETITEMS)


def write_tracklets_pickle_streamed(path, store, builder, single: dict | None = None) -> None:
    """DLC's tracklet pickle (``_el/_bx/_sk.pickle``) from compact tracklets, atomically.

    Unpickles to exactly what ``write_tracklets_pickle(path, build_tracklets(...))``
    writes: ``"header"``, ``"single"`` (with unique body parts), then ``{numpy.int64 id:
    {"frameNNN": (n_bodyparts, 4) array}}`` in first-appearance order (``{0: {int frame:
    array}}`` with ``topktoretain == 1``).
    Written tracklet by tracklet as a protocol-3 stream: one tracklet in memory at a time.
    """
    from mapose.io.tracklets_pickle import object_multiindex

    ids, frames, data = store.arrays()
    flat = store.flat_rows
    with atomic_open(path, "wb") as fh:
        fh.write(pickle.PROTO + bytes([3]) + pickle.EMPTY_DICT)
        # as write_tracklets_pickle: object-dtype header levels (DLC's pandas < 3 reads them)
        fh.write(_frag("header") + _frag(object_multiindex(builder.header)) + pickle.SETITEM)
        if builder.unique:
            fh.write(_frag("single") + pickle.EMPTY_DICT)
            _write_dict_items(fh, ((int(k), v) for k, v in (single or {}).items()))
            fh.write(pickle.SETITEM)
        for tid, rows in store.groups():
            fh.write(_frag(np.int64(tid)) + pickle.EMPTY_DICT)  # ids as numpy.int64
            _write_dict_items(fh, ((builder.frame_key(int(frames[r])),
                                    flat[int(r)] if int(r) in flat else data[r]) for r in rows))
            fh.write(pickle.SETITEM)
        fh.write(pickle.STOP)


def _ordered_tracks(stitcher) -> list:
    """``stitcher.tracks`` in ``concatenate_data``'s column order, first ``n_tracks``."""
    tracks = list(stitcher.tracks)
    if tracks and any(t.identity != -1 for t in tracks):
        ids = [t.identity for t in tracks]
        order = sorted(range(len(tracks)),
                       key=lambda k: (np.isnan(ids[k]), ids[k] if not np.isnan(ids[k]) else 0))
        tracks = [tracks[k] for k in order]
    return tracks[: stitcher.n_tracks]


def _track_columns(stitcher, animal_names):
    import pandas as pd

    n_bpts = stitcher.tracklets[0].data.shape[1]
    if not animal_names or len(animal_names) < stitcher.n_tracks:
        animal_names = [f"ind{i}" for i in range(1, stitcher.n_tracks + 1)]
    animal_names = list(animal_names)[: stitcher.n_tracks]
    n_unique = stitcher.single.data.shape[1] if stitcher.single is not None else 0
    if stitcher.header is not None:
        scorer = stitcher.header.get_level_values("scorer").unique().to_list()
        bpts = stitcher.header.get_level_values("bodyparts").unique().to_list()
    else:
        scorer = ["scorer"]
        bpts = ([f"bpt{i}" for i in range(1, n_bpts + 1)]
                + [f"bpt_unique{i}" for i in range(1, n_unique + 1)])
    names = ["scorer", "individuals", "bodyparts", "coords"]
    coords = ["x", "y", "likelihood"]
    columns = pd.MultiIndex.from_product([scorer, animal_names, bpts[:n_bpts], coords], names=names)
    if stitcher.single is not None and n_unique:
        ucols = pd.MultiIndex.from_product([scorer, ["single"], bpts[-n_unique:], coords], names=names)
        columns = columns.append(ucols)
    return columns, n_bpts, n_unique


def write_tracks_streamed(stitcher, output_name, animal_names=None, save_as_csv: bool = False,
                          rows: int = 20_000) -> Path:
    """Write a stitched video's tracks ``rows`` frames at a time (same data as ``write_tracks``).

    The file holds the DataFrame ``stitcher.format_df(animal_names)`` (DLC's layout,
    key ``"tracks"``, table format; ``.csv`` beside it with ``save_as_csv``, byte-equal to
    ``DataFrame.to_csv``), but only one block of rows exists in memory at a time.

    Parameters
    ----------
    stitcher : TrackletStitcher
        After ``stitch()``.
    output_name : str or os.PathLike
        The ``.h5`` path.
    animal_names : list of str, optional
    save_as_csv : bool
    rows : int, default 20000
        Frames per written block.
    """
    import pandas as pd

    from mapose.io.tracks_h5 import _object_columns, _stamp_pandas_version

    if stitcher.tracks is None:
        raise ValueError("No tracks yet: call build_graph() and stitch() first.")
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be a positive int (frames per block); got {rows!r}.")
    output_name = Path(output_name)
    tracks = _ordered_tracks(stitcher)
    columns, n_bpts, n_unique = _track_columns(stitcher, animal_names)
    first = min(t.start for t in tracks) if tracks else stitcher._first_frame
    last = max(t.end for t in tracks) if tracks else stitcher._last_frame
    index = np.arange(last + 1, dtype=np.int64)  # format_df reindexes from frame 0
    single = stitcher.single if n_unique else None
    if single is not None and len(single.inds) and (single.inds.max() > last or
                                                    not np.isin(single.inds, index).all()):
        index = np.union1d(index, single.inds.astype(np.int64))  # the outer join
    del first
    n_track_cols = stitcher.n_tracks * n_bpts * 3
    ncols = len(columns)
    tmp_cols = _object_columns(pd.DataFrame(columns=columns)).columns
    csv_path = Path(str(output_name).replace(".h5", ".csv"))
    with contextlib.ExitStack() as stack:
        tmp_h5 = stack.enter_context(atomic_path(output_name))
        csv_fh = stack.enter_context(atomic_open(csv_path, "w", newline="")) if save_as_csv else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=pd.errors.PerformanceWarning)
            with pd.HDFStore(tmp_h5, mode="w") as store:
                for p0 in range(0, max(len(index), 1), rows):
                    frames = index[p0:p0 + rows]
                    block = np.full((len(frames), ncols), np.nan)
                    if len(frames):
                        lo_f, hi_f = frames[0], frames[-1]
                        for k, t in enumerate(tracks):
                            a, b = np.searchsorted(t.inds, [lo_f, hi_f + 1])
                            if a < b:
                                pos = np.searchsorted(frames, t.inds[a:b])
                                # the rows' x, y, likelihood (flat_data would copy all rows)
                                block[pos, k * n_bpts * 3:(k + 1) * n_bpts * 3] = \
                                    t.data[a:b, :, :3].reshape(b - a, -1)
                        if single is not None:
                            a, b = np.searchsorted(single.inds, [lo_f, hi_f + 1])
                            if a < b:
                                pos = np.searchsorted(frames, single.inds[a:b])
                                block[pos, n_track_cols:] = single.data[a:b, :, :3].reshape(b - a, -1)
                    df = pd.DataFrame(block, columns=tmp_cols, index=pd.Index(frames))
                    store.append("tracks", df, format="table", index=False)
                    if csv_fh is not None:
                        df.to_csv(csv_fh, header=p0 == 0)
                if len(index):
                    store.create_table_index("tracks", optlevel=6, kind="medium")
        _stamp_pandas_version(tmp_h5, "tracks")
    return output_name


def track_and_stitch(frames, builder, *, n_tracks: int, single: dict | None = None,
                     min_length: int = 10, split_tracklets: bool = True,
                     prestitch_residuals: bool = True, max_gap=None, weight_func=None,
                     tracklets_pickle=None, output_h5=None, animal_names=None,
                     save_as_csv: bool = False):
    """Assemblies → tracklets → tracks for one video, streaming (see the module docstring).

    Parameters
    ----------
    frames : iterable of (int, ndarray (n_animals, n_bodyparts, 4))
        The video's assemblies in frame order.
    builder : TrackletBuilder
    n_tracks : int
    single : dict, optional
        Unique body parts ``{frame: (n_unique, 3)}``.
    min_length, split_tracklets, prestitch_residuals, max_gap, weight_func
        As in ``stitch_tracklets`` (identity-weighted links when the tracklets carry
        identities and ``weight_func`` is None, DLC's rule).
    tracklets_pickle : path, optional
        Also write DLC's tracklet pickle there.
    output_h5 : path, optional
        Write the tracks there (``.csv`` beside it with ``save_as_csv``).

    Returns
    -------
    TrackletStitcher
    """
    from mapose.tracking.tracklets import build_tracklets_compact

    store = build_tracklets_compact(frames, builder)
    if tracklets_pickle is not None:
        write_tracklets_pickle_streamed(tracklets_pickle, store, builder, single)
    stitcher = stitcher_from_compact(store, n_tracks, header=builder.header,
                                     single=single if builder.unique else None,
                                     min_length=min_length, split_tracklets=split_tracklets,
                                     prestitch_residuals=prestitch_residuals)
    del store
    _stitch(stitcher, max_gap, weight_func)
    if output_h5 is not None:
        write_tracks_streamed(stitcher, output_h5, animal_names, save_as_csv)
    return stitcher


def _stitch(stitcher, max_gap=None, weight_func=None) -> None:
    if weight_func is None and any(t.identity != -1 for t in stitcher.tracklets):
        from mapose.stitching.api import identity_weighted_distance

        weight_func = identity_weighted_distance()
    stitcher.build_graph(max_gap=max_gap, weight_func=weight_func)
    stitcher.stitch()


# -- compact sidecar of a tracklet pickle --------------------------------------------------------
def _sidecar_dir(pickle_path) -> Path:
    pickle_path = Path(pickle_path)
    return pickle_path.with_name(f".{pickle_path.name}.compact")


def write_compact_sidecar(pickle_path, store, builder, single: dict | None = None) -> bool:
    """Save ``store`` beside the tracklet pickle it was written to, for the stitch stage.

    Three ``.npy`` files (rows grouped by tracklet in DLC's order) and a JSON record that
    names the pickle's fingerprint, written last: :func:`read_compact_sidecar_arrays` uses them
    only while the pickle is that very file, so the stitch stage never parses the pickle
    it could read as arrays.  Skipped (False) for skeleton rows stored as flat states.
    """
    import json

    from mapose.batch.progress import fingerprint

    if store.flat_rows:
        return False
    folder = _sidecar_dir(pickle_path)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ids, frames, data = store.arrays()
    order = np.concatenate([rows for _tid, rows in store.groups()]) if len(ids) else \
        np.empty(0, np.intp)
    bounds = np.cumsum([0] + [len(r) for _t, r in store.groups()]).tolist()
    for name, arr in (("frames", frames), ("data", data)):
        with atomic_path(folder / f"{name}.npy") as tmp:
            with open(tmp, "wb") as fh:
                _save_rows(fh, arr, order)
    sf = np.array(sorted(int(k) for k in (single or {})), np.int64)
    sd = np.stack([np.asarray(single[int(k)], np.float64) for k in sf]) if len(sf) else None
    if sd is not None:
        with atomic_path(folder / "single.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, sd)
    fp = fingerprint(pickle_path)
    record = {"pickle": fp, "bounds": bounds, "single_frames": sf.tolist(),
              "scorer": builder.header.get_level_values("scorer")[0],
              "joints": list(builder.joints)}
    with atomic_open(folder / "record.json", "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    return True


def _save_rows(fh, arr, order, chunk: int = 65536) -> None:
    """``np.save(fh, arr[order])`` gathered ``chunk`` rows at a time (never a second
    full copy of ``arr`` next to the tracklet store)."""
    fmt = np.lib.format
    shape = (len(order),) + arr.shape[1:]
    fmt.write_array_header_1_0(fh, {"descr": fmt.dtype_to_descr(arr.dtype), "fortran_order": False,
                                    "shape": shape})
    for a in range(0, len(order), chunk):
        fh.write(np.ascontiguousarray(arr[order[a:a + chunk]]).tobytes())


class _NpyRows:
    """Row ranges of a C-order ``.npy`` file, read with plain file reads."""

    def __init__(self, path):
        fmt = np.lib.format
        self._fh = open(path, "rb")
        try:
            version = fmt.read_magic(self._fh)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(self._fh)
            if fortran or dtype.hasobject:
                raise ValueError(f"{path} is not a plain C-order array file.")
        except BaseException:
            self._fh.close()
            raise
        self.shape, self.dtype = shape, dtype
        self._offset = self._fh.tell()
        self._row = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))

    def rows(self, start: int, stop: int) -> np.ndarray:
        self._fh.seek(self._offset + start * self._row)
        n = stop - start
        out = np.fromfile(self._fh, dtype=self.dtype, count=n * self._row // self.dtype.itemsize)
        if out.size * self.dtype.itemsize != n * self._row:
            raise ValueError("truncated array file")
        return out.reshape((n,) + tuple(self.shape[1:]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False


def read_compact_sidecar_arrays(pickle_path):
    """``(tracklet_ids, frames, data, single Tracklet or None, header)`` from a matching
    sidecar, else None: the arrays :meth:`TrackletStitcher.from_arrays` takes as they are
    (rows grouped by tracklet, DLC's order), so the keypoints are read once, into the
    buffer the stitcher's tracklets are views of."""
    import json

    from mapose.batch.progress import _matches
    from mapose.stitching.tracklet import Tracklet
    from mapose.tracking.tracklets import make_tracklet_header

    folder = _sidecar_dir(pickle_path)
    try:
        with open(folder / "record.json", encoding="utf-8") as fh:
            rec = json.load(fh)
        if not _matches(Path(pickle_path), rec["pickle"]):
            return None
        bounds = np.asarray(rec["bounds"], dtype=np.int64)
        with _NpyRows(folder / "frames.npy") as fr, _NpyRows(folder / "data.npy") as da:
            n = int(bounds[-1])
            if fr.shape[0] != n or da.shape[0] != n or len(da.shape) != 3:
                return None
            frames, data = fr.rows(0, n), da.rows(0, n)
        ids = np.repeat(np.arange(len(bounds) - 1, dtype=np.int64), np.diff(bounds))
        single = None
        if rec["single_frames"]:
            single = Tracklet(np.load(folder / "single.npy"), np.array(rec["single_frames"], np.int64))
        header = make_tracklet_header(rec["scorer"], rec["joints"])
        return ids, frames, data, single, header
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _drop_sidecar(pickle_path) -> None:
    import shutil

    shutil.rmtree(_sidecar_dir(pickle_path), ignore_errors=True)


# -- batch stages ------------------------------------------------------------------------------
_TRACK_KW = {"ignore_bodyparts", "identity_only", "inferencecfg", "overwrite"}
_STITCH_KW = {"min_length", "split_tracklets", "prestitch_residuals", "max_gap", "weight_func"}


def streaming_track_stage(job):
    """Batch stage: ``_assemblies.pickle`` → tracklet pickle, frame by frame.

    The file equals ``convert_detections2tracklets``'s for the same video and settings.
    Jobs that need what only that function does (assembling a ``_full.pickle`` without
    assemblies, ``greedy``/``calibrate``/``window_size``, a single multi-animal body part
    switching to box tracking, no frame count in ``_meta.pickle``) run it instead.
    """
    from mapose.batch.stages import StageReport, read_n_frames, track_stage
    from mapose.io.assemblies_pickle import iter_assemblies_pickle
    from mapose.io.config import multianimal_bodyparts, read_config, unique_bodyparts
    from mapose.io.inference_cfg import read_inference_cfg
    from mapose.io.project import get_model_folder
    from mapose.tracking.tracklets import TrackletBuilder, build_tracklets_compact

    kw = dict(job.track_kwargs)
    asm_path = job.path("_assemblies.pickle")
    n_frames = read_n_frames(job)
    cfg = read_config(job.config)
    multi, unique = multianimal_bodyparts(cfg), unique_bodyparts(cfg)
    if set(kw) - _TRACK_KW or not asm_path.is_file() or not n_frames or len(multi) < 2 \
            or not cfg.get("multianimalproject", False):
        return track_stage(job)
    if kw.get("inferencecfg") is not None:
        if not isinstance(kw["inferencecfg"], dict):
            raise TypeError(f"inferencecfg must be a dict; got {type(kw['inferencecfg']).__name__}.")
        inference_cfg = read_inference_cfg(dict(kw["inferencecfg"]), cfg)
    else:
        model = get_model_folder(cfg, job.shuffle, job.trainingsetindex, job.modelprefix)
        inference_cfg = read_inference_cfg(Path(model) / "test" / "inference_cfg.yaml", cfg)
    builder = TrackletBuilder(job.track_method, inference_cfg, multi + unique, job.scorer,
                              n_frames, kw.get("ignore_bodyparts"), unique or None,
                              bool(kw.get("identity_only", False)))
    single: dict = {}

    def frames():
        for key, value in iter_assemblies_pickle(asm_path):
            if key == "single":
                single.update(value)
            else:
                yield key, value

    out = job.stage_outputs("track")[0]
    out.unlink(missing_ok=True)
    _drop_sidecar(out)
    store = build_tracklets_compact(frames(), builder)
    write_tracklets_pickle_streamed(out, store, builder, single)
    write_compact_sidecar(out, store, builder, single if unique else None)
    return StageReport("track", frames=n_frames,
                       info={"tracklets": len(store.tracklet_order()), "rows": store.n_rows})


def streaming_stitch_stage(job):
    """Batch stage: tracklet pickle → tracks ``.h5`` (+ ``.csv``), written block by block.

    Same tracks as ``stitch_tracklets`` (DLC's global stitch); jobs with options only
    that function handles (``transformer_checkpoint``, ``output_name``...) run it instead.
    """
    from mapose.batch.stages import StageReport, stitch_stage, summarize_tracks
    from mapose.io.config import read_config
    from mapose.stitching.stitcher import TrackletStitcher

    kw = dict(job.stitch_kwargs)
    if set(kw) - _STITCH_KW:
        return stitch_stage(job)
    cfg = read_config(job.config)
    n_tracks, names = job.n_tracks, job.animal_names
    if n_tracks is not None and (isinstance(n_tracks, bool) or not isinstance(n_tracks, (int, np.integer))
                                 or n_tracks < 1):
        raise ValueError(f"n_tracks must be a positive integer; got {n_tracks!r}.")
    if names is not None and n_tracks is not None and len(names) != n_tracks:
        raise ValueError(f"animal_names has {len(names)} names but n_tracks={n_tracks}; pass as "
                         "many names as tracks, or only one of the two.")
    if names is None:
        names = list(cfg.get("individuals") or [])
    if n_tracks is None:
        n_tracks = len(names)
        if n_tracks < 1:
            raise ValueError("The config lists no individuals, so the number of tracks is "
                             "unknown; pass n_tracks.")
    pickle_file = job.stage_outputs("track")[0]
    if not pickle_file.is_file():
        raise FileNotFoundError(f"{pickle_file} not found: run the tracking stage first.")
    args = (n_tracks, kw.get("min_length", 10), kw.get("split_tracklets", True),
            kw.get("prestitch_residuals", True))
    sidecar = read_compact_sidecar_arrays(pickle_file)
    source = "pickle" if sidecar is None else "arrays"
    if sidecar is not None:  # the arrays this run's track stage wrote with the pickle
        ids, frames, data, single, header = sidecar
        sidecar = None
        if not len(ids):
            raise OSError("Tracklets are empty: the tracklet pickle holds no animal tracklet.")
        # no other reference to `data`: stitch() frees it once the tracks hold the rows
        stitcher = TrackletStitcher.from_arrays(ids, frames, data, *args, header=header,
                                                single=single)
        del ids, frames, data
        stitcher.filename = str(pickle_file)
    else:
        stitcher = TrackletStitcher.from_pickle(pickle_file, *args)
    _stitch(stitcher, kw.get("max_gap"), kw.get("weight_func"))
    out = job.stage_outputs("stitch")[0]
    write_tracks_streamed(stitcher, out, names, job.save_as_csv)
    del stitcher
    _drop_sidecar(pickle_file)
    frames, tracks = summarize_tracks(out)
    return StageReport("stitch", frames=frames,
                       info={"tracks": tracks,
                             "tracklets_from": source})
