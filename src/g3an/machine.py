"""This machine in one line (CPU model, usable cores, OS, torch build), for reports, benchmarks and model cards.

The one description used by ``g3an demo``'s report, ``benchmarks/`` and ``scripts/train_shipped_models.py``,
so that numbers measured by different tools name their machine the same way.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_model", "describe", "usable_cores"]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else ``platform.processor()``, else ``"unknown CPU"``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where the OS has no affinity call)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe() -> str:
    """One line: CPU model, usable cores, OS and architecture, torch version and its CPU capability.

    Example: ``"AMD EPYC 7B13, 2 usable cores, Linux x86_64, torch 2.5.1+cpu, CPU capability AVX2"``.
    """
    return (
        f"{cpu_model()}, {usable_cores()} usable cores, {platform.system()} {platform.machine()}, "
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
