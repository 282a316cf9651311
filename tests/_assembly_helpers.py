"""Shared helpers for the assembly tests (no fixtures in conftest: local module)."""
from __future__ import annotations

import numpy as np

from mapose.io.safe_pickle import read_pickle


def load(unittest_data, name):
    return read_pickle(unittest_data / name, what="DLC test pickle")


def frames_of(data):
    keys = [k for k in data if k != "metadata"]
    return keys, [data[k] for k in keys]


def same_outputs(a, b):
    """Compare two lists of (assemblies, unique) exactly (data, summed affinity, links)."""
    assert len(a) == len(b)
    for f, ((ass_a, uni_a), (ass_b, uni_b)) in enumerate(zip(a, b)):
        assert (ass_a is None) == (ass_b is None), f"frame {f}: None vs list"
        assert (uni_a is None) == (uni_b is None), f"frame {f}: unique None vs array"
        if uni_a is not None:
            np.testing.assert_array_equal(uni_a, uni_b, err_msg=f"frame {f} unique")
        if ass_a is None:
            continue
        assert len(ass_a) == len(ass_b), f"frame {f}: {len(ass_a)} vs {len(ass_b)} assemblies"
        for x, y in zip(ass_a, ass_b):
            np.testing.assert_array_equal(x.data, y.data, err_msg=f"frame {f}")
            assert float(x._affinity) == float(y._affinity), f"frame {f}"
            assert x.n_links == y.n_links, f"frame {f}"
            assert [lk.idx for lk in x._links] == [lk.idx for lk in y._links], f"frame {f}"
