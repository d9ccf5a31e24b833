"""Scalar logging: the same values to a JSON-lines file and to TensorBoard (rank 0 only)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RunLogger"]


class RunLogger:
    """Writes ``RUN_DIR/log.jsonl`` (one JSON object per logged step) and TensorBoard events in ``RUN_DIR/tb``.

    Args:
        run_dir: the run directory.
        enabled: ``False`` on every process but rank 0 (then nothing is written).
        tensorboard: also write TensorBoard events.
    """

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "log.jsonl"
        self._tb = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def scalars(self, step: int, values: dict[str, float], **extra: Any) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **extra}
        record.update({k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """An ``(H, W, 3)`` uint8 image to TensorBoard."""
        if self._tb is not None:
            self._tb.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``RUN_DIR/log.jsonl`` (for reports and tests)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
