"""Calibrated assembly (``Assembler.calibrate``) in the compiled kernel: against the Python
reference (DLC's algorithm statement by statement) on DLC's trimouse data and on random
calibrated configurations; link probabilities bit for bit against DLC's formula."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _assembly_helpers import frames_of, load, same_outputs
from mapose.assembly.assembler import Assembler
from mapose.assembly.model import Assembly, Joint, Link
from mapose.assembly.synthetic import make_full_data
from mapose.kernels import assembly as K
from mapose.kernels import assembly_ref as R


@pytest.fixture(scope="module")
def trimouse(unittest_data):
    data = load(unittest_data, "trimouse_full.pickle")
    ass = Assembler(data, max_n_individuals=3, n_multibodyparts=12)
    ass.calibrate(str(unittest_data / "trimouse_calib.h5"))
    return data, ass._kde


def _kde_for(n_bodyparts, seed, n_poses=200, jitter=3.0):
    """A calibration matching make_full_data(seed=seed)'s animal template."""
    from scipy.spatial.distance import pdist
    from scipy.stats import gaussian_kde

    template = np.random.default_rng(seed).normal(0, 25, size=(n_bodyparts, 2))
    rng = np.random.default_rng(seed + 1)
    poses = template[None] + rng.normal(0, jitter, size=(n_poses, n_bodyparts, 2))
    dists = np.vstack([pdist(p, "sqeuclidean") for p in poses])
    kde = gaussian_kde(dists.T)
    kde.mean = dists.mean(axis=0)
    return kde


def _params(data, n_multi, **kw):
    md = data["metadata"]
    base = dict(max_n_individuals=3, n_multibodyparts=n_multi, n_keypoints=len(md["all_joints_names"]),
                graph=md["PAFgraph"], paf_inds=md["PAFinds"])
    base.update(kw)
    return K.AssemblyParams(**base)


# ------------------------------------------------------------------ DLC's trimouse --
@pytest.mark.parametrize("kw", [
    {}, {"greedy": True}, {"add_discarded": True}, {"max_n_individuals": 2}, {"nan_policy": "all"},
    {"window_size": 2}, {"max_overlap": 0.5, "min_affinity": 0.2}, {"add_discarded": True, "pcutoff": 0.5},
    {"max_overlap": 1.0, "min_n_links": 1},
])
def test_trimouse_calibrated_equals_reference(trimouse, kw):
    data, kde = trimouse
    _, frames = frames_of(data)
    p = _params(data, 12, **kw)
    same_outputs(K.assemble_frames(frames, p, kde=kde), R.assemble_frames(frames, p, kde=kde))


def test_trimouse_assembler_calibrated(trimouse, unittest_data):
    data, _ = trimouse
    ass = Assembler(data, max_n_individuals=3, n_multibodyparts=12, add_discarded=True)
    ass.calibrate(str(unittest_data / "trimouse_calib.h5"))
    ass.assemble()
    ref = R.assemble_frames([data[k] for k in ass.metadata["imnames"]], ass._params(), kde=ass._kde)
    assert sorted(ass.assemblies) == [f for f, (a, _) in enumerate(ref) if a]
    for f, (assemblies, _) in enumerate(ref):
        for x, y in zip(ass.assemblies.get(f, []), assemblies or []):
            np.testing.assert_array_equal(x.data, y.data)
    assert sum(len(v) for v in ass.assemblies.values()) == 150
    # threads change nothing; nor do per-frame calls (DLC's PAF predictor path)
    threaded = Assembler(data, max_n_individuals=3, n_multibodyparts=12, add_discarded=True, n_threads=2)
    threaded.calibrate(str(unittest_data / "trimouse_calib.h5"))
    poses = threaded.assemble_poses([data[k] for k in threaded.metadata["imnames"]], n_threads=2)
    for f in ass.assemblies:
        for q, a in enumerate(ass.assemblies[f]):
            np.testing.assert_array_equal(poses[f, q, :, :4], a.data)
    one, _ = threaded._assemble(data[ass.metadata["imnames"][7]], 7)
    for x, y in zip(one, ass.assemblies[7]):
        np.testing.assert_array_equal(x.data, y.data)


