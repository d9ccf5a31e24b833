"""Benchmark: generation speed of synth-actions and synth-faces (``g3an data synth``).

Draws ``--videos`` videos of ``--frames`` frames at ``--size`` into a temp dir with 1 and 2 worker
processes and prints videos/s and frames/s (wall clock, including writing the prepared dataset), plus
the CPU time per video of one process.

    python benchmarks/bench_synth.py                       # 200 videos, 64 frames, 64x64
    python benchmarks/bench_synth.py --videos 2000 --workers 2 --datasets actions faces
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from g3an import machine
from g3an.data.synthetic import SynthConfig, generate, render_video
from g3an.data.synthetic.common import plan_videos


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=200)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--datasets", nargs="+", default=["actions", "faces"], choices=["actions", "faces"])
    args = p.parse_args()
    print(f"machine: {machine.describe()}; load average {os.getloadavg()[0]:.1f}")
    for name in args.datasets:
        config = SynthConfig(name, videos=args.videos, size=args.size, frames=args.frames, seed=0)
        plans = plan_videos(20, len(config.module.CLASSES), 0)
        t = time.process_time()
        for plan in plans:
            render_video(config, plan)
        cpu = (time.process_time() - t) / len(plans)
        print(f"{config.name} {args.frames}x{args.size}x{args.size}: {1000 * cpu:.1f} ms CPU per video")
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                generate(config, Path(tmp) / "ds", workers=workers)
                dt = time.perf_counter() - t
            print(f"  {workers} workers: {args.videos} videos in {dt:6.1f} s = {args.videos / dt:6.1f} videos/s, "
                  f"{args.videos * args.frames / dt:8.0f} frames/s")  # fmt: skip


if __name__ == "__main__":
    main()
