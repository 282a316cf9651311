"""Plots: trajectories of tracked keypoints and PAF affinity distributions.

Both draw with matplotlib's object API (``matplotlib.figure.Figure`` + Agg canvas): no
pyplot state, no GUI backend, safe in threads and batch jobs.  matplotlib is imported
only when a plot is made (extra ``gui``).

``plot_trajectories`` keeps DLC 3.0.2's files: ``<video folder or destfolder>/plot-poses/
<video stem>/{trajectory,plot,plot-likelihood,hist}<suffix><individual><imagetype>``
(x vs y, x/y vs frame, likelihood vs frame, histogram of frame-to-frame displacement),
one set per individual, keypoints with likelihood ``< pcutoff`` masked.

``plot_edge_affinity_distributions`` reproduces DLC's within- vs between-animal split of
PAF affinities on the training images of an evaluation ``_full.pickle`` (greedy k-d-tree
matching of ground truth to detections, k = 3, including DLC's off-by-one train-index
test, which decides which images are counted), one panel per graph edge with the
AUC of DLC's ``calc_separability`` (51-bin probability histograms).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mapose._optional import require
from mapose.visualization import _project as proj

__all__ = ["plot_trajectories", "plot_edge_affinity_distributions", "within_between_affinities",
           "separability_auc"]


def _figure(figsize):
    require("matplotlib", "plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, **kwargs) -> None:
    from mapose.io.atomic import atomic_path

    with atomic_path(path, suffix="") as tmp:
        # the temporary name ends in ".part": tell matplotlib the real format
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)


# --------------------------------------------------------------------------- trajectories

def _plot_one_individual(df, folder: Path, bodyparts, colormap, alphavalue, pcutoff, suffix,
                         resolution, linewidth) -> list[Path]:
    mpl = require("matplotlib", "plots")
    cmap = mpl.colormaps[colormap].resampled(max(len(bodyparts), 1))
    present = set(df.columns.get_level_values("bodyparts"))
    fig1, fig2, fig3, fig4 = _figure((8, 6)), _figure((10, 3)), _figure((10, 3)), _figure(None)
    ax1, ax2, ax3, ax4 = (f.add_subplot(111) for f in (fig1, fig2, fig3, fig4))
    ax1.set_xlabel("X position in pixels")
    ax1.set_ylabel("Y position in pixels")
    ax1.invert_yaxis()
    ax2.set_xlabel("Frame Index")
    ax2.set_ylabel("X-(dashed) and Y- (solid) position in pixels")
    ax3.set_xlabel("Frame Index")
    ax3.set_ylabel("Likelihood (use to set pcutoff)")
    ax4.set_ylabel("Count")
    ax4.set_xlabel("DeltaX and DeltaY")
    with np.errstate(invalid="ignore"):
        top = np.nanmax(df.to_numpy(dtype=np.float64)) if df.size and np.isfinite(df.to_numpy(dtype=float)).any() else 1.0
        bins = np.linspace(0, top, 100)
        for k, bp in enumerate(bodyparts):
            if bp not in present:
                continue
            sub = df.xs(bp, level="bodyparts", axis=1)
            prob = sub.xs("likelihood", level="coords", axis=1).to_numpy(dtype=np.float64).squeeze(axis=1)
            mask = ~(prob >= pcutoff)
            x = np.ma.array(sub.xs("x", level="coords", axis=1).to_numpy(dtype=np.float64).squeeze(axis=1), mask=mask)
            y = np.ma.array(sub.xs("y", level="coords", axis=1).to_numpy(dtype=np.float64).squeeze(axis=1), mask=mask)
            color = cmap(k)
            ax1.plot(x, y, ".", color=color, alpha=alphavalue)
            ax2.plot(x, "--", color=color, linewidth=linewidth, alpha=alphavalue)
            ax2.plot(y, "-", color=color, linewidth=linewidth, alpha=alphavalue)
            ax3.plot(prob, "-", color=color, linewidth=linewidth, alpha=alphavalue)
            for v in (x, y):
                d = np.diff(v.filled(np.nan))
                d = d[np.isfinite(d)]
                if d.size:
                    ax4.hist(d, color=color, histtype="step", bins=bins, linewidth=linewidth)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    sm = ScalarMappable(cmap=mpl.colormaps[colormap], norm=Normalize(vmin=0, vmax=max(len(bodyparts) - 1, 1)))
    sm.set_array([])
    for fig, ax in ((fig1, ax1), (fig2, ax2), (fig3, ax3), (fig4, ax4)):
        cbar = fig.colorbar(sm, ax=ax, ticks=range(len(bodyparts)))
        cbar.set_ticklabels(list(bodyparts))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for fig, name in ((fig1, "trajectory"), (fig2, "plot"), (fig3, "plot-likelihood"), (fig4, "hist")):
        path = folder / f"{name}{suffix}"
        _save(fig, path, bbox_inches="tight", dpi=resolution)
        out.append(path)
    return out


def plot_trajectories(
    config,
    videos,
    video_extensions=None,
    shuffle: int = 1,
    trainingsetindex: int = 0,
    filtered: bool = False,
    displayedbodyparts="all",
    displayedindividuals="all",
    showfigures: bool = False,
    destfolder=None,
    modelprefix: str = "",
    imagetype: str = ".png",
    resolution: int = 100,
    linewidth: float = 1.0,
    track_method: str = "",
    pcutoff: float | None = None,
    **kwargs,
) -> list[Path]:
    """Plot x/y over time, x vs y, likelihoods and displacement histograms per individual.

    Reads the same ``.h5`` as :func:`create_labeled_video` and writes
    ``plot-poses/<video stem>/{trajectory,plot,plot-likelihood,hist}<individual><imagetype>``
    in ``destfolder`` or the video's folder (DLC 3.0.2's names).

    Parameters
    ----------
    config : str or Path
    videos : path or list of paths
    video_extensions : str or list of str, optional (old name ``videotype``)
    filtered : bool
        Plot the ``_filtered.h5``.
    displayedbodyparts, displayedindividuals : "all" or list of str
        Unknown names raise ``ValueError``.
    showfigures : bool
        Ignored (figures are rendered off-screen); kept for DLC compatibility.
    imagetype : str
        ``".png"``, ``".jpg"``, ``".svg"``, ``".pdf"``, ``".tif"``...
    resolution : int
        dpi.
    pcutoff : float, optional
        Default: config's ``pcutoff``. Points below it are masked.

    Returns
    -------
    list of Path
        Every image written.
    """
    from mapose.visualization.videos import _resolve_extensions

    video_extensions = _resolve_extensions(video_extensions, kwargs)
    cfg = proj.read_config(config)
    if pcutoff is None:
        pcutoff = float(cfg.get("pcutoff", 0.6))
    track_method = proj.get_track_method(cfg, track_method)
    scorer = proj.scorer_for(cfg, shuffle, trainingsetindex, modelprefix, **kwargs)
    config_bpts = (list(cfg.get("multianimalbodyparts") or []) + list(cfg.get("uniquebodyparts") or [])
                   if cfg.get("multianimalproject", False) else list(cfg.get("bodyparts") or []))
    if displayedbodyparts == "all":
        bodyparts = config_bpts
    else:
        wanted = [displayedbodyparts] if isinstance(displayedbodyparts, str) else list(displayedbodyparts)
        unknown = [b for b in wanted if b not in config_bpts]
        if unknown:
            raise ValueError(f"displayedbodyparts={wanted!r} names {unknown}, which are not body parts "
                             f"of this project (config.yaml lists {config_bpts}).")
        bodyparts = [b for b in config_bpts if b in wanted]
    if imagetype and not imagetype.startswith("."):
        imagetype = "." + imagetype
    written: list[Path] = []
    for video in proj.list_videos(videos, video_extensions):
        video = Path(video)
        folder = Path(destfolder) if destfolder is not None else video.parent
        h5 = proj.find_analysis_h5(folder, video.stem, scorer, filtered, track_method)
        df = proj.read_tracks_h5(h5)
        labeled = [bp for bp in dict.fromkeys(df.columns.get_level_values("bodyparts")) if bp in bodyparts]
        if "individuals" in (df.columns.names or []):
            animals = list(dict.fromkeys(df.columns.get_level_values("individuals")))
            if displayedindividuals != "all":
                wanted = [displayedindividuals] if isinstance(displayedindividuals, str) else list(displayedindividuals)
                unknown = [a for a in wanted if a not in animals]
                if unknown:
                    raise ValueError(f"displayedindividuals={wanted!r} names {unknown}, which are not in "
                                     f"{h5.name} (individuals there: {animals}).")
                animals = [a for a in animals if a in wanted]
        else:
            animals = [""]
        tmpfolder = folder / "plot-poses" / video.stem
        suffix = "_filtered" if filtered else ""
        for animal in animals:
            sub = df.loc[:, df.columns.get_level_values("individuals") == animal] if animal else df
            written += _plot_one_individual(
                sub, tmpfolder, labeled, str(cfg.get("colormap", "rainbow")),
                float(cfg.get("alphavalue", 0.5)), pcutoff, suffix + animal + imagetype, resolution, linewidth)
    return written


# --------------------------------------------------------------------------- PAF affinities

def _greedy_match(query: np.ndarray, ref: np.ndarray, k: int = 3) -> np.ndarray:
    """Greedy nearest-neighbour matching (DLC's ``find_closest_neighbors``).

    Queries are served in order of their nearest distance; each takes the closest of its
    ``k`` nearest references not yet taken.  Returns, per query, the reference index or -1.
    """
    from scipy.spatial import cKDTree

    n_ref = len(ref)
    tree = cKDTree(ref)
    dist, inds = tree.query(query, k=k)
    dist = np.asarray(dist).reshape(len(query), -1)
    inds = np.asarray(inds).reshape(len(query), -1)
    order = np.argsort(dist[:, 0], kind="quicksort")
    out = np.full(len(query), -1, dtype=int)
    taken = set()
    for q in order:
        for j in inds[q]:
            if j < n_ref and j not in taken:  # j == n_ref marks "fewer than k neighbours"
                taken.add(int(j))
                out[q] = j
                break
        if len(taken) == n_ref:
            break
    return out


def _gt_coords(series) -> np.ndarray:
    """Ground-truth Series (scorer, individuals, bodyparts, coords) → (n_bodyparts, n_animals, 2)."""
    s = series
    if "individuals" in (s.index.names or []):
        s = s[s.index.get_level_values("individuals") != "single"]
    bpts = list(dict.fromkeys(s.index.get_level_values("bodyparts")))
    inds = list(dict.fromkeys(s.index.get_level_values("individuals"))) if "individuals" in s.index.names else [""]
    out = np.full((len(bpts), len(inds), 2), np.nan)
    names = list(s.index.names)
    lv_b, lv_c = names.index("bodyparts"), names.index("coords")
    lv_a = names.index("individuals") if "individuals" in names else None
    b_of = {b: i for i, b in enumerate(bpts)}
    a_of = {a: i for i, a in enumerate(inds)}
    for key, value in zip(s.index, s.to_numpy(dtype=np.float64)):
        c = {"x": 0, "y": 1}.get(key[lv_c])
        if c is not None:
            out[b_of[key[lv_b]], a_of[key[lv_a]] if lv_a is not None else 0, c] = value
    return out


def within_between_affinities(data: dict, metadata: dict, train_set_only: bool = True):
    """Within- and between-animal PAF affinities per edge, as DLC's ``_calc_within_between_pafs``.

    Parameters
    ----------
    data : dict
        Evaluation ``_full.pickle``: ``"metadata"`` (with ``"PAFgraph"``) and one entry per
        image with ``"prediction"`` (``coordinates``, ``costs``) and ``"groundtruth"``.
    metadata : dict
        The matching ``_meta.pickle`` (``data["trainIndices"]``).

    Returns
    -------
    (within_train, within_test), (between_train, between_test)
        Each a ``dict[edge index -> list of float]``.
    """
    train = {int(i) for i in np.asarray(metadata["data"]["trainIndices"]).ravel()}
    graph = data["metadata"]["PAFgraph"]
    w_tr, w_te, b_tr, b_te = (defaultdict(list) for _ in range(4))
    # DLC enumerates the whole dict, so position 0 is "metadata" and image n sits at n + 1;
    # it then tests that position against the image-based trainIndices (off by one).
    for position, (key, entry) in enumerate(data.items()):
        if key == "metadata":
            continue
        is_train = position in train
        if train_set_only and not is_train:
            continue
        coords_gt = _gt_coords(entry["groundtruth"][2])
        if np.isnan(coords_gt).all():
            continue
        coords = entry["prediction"]["coordinates"][0]
        lookup = {}
        for bp, (coord, gt) in enumerate(zip(coords, coords_gt)):
            coord = np.asarray(coord, dtype=np.float64).reshape(-1, 2)
            inds = np.flatnonzero(np.all(~np.isnan(coord), axis=1))
            inds_gt = np.flatnonzero(np.all(~np.isnan(gt), axis=1))
            if inds.size and inds_gt.size:
                nb = _greedy_match(gt[inds_gt], coord[inds], k=3)
                found = nb != -1
                lookup[bp] = dict(zip(inds_gt[found], inds[nb[found]]))
        costs = entry["prediction"].get("costs") or {}
        for k, v in costs.items():
            paf = np.asarray(v["m1"])
            s, t = graph[k]
            if s not in lookup or t not in lookup:
                continue
            within = np.zeros(paf.shape, dtype=bool)
            for animal in set(lookup[s]) & set(lookup[t]):
                within[lookup[s][animal], lookup[t][animal]] = True
            (w_tr if is_train else w_te)[k].extend(paf[within].tolist())
            (b_tr if is_train else b_te)[k].extend(paf[~within].tolist())
    return (w_tr, w_te), (b_tr, b_te)


def separability_auc(between, within, n_bins: int = 101) -> float:
    """DLC's histogram AUC (``calc_separability(..., metric="auc")``) of two affinity samples."""
    bins = np.linspace(0, 1, n_bins)
    h_left = np.histogram(np.asarray(between, dtype=np.float64), bins=bins)[0].astype(np.float64)
    h_right = np.histogram(np.asarray(within, dtype=np.float64), bins=bins)[0].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        h_left /= h_left.sum()
        h_right /= h_right.sum()
    return float(np.trapezoid(np.cumsum(h_left), np.cumsum(h_right)))


def _find_meta_pickle(eval_pickle: Path) -> Path:
    name = eval_pickle.name
    tried = []
    for old in ("_full.", "_eval."):
        if old in name:
            cand = eval_pickle.with_name(name.replace(old, "_meta."))
            tried.append(cand)
            if cand.is_file():
                return cand
    raise FileNotFoundError(
        f"no metadata pickle for eval_pickle_file={str(eval_pickle)!r} (looked for "
        f"{[str(t) for t in tried] or 'a name with _full. or _eval.'}); the evaluation writes "
        "<...>_full.pickle and <...>_meta.pickle side by side."
    )


def _edge_affinity_figure(eval_pickle_file, include_bodyparts, figsize):
    """Build the figure of :func:`plot_edge_affinity_distributions`; returns ``(fig, edges)``."""
    from mapose.io.safe_pickle import read_pickle

    path = Path(eval_pickle_file)
    if not path.is_file():
        raise FileNotFoundError(f"eval_pickle_file={str(eval_pickle_file)!r} does not exist.")
    data = read_pickle(path, what="evaluation _full.pickle")
    if not isinstance(data, dict) or "metadata" not in data:
        raise ValueError(f"eval_pickle_file={str(path)!r} is not an evaluation _full.pickle "
                         "(no 'metadata' entry).")
    if not any(isinstance(v, dict) and "groundtruth" in v for k, v in data.items() if k != "metadata"):
        raise ValueError(f"eval_pickle_file={str(path)!r} holds no ground truth: use the _full.pickle "
                         "written by evaluate_network (evaluation-results folder), not a video's.")
    metadata = read_pickle(_find_meta_pickle(path), what="evaluation _meta.pickle")
    (w_train, _), (b_train, _) = within_between_affinities(data, metadata, train_set_only=True)
    meta = metadata["data"]["DLC-model-config file"]
    bpts = [str(b).lower() for b in meta["all_joints_names"]]
    graph = [tuple(e) for e in meta["partaffinityfield_graph"]]
    if include_bodyparts == "all":
        include = {b for edge in graph for b in edge}
    else:
        wanted = [include_bodyparts] if isinstance(include_bodyparts, str) else list(include_bodyparts)
        unknown = [b for b in wanted if str(b).lower() not in bpts]
        if unknown:
            raise ValueError(f"include_bodyparts={wanted!r} names {unknown}, which are not body parts of "
                             f"this model ({meta['all_joints_names']}).")
        include = {bpts.index(str(b).lower()) for b in wanted}
    nonempty = {k for k, vals in w_train.items() if vals}
    edges = sorted(n for n, edge in enumerate(graph) if any(i in include for i in edge) and n in nonempty)
    if not edges:
        raise ValueError(f"no edge of {str(path)!r} has within-animal affinities on the training images "
                         f"for include_bodyparts={include_bodyparts!r}; nothing to plot.")
    nrows = int(np.ceil(np.sqrt(len(edges))))
    ncols = int(np.ceil(len(edges) / nrows))
    fig = _figure(figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    bins = np.linspace(0, 1, 51)
    for n, k in enumerate(edges):
        ax = axes[n]
        ax.axis("on")
        i1, i2 = graph[k]
        w, b = np.asarray(w_train[k], dtype=float), np.asarray(b_train[k], dtype=float)
        sep = separability_auc(b, w)
        ax.text(0.5, 0.8, f"{bpts[i1]}–{bpts[i2]}\n{sep:.2f}", size=8, ha="center", transform=ax.transAxes)
        for vals, color in ((w, "#EFC9AF"), (b, "#1F8AC0")):
            if vals.size:
                ax.hist(vals, bins=bins, weights=np.full(vals.size, 1.0 / vals.size), color=color, alpha=0.75)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    fig.set_layout_engine("tight")
    return fig, edges


def plot_edge_affinity_distributions(eval_pickle_file, include_bodyparts="all", output_name="", figsize=(10, 7),
                                     *, dpi: int = 600):
    """Histogram within- vs between-animal PAF affinities per edge on the training images.

    Parameters
    ----------
    eval_pickle_file : str or Path
        An evaluation ``..._full.pickle`` (``trimouse_eval.pickle`` style names work too:
        the metadata is looked up as ``_full.``/``_eval.`` → ``_meta.``).
    include_bodyparts : "all" or list of str
        Keep edges touching at least one of these body parts (case-insensitive, as DLC).
    output_name : str, optional
        Image path; default ``costdist.jpg`` in the working directory (DLC's default), 600 dpi.
    figsize : (float, float)
    dpi : int, keyword-only
        Resolution of the saved image (DLC: 600; not a DLC argument).

    Returns
    -------
    Path
        The saved image.  One panel per kept edge that has within-animal values, titled
        ``<bodypart>–<bodypart>`` with the AUC.
    """
    fig, _ = _edge_affinity_figure(eval_pickle_file, include_bodyparts, figsize)
    out = Path(output_name) if output_name else Path("costdist.jpg")
    _save(fig, out, dpi=dpi)
    return out
