"""Small generators shared by several test modules (clips, seeded weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_clip(src, dst, n: int) -> Path:
    """The first ``n`` frames of video ``src`` as an FFV1 (lossless, intra-only) clip ``dst``."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    out = None
    for _ in range(n):
        ok, frame = cap.read()
        assert ok, f"{src} has fewer than {n} frames"
        if out is None:
            h, w = frame.shape[:2]
            out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
        out.write(frame)
    out.release()
    cap.release()
    return Path(dst)



def write_ramp_video(path, n: int, h: int = 24, w: int = 32) -> Path:
    """An ``n``-frame FFV1 clip whose frame ``i`` is uniformly ``10 * i`` (frame order is visible)."""
    import pytest

    cv2 = pytest.importorskip("cv2")
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h))
    for i in range(n):
        out.write(np.full((h, w, 3), 10 * i, np.uint8))
    out.release()
    return Path(path)

def fill_rule(index, key, shape):
    """Deterministic weights for parameter ``index`` (``key``) of a seeded snapshot.

    Same rule as FILL_SRC in benchmarks/compare_hrnet.py (numpy PCG64: identical on every
    machine), so snapshots built in tests and in the DLC comparison agree.
    """
    rng = np.random.default_rng(1000 + index)
    shape = tuple(shape)
    if key.endswith("num_batches_tracked"):
        return None
    if len(shape) > 1:
        fan = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) / np.sqrt(fan)).astype(np.float32)
    if key.endswith("running_var") or key.endswith(".weight"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)
