"""Recognise any DLC file and summarise what it holds (used by ``mapose info``).

:func:`detect_kind` decides the kind from the name DLC gives each file and, failing
that, from the content.  :func:`describe` returns a :class:`FileSummary`: kind, layout,
frames, animals, bodyparts and the fraction of missing keypoints, defined per kind:

* pose tables (``.h5``/``.csv``) and tracklets: share of NaN ``x`` values;
* PyTorch ``_full.pickle`` / assemblies: share of the ``frames × animal slots ×
  bodyparts`` keypoints that are absent (NaN, ``-1`` padding, or no assembly);
* TF ``_full.pickle``: share of ``frames × bodyparts`` without any detection.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FileSummary", "describe", "detect_kind", "KINDS"]

KINDS = ("full_pickle", "meta_pickle", "assemblies_pickle", "tracklets_pickle", "tracks_h5",
         "tracks_csv", "config_yaml", "inference_cfg", "pytorch_config", "pose_cfg")


@dataclass
class FileSummary:
    """What a DLC file holds."""

    path: str
    kind: str
    layout: str = ""
    frames: int | None = None
    animals: int | None = None
    individuals: list = field(default_factory=list)
    bodyparts: list = field(default_factory=list)
    unique_bodyparts: list = field(default_factory=list)
    missing_fraction: float | None = None
    scorer: str = ""
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Human-readable multi-line text."""
        lines = [f"{self.path}", f"  kind:        {self.kind}" + (f" ({self.layout})" if self.layout else "")]
        if self.scorer:
            lines.append(f"  scorer:      {self.scorer}")
        if self.frames is not None:
            lines.append(f"  frames:      {self.frames}")
        if self.animals is not None:
            who = f" ({', '.join(map(str, self.individuals))})" if self.individuals else ""
            lines.append(f"  animals:     {self.animals}{who}")
        if self.bodyparts:
            lines.append(f"  bodyparts:   {len(self.bodyparts)} ({', '.join(map(str, self.bodyparts))})")
        if self.unique_bodyparts:
            lines.append(f"  unique:      {len(self.unique_bodyparts)} ({', '.join(map(str, self.unique_bodyparts))})")
        if self.missing_fraction is not None:
            lines.append(f"  missing:     {100 * self.missing_fraction:.1f}% of keypoints")
        for n in self.notes:
            lines.append(f"  note:        {n}")
        return "\n".join(lines)


_NAME_RULES = [
    (re.compile(r"_full\.pickle(\.(dat|dir|bak|db))?$"), "full_pickle"),
    (re.compile(r"_meta\.pickle$"), "meta_pickle"),
    (re.compile(r"_assemblies\.pickle$"), "assemblies_pickle"),
    (re.compile(r"_(el|bx|sk|tr|ctd)\.pickle$|_tracklets\.pickle$"), "tracklets_pickle"),
    (re.compile(r"\.h5$"), "tracks_h5"),
    (re.compile(r"\.csv$"), "tracks_csv"),
    (re.compile(r"^inference_cfg\.yaml$"), "inference_cfg"),
    (re.compile(r"^pytorch_config\.yaml$"), "pytorch_config"),
    (re.compile(r"^pose_cfg\.yaml$"), "pose_cfg"),
    (re.compile(r"\.ya?ml$"), "config_yaml"),
]


def _content_kind(path: Path) -> str:
    from mapose.io.safe_pickle import read_pickle

    obj = read_pickle(path, what="DLC pickle")
    if isinstance(obj, dict):
        if "metadata" in obj:
            return "full_pickle"
        if "header" in obj:
            return "tracklets_pickle"
        if isinstance(obj.get("data"), dict):
            return "meta_pickle"
        if all(isinstance(k, (int, np.integer)) or k == "single" for k in obj):
            return "assemblies_pickle"
    raise ValueError(f"'{path}' is a pickle but not a DLC file kind mapose knows "
                     f"({', '.join(KINDS)}).")