def test_dlc_checklist_figures_through_the_kernel(trimouse, unittest_data):
    """DLC's calibration checks (mahal 19.541, link probability 0.993) from the kernel's
    own functions, against the Python methods."""
    data, kde = trimouse
    ref = load(unittest_data, "trimouse_assemblies.pickle")
    mean, var, inv_cov = K.calibration_arrays(kde, 12)
    a = Assembly.from_array(np.asarray(ref[0][0], dtype=float).copy())
    d = K._asm._calib_mahalanobis(np.ascontiguousarray(a.data), mean, var, inv_cov)
    assert d == pytest.approx(19.541, abs=1e-3)
    ass = Assembler(data, max_n_individuals=3, n_multibodyparts=12)
    ass._kde = kde
    assert d == pytest.approx(ass.calc_assembly_mahalanobis_dist(a), rel=1e-13)
    p = K._asm._calib_link_probability(np.r_[a.xy[0], a.xy[1]], 0, 1, 12, 0, mean, var, inv_cov)
    link = Link(Joint(tuple(a.xy[0]), label=0), Joint(tuple(a.xy[1]), label=1))
    assert p == ass.calc_link_probability(link) and p == pytest.approx(0.993, abs=1e-3)
    empty = np.full((12, 4), np.nan)
    assert K._asm._calib_mahalanobis(empty, mean, var, inv_cov) == np.inf


# ------------------------------------------------------------- numerics, bit for bit --
@pytest.mark.smoke
@pytest.mark.parametrize("dtype, code", [(np.float64, 0), (np.float32, 1), (np.float16, 2)])
def test_link_probability_bit_identical(dtype, code):
    """The kernel repeats DLC's scalar operations: Link.length on NumPy scalars of the
    coordinates' dtype, ``length**2``, math.erf."""
    kde = _kde_for(6, seed=4)
    mean, var, inv_cov = K.calibration_arrays(kde, 6)
    ass = Assembler.empty(3, 6, 0, [[i, j] for i in range(6) for j in range(i + 1, 6)], list(range(15)))
    ass._kde = kde
    rng = np.random.default_rng(0)
    n_diff = 0
    for _ in range(3000):
        xy = (rng.uniform(0, 600, 4) + rng.normal(0, 1e-3, 4)).astype(dtype)
        l1, l2 = rng.choice(6, size=2, replace=False).tolist()
        link = Link(Joint((xy[0], xy[1]), label=l1), Joint((xy[2], xy[3]), label=l2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow, as in DLC
            want = ass.calc_link_probability(link)
        got = K._asm._calib_link_probability(xy.astype(np.float64), l1, l2, 6, code, mean, var, inv_cov)
        n_diff += not (got == want or (math.isnan(got) and math.isnan(want)))
    assert n_diff == 0


def test_mahalanobis_close_to_numpy():
    """v.inv_cov.v: NumPy's BLAS product may round differently in the last bits only."""
    kde = _kde_for(8, seed=2)
    mean, var, inv_cov = K.calibration_arrays(kde, 8)
    ass = Assembler.empty(3, 8, 0, [[0, 1]], [0])
    ass._kde = kde
    rng = np.random.default_rng(1)
    template = np.random.default_rng(2).normal(0, 25, size=(8, 2))
    worst = 0.0
    for k in range(500):
        data = np.full((8, 4), np.nan)
        data[:, :2] = template + rng.normal(0, 5 if k % 2 else 40, size=(8, 2))
        data[rng.random(8) < 0.3, :2] = np.nan
        a = Assembly(8)
        a.data[:] = data
        a._visible.update(np.flatnonzero(~np.isnan(data[:, 0])).tolist())
        for little in (True, False):
            want = ass.calc_assembly_mahalanobis_dist(a, nan_policy="little" if little else "all")
            got = K._asm._calib_mahalanobis(data, mean, var, inv_cov, little)
            if np.isinf(want):
                assert got == want
            else:
                worst = max(worst, abs(got - want) / want)
    assert worst < 1e-12


def test_pairwise_sum_matches_numpy():
    # np.sum's pairwise order decides the last bits of the distance: checked through a
    # diagonal inverse covariance, where v.M is exact and only the sum rounds
    rng = np.random.default_rng(3)
    for n in (2, 4, 5, 9, 12, 17, 25):
        d = n * (n - 1) // 2
        mean = rng.normal(0, 100, d)
        inv_cov = np.diag(rng.uniform(0.1, 10, d))
        data = np.zeros((n, 4))
        data[:, :2] = rng.normal(0, 30, (n, 2))
        from scipy.spatial.distance import pdist

        v = pdist(data[:, :2], "sqeuclidean") - mean
        want = np.sqrt(np.sum((v @ inv_cov) * v))
        assert K._asm._calib_mahalanobis(data, mean, np.ones(d), inv_cov) == want


# ---------------------------------------------------------------- random configs --
@st.composite
def _calibrated_case(draw):
    n_bp = draw(st.integers(2, 8))
    n_an = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**16))
    data = make_full_data(
        n_frames=draw(st.integers(1, 3)), n_animals=n_an, n_bodyparts=n_bp, n_unique=draw(st.sampled_from([0, 1])),
        p_detect=draw(st.floats(0.5, 1.0)), n_false_positives=draw(st.sampled_from([0.0, 0.5, 2.0])),
        dtype=draw(st.sampled_from([np.float16, np.float32, np.float64])), seed=seed,
        empty_frames=0.2, nan_confidence=draw(st.sampled_from([0.0, 0.1])),
    )
    md = data["metadata"]
    params = K.AssemblyParams(
        max_n_individuals=draw(st.integers(1, n_an + 2)), n_multibodyparts=n_bp,
        n_keypoints=len(md["all_joints_names"]), graph=md["PAFgraph"], paf_inds=md["PAFinds"],
        greedy=draw(st.booleans()), pcutoff=draw(st.sampled_from([0.0, 0.1, 0.4])),
        min_affinity=draw(st.sampled_from([0.01, 0.05, 0.3])), min_n_links=draw(st.integers(0, 3)),
        max_overlap=draw(st.sampled_from([0.8, 0.3, 1.0])), nan_policy=draw(st.sampled_from(["little", "all"])),
        force_fusion=draw(st.booleans()), add_discarded=draw(st.booleans()),
        window_size=draw(st.sampled_from([0, 0, 2])),
    )
    kde = _kde_for(n_bp, seed, jitter=draw(st.sampled_from([2.0, 8.0])))
    return data, params, kde


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_calibrated_case())
def test_calibrated_kernel_equals_reference(case):
    data, params, kde = case
    _, frames = frames_of(data)
    same_outputs(K.assemble_frames(frames, params, kde=kde), R.assemble_frames(frames, params, kde=kde))


