"""This machine in one line (CPU model, usable cores, OS, torch build), for reports, benchmarks and model cards.

The one description used by ``g3an demo``'s report, ``benchmarks/`` and ``scripts/train_shipped_models.py``,
so that numbers measured by different tools name their machine the same way.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import torch

__all__ = ["cpu_model", "describe", "set_malloc_mmap_threshold", "usable_cores"]


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


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def set_malloc_mmap_threshold(nbytes: int) -> bool:
    """Have glibc's ``malloc`` serve every allocation of at least ``nbytes`` with its own ``mmap``.

    PyTorch's CPU tensors come from ``malloc``. glibc raises its mmap threshold each time a mapped block is
    freed (up to 32 MB), after which blocks of up to that size come from the heap, where freed space stays
    resident and fragments: a training step's peak resident memory then grows by hundreds of MB over what
    its tensors need. A fixed threshold (this call; the same as ``MALLOC_MMAP_THRESHOLD_=nbytes`` in the
    environment) returns such blocks to the system when freed, at the cost of a page fault per page when
    they are touched again. Process-wide and permanent (glibc's dynamic threshold stays off).

    Returns whether it took effect: ``False`` where the C library is not glibc (macOS, musl, Windows).
    """
    if nbytes < 0:
        raise ValueError(f"the mmap threshold must be a non-negative number of bytes, got {nbytes}")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