def detect_kind(path) -> str:
    """Kind of a DLC file (one of :data:`KINDS`), from its name, else from its content.

    Raises
    ------
    FileNotFoundError
        Neither the file nor a shelve database of that name exists.
    ValueError
        Not a DLC file kind.
    """
    p = Path(os.fspath(path))
    from mapose.io.full_pickle import full_pickle_exists

    if not p.exists() and not full_pickle_exists(p):
        raise FileNotFoundError(f"No such file: '{p}'.")
    for rule, kind in _NAME_RULES:
        if rule.search(p.name):
            return kind
    if p.suffix == ".pickle" or p.suffix == ".pkl":
        return _content_kind(p)
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"\x89HDF"):
            return "tracks_h5"
        if head[:1] == b"\x80":
            return _content_kind(p)
    raise ValueError(f"Cannot tell which DLC file '{p}' is: expected one of "
                     "*_full.pickle, *_meta.pickle, *_assemblies.pickle, *_el/_bx/_sk.pickle, "
                     "*.h5, *.csv, config.yaml, inference_cfg.yaml, pytorch_config.yaml.")


def _strip_shelve_suffix(p: Path) -> Path:
    m = re.search(r"(_full\.pickle)\.(dat|dir|bak|db)$", p.name)
    return p.with_name(p.name[: m.end(1)]) if m else p


def _describe_full(p: Path, s: FileSummary) -> None:
    from mapose.io.full_pickle import is_pytorch_layout, iter_frames, read_full_pickle

    data = read_full_pickle(p)
    meta = data["metadata"]
    names = list(meta.get("all_joints_names") or [])
    frames = list(iter_frames(data))
    s.frames = len(frames)
    if meta.get("nframes") is not None and meta.get("nframes") != s.frames:
        s.notes.append(f"metadata nframes = {meta.get('nframes')} (frames stored: {s.frames})")
    pt = is_pytorch_layout(data)
    container = "pickle" if _starts_like_pickle(p) else "shelve"
    s.layout = ("pytorch" if pt else "tensorflow") + f", {container}"
    if not frames:
        s.bodyparts = names
        others = [k for k in data if k != "metadata"]
        if others:
            s.layout = "evaluation, keyed by image"
            s.frames = len(others)
            s.notes.append(f"entries are images (e.g. {others[0]!r}), not video frames")
        return
    n_coord = len(frames[0][1]["coordinates"][0])
    if pt:
        # unique bodyparts are the trailing entries with one row
        rows = [np.asarray(c).shape[0] for c in frames[0][1]["coordinates"][0]]
        n_animals = max(rows) if rows else 0
        n_multi = n_coord
        while n_multi > 0 and rows[n_multi - 1] == 1 and n_animals > 1:
            n_multi -= 1
        s.animals = n_animals
        missing = total = 0
        for _, fr in frames:
            coords = fr["coordinates"][0]
            confs = fr["confidence"]
            for b in range(n_multi):
                xy = np.asarray(coords[b], dtype=np.float64)
                c = np.asarray(confs[b], dtype=np.float64).reshape(-1)
                bad = np.isnan(xy[:, 0]) | (c <= 0) | np.all(xy < 0, axis=1)
                missing += int(bad.sum()) + max(n_animals - len(xy), 0)
                total += n_animals
        s.missing_fraction = missing / total if total else None
    else:
        n_multi = n_coord
        per = np.array([[len(np.asarray(c)) for c in fr["coordinates"][0]] for _, fr in frames])
        s.animals = int(per[:, :n_multi].max()) if per.size else 0
        s.notes.append("raw detections: 'animals' is the most detections of one bodypart in a frame")
        s.missing_fraction = float((per == 0).mean()) if per.size else None
        graph = meta.get("PAFgraph")
        if graph:
            s.notes.append(f"PAF graph: {len(graph)} edges, {len(meta.get('PAFinds', []))} used")
        # unique bodyparts are not identifiable from counts in TF files
    s.bodyparts = names[:n_multi] if names else [f"bpt{i}" for i in range(n_multi)]
    s.unique_bodyparts = names[n_multi:]


def _starts_like_pickle(p: Path) -> bool:
    if not p.is_file():
        return False
    with open(p, "rb") as fh:
        return fh.read(1) == b"\x80"


