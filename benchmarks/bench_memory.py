"""Benchmark: peak resident memory of each phase of a training step (G forward, D phase, G phase).

A thread samples the process's resident set size (``/proc/self/statm``, Linux) every 2 ms while training
steps run, and attributes each sample to the phase the step is in. With glibc it also samples the bytes
``malloc`` has handed out and not had back (``mallinfo2``: heap chunks in use plus mapped blocks), the
live tensors and other allocations; the resident set exceeds it by the libraries' code and data (about
0.3 GB after setup) and by freed memory malloc keeps. Memory, unlike time, does not depend on what else
the machine runs, so this may run beside other jobs.

    python benchmarks/bench_memory.py                                   # paper configuration, batch 8
    python benchmarks/bench_memory.py --precision bf16
    python benchmarks/bench_memory.py --checkpoint-levels 5 --malloc-mmap-threshold 131072
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import threading
import time
from collections.abc import Callable

import torch

from bench_train import bench_trainer  # benchmarks/ is the script's directory
from g3an import machine


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]  # fmt: skip


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2  # glibc 2.33 or later
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    return fn


class PhaseMemory:
    """Peak RSS and peak malloc'd bytes in use per phase label, sampled by a daemon thread."""

    def __init__(self, interval: float = 0.002) -> None:
        self.label, self.peaks, self.heap_peaks, self.interval = "setup", {}, {}, interval
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._mallinfo2 = _mallinfo2()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_gb(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page / 1e9

    def heap_gb(self) -> float | None:
        """Bytes malloc has handed out and not had back (None without glibc's ``mallinfo2``)."""
        if self._mallinfo2 is None:
            return None
        info = self._mallinfo2()
        return (info.uordblks + info.hblkhd) / 1e9

    def _run(self) -> None:
        while not self._stop.is_set():
            value, heap, label = self.rss_gb(), self.heap_gb(), self.label
            self.peaks[label] = max(self.peaks.get(label, 0.0), value)
            if heap is not None:
                self.heap_peaks[label] = max(self.heap_peaks.get(label, 0.0), heap)
            time.sleep(self.interval)

    def __enter__(self) -> PhaseMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-config", default="{}", help="JSON options of the G3AN model (default: the paper's)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="training steps (the first has no Adam moments yet)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--checkpoint-levels", type=int, default=0)
    p.add_argument("--malloc-mmap-threshold", type=machine.malloc_threshold_arg, default=machine.KEEP_FREED,
                   metavar="BYTES", help="TrainConfig.malloc_mmap_threshold (default: its default, 1 GiB; "
                   "'glibc': glibc's dynamic threshold)")  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    trainer = bench_trainer("/tmp/g3an-bench-memory", {
        "model": "g3an", "model_config": json.loads(args.model_config), "batch_size": args.batch,
        "precision": args.precision, "checkpoint_levels": args.checkpoint_levels,
        "malloc_mmap_threshold": args.malloc_mmap_threshold})  # fmt: skip
    batch = next(trainer.batches())
    objective = trainer.objective
    loss, begin_step = objective.loss, objective.begin_step
    with PhaseMemory() as mem:

        def begin(ctx):  # the generator forward
            mem.label = "G forward"
            return begin_step(ctx)

        def phase_loss(phase, ctx):
            mem.label = f"{phase.name} phase"
            yield from loss(phase, ctx)

        objective.begin_step, objective.loss = begin, phase_loss
        for step in range(args.steps):
            mem.peaks.clear()
            mem.heap_peaks.clear()
            t = time.perf_counter()
            trainer.train_step(batch)
            mem.label = "between steps"
            time.sleep(0.05)
            peaks = {k: round(v, 3) for k, v in mem.peaks.items() if k != "setup"}
            heap = {k: round(v, 3) for k, v in mem.heap_peaks.items() if k != "setup"}
            print(json.dumps({"step": step, "seconds": round(time.perf_counter() - t, 1), "peak_rss_gb": peaks,
                              "peak_malloc_in_use_gb": heap}), flush=True)  # fmt: skip
    print(json.dumps({"machine": machine.describe(), "batch": args.batch, "threads": args.threads,
                      "precision": args.precision,
                      "checkpoint_levels": args.checkpoint_levels,
                      "malloc_mmap_threshold": args.malloc_mmap_threshold,
                      "ru_maxrss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
