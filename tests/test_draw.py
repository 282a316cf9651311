"""Compiled disk drawing against its NumPy reference (skimage.draw.disk semantics)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapose.kernels import draw, draw_ref

pytestmark = pytest.mark.smoke


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(-15, 65), y=st.floats(-15, 55), radius=st.floats(0, 14),
    alpha=st.one_of(st.just(1.0), st.just(0.0), st.floats(0, 1)),
    seed=st.integers(0, 2**16), strided=st.booleans(),
)
def test_matches_reference(x, y, radius, alpha, seed, strided):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (40, 50, 4 if strided else 3), dtype=np.uint8)
    color = rng.integers(0, 256, 3, dtype=np.uint8)
    a = base[..., :3] if strided else base.copy()  # a non-contiguous view is painted in place
    b = np.array(a)
    draw.draw_disk(a, x, y, radius, color, alpha)
    draw_ref.draw_disk(b, x, y, radius, color, alpha)
    np.testing.assert_array_equal(a, b)


def test_non_finite_centre_draws_nothing():
    img = np.zeros((10, 10, 3), np.uint8)
    draw.draw_disk(img, np.nan, 3.0, 4.0, (255, 0, 0))
    assert not img.any()


def test_bad_image_is_a_clear_error():
    with pytest.raises(ValueError, match="img must be a uint8 array"):
        draw.draw_disk(np.zeros((10, 10, 3), np.float32), 1.0, 1.0, 2.0, (1, 2, 3))
    with pytest.raises(ValueError, match="color must have 3 components"):
        draw.draw_disk(np.zeros((10, 10, 3), np.uint8), 1.0, 1.0, 2.0, (1, 2))


@settings(max_examples=300, deadline=None)
@given(
    ends=st.tuples(st.floats(-20, 70), st.floats(-20, 60), st.floats(-20, 70), st.floats(-20, 60)),
    seed=st.integers(0, 2**16),
)
def test_line_matches_reference(ends, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = a.copy()
    color = rng.integers(0, 256, 3, dtype=np.uint8)
    draw.draw_line_aa(a, *ends, color)
    draw_ref.draw_line_aa(b, *ends, color)
    np.testing.assert_array_equal(a, b)


def test_line_with_missing_endpoint_is_a_clear_error():
    with pytest.raises(ValueError, match="endpoints must be finite"):
        draw.draw_line_aa(np.zeros((5, 5, 3), np.uint8), np.nan, 1.0, 2.0, 2.0, (1, 2, 3))
