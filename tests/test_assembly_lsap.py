"""The assembler's maximising assignment (``LsapWorkspace::solve_max_unique_first``,
and ``solve_max_view`` on the view ``read_view`` builds, which is what the assembler
runs per edge): its exact shortcuts (dominant rows, exhaustive search, forced pairs)
must return SciPy's ``linear_sum_assignment(cost, maximize=True)`` pair for pair, ties
included."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from mapose._cy.assembly import _lsap_max_unique_first, _lsap_max_view

FULL, DOMINANT, EXHAUSTIVE, FORCED = 0, 1, 2, 3


def _check(cost, try_dominant=True):
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    rows, cols, path = _lsap_max_unique_first(cost, try_dominant)
    ref_rows, ref_cols = linear_sum_assignment(cost, maximize=True)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)
    if np.isfinite(cost).all():
        # the assembler's own path: the view with its row statistics, same answer
        view_rows, view_cols, view_path = _lsap_max_view(cost)
        np.testing.assert_array_equal(view_rows, ref_rows)
        np.testing.assert_array_equal(view_cols, ref_cols)
        if try_dominant:  # same shortcuts in the same order
            assert view_path == path
    return path


def _assembler_like(rng, nr, nc, n_true, weak=False):
    """Low affinities everywhere, high ones on a partial matching (true pairs), in
    float32 with three decimals like DLC's PAF costs."""
    a = rng.uniform(0, 0.3, (nr, nc))
    k = min(n_true, nr, nc)
    a[rng.permutation(nr)[:k], rng.permutation(nc)[:k]] = rng.uniform(0.2 if weak else 0.5, 1.0, k)
    return np.round(a, 3).astype(np.float32).astype(np.float64)


@st.composite
def _tied_costs(draw):
    nr = draw(st.integers(1, 12))
    nc = draw(st.integers(1, 12))
    levels = draw(st.sampled_from([[0.0, 1.0], [0.0, 0.25, 0.5, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]]))
    values = draw(st.lists(st.sampled_from(levels), min_size=nr * nc, max_size=nr * nc))
    return np.asarray(values, dtype=np.float64).reshape(nr, nc)


@st.composite
def _planted_costs(draw):
    """A planted matching plus rows/columns without partners, with optional ties
    copied into the low part: the forced-pair shortcut's home ground."""
    nr = draw(st.integers(2, 12))
    nc = draw(st.integers(2, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = _assembler_like(rng, nr, nc, draw(st.integers(0, min(nr, nc))), weak=draw(st.booleans()))
    n_ties = draw(st.integers(0, 4))
    for _ in range(n_ties):
        i, j, k, l = rng.integers(0, nr), rng.integers(0, nc), rng.integers(0, nr), rng.integers(0, nc)
        a[i, j] = a[k, l]
    return a


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=_tied_costs(), try_dominant=st.booleans())
def test_matches_scipy_on_tie_heavy_costs(cost, try_dominant):
    _check(cost, try_dominant)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=_planted_costs(), try_dominant=st.booleans())
def test_matches_scipy_on_planted_matchings(cost, try_dominant):
    _check(cost, try_dominant)


@pytest.mark.smoke
def test_forced_pairs_shortcut_is_taken_and_exact():
    # the false-positive case: true pairs plus rows/columns whose best entries
    # collide, so the dominant-row shortcut fails and forced pairs decide
    rng = np.random.default_rng(7)
    paths = []
    for n in range(400):
        nr, nc = rng.integers(5, 12, 2)
        paths.append(_check(_assembler_like(rng, nr, nc, min(nr, nc) - 1), try_dominant=bool(n % 2)))
    paths = np.asarray(paths)
    assert (paths == FORCED).sum() > 100
    assert (paths == FULL).sum() > 0  # ties and weak pairs still reach the full solver


def test_forced_pairs_with_a_tied_remainder_falls_back():
    # rows 0-2 are forced; rows 3 and 4 tie on columns 3 and 4, so the remainder has
    # two optima: only SciPy's full solver knows which one it returns
    a = np.full((5, 6), 0.1)
    a[0, 0] = a[1, 1] = a[2, 2] = 0.9
    a[3, 3] = a[4, 4] = 0.2
    a[3, 4] = a[4, 3] = 0.2
    a[3, 0] = 0.25  # row 3's best collides with row 0's: not dominant
    assert _check(a, try_dominant=True) == FULL
    # a unique remainder (row 3 then row 4 forced on the rest)
    a[3, 4] = 0.15
    assert _check(a[:, :5], try_dominant=True) == FORCED


