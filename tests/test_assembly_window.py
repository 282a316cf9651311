"""Temporal coherence (``window_size >= 1``): the link trees' exact nearest-neighbour
search against brute force, SciPy's cKDTree and the Python reference; bounded ``_trees``."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _assembly_helpers import frames_of, load, same_outputs
from mapose.assembly.assembler import Assembler
from mapose.assembly.synthetic import make_full_data
from mapose.kernels import assembly as K
from mapose.kernels import assembly_ref as R


def _params(data, **kw):
    md = data["metadata"]
    n = len(md["all_joints_names"])
    base = dict(max_n_individuals=3, n_multibodyparts=n, n_keypoints=n, graph=md["PAFgraph"], paf_inds=md["PAFinds"])
    base.update(kw)
    return K.AssemblyParams(**base)


def _run(frames, params, brute, trees=None, first_index=0):
    packed = K.pack_frames(frames, params)
    fi = np.arange(first_index, first_index + len(frames), dtype=np.int64)
    result = K.run_packed(packed, params, fi, 1, trees, _window_brute=brute)
    return [K.materialize(result, packed, f) for f in range(len(frames))]


@st.composite
def _window_case(draw):
    n_bp = draw(st.integers(2, 8))
    n_an = draw(st.integers(1, 10))
    n_unique = draw(st.sampled_from([0, 0, 1]))
    data = make_full_data(
        n_frames=draw(st.integers(2, 7)), n_animals=n_an, n_bodyparts=n_bp, n_unique=n_unique,
        p_detect=draw(st.floats(0.4, 1.0)), n_false_positives=draw(st.sampled_from([0.0, 0.5, 2.0])),
        dtype=draw(st.sampled_from([np.float16, np.float32, np.float64])), seed=draw(st.integers(0, 2**16)),
        empty_frames=draw(st.sampled_from([0.0, 0.3])), nan_confidence=draw(st.sampled_from([0.0, 0.1])),
    )
    if draw(st.booleans()):
        # integer coordinates on a coarse grid: many equidistant neighbours (ties)
        for name, frame in data.items():
            if name != "metadata":
                frame["coordinates"] = ([np.round(c / 20) * 20 for c in frame["coordinates"][0]],)
    md = data["metadata"]
    params = K.AssemblyParams(
        max_n_individuals=draw(st.integers(1, n_an + 2)), n_multibodyparts=n_bp, n_keypoints=n_bp + n_unique,
        graph=md["PAFgraph"], paf_inds=md["PAFinds"], greedy=draw(st.booleans()),
        pcutoff=draw(st.sampled_from([0.0, 0.1, 0.4])), min_affinity=draw(st.sampled_from([0.05, 0.3])),
        add_discarded=draw(st.booleans()), force_fusion=draw(st.booleans()),
        window_size=draw(st.integers(1, 5)),
    )
    return data, params


@pytest.mark.smoke
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_window_case())
def test_trees_equal_brute_force(case):
    """The k-d trees give the brute force's nearest distances to the last bit: the same
    weights, links, affinities and assemblies."""
    data, params = case
    _, frames = frames_of(data)
    same_outputs(_run(frames, params, brute=False), _run(frames, params, brute=True))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_window_case())
def test_trees_equal_reference(case):
    data, params = case
    _, frames = frames_of(data)
    same_outputs(K.assemble_frames(frames, params), R.assemble_frames(frames, params))


def test_large_config_equals_brute_force():
    # many links per tree (deep trees, far queries for the mismatched pairs)
    data = make_full_data(4, 12, 14, p_detect=0.9, n_false_positives=1.0, seed=3)
    _, frames = frames_of(data)
    for w in (1, 3):
        p = _params(data, max_n_individuals=12, window_size=w)
        same_outputs(_run(frames, p, brute=False), _run(frames, p, brute=True))


@pytest.mark.smoke
def test_link_tree_query_matches_ckdtree():
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    pts = np.round(rng.uniform(0, 200, size=(700, 4)), 1)
    pts[50:60] = pts[40:50]  # duplicates: equidistant neighbours
    q = np.vstack([np.round(rng.uniform(-50, 250, size=(2000, 4)), 1), pts[:100]])
    tree = K.LinkTree.from_vectors(pts)
    d, i = tree.query(q)
    d_ref, i_ref = cKDTree(pts).query(q)
    np.testing.assert_array_equal(d, d_ref)  # what DLC reads: bit-identical
    # indices: the first of the equidistant vectors (cKDTree's pick depends on its tree)
    brute = np.sqrt(((q[:, None, :] - pts[None]) ** 2).sum(axis=2))
    np.testing.assert_array_equal(i, brute.argmin(axis=1))
    tied = (brute == brute.min(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.any()
    np.testing.assert_array_equal(i[~tied], i_ref[~tied])
    assert len(tree) == tree.n == 700 and tree.m == 4
    np.testing.assert_array_equal(tree.data, pts)
    np.testing.assert_array_equal(np.asarray(tree), pts)
    assert tree.query(q[0]) == (float(d_ref[0]), int(i_ref[0]))


def test_link_tree_non_finite_and_empty():
    pts = np.array([[0, 0, 1, 1], [np.nan, 0, 0, 0], [np.inf, 0, 0, 0], [3, 3, 3, 3.0]])
    tree = K.LinkTree.from_vectors(pts)
    d, i = tree.query(np.array([[0, 0, 0, 0], [np.nan, 0, 0, 0]]))
    # non-finite vectors are never nearest (brute force: inf/NaN never beat inf)
    assert d[0] == np.sqrt(2) and i[0] == 0
    assert d[1] == np.inf and i[1] == 4
    empty = K.LinkTree.from_vectors(np.zeros((0, 4)))
    assert len(empty) == 0 and empty.query([1, 2, 3, 4]) == (np.inf, 0)
    with pytest.raises(ValueError, match=r"\(n_links, 4\)"):
        K.LinkTree.from_vectors(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        tree.query(np.zeros((2, 5)))


def test_frames_without_links_shift_tree_numbers():
    """A past frame without links has no tree: the weight's n is the position among
    the frames that have one (DLC: ``enumerate(trees, start=1)``)."""
    data = make_full_data(7, 3, 5, p_detect=1.0, seed=11)
    keys, frames = frames_of(data)
    empty = {"coordinates": ([np.zeros((0, 2))] * 5,), "confidence": [np.zeros((0, 1), np.float32)] * 5, "costs": {}}
    frames[2] = frames[4] = empty
    for w in (1, 2, 3, 5):
        p = _params(data, window_size=w)
        out = K.assemble_frames(frames, p)
        same_outputs(out, R.assemble_frames(frames, p))
        same_outputs(out, _run(frames, p, brute=True))
        assert out[2] == (None, None) and out[4] == (None, None)
    # frame 5, window 2: frames 4 (no links) and 3 -> only frame 3's tree, as n = 1
    p = _params(data, window_size=2)
    trees = {}
    _run(frames[:4], p, brute=False, trees=trees)
    assert sorted(trees) == [3]
    pos = np.array([[*frames[5]["coordinates"][0][0][0], *frames[5]["coordinates"][0][1][0]]])
    d = trees[3].query(pos)[0][0]
    direct = _run([frames[5]], _params(data, window_size=2), brute=False, trees={4 - 1: trees[3]}, first_index=5)
    shifted = _run([frames[5]], _params(data, window_size=2), brute=False, trees={5 - 1: trees[3]}, first_index=5)
    same_outputs(direct, shifted)  # tree at offset 2 counts as tree 1 when offset 1 has none
    w = np.exp(-0.01 * 1 * d)
    aff = frames[5]["costs"][0]["m1"][0, 0]
    link = next(lk for a in direct[0][0] for lk in a._links if lk.idx == (0, 3))
    assert link.affinity == np.float32(aff * w)


def test_assembler_trees_are_bounded(unittest_data):
    data = load(unittest_data, "montblanc_full.pickle")
    ass = Assembler(data, max_n_individuals=3, n_multibodyparts=4, min_affinity=0.1, window_size=3)
    ass.assemble()
    assert 0 < len(ass._trees) <= 3
    assert max(ass._trees) == 179 and min(ass._trees) >= 177
    tree = ass._trees[179]
    assert isinstance(tree, K.LinkTree)
    links = [lk for a in ass.assemblies[179] for lk in a._links]
    assert len(tree) >= len(links)
    for lk in links:
        assert tree.query(lk.to_vector())[0] == 0.0
    # per-frame calls keep it bounded too, and equal the batched run
    single = Assembler(data, max_n_individuals=3, n_multibodyparts=4, min_affinity=0.1, window_size=3)
    for i in range(40):
        single._assemble(single[i], i)
        assert len(single._trees) <= 3 and all(k > i - 3 for k in single._trees)
    # a second assemble() gives the same result (DLC keeps _trees across calls too)
    first = {f: [a.data.copy() for a in v] for f, v in ass.assemblies.items()}
    ass.assemble()
    for f, v in ass.assemblies.items():
        for x, y in zip(v, first[f]):
            np.testing.assert_array_equal(x.data, y)


def test_array_trees_are_accepted():
    """``_trees`` values may be plain (n_links, 4) arrays (a dict filled by hand)."""
    data = make_full_data(5, 4, 6, seed=5, n_false_positives=1.0)
    _, frames = frames_of(data)
    p = _params(data, max_n_individuals=4, window_size=2)
    trees = {}
    a = _run(frames, p, brute=False, trees=trees)
    arrays = {k: v.data for k, v in trees.items()}
    nxt = make_full_data(2, 4, 6, seed=6, n_false_positives=1.0)
    _, more = frames_of(nxt)
    same_outputs(_run(more, p, brute=False, trees=dict(trees), first_index=5),
                 _run(more, p, brute=False, trees=arrays, first_index=5))
    assert a  # the first run assembled
