"""Assembly (DLC's Assembler) and PAF edge costs, over animals x bodyparts x frames."""
import numpy as np

from mapose.assembly.assembler import Assembler
from mapose.assembly.synthetic import full_graph, make_full_data
from mapose.kernels import assembly as K
from mapose.kernels.paf import compute_paf_costs


class Assemble:
    """Full ``Assembler.assemble`` (packing + compiled per-frame loop), one thread."""

    params = [[1, 3, 10], [4, 12, 16], [100, 1000], [0.0, 1.0]]
    param_names = ["animals", "bodyparts", "frames", "false_positives"]
    timeout = 300

    def setup(self, animals, bodyparts, frames, false_positives):
        self.data = make_full_data(n_frames=frames, n_animals=animals, n_bodyparts=bodyparts,
                                   n_false_positives=false_positives, seed=0)
        self.kwargs = {"max_n_individuals": animals, "n_multibodyparts": bodyparts}

    def time_assemble(self, *args):
        Assembler(self.data, **self.kwargs).assemble(n_threads=1)

    def time_assemble_all_cores(self, *args):
        Assembler(self.data, **self.kwargs).assemble(n_threads=None)

    def peakmem_assemble(self, *args):
        Assembler(self.data, **self.kwargs).assemble(n_threads=1)


class Kernel:
    """The compiled per-frame loop alone on packed frames (3 x 12 x 66 and 10 x 16 x 120)."""

    params = [[(3, 12, 0.0), (10, 16, 1.0)], ["chain", "full"]]
    param_names = ["animals_bodyparts_fp", "graph"]

    def setup(self, case, graph):
        animals, bodyparts, fp = case
        g = full_graph(bodyparts) if graph == "full" else [[i, i + 1] for i in range(bodyparts - 1)]
        data = make_full_data(n_frames=500, n_animals=animals, n_bodyparts=bodyparts, graph=g,
                              n_false_positives=fp, seed=0)
        md = data["metadata"]
        self.params_ = K.AssemblyParams(max_n_individuals=animals, n_multibodyparts=bodyparts,
                                        n_keypoints=bodyparts, graph=md["PAFgraph"], paf_inds=md["PAFinds"])
        self.frames = [data[k] for k in data if k != "metadata"]
        self.packed = K.pack_frames(self.frames, self.params_)

    def time_run_500_frames(self, case, graph):
        K.run_packed(self.packed, self.params_, n_threads=1)

    def time_pack_500_frames(self, case, graph):
        K.pack_frames(self.frames, self.params_)

    def time_pack_and_run_500_frames(self, case, graph):
        # one pass: each few frames assembled right after packing (Assembler's one-thread path)
        K.pack_and_run(self.frames, self.params_)


class PafCosts:
    """PAF line integrals for all pairs of a 66-edge graph on one 65 x 81 map."""

    params = [[3, 10], ["pytorch", "tf"]]
    param_names = ["peaks_per_bodypart", "variant"]

    def setup(self, n, variant):
        rng = np.random.default_rng(0)
        self.graph = full_graph(12)
        self.pafs = rng.normal(size=(1, 2 * len(self.graph), 65, 81)).astype(np.float32)
        self.peaks = [[np.column_stack([rng.integers(0, 65, n), rng.integers(0, 81, n)]) for _ in range(12)]]
        self.variant = variant

    def time_costs(self, n, variant):
        compute_paf_costs(self.pafs, self.peaks, self.graph, variant=self.variant)


class AssembleWindow:
    """``window_size >= 1`` (temporal coherence: exact k-d tree per frame), one thread."""

    params = [[1, 3], [(3, 12, 1.0), (10, 16, 1.0)]]
    param_names = ["window_size", "animals_bodyparts_fp"]
    timeout = 300

    def setup(self, window_size, case):
        animals, bodyparts, fp = case
        self.data = make_full_data(n_frames=50, n_animals=animals, n_bodyparts=bodyparts,
                                   n_false_positives=fp, seed=0)
        self.kwargs = {"max_n_individuals": animals, "n_multibodyparts": bodyparts,
                       "window_size": window_size}

    def time_assemble(self, *args):
        Assembler(self.data, **self.kwargs).assemble(n_threads=1)


class AssembleCalibrated:
    """Calibrated assembly (``Assembler.calibrate``) of DLC's trimouse test data, one thread.

    Needs the shared DLC test data (``MAPOSE_SHARED_DATA`` or ``../shared/data``); skipped
    without it.
    """

    params = [["default", "add_discarded"]]
    param_names = ["mode"]

    def setup(self, mode):
        import os
        import pickle
        from pathlib import Path

        root = Path(os.environ.get("MAPOSE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
        full, calib = root / "dlc-unittest" / "trimouse_full.pickle", root / "dlc-unittest" / "trimouse_calib.h5"
        if not full.exists() or not calib.exists():
            raise NotImplementedError("shared DLC test data not found")
        with open(full, "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - the project's own test data
        extra = {"add_discarded": True, "max_overlap": 0.5} if mode == "add_discarded" else {}
        self.assembler = Assembler(data, max_n_individuals=3, n_multibodyparts=12, **extra)
        self.assembler.calibrate(str(calib))

    def time_assemble(self, mode):
        self.assembler.assemble(n_threads=1)
