"""Shared fixtures.

DLC's real files live in ``../shared/data`` (GPL-licensed: read from there, never copied
into the repository).  ``MAPOSE_SHARED_DATA`` overrides the location.  Tests that need them
are skipped with a clear reason when the folder is absent (e.g. the wheel smoke run on a
machine without the shared data).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MAPOSE_SHARED_DATA", REPO.parent / "shared" / "data"))
UNITTEST_DATA = SHARED_DATA / "dlc-unittest"
PROJECT_A = SHARED_DATA / "dlc-3.0.2-project-a"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared DLC data not found at {path} (set MAPOSE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def unittest_data() -> Path:
    """Folder with DLC's unit-test files (trimouse, montblanc, outputs.pickle...)."""
    return _require(UNITTEST_DATA)


@pytest.fixture(scope="session")
def project_a() -> Path:
    """Folder of the small DLC 3.0.2 project A (video, snapshot, DLC's outputs)."""
    return _require(PROJECT_A)
