"""g3an.machine: the allocator setting behind ``TrainConfig.malloc_mmap_threshold``."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from g3an import machine
from g3an.train import TrainConfig

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# In a fresh process: free a 16 MB tensor (glibc then raises its dynamic mmap threshold to 16 MB), allocate
# a 1 MB one, and report whether it was mapped on its own (mallinfo2's hblkhd grows) or came from the heap.
_PROBE = textwrap.dedent(
    """
    import ctypes, sys, torch
    from g3an import machine
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "set":
        assert machine.set_malloc_mmap_threshold(128 * 1024)
    big = torch.empty(4 * 1024 * 1024)
    del big
    before = libc.mallinfo2().hblkhd
    small = torch.empty(256 * 1024)
    print(libc.mallinfo2().hblkhd - before >= small.numel() * 4)
    """
)


@pytest.mark.skipif(not GLIBC, reason="the mmap threshold is a glibc setting")
def test_mmap_threshold_maps_mid_sized_tensors_that_glibc_would_take_from_the_heap() -> None:
    def mapped(mode: str) -> bool:
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
        return out.stdout.strip() == "True"

    assert not mapped("default")  # glibc's dynamic threshold: the 1 MB tensor comes from the heap
    assert mapped("set")  # fixed at 128 KiB: it is mapped, and unmapped when freed


def test_mmap_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        machine.set_malloc_mmap_threshold(-1)
    for bad in (-5, "128k", 1.5):
        with pytest.raises(ValueError, match="malloc_mmap_threshold"):
            TrainConfig(malloc_mmap_threshold=bad)
    assert TrainConfig(malloc_mmap_threshold=131072).malloc_mmap_threshold == 131072
