"""Helpers for the I/O tests: exact, order- and type-aware comparison of DLC structures."""
from __future__ import annotations

import numpy as np
import pandas as pd


def assert_same(a, b, path="root"):
    """Assert ``a`` and ``b`` are identical DLC structures.

    Dict key order and key types, container types (tuple vs list), array dtype, shape and
    values (NaN == NaN) must all match.
    """
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: {type(b).__name__} is not a dict"
        assert list(a) == list(b), f"{path}: keys differ {list(a)[:6]} vs {list(b)[:6]}"
        for (ka, va), kb in zip(a.items(), b):
            assert type(ka) is type(kb), f"{path}: key {ka!r} type {type(ka)} vs {type(kb)}"
            assert_same(va, b[kb], f"{path}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
        assert len(a) == len(b), f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{path}: {type(b).__name__} is not an ndarray"
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{path}: shape {a.shape} vs {b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, pd.Index):
        assert isinstance(b, pd.Index) and a.equals(b), f"{path}: index differs"
        assert list(a.names) == list(b.names), f"{path}: index names differ"
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), f"{path}: NaN vs {b!r}"
    else:
        assert type(a) is type(b) or (isinstance(a, str) and isinstance(b, str)), \
            f"{path}: {type(a).__name__} vs {type(b).__name__}"
        assert a == b, f"{path}: {a!r} != {b!r}"


def truncate_copy(src, dst, fraction=0.5):
    """Copy the first ``fraction`` of a file's bytes (a truncated download/interrupted write)."""
    with open(src, "rb") as fh:
        data = fh.read()
    with open(dst, "wb") as fh:
        fh.write(data[: max(1, int(len(data) * fraction))])
    return dst
