"""Packing DLC frame dicts: however the costs dict is keyed or ordered, same assemblies."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapose.assembly.assembler import Assembler
from mapose.assembly.synthetic import make_full_data
from _assembly_helpers import same_outputs
from mapose.kernels import assembly as K
from mapose.kernels import assembly_ref as R


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


# ------------------------------------------------------- packed and assembled in one pass --
def _raw_outputs(packed, result):
    """Everything the kernel produced, per frame (arrays and lists, exact)."""
    return [(result.frame(f), result.unique(f), result.status_of(f), packed.joints(f)) for f in range(packed.n_frames)]


def _assert_same_raw(a, b):
    assert len(a) == len(b)
    for f, (x, y) in enumerate(zip(a, b)):
        (d1, af1, l1, j1), u1, s1, p1 = x
        (d2, af2, l2, j2), u2, s2, p2 = y
        np.testing.assert_array_equal(d1, d2, err_msg=f"frame {f}")
        assert af1 == af2 and l1 == l2 and j1 == j2 and s1 == s2, f"frame {f}"
        assert (u1 is None) == (u2 is None), f"frame {f}"
        if u1 is not None:
            np.testing.assert_array_equal(u1, u2, err_msg=f"frame {f}")
        for q1, q2 in zip(p1, p2):
            np.testing.assert_array_equal(q1, q2, err_msg=f"frame {f}")


def _mixed_layouts(data, rng):
    """Some frames in layouts the C fast path hands to the general one (entries that are
    dict subclasses, list costs, list coordinates, (n,) confidences, no costs at all)."""
    out = {"metadata": data["metadata"]}
    for name, frame in data.items():
        if name == "metadata":
            continue
        kind = int(rng.integers(0, 6))
        frame = dict(frame)
        if kind == 1:
            frame["costs"] = {k: _Entry(v) for k, v in frame["costs"].items()}
        elif kind == 2 and frame["costs"]:
            k0 = next(iter(frame["costs"]))
            frame["costs"] = dict(frame["costs"])
            frame["costs"][k0] = {"m1": frame["costs"][k0]["m1"].tolist(), "distance": frame["costs"][k0]["distance"]}
        elif kind == 3:
            frame["coordinates"] = ([c.tolist() for c in frame["coordinates"][0]],)
        elif kind == 4:
            frame["confidence"] = [c.ravel() for c in frame["confidence"]]
        elif kind == 5:
            del frame["costs"]
        out[name] = frame
    return out


@pytest.mark.smoke
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_bp=st.integers(1, 12),
    n_an=st.integers(1, 12),
    fp=st.sampled_from([0.0, 1.0, 3.0]),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    ident=st.booleans(),
    mixed=st.booleans(),
    chunk=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_pack_and_run_equals_pack_then_run(n_bp, n_an, fp, dtype, ident, mixed, chunk, seed):
    data = make_full_data(9, n_an, n_bp, p_detect=0.85, n_false_positives=fp, dtype=dtype, seed=seed,
                          empty_frames=0.15, nan_confidence=0.05, n_identities=n_an if ident else 0)
    if mixed:
        data = _mixed_layouts(data, np.random.default_rng(seed))
    md = data["metadata"]
    names = [k for k in data if k != "metadata"]
    frames = [data[k] for k in names]
    params = K.AssemblyParams(max_n_individuals=n_an, n_multibodyparts=n_bp, n_keypoints=n_bp,
                              graph=md["PAFgraph"], paf_inds=md["PAFinds"], identity_only=ident and seed % 2 == 0)
    packed = K.pack_frames(frames, params, keys=names)
    ref = _raw_outputs(packed, K.run_packed(packed, params, None, 1, {}))
    fused, result = K.pack_and_run(frames, params, keys=names, chunk=chunk)
    _assert_same_raw(_raw_outputs(fused, result), ref)


def test_pack_and_run_errors_and_empty():
    data = make_full_data(4, 3, 6, p_detect=1.0, seed=1)
    md = data["metadata"]
    names = [k for k in data if k != "metadata"]
    params = K.AssemblyParams(max_n_individuals=3, n_multibodyparts=6, n_keypoints=6, graph=md["PAFgraph"],
                              paf_inds=md["PAFinds"], window_size=1)
    with pytest.raises(ValueError, match="window_size=1 needs run_packed"):
        K.pack_and_run([data[k] for k in names], params)
    params = K.AssemblyParams(max_n_individuals=3, n_multibodyparts=6, n_keypoints=6, graph=md["PAFgraph"],
                              paf_inds=md["PAFinds"])
    packed, result = K.pack_and_run([], params)
    assert packed.n_frames == 0 and len(result) == 0
    # a bad frame in a later chunk: the error names it, as pack_frames does
    bad = [data[k] for k in names]
    bad[3] = {**bad[3], "costs": {k: dict(v) for k, v in bad[3]["costs"].items()}}
    del bad[3]["costs"][0]["distance"]
    with pytest.raises(ValueError, match=rf"frame '{names[3]}', edge 0: the costs have no 'distance'"):
        K.pack_and_run(bad, params, keys=names, chunk=2)


def test_assembler_one_thread_equals_threads():
    data = make_full_data(30, 4, 7, p_detect=0.9, n_false_positives=1.0, seed=11, n_unique=1)
    one = Assembler(data, max_n_individuals=4, n_multibodyparts=7)
    one.assemble(chunk_size=0)  # DLC's serial mode: one thread, packed and assembled in one pass
    many = Assembler(data, max_n_individuals=4, n_multibodyparts=7)
    many.assemble(n_threads=2)
    assert one.assemblies.keys() == many.assemblies.keys()
    for k in one.assemblies:
        np.testing.assert_array_equal(np.stack([a.data for a in one.assemblies[k]]),
                                      np.stack([a.data for a in many.assemblies[k]]))
    assert one.unique.keys() == many.unique.keys()
    for k in one.unique:
        np.testing.assert_array_equal(one.unique[k], many.unique[k])
    poses1 = one.assemble_poses([data[k] for k in one.metadata["imnames"]], n_threads=1)
    poses2 = one.assemble_poses([data[k] for k in one.metadata["imnames"]], n_threads=2)
    np.testing.assert_array_equal(poses1, poses2)


def _kde_for(n_bodyparts, seed, n_poses=120):
    """A calibration (Assembler.calibrate's gaussian_kde) near make_full_data(seed=seed)'s template."""
    from scipy.spatial.distance import pdist
    from scipy.stats import gaussian_kde

    template = np.random.default_rng(seed).normal(0, 25, size=(n_bodyparts, 2))
    poses = template[None] + np.random.default_rng(seed + 1).normal(0, 3.0, size=(n_poses, n_bodyparts, 2))
    dists = np.vstack([pdist(p, "sqeuclidean") for p in poses])
    kde = gaussian_kde(dists.T)
    kde.mean = dists.mean(axis=0)
    return kde


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_bp=st.integers(2, 6),
    n_an=st.integers(1, 8),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    mixed=st.booleans(),
    chunk=st.integers(1, 6),
    add_discarded=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pack_and_run_calibrated_equals_pack_then_run(n_bp, n_an, dtype, mixed, chunk, add_discarded, seed):
    """Calibrated frames through the fused one-thread path: the coordinates' dtypes (link
    lengths) are packed by the C joint path and the general path alike."""
    data = make_full_data(8, n_an, n_bp, p_detect=0.85, n_false_positives=1.0, dtype=dtype, seed=seed,
                          empty_frames=0.15, nan_confidence=0.05)
    if mixed:
        data = _mixed_layouts(data, np.random.default_rng(seed))
    md = data["metadata"]
    names = [k for k in data if k != "metadata"]
    frames = [data[k] for k in names]
    params = K.AssemblyParams(max_n_individuals=max(1, n_an - 1), n_multibodyparts=n_bp, n_keypoints=n_bp,
                              graph=md["PAFgraph"], paf_inds=md["PAFinds"], add_discarded=add_discarded)
    kde = _kde_for(n_bp, seed)
    packed = K.pack_frames(frames, params, keys=names)
    ref = _raw_outputs(packed, K.run_packed(packed, params, None, 1, {}, kde=kde))
    fused, result = K.pack_and_run(frames, params, keys=names, chunk=chunk, kde=kde)
    _assert_same_raw(_raw_outputs(fused, result), ref)
    # the Python reference (DLC's calibrated algorithm) reads each coordinate's own dtype
    expected = R.assemble_frames(frames, params, kde=kde)
    same_outputs([K.materialize(result, fused, f) for f in range(len(frames))], expected)