def _describe_meta(p: Path, s: FileSummary) -> None:
    from mapose.io.meta_pickle import meta_frame_size, read_meta_pickle

    d = read_meta_pickle(p)["data"]
    s.scorer = str(d.get("Scorer", ""))
    s.layout = "pytorch" if "pytorch-config" in d else "tensorflow" if "DLC-model-config file" in d else ""
    if "trainIndices" in d:
        s.layout = "evaluation metadata"
    if d.get("nframes") is not None:
        s.frames = int(d["nframes"])
    if d.get("individuals"):
        s.individuals = [str(i) for i in d["individuals"]]
        s.animals = len(s.individuals)
    s.bodyparts = [str(b) for b in d.get("bodyparts") or []]
    s.unique_bodyparts = [str(b) for b in d.get("unique_bodyparts") or []]
    size = meta_frame_size({"data": d})
    if size:
        s.notes.append(f"frame size {size[0]}x{size[1]} px, fps {d.get('fps')}")


def _describe_assemblies(p: Path, s: FileSummary) -> None:
    from mapose.io.assemblies_pickle import assemblies_layout, read_assemblies_pickle
    from mapose.io.safe_pickle import read_pickle

    raw = read_pickle(p, what="_assemblies.pickle")
    s.layout = {"tf": "tensorflow", "pytorch": "pytorch", "empty": "empty"}.get(assemblies_layout(raw), "")
    del raw
    asm, single = read_assemblies_pickle(p)
    s.frames = len(asm)
    counts = [len(a) for a in asm.values()]
    s.animals = max(counts) if counts else 0
    nb = next((a.shape[1] for a in asm.values() if a.shape[1]), 0)
    s.bodyparts = [f"bpt{i}" for i in range(nb)]
    if single:
        nu = next(iter(single.values())).shape[0]
        s.unique_bodyparts = [f"unique{i}" for i in range(nu)]
    total = len(asm) * s.animals * nb
    present = sum(int(np.sum(~np.isnan(a[..., 0]) & (a[..., 0] >= 0))) for a in asm.values())
    s.missing_fraction = 1 - present / total if total else None
    if asm:
        first, last = min(asm), max(asm)
        s.notes.append(f"frame indices {first}..{last}; bodypart names are not stored in this file")


def _describe_tracklets(p: Path, s: FileSummary) -> None:
    from mapose.io.tracklets_pickle import read_tracklets_pickle, tracklet_ids

    tr = read_tracklets_pickle(p)
    header = tr["header"]
    names = list(dict.fromkeys(header.get_level_values("bodyparts")))
    s.scorer = str(header.get_level_values("scorer")[0]) if len(header) else ""
    ids = tracklet_ids(tr)
    frames, nan, tot = set(), 0, 0
    nb = None
    for k in ids:
        for fk, arr in tr[k].items():
            frames.add(fk)
            a = np.asarray(arr, dtype=np.float64)
            if a.ndim == 2:
                nb = a.shape[0]
                nan += int(np.isnan(a[:, 0]).sum())
                tot += a.shape[0]
            else:  # skeleton tracker's flattened predicted state
                nan += int(np.isnan(a[::3]).sum())
                tot += a.size // 3
    nb = nb if nb is not None else len(names) - (len(next(iter(tr["single"].values()))) if tr.get("single") else 0)
    s.layout = f"{len(ids)} tracklets"
    s.frames = len(frames)
    s.animals = len(ids)
    s.bodyparts = names[:nb]
    s.unique_bodyparts = names[nb:]
    s.missing_fraction = nan / tot if tot else None
    s.notes.append("'animals' counts tracklets (before stitching)")
    if tr.get("single"):
        s.notes.append(f"unique bodyparts in {len(tr['single'])} frames")


