"""Slow, obviously correct reference for :mod:`mapose.kernels.stitch_pickle`."""
from __future__ import annotations

import re

import numpy as np


def compact_frames(frames: dict):
    """``(inds, data)`` from a dict of real ndarrays, or None (see the gateway)."""
    if not frames:
        return None
    inds, rows = [], []
    for key, val in frames.items():
        if isinstance(key, str):
            m = re.fullmatch(r"frame(\d+)", key)
            if m is None or len(key) > 23:
                return None
            inds.append(int(m.group(1)))
        elif type(key) is int:
            inds.append(key)
        else:
            return None
        if not isinstance(val, np.ndarray) or val.dtype != np.float64 or not 1 <= val.ndim <= 2:
            return None
        if not val.flags.c_contiguous and val.ndim == 2 and val.size > 1:
            return None
        rows.append(val)
    if len({r.shape for r in rows}) != 1:
        return None
    return np.array(inds, dtype=np.int64), np.stack(rows).astype(np.float64)
