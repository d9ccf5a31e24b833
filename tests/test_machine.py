"""g3an.machine: the allocator setting behind ``TrainConfig.malloc_mmap_threshold``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from g3an import machine
from g3an.train import TrainConfig

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A probe's first lines: glibc's mallinfo2 (blocks mapped on their own: hblkhd; the heap: arena).
_MALLINFO = textwrap.dedent(
    """
    import ctypes, sys, torch
    from g3an import machine
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    """
)

# In a fresh process: free a 16 MB tensor (glibc then raises its dynamic mmap threshold to 16 MB), allocate
# a 1 MB one, and report whether it was mapped on its own (mallinfo2's hblkhd grows) or came from the heap.
_PROBE = _MALLINFO + textwrap.dedent(
    """
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


# In a fresh process: with the training default (KEEP_FREED), a 64 MB tensor comes from the heap (glibc's own
# threshold maps anything over 32 MB) and its space stays in the heap when freed: the next one page-faults
# nothing new. With 128 KiB it is mapped on its own and unmapped when freed.
_KEEP_PROBE = _MALLINFO + textwrap.dedent(
    """
    assert machine.set_malloc_mmap_threshold(int(sys.argv[1]))
    before = libc.mallinfo2()
    big = torch.ones(16 * 1024 * 1024)
    during = libc.mallinfo2()
    del big
    after = libc.mallinfo2()
    size = 64 * 1024 * 1024
    print(during.hblkhd - before.hblkhd >= size, after.arena - before.arena >= size)
    """
)


@pytest.mark.skipif(not GLIBC, reason="the mmap threshold is a glibc setting")
def test_keep_freed_default_serves_large_tensors_from_the_heap_and_keeps_them() -> None:
    def probe(nbytes: int) -> str:
        cmd = [sys.executable, "-c", _KEEP_PROBE, str(nbytes)]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    assert TrainConfig().malloc_mmap_threshold == machine.KEEP_FREED
    assert probe(machine.KEEP_FREED) == "False True"  # not mapped; the heap keeps its space after the free
    assert probe(128 * 1024) == "True False"  # mapped on its own; nothing left in the heap


def test_malloc_threshold_argument() -> None:
    assert machine.malloc_threshold_arg("131072") == 131072
    assert machine.malloc_threshold_arg("glibc") is None
    with pytest.raises(ValueError):
        machine.malloc_threshold_arg("128k")


_COMMAND_PROBE = _MALLINFO + textwrap.dedent(
    """
    chosen = machine.keep_freed_for_command()
    before = libc.mallinfo2()
    big = torch.ones(16 * 1024 * 1024)
    print(chosen, libc.mallinfo2().hblkhd - before.hblkhd >= 64 * 1024 * 1024)
    """
)


@pytest.mark.skipif(not GLIBC, reason="the mmap threshold is a glibc setting")
def test_sample_commands_keep_freed_blocks_unless_the_environment_sets_the_threshold() -> None:
    def probe(env: dict[str, str]) -> str:
        cmd = [sys.executable, "-c", _COMMAND_PROBE]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip()

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert probe(env) == "True False"  # KEEP_FREED: the 64 MB tensor comes from the heap
    assert probe({**env, "MALLOC_MMAP_THRESHOLD_": "131072"}) == "False True"  # the user's setting stands
