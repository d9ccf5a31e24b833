"""This machine in one line (CPU model, usable cores, OS, torch build), for reports, benchmarks and model cards.

The one description used by ``g3an demo``'s report, ``benchmarks/`` and ``scripts/train_shipped_models.py``,
so that numbers measured by different tools name their machine the same way.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.context
import os
import platform
from pathlib import Path

import torch

__all__ = [
    "KEEP_FREED",
    "cpu_model",
    "describe",
    "keep_freed_for_command",
    "malloc_threshold_arg",
    "set_malloc_mmap_threshold",
    "usable_cores",
    "worker_context",
]


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


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_INT_MAX = 2**31 - 1

KEEP_FREED = 1 << 30
"""The default ``TrainConfig.malloc_mmap_threshold``: blocks under 1 GiB come from the heap and stay there."""


def set_malloc_mmap_threshold(nbytes: int) -> bool:
    """Have glibc's ``malloc`` serve every allocation of at least ``nbytes`` with its own ``mmap``, and keep
    up to twice that of freed space at the top of its heap (``M_TRIM_THRESHOLD``, glibc's own rule when it
    moves the threshold itself).

    PyTorch's CPU tensors come from ``malloc``. glibc raises its mmap threshold each time a mapped block is
    freed (up to 32 MB), after which blocks of up to that size come from the heap. A small fixed threshold
    (``131072``) returns every large block to the system when freed: the least resident memory, at the cost
    of a page fault per page each time a block is allocated again. A large one (:data:`KEEP_FREED`, the
    training default) keeps freed blocks for the next step: no page faults (a paper-configuration step
    10-20% faster), a few hundred MB more resident memory. The same as ``MALLOC_MMAP_THRESHOLD_=nbytes
    MALLOC_TRIM_THRESHOLD_=2*nbytes`` in the environment. Process-wide and permanent (glibc's dynamic
    threshold stays off).

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
    nbytes = min(int(nbytes), _INT_MAX)  # mallopt takes a C int
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, nbytes)
    return bool(mapped and libc.mallopt(_M_TRIM_THRESHOLD, min(2 * nbytes, _INT_MAX)))


def keep_freed_for_command() -> bool:
    """:data:`KEEP_FREED` for a command that renders videos (``g3an sample``, ``g3an manipulate``, ``g3an
    eval``), unless the environment sets glibc's threshold itself (``MALLOC_MMAP_THRESHOLD_``). Returns
    whether it was set.

    ``g3an sample CKPT --n 64`` of the paper configuration on 2 idle cores of an AMD EPYC took 9.0-9.4 s in
    bf16 instead of 11.9-12.2 s (peak memory 1.56-1.64 GB instead of 1.29-1.30) and 13.7-14.3 s in fp32
    instead of 19.1-19.2 s (2.45-2.50 GB instead of 1.97): docs/sampling.md. ``g3an eval synth-actions
    --metrics fid2048_embedded_actions,is2048_embedded_actions --n 512`` took 9.5-9.6 s instead of
    12.2-13.6 s, at the same 0.44-0.47 GB (docs/metrics.md).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return set_malloc_mmap_threshold(KEEP_FREED)


def malloc_threshold_arg(text: str) -> int | None:
    """A command-line value of ``malloc_mmap_threshold``: bytes, or ``glibc`` for glibc's dynamic default."""
    return None if text.strip().lower() in ("glibc", "none", "null") else int(text)


def worker_context(preload: list[str]) -> multiprocessing.context.BaseContext:
    """The start method for the project's own worker processes: a fork server that imports the modules
    ``preload`` once and forks each worker from itself; spawn where there is no fork server.

    Never a plain fork of the calling process: that copies its thread pools (torch's, OpenCV's after a
    face detection) in whatever state they are, locks held, and the child can deadlock. The fork server
    is a clean single-threaded process, and forking from it is much faster than spawning each worker
    (every import of ``g3an`` loads torch). CONTRIBUTING.md, rule 11.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(preload)
        return ctx
    return multiprocessing.get_context("spawn")
