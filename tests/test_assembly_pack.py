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
