"""DLC file I/O: read/write every file kind over animals x bodyparts x frames.

The plain-pickle "reference" rows time ``pickle.load`` on the same file (what DLC does,
without the allow-list), so the cost of safe unpickling is visible in the same run.
"""
import pickle
import shutil
import tempfile
from pathlib import Path

from mapose.examples import write_example_set
from mapose.io.assemblies_pickle import read_assemblies_pickle
from mapose.io.full_pickle import read_full_pickle, write_full_pickle
from mapose.io.tracklets_pickle import read_tracklets_pickle
from mapose.io.tracks_h5 import read_tracks, write_tracks_csv, write_tracks_h5

PARAMS = [[3, 6], [5, 12], [1000, 10000]]
NAMES = ["animals", "bodyparts", "frames"]


class _Files:
    params = PARAMS
    param_names = NAMES
    timeout = 300

    def setup(self, animals, bodyparts, frames):
        self.dir = Path(tempfile.mkdtemp(prefix="mapose_bench_io_"))
        self.paths = write_example_set(self.dir / "set", n_frames=frames, n_animals=animals,
                                       n_bodyparts=bodyparts, n_unique=1)
        self.full = read_full_pickle(self.paths["full"])
        self.df = read_tracks(self.paths["tracks_h5"])

    def teardown(self, animals, bodyparts, frames):
        shutil.rmtree(self.dir, ignore_errors=True)


class FullPickle(_Files):
    def time_read(self, *args):
        read_full_pickle(self.paths["full"])

    def time_read_reference_pickle_load(self, *args):
        with open(self.paths["full"], "rb") as fh:
            pickle.load(fh)

    def time_read_shelve(self, *args):
        read_full_pickle(self.paths["full_shelve"])

    def time_write(self, *args):
        write_full_pickle(self.dir / "w_full.pickle", self.full)

    def time_write_shelve(self, *args):
        write_full_pickle(self.dir / "s_full.pickle", self.full, use_shelve=True)

    def peakmem_read(self, *args):
        read_full_pickle(self.paths["full"])


class AssembliesAndTracklets(_Files):
    def time_read_assemblies(self, *args):
        read_assemblies_pickle(self.paths["assemblies"])

    def time_read_tracklets(self, *args):
        read_tracklets_pickle(self.paths["tracklets"])


class Tracks(_Files):
    def time_read_h5(self, *args):
        read_tracks(self.paths["tracks_h5"])

    def time_write_h5(self, *args):
        write_tracks_h5(self.dir / "w.h5", self.df)

    def time_read_csv(self, *args):
        read_tracks(self.paths["tracks_csv"])

    def time_write_csv(self, *args):
        write_tracks_csv(self.dir / "w.csv", self.df)

    def peakmem_read_h5(self, *args):
        read_tracks(self.paths["tracks_h5"])
