"""Packing DLC frame dicts: however the costs dict is keyed or ordered, same assemblies."""
import numpy as np

from mapose.assembly.assembler import Assembler
from mapose.assembly.synthetic import make_full_data


def _arrays(data):
    a = Assembler(data, max_n_individuals=3, n_multibodyparts=6, n_threads=1)
    a.assemble()
    return {k: np.stack([x.data for x in v]) for k, v in a.assemblies.items()}


def test_costs_keys_numpy_ints_and_order():
    data = make_full_data(12, 3, 6, p_detect=0.9, n_false_positives=0.5, seed=3)
    ref = _arrays(data)
    assert ref  # something was assembled
    rng = np.random.default_rng(0)
    variants = []
    for as_numpy in (False, True):
        other = {"metadata": data["metadata"]}
        for name, frame in data.items():
            if name == "metadata":
                continue
            keys = list(frame["costs"])
            rng.shuffle(keys)  # dict order must not matter
            costs = {(np.int64(k) if as_numpy else k): frame["costs"][k] for k in keys}
            other[name] = {**frame, "costs": costs}
        variants.append(other)
    for other in variants:
        out = _arrays(other)
        assert out.keys() == ref.keys()
        for k in ref:
            np.testing.assert_array_equal(out[k], ref[k])


class _Entry(dict):
    """A dict subclass: not an exact dict, so the frame takes the general packing path."""


def _general_path_copy(data, wrap_every=1):
    """Same data, but every ``wrap_every``-th frame's entries are dict subclasses (and
    one cost array per such frame is a nested list): those frames skip the C fast path."""
    other = {"metadata": data["metadata"]}
    for i, (name, frame) in enumerate((k, v) for k, v in data.items() if k != "metadata"):
        if i % wrap_every:
            other[name] = frame
            continue
        costs = {k: _Entry(v) for k, v in frame["costs"].items()}
        first = next(iter(costs), None)
        if first is not None:
            costs[first] = {"m1": costs[first]["m1"].tolist(), "distance": costs[first]["distance"]}
        other[name] = {**frame, "costs": costs}
    return other


def test_fast_and_general_packing_agree():
    for dtype in (np.float16, np.float32, np.float64):
        data = make_full_data(10, 3, 6, p_detect=0.9, n_false_positives=1.0, seed=5, dtype=dtype)
        ref = _arrays(data)
        assert ref
        for wrap_every in (1, 2, 3):
            out = _arrays(_general_path_copy(data, wrap_every))
            assert out.keys() == ref.keys()
            for k in ref:
                np.testing.assert_array_equal(out[k], ref[k])


def test_packing_errors_name_the_frame_and_edge():
    import pytest

    data = make_full_data(4, 3, 6, p_detect=1.0, seed=1)
    name = "frame2" if "frame2" in data else sorted(k for k in data if k != "metadata")[2]
    bad = {k: (dict(v) if k != "metadata" else v) for k, v in data.items()}
    bad[name] = {**data[name], "costs": {k: dict(v) for k, v in data[name]["costs"].items()}}
    del bad[name]["costs"][0]["distance"]
    with pytest.raises(ValueError, match=rf"frame '{name}', edge 0: the costs have no 'distance'"):
        Assembler(bad, max_n_individuals=3, n_multibodyparts=6, n_threads=1).assemble()
    bad[name]["costs"][0] = {"m1": np.zeros((1, 1), np.float32), "distance": data[name]["costs"][0]["distance"]}
    with pytest.raises(ValueError, match=r"has shape \(1, 1\) but the edge's bodyparts have 3 and 3"):
        Assembler(bad, max_n_individuals=3, n_multibodyparts=6, n_threads=1).assemble()
    bad[name]["costs"][0] = {"distance": data[name]["costs"][0]["distance"]}
    with pytest.raises(ValueError, match=r"no 'm1' entry"):
        Assembler(bad, max_n_individuals=3, n_multibodyparts=6, n_threads=1).assemble()