@st.composite
def _few_unmatched_rows(draw):
    """Planted pairs plus two or three rows without a partner, whose low entries
    (copied from each other to force ties and degenerate duals) form the remainder
    that forced pairs leave for enumeration."""
    nr = draw(st.integers(3, 12))
    nc = draw(st.integers(nr, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = _assembler_like(rng, nr, nc, nr - draw(st.integers(2, 3)))
    for _ in range(draw(st.integers(0, 6))):
        i, k = rng.integers(0, nr, 2)
        j, l = rng.integers(0, nc, 2)
        a[i, j] = a[k, l]
    return a if draw(st.booleans()) else np.ascontiguousarray(a.T)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=_few_unmatched_rows())
def test_forced_pairs_with_an_enumerated_remainder_match_scipy(cost):
    _check(cost, try_dominant=True)


def test_enumerated_remainder_spares_the_full_solver():
    # two or three rows without a partner: their remainder is settled by enumeration
    # (unique optimum) or, when tied, by the full solver; both agree with SciPy
    rng = np.random.default_rng(23)
    paths = np.asarray([_check(_assembler_like(rng, 10, 10, 10 - int(rng.integers(2, 4)))) for _ in range(300)])
    assert (paths == FORCED).mean() > 0.9
    # the remainder of rows 3 and 4 ties (0.2 + 0.2 either way), however it is solved
    a = np.full((5, 5), 0.1)
    a[0, 0] = a[1, 1] = a[2, 2] = 0.9
    a[3, 3] = a[4, 4] = a[3, 4] = a[4, 3] = 0.2
    a[3, 0] = 0.25
    assert _check(a) == FULL


def test_transposed_and_tiny_shapes():
    rng = np.random.default_rng(3)
    for nr, nc in [(1, 1), (1, 5), (5, 1), (2, 2), (9, 4), (4, 9), (12, 12), (12, 3)]:
        for _ in range(30):
            _check(_assembler_like(rng, nr, nc, min(nr, nc) - 1))


def test_large_magnitudes_and_negative_values():
    rng = np.random.default_rng(5)
    for scale in (1e-6, 1.0, 1e8):
        for _ in range(100):
            nr, nc = rng.integers(2, 10, 2)
            a = _assembler_like(rng, nr, nc, min(nr, nc)) * scale - 0.5 * scale
            _check(a)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_costs_are_a_clear_error(bad):
    a = np.eye(4)
    a[1, 2] = bad
    with pytest.raises(ValueError, match="finite"):
        _lsap_max_unique_first(a, True)


def test_minus_inf_is_a_forbidden_pair_as_in_scipy():
    rng = np.random.default_rng(11)
    for _ in range(50):
        a = _assembler_like(rng, 6, 7, 5)
        a[rng.random(a.shape) < 0.15] = -np.inf
        try:
            linear_sum_assignment(a, maximize=True)
        except ValueError:  # infeasible
            continue
        _check(a, try_dominant=True)
        _check(a, try_dominant=False)


@pytest.mark.smoke
def test_view_path_takes_every_shortcut_on_assembler_like_costs():
    rng = np.random.default_rng(17)
    paths = []
    for _ in range(300):
        nr, nc = rng.integers(1, 13, 2)
        cost = _assembler_like(rng, nr, nc, max(0, min(nr, nc) - int(rng.integers(0, 3))))
        rows, cols, path = _lsap_max_view(np.ascontiguousarray(cost))
        ref_rows, ref_cols = linear_sum_assignment(cost, maximize=True)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_array_equal(cols, ref_cols)
        paths.append(path)
    assert set(paths) == {FULL, DOMINANT, EXHAUSTIVE, FORCED}


def test_view_path_maps_non_finite_entries_to_zero():
    # DLC sets NaN affinities to 0 before linking; the view does so while reading
    a = np.array([[0.9, np.nan, 0.1], [np.inf, 0.8, 0.2], [0.3, 0.1, -np.inf]])
    rows, cols, _ = _lsap_max_view(a)
    ref_rows, ref_cols = linear_sum_assignment(np.where(np.isfinite(a), a, 0.0), maximize=True)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(cols, ref_cols)