def test_calibrated_merging_and_threads():
    """More animals than max_n_individuals: superfluous assemblies are merged by the
    Mahalanobis criterion; a threaded batch equals the reference too."""
    seed = 21
    data = make_full_data(12, 6, 7, p_detect=0.8, n_false_positives=1.0, seed=seed)
    _, frames = frames_of(data)
    kde = _kde_for(7, seed)
    for max_n in (2, 4, 6):
        p = _params(data, 7, max_n_individuals=max_n)
        same_outputs(K.assemble_frames(frames, p, kde=kde, n_threads=2), R.assemble_frames(frames, p, kde=kde))


# ------------------------------------------------------------------ bad input --
def test_calibration_must_fit_the_bodyparts():
    data = make_full_data(2, 2, 4)
    _, frames = frames_of(data)
    p = _params(data, 4)
    with pytest.raises(ValueError, match="n_multibodyparts=4 needs 6"):
        K.assemble_frames(frames, p, kde=_kde_for(5, 0))
    with pytest.raises(TypeError, match="gaussian_kde"):
        K.assemble_frames(frames, p, kde=object())


def test_calibrated_edge_cases():
    """Empty frames, one animal, no links: defined results, as uncalibrated."""
    data = make_full_data(4, 1, 5, seed=3, empty_frames=0.5)
    _, frames = frames_of(data)
    kde = _kde_for(5, 3)
    empty = {"coordinates": ([np.zeros((0, 2))] * 5,), "confidence": [np.zeros((0, 1))] * 5, "costs": {}}
    for kw in ({}, {"max_n_individuals": 1}, {"min_affinity": 2.0}):
        p = _params(data, 5, **kw)
        out = K.assemble_frames(frames + [empty], p, kde=kde)
        same_outputs(out, R.assemble_frames(frames + [empty], p, kde=kde))
        assert out[-1] == (None, None)
