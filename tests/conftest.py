"""Shared fixtures: tiny configs and a deterministic CPU setup."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from seed 0 and the session's thread count, whatever an earlier test set
    (float32 results, such as the reference-import comparison, depend on the number of threads)."""
    torch.manual_seed(0)
    torch.set_num_threads(_THREADS)
    yield
    torch.set_num_threads(_THREADS)


#: Options of each registered model small enough for forward/backward in well under a second on a CPU.
#: A new model adds its entry here; tests parametrised over the registry use it.
TINY_CONFIGS: dict[str, dict] = {
    "g3an": {"ch": 4, "ch_d": 4, "dim_z_a": 16, "dim_z_m": 4},
    "mocogan": {"ch": 4, "ch_d": 4, "dim_z_content": 8, "dim_z_motion": 4, "resolution": 32},
    "tgan": {"ch": 2, "ch_t": 4, "ch_d": 4, "dim_z_slow": 8, "dim_z_fast": 8, "resolution": 32},
    "vgan": {"ch": 4, "ch_d": 4, "dim_z": 8, "resolution": 32},
}


def tiny_config(name: str) -> dict:
    if name not in TINY_CONFIGS:
        raise KeyError(f"add a tiny config for registered model {name!r} to tests/conftest.py TINY_CONFIGS")
    return dict(TINY_CONFIGS[name])


@pytest.fixture
def tiny_g3an() -> dict:
    """Options for a G3AN small enough to run forward/backward in well under a second on a CPU."""
    return tiny_config("g3an")


@pytest.fixture
def mp4_inputs(monkeypatch: pytest.MonkeyPatch) -> list:
    """The uint8 frames of every ``.mp4`` written during the test, as handed to the encoder.

    libx264 is not always bit-reproducible (with one thread, about 1 run in 50 encoded the same frames a
    few levels differently), so tests of exact regeneration compare these, and the files only closely.
    """
    media = pytest.importorskip("g3an.media")
    frames: list = []
    write_mp4 = media._write_mp4

    def record(path, f, fps):
        frames.append(f.copy())
        write_mp4(path, f, fps)

    monkeypatch.setattr(media, "_write_mp4", record)
    return frames
