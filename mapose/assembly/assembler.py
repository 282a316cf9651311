"""DeepLabCut's ``Assembler``: detections + PAF costs -> animals, compiled.

Drop-in for ``deeplabcut.core.inferenceutils.Assembler`` (same constructor arguments,
defaults, attributes and files).  The per-frame algorithm runs in ``mapose._cy.assembly``
without the GIL; :meth:`Assembler.assemble` splits the frames over threads
(``n_threads``, default all cores) with results identical to a serial run.

Differences from DLC 3.0.2, all deliberate:

* affinity sums are float64 (DLC's behaviour under its pinned NumPy 1; under NumPy 2 DLC
  sums in float32 and fails its own montblanc test on frame 107);
* ``assemble`` uses threads, not processes: ``chunk_size``/``n_processes`` are accepted,
  results come in frame order, and ``window_size`` works with any thread count;
* ``.assemblies`` is a mapping that builds :class:`Assembly` objects on first access;
* where DLC crashes, mapose returns a defined result: frames without detections give no
  assemblies, links to unique bodyparts are never formed, calibration that cannot be
  done warns and leaves the assembler uncalibrated, an empty data dict assembles nothing,
  and non-finite affinities count as 0 (DLC only maps NaN to 0; inf crashes SciPy).
* with calibration (``calibrate``), frames run through the same kernel (threads too); its
  Mahalanobis distances sum v.inv_cov.v in a fixed order where NumPy uses BLAS, so they
  may differ from DLC's in the last bits (only an exact tie could resolve differently).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np

from mapose.assembly.model import Assembly, Link
from mapose.kernels import assembly as _kernel

__all__ = ["Assembler"]

_CHUNK = 4096  # frames packed at a time: bounds the memory of the flat cost buffers


class _LazyAssemblies(MutableMapping):
    """``{frame index: [Assembly, ...]}`` whose objects are built on first access."""

    def __init__(self, n_multi: int):
        self._n_multi = n_multi
        # frame index -> chunk << 32 | local index (an int: a tuple per frame would be
        # a GC-tracked container, and enough of them set off full collections that walk
        # the whole data dict), or None for a value set by hand
        self._where: dict = {}
        self._chunks: list = []
        self._cache: dict = {}

    def _add_chunk(self, packed, result, start):
        # the chunk's frames are start, start + 1, ...
        c = len(self._chunks)
        self._chunks.append((packed, result))
        local = np.flatnonzero(result.counts() > 0).tolist()
        self._where.update(zip([start + q for q in local], [c << 32 | q for q in local]))
        for q in local if self._cache else ():
            self._cache.pop(start + q, None)

    def __getitem__(self, key):
        if key in self._cache:
            return self._cache[key]
        where = self._where[key]
        packed, result = self._chunks[where >> 32]
        value = _kernel.materialize(result, packed, where & 0xFFFFFFFF)[0]
        self._cache[key] = value
        return value

    def __setitem__(self, key, value):
        self._cache[key] = value
        self._where.setdefault(key, None)

    def __delitem__(self, key):
        del self._where[key]
        self._cache.pop(key, None)

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)

    def __contains__(self, key):
        return key in self._where

    def __repr__(self):
        return f"<{len(self)} frames of assemblies (built on access)>"

    def arrays(self):
        """``{frame: float64 (n_assemblies, n_multibodyparts, 4)}`` without building objects."""
        out = {}
        for key, where in self._where.items():
            if key in self._cache or where is None:
                out[key] = np.stack([a.data for a in self._cache[key]]) if self._cache[key] else None
            else:
                out[key] = self._chunks[where >> 32][1].data(where & 0xFFFFFFFF)
        return out


def _assembly_arrays(assemblies) -> dict:
    if isinstance(assemblies, _LazyAssemblies):
        return assemblies.arrays()
    out = {}
    for key, value in assemblies.items():
        arrs = [a.data if isinstance(a, Assembly) else np.asarray(a) for a in value]
        out[key] = np.stack(arrs) if arrs else None
    return out


class Assembler:
    """Assemble per-frame detections into individuals (DLC's ``Assembler``).

    Parameters
    ----------
    data : dict
        A DLC ``_full.pickle`` dict: ``"metadata"`` (``all_joints_names``, ``PAFgraph``,
        ``PAFinds``) and one entry per frame with ``coordinates``, ``confidence``,
        ``costs`` and optionally ``identity``.
    max_n_individuals : int
        Maximum number of animals per frame.
    n_multibodyparts : int
        Number of multi-animal bodyparts (the first labels); the others are unique.
    graph : list of (int, int), optional
        Full PAF graph (default: metadata ``PAFgraph``).
    paf_inds : list of int, optional
        Edges to use, in order (default: metadata ``PAFinds``).
    greedy : bool, default False
        Greedy instead of optimal (Hungarian) linking.
    pcutoff : float, default 0.1
        Minimal detection confidence.
    min_affinity : float, default 0.05
        Minimal link affinity.
    min_n_links : int, default 2
        Assemblies with fewer links (but at least one) are dropped.
    max_overlap : float, default 0.8
        Non-maximum pose suppression threshold (off unless ``0 < max_overlap < 1``).
    identity_only : bool, default False
        Group detections by predicted identity only (needs identity scores).
    nan_policy : {"little", ...}, default "little"
        Mahalanobis distance with missing keypoints (calibrated mode).
    force_fusion : bool, default False
        Merge superfluous assemblies into their nearest compatible neighbour.
    add_discarded : bool, default False
        Attach leftover detections to the nearest assembly lacking that bodypart.
    window_size : int, default 0
        Temporal coherence: weight affinities by the links of up to that many earlier frames.
    method : str, default "m1"
        Key of the costs to use.
    n_threads : int, optional
        mapose only: threads for :meth:`assemble` (default: all cores).
    """

    def __init__(
        self,
        data,
        *,
        max_n_individuals,
        n_multibodyparts,
        graph=None,
        paf_inds=None,
        greedy=False,
        pcutoff=0.1,
        min_affinity=0.05,
        min_n_links=2,
        max_overlap=0.8,
        identity_only=False,
        nan_policy="little",
        force_fusion=False,
        add_discarded=False,
        window_size=0,
        method="m1",
        n_threads=None,
    ):
        if not isinstance(data, dict) or "metadata" not in data:
            raise ValueError(
                "data must be a DLC _full.pickle dict with a 'metadata' entry "
                f"(all_joints_names, PAFgraph, PAFinds); got {type(data).__name__}"
                + ("" if not isinstance(data, dict) else f" with keys {list(data)[:5]}")
                + ". Load it with mapose.io.safe_pickle.read_pickle."
            )
        self.data = data
        self.metadata = self.parse_metadata(self.data)
        self.max_n_individuals = max_n_individuals
        self.n_multibodyparts = n_multibodyparts
        self.n_uniquebodyparts = self.n_keypoints - n_multibodyparts
        self.greedy = greedy
        self.pcutoff = pcutoff
        self.min_affinity = min_affinity
        self.min_n_links = min_n_links
        self.max_overlap = max_overlap
        self._has_identity = bool(self.metadata["imnames"]) and "identity" in self[0]
        if identity_only and not self._has_identity:
            warnings.warn(
                "The network was not trained with identity; setting `identity_only` to False.",
                UserWarning,
                stacklevel=2,
            )
        self.identity_only = bool(identity_only) & self._has_identity
        self.nan_policy = nan_policy
        self.force_fusion = force_fusion
        self.add_discarded = add_discarded
        self.window_size = window_size
        self.method = method
        self.graph = _or(graph, self.metadata["paf_graph"])
        self.paf_inds = _or(paf_inds, self.metadata["paf"])
        self.n_threads = n_threads
        self._gamma = 0.01
        self._trees: dict = {}
        self.safe_edge = False
        self._kde = None
        self.assemblies: MutableMapping = {}
        self.unique: dict = {}
        self._params()  # validate now rather than at assemble()

    # ---------------------------------------------------------------- construction --
    @classmethod
    def empty(
        cls,
        max_n_individuals,
        n_multibodyparts,
        n_uniquebodyparts,
        graph,
        paf_inds,
        greedy=False,
        pcutoff=0.1,
        min_affinity=0.05,
        min_n_links=2,
        max_overlap=0.8,
        identity_only=False,
        nan_policy="little",
        force_fusion=False,
        add_discarded=False,
        window_size=0,
        method="m1",
    ):
        """An assembler without data, for per-image use through :meth:`_assemble`."""
        n_bodyparts = n_multibodyparts + n_uniquebodyparts
        data = {
            "metadata": {
                "all_joints_names": ["" for _ in range(n_bodyparts)],
                "PAFgraph": graph,
                "PAFinds": paf_inds,
            },
            "0": {},
        }
        return cls(
            data,
            max_n_individuals=max_n_individuals,
            n_multibodyparts=n_multibodyparts,
            graph=graph,
            paf_inds=paf_inds,
            greedy=greedy,
            pcutoff=pcutoff,
            min_affinity=min_affinity,
            min_n_links=min_n_links,
            max_overlap=max_overlap,
            identity_only=identity_only,
            nan_policy=nan_policy,
            force_fusion=force_fusion,
            add_discarded=add_discarded,
            window_size=window_size,
            method=method,
        )

    @staticmethod
    def parse_metadata(data) -> dict:
        meta = data["metadata"]
        try:
            names = meta["all_joints_names"]
        except KeyError:
            raise ValueError(
                "data['metadata'] has no 'all_joints_names'; it is needed to know the bodyparts."
            ) from None
        params = {
            "joint_names": names,
            "num_joints": len(names),
            "paf_graph": meta.get("PAFgraph"),
            "paf": meta.get("PAFinds", np.arange(len(names))),
        }
        params["bpts"] = params["ibpts"] = range(params["num_joints"])
        params["imnames"] = [fn for fn in list(data) if fn != "metadata"]
        return params

    def __getitem__(self, item):
        return self.data[self.metadata["imnames"][item]]

    @property
    def n_keypoints(self) -> int:
        return self.metadata["num_joints"]

    def _params(self) -> _kernel.AssemblyParams:
        # cached: attributes may be changed between calls (DLC scripts do), so the key
        # holds all of them
        key = (
            id(self.graph), id(self.paf_inds), self.max_n_individuals, self.n_multibodyparts, self.greedy,
            self.pcutoff, self.min_affinity, self.min_n_links, self.max_overlap, self.identity_only,
            self.nan_policy, self.force_fusion, self.add_discarded, self.window_size, self.method, self._gamma,
        )
        cached = self.__dict__.get("_params_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        params = self._make_params()
        self._params_cache = (key, params)
        return params

    def _make_params(self) -> _kernel.AssemblyParams:
        graph = [] if self.graph is None else self.graph
        paf_inds = [] if self.paf_inds is None else self.paf_inds
        return _kernel.AssemblyParams(
            max_n_individuals=self.max_n_individuals,
            n_multibodyparts=self.n_multibodyparts,
            n_keypoints=self.n_keypoints,
            graph=graph,
            paf_inds=np.asarray(paf_inds, dtype=np.int64).ravel(),
            greedy=bool(self.greedy),
            pcutoff=self.pcutoff,
            min_affinity=self.min_affinity,
            min_n_links=self.min_n_links,
            max_overlap=self.max_overlap,
            identity_only=bool(self.identity_only),
            nan_policy=self.nan_policy,
            force_fusion=bool(self.force_fusion),
            add_discarded=bool(self.add_discarded),
            window_size=self.window_size,
            method=self.method,
            gamma=self._gamma,
        )

    # ---------------------------------------------------------------- calibration --
    def calibrate(self, train_data_file):
        """Fit a KDE of pairwise squared keypoint distances on labelled poses.

        Parameters
        ----------
        train_data_file : str or Path
            A ``CollectedData_<scorer>.h5`` (x, y per individual and bodypart).
        """
        import pandas as pd
        from scipy.spatial.distance import pdist
        from scipy.stats import gaussian_kde

        path = Path(train_data_file)
        if not path.is_file():
            raise FileNotFoundError(
                f"train_data_file {str(train_data_file)!r} does not exist; pass the project's "
                "CollectedData_<scorer>.h5."
            )
        df = pd.read_hdf(path)
        if "individuals" in (df.columns.names or []):
            try:
                df = df.drop("single", level="individuals", axis=1)
            except KeyError:
                pass
        n_bpts = len(df.columns.get_level_values("bodyparts").unique())
        if n_bpts == 1:
            warnings.warn("There is only one keypoint; skipping calibration...", UserWarning, stacklevel=2)
            return
        if n_bpts != self.n_multibodyparts:
            raise ValueError(
                f"train_data_file has {n_bpts} multi-animal bodyparts but the assembler has "
                f"n_multibodyparts={self.n_multibodyparts}; use the same project's labels."
            )
        xy = df.to_numpy(dtype=float).reshape((-1, n_bpts, 2))
        frac_valid = np.mean(~np.isnan(xy), axis=(1, 2))
        xy = xy[frac_valid >= 0.9]
        if len(xy) < 2:  # DLC: ZeroDivision / singular KDE on 0 or 1 pose
            warnings.warn("No complete poses were found. Skipping calibration...", UserWarning, stacklevel=2)
            return
        dists = np.vstack([pdist(pose, "sqeuclidean") for pose in xy])
        mu = np.nanmean(dists, axis=0)
        dists = np.where(np.isnan(dists), mu, dists)
        try:
            with np.errstate(all="ignore"):
                kde = gaussian_kde(dists.T)
        except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            warnings.warn(
                "The assembler could not be robustly calibrated. Continuing without it...",
                UserWarning,
                stacklevel=2,
            )
            return
        kde.mean = mu
        self._kde = kde
        self.safe_edge = True

    def calc_link_probability(self, link: Link) -> float:
        """Two-sided normal probability of the link's squared length (calibrated)."""
        if self._kde is None:
            raise ValueError("Assembler should be calibrated first with training data.")
        i, j = link.j1.label, link.j2.label
        ind = _conv_square_to_condensed_indices(i, j, self.n_multibodyparts)
        mu, sigma = self._kde.mean[ind], self._kde.covariance[ind, ind]
        z = (link.length**2 - mu) / sigma
        return 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))

    def calc_assembly_mahalanobis_dist(self, assembly, return_proba=False, nan_policy="little"):
        """Mahalanobis distance of an assembly's squared pairwise distances to the KDE."""
        if self._kde is None:
            raise ValueError("Assembler should be calibrated first with training data.")
        from scipy.stats import chi2

        dists = assembly.calc_pairwise_distances() - self._kde.mean
        mask = np.isnan(dists)
        if not len(assembly) or mask.all():
            return (np.inf, 0) if return_proba else np.inf
        if nan_policy == "little":
            inds = np.flatnonzero(~mask)
            dists = dists[inds]
            inv_cov = self._kde.inv_cov[np.ix_(inds, inds)]
            factor = self._kde.d / len(inds)
        else:
            dists[mask] = 0
            mask.fill(False)
            inv_cov = self._kde.inv_cov
            factor = 1
        dot = dists @ inv_cov
        mahal = factor * np.sqrt(np.sum(dot * dists, axis=-1))
        if return_proba:
            return mahal, 1 - chi2.cdf(mahal, np.sum(~mask))
        return mahal

    # ---------------------------------------------------------------- assembling --
    def _calibration(self):
        """The KDE moments for the kernel, computed once per calibration (None: uncalibrated)."""
        if self._kde is None:
            return None
        # the cache holds the objects themselves: ids of freed objects can be reused
        kde, mean, n_multi = self._kde, getattr(self._kde, "mean", None), self.n_multibodyparts
        cached = self.__dict__.get("_calibration_cache")
        if cached is None or cached[0] is not kde or cached[1] is not mean or cached[2] != n_multi:
            cached = (kde, mean, n_multi, _kernel.calibration_arrays(kde, n_multi))
            self._calibration_cache = cached
        return cached[3]

    def _assemble(self, data_dict, ind_frame):
        """Assemble one frame: (list of Assembly or None, unique (n_unique, 3) or None)."""
        return self.assemble_frames([data_dict], first_index=ind_frame, n_threads=1)[0]

    def assemble_frames(self, frames, first_index=0, n_threads=None):
        """Assemble a list of frame dicts (batched :meth:`_assemble`, threaded).

        Parameters
        ----------
        frames : list of dict
            Frame entries as in a ``_full.pickle``.
        first_index : int, default 0
            ``ind_frame`` of the first frame (temporal coherence looks at earlier indices).
        n_threads : int, optional
            Threads (default: the assembler's ``n_threads``, else all cores).

        Returns
        -------
        list of (list of Assembly or None, ndarray of shape (n_unique, 3) or None)
        """
        params = self._params()
        frames = list(frames)
        packed, result = self._pack_run(frames, params, first_index, n_threads)
        return [_kernel.materialize(result, packed, k) for k in range(len(frames))]

    def assemble_poses(self, frames, first_index=0, n_threads=None):
        """Assemble frame dicts straight into an array (no Python objects).

        Returns
        -------
        ndarray of shape (n_frames, max_n_individuals, n_multibodyparts, 5)
            ``x, y, confidence, group, mean link affinity`` per keypoint, assemblies in
            DLC's output order; rows without an assembly are -1 and keypoints missing
            from an assembly are ``(NaN, NaN, 0, NaN)`` -- the layout of DLC's PyTorch
            ``PartAffinityFieldPredictor``.
        """
        params = self._params()
        frames = list(frames)
        _, result = self._pack_run(frames, params, first_index, n_threads)
        return result.poses(self.max_n_individuals)

    def _pack_run(self, frames, params, first_index, n_threads, keys=None, calibration=None):
        # (Packed, Result) of frames whose ind_frame starts at first_index; calibration:
        # self._calibration(), when the caller already has it
        n_threads = self._threads(n_threads)
        if calibration is None:
            calibration = self._calibration()
        if n_threads == 1 and params.window_size < 1:
            # one thread: each few frames assembled as soon as packed (costs in cache)
            return _kernel.pack_and_run(frames, params, keys=keys, calibration=calibration)
        packed = _kernel.pack_frames(frames, params, keys=keys)
        fi = np.arange(first_index, first_index + len(frames), dtype=np.int64)
        result = _kernel.run_packed(packed, params, fi, n_threads, self._trees, calibration=calibration)
        self._prune_trees(fi)
        packed.drop_costs()
        return packed, result

    def _prune_trees(self, frame_index):
        """Keep :attr:`_trees` bounded: only the trees of the ``window_size`` frame indices
        up to the highest one just assembled (all a following frame can look back at).

        DLC keeps a ``cKDTree`` per frame forever (memory grows with the video); mapose's
        values are :class:`~mapose.kernels.assembly.LinkTree` (``data``, ``query``).  Only
        assembling frames out of order, backwards by more than ``window_size``, can tell
        the difference.
        """
        if not self._trees or not len(frame_index):
            return
        keep_from = int(np.max(frame_index)) - max(int(self.window_size), 0) + 1
        for key in [k for k in self._trees if isinstance(k, (int, np.integer)) and k < keep_from]:
            del self._trees[key]

    def _threads(self, n_threads=None):
        n = n_threads if n_threads is not None else self.n_threads
        return _kernel.default_threads() if n is None else max(1, int(n))

    def assemble(self, chunk_size=1, n_processes=None, n_threads=None):
        """Assemble every frame; fills :attr:`assemblies` and :attr:`unique`.

        Parameters
        ----------
        chunk_size : int, default 1
            DLC's multiprocessing chunk size; 0 runs serially (one thread) as in DLC.
        n_processes : int, optional
            DLC's process count; used as the thread count when ``n_threads`` is None.
        n_threads : int, optional
            Threads (default: all cores).  Results do not depend on it.
        """
        self.assemblies = {}
        self.unique = {}
        params = self._params()
        imnames = self.metadata["imnames"]
        if n_threads is None:
            n_threads = 1 if chunk_size == 0 else (n_processes if n_processes is not None else self.n_threads)
        n_threads = self._threads(n_threads)
        calibration = self._calibration()
        lazy = _LazyAssemblies(self.n_multibodyparts)
        for start in range(0, len(imnames), _CHUNK):
            names = imnames[start : start + _CHUNK]
            packed, result = self._pack_run([self.data[k] for k in names], params, start, n_threads, keys=names,
                                            calibration=calibration)
            lazy._add_chunk(packed, result, start)
            for local in np.flatnonzero(result.has_unique()).tolist():
                self.unique[start + local] = result.unique(local)
        self.assemblies = lazy

    # ---------------------------------------------------------------- files --
    def to_pickle(self, output_name):
        """Write ``{frame: [assembly data (n_multibodyparts, 4)], "single": unique}``."""
        from mapose.io.safe_pickle import write_pickle

        data = {}
        for ind, arr in _assembly_arrays(self.assemblies).items():
            data[ind] = [] if arr is None else list(arr)
        if self.unique:
            data["single"] = self.unique
        write_pickle(output_name, data)

    @classmethod
    def _from_pickle_data(cls, data):
        return data.pop("single", {}), data

    def from_pickle(self, pickle_path):
        """Load assemblies written by :meth:`to_pickle` (raw arrays, as DLC does)."""
        from mapose.io.safe_pickle import read_pickle

        path = Path(pickle_path)
        if not path.is_file():
            raise FileNotFoundError(f"pickle_path {str(pickle_path)!r} does not exist.")
        data = read_pickle(path, what="assemblies pickle")
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold an assemblies dict (got {type(data).__name__}).")
        self.unique, self.assemblies = self._from_pickle_data(data)

    def to_h5(self, output_name):
        """Write the assemblies as a DataFrame (key ``"ass"``), DLC's placeholder levels."""
        import pandas as pd

        from mapose.io.atomic import atomic_path

        arrays = _assembly_arrays(self.assemblies)
        n_ind = max([self.max_n_individuals] + [0 if a is None else len(a) for a in arrays.values()])
        n_frames = max([len(self.metadata["imnames"])] + [k + 1 for k in arrays if isinstance(k, (int, np.integer))])
        data = np.full((n_frames, n_ind, self.n_multibodyparts, 4), np.nan)
        for ind, arr in arrays.items():
            if arr is not None and len(arr):
                data[ind, : len(arr)] = arr
        index = pd.MultiIndex.from_product(
            [["scorer"], list(map(str, range(n_ind))), list(map(str, range(self.n_multibodyparts))), ["x", "y", "likelihood"]],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
        df = pd.DataFrame(data[..., :3].reshape((n_frames, -1)), columns=index)
        with atomic_path(output_name) as tmp:
            df.to_hdf(tmp, key="ass")


def _or(value, default):
    """DLC's ``value or default`` that also accepts NumPy arrays."""
    if value is None:
        return default
    if isinstance(value, np.ndarray):
        return value if value.size else default
    return value if len(value) else default


def _conv_square_to_condensed_indices(ind_row, ind_col, n):
    if ind_row == ind_col:
        raise ValueError("There are no diagonal elements in condensed matrices.")
    if ind_row < ind_col:
        ind_row, ind_col = ind_col, ind_row
    return n * ind_col - ind_col * (ind_col + 1) // 2 + ind_row - 1 - ind_col

