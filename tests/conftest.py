"""Shared fixtures: tiny configs and a deterministic CPU setup."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_g3an() -> dict:
    """Options for a G3AN small enough to run forward/backward in well under a second on a CPU."""
    return {"ch": 4, "ch_d": 4, "dim_z_a": 16, "dim_z_m": 4}