def _describe_table(p: Path, s: FileSummary) -> None:
    from mapose.io.tracks_h5 import h5_keys, read_tracks

    df = read_tracks(p)
    if p.suffix.lower() != ".csv":
        s.layout = f"key '{h5_keys(p)[0] if len(h5_keys(p)) == 1 else '/'.join(h5_keys(p))}'"
    cols = df.columns
    s.frames = len(df)
    names = list(cols.names) if hasattr(cols, "names") else []
    if "scorer" in names:
        s.scorer = str(cols.get_level_values("scorer")[0]) if len(cols) else ""
    if "bodyparts" not in names:
        s.notes.append("not a DLC pose table (no 'bodyparts' column level)")
        return
    coords = cols.get_level_values("coords") if "coords" in names else None
    if "individuals" in names:
        inds = list(dict.fromkeys(cols.get_level_values("individuals")))
        s.individuals = [str(i) for i in inds if i != "single"]
        s.animals = len(s.individuals)
        ind_level = cols.get_level_values("individuals")
        s.bodyparts = [str(b) for b in dict.fromkeys(cols.get_level_values("bodyparts")[ind_level != "single"])]
        s.unique_bodyparts = [str(b) for b in dict.fromkeys(cols.get_level_values("bodyparts")[ind_level == "single"])]
    else:
        s.animals = 1
        s.bodyparts = [str(b) for b in dict.fromkeys(cols.get_level_values("bodyparts"))]
    if coords is not None and len(df):
        x = df.loc[:, np.asarray(coords == "x")].to_numpy(dtype=np.float64)
        s.missing_fraction = float(np.isnan(x).mean()) if x.size else None


def _describe_yaml(p: Path, s: FileSummary) -> None:
    if s.kind == "inference_cfg":
        from mapose.io.config import yaml_load

        d = yaml_load(p, what="Inference config")
        s.notes.append(", ".join(f"{k}={d[k]}" for k in d))
        return
    if s.kind == "pose_cfg":
        from mapose.io.config import yaml_load

        d = yaml_load(p, what="pose_cfg.yaml")
        s.layout = f"net_type {d.get('net_type')}, dataset_type {d.get('dataset_type')}"
        s.bodyparts = [str(b) for b in d.get("all_joints_names") or []]
        return
    if s.kind == "pytorch_config":
        from mapose.io.pytorch_config import read_pytorch_config

        d = read_pytorch_config(p)
        md = d.get("metadata", {}) or {}
        s.layout = f"net_type {d.get('net_type')}, method {d.get('method')}"
        s.bodyparts = list(md.get("bodyparts") or [])
        s.unique_bodyparts = list(md.get("unique_bodyparts") or [])
        s.individuals = list(md.get("individuals") or [])
        s.animals = len(s.individuals) or None
        return
    from mapose.io.config import individuals, is_multianimal, multianimal_bodyparts, read_config, unique_bodyparts

    cfg = read_config(p)
    s.layout = f"project {cfg.get('Task')}{cfg.get('date')}, " + ("multi-animal" if is_multianimal(cfg) else "single animal")
    s.bodyparts = multianimal_bodyparts(cfg)
    s.unique_bodyparts = unique_bodyparts(cfg)
    s.individuals = individuals(cfg)
    s.animals = len(s.individuals)
    s.notes.append(f"engine {cfg.get('engine', 'pytorch')}, iteration {cfg.get('iteration')}, "
                   f"TrainingFraction {list(cfg.get('TrainingFraction') or [])}, "
                   f"snapshotindex {cfg.get('snapshotindex')}")


_DESCRIBERS = {
    "full_pickle": _describe_full, "meta_pickle": _describe_meta,
    "assemblies_pickle": _describe_assemblies, "tracklets_pickle": _describe_tracklets,
    "tracks_h5": _describe_table, "tracks_csv": _describe_table,
    "config_yaml": _describe_yaml, "inference_cfg": _describe_yaml, "pytorch_config": _describe_yaml,
    "pose_cfg": _describe_yaml,
}


def describe(path, kind: str | None = None) -> FileSummary:
    """Summarise a DLC file (kind auto-detected unless given).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, unknown-kind, corrupt or truncated files.
    """
    p = Path(os.fspath(path))
    kind = kind or detect_kind(p)
    if kind not in _DESCRIBERS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    if kind == "full_pickle":
        p = _strip_shelve_suffix(p)
    s = FileSummary(path=str(p), kind=kind)
    _DESCRIBERS[kind](p, s)
    return s
