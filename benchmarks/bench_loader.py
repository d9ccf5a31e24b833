"""Benchmark: clips per second of the clip loader (``g3an.data.loader.ClipDataset``).

Reads 16-frame 64x64 clips at random steps 1..4 with flips from a prepared dataset of 64-frame videos:
first item by item in this process with one torch thread (one core), then through a DataLoader
(batch 16) with 0, 1 and 2 worker processes, then with resizing (stored 80x80, requested 64x64).

    python benchmarks/bench_loader.py                      # a 200-video dataset of random frames in a temp dir
    python benchmarks/bench_loader.py --data data/synth-actions --clips 5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from g3an import machine
from g3an.data.format import DatasetWriter
from g3an.data.loader import ClipDataset


def make_dataset(root: Path, videos: int, size: int, frames: int = 64) -> Path:
    """Random frames (the loader's speed does not depend on pixel values)."""
    rng = np.random.default_rng(0)
    with DatasetWriter(root, size, size, 25.0, "bench_loader random frames", class_names=("a", "b")) as w:
        for i in range(videos):
            w.add_video(rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8), label=i % 2)
    return root


def items_per_second(ds: ClipDataset, n: int) -> float:
    for i in range(min(50, len(ds))):  # warm-up: page the memory map in
        ds[i]
    t = time.perf_counter()
    for k in range(n):
        ds[(k // len(ds), k % len(ds))]
    return n / (time.perf_counter() - t)


def loader_per_second(ds: ClipDataset, n: int, workers: int, batch: int = 16) -> float:
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0), persistent_workers=workers > 0)  # fmt: skip
    it = iter(loader)
    next(it)  # start-up of the workers is not counted
    seen, t = 0, time.perf_counter()
    while seen < n:
        try:
            seen += len(next(it)["video"])
        except StopIteration:
            it = iter(loader)
    return seen / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="A prepared dataset (default: random frames, temp dir).")
    p.add_argument("--videos", type=int, default=200, help="Videos of the generated dataset.")
    p.add_argument("--clips", type=int, default=3000, help="Clips per measurement.")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine.describe()}; 1 torch thread")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_dataset(Path(tmp) / "ds", args.videos, 64)
        ds = ClipDataset(data, num_frames=16, steps=(1, 2, 3, 4), size=64, flip=True)
        print(f"dataset: {ds.data.path.name if args.data else 'random'}, {len(ds)} videos, clips 16x64x64")
        print(f"  item by item, 1 core:        {items_per_second(ds, args.clips):8.0f} clips/s")
        for workers in (0, 1, 2):
            rate = loader_per_second(ds, args.clips, workers)
            print(f"  DataLoader batch 16, {workers} workers: {rate:8.0f} clips/s")
        big = make_dataset(Path(tmp) / "big", 50, 80)
        resized = ClipDataset(big, num_frames=16, size=64, flip=True)
        print(f"  resize 80 -> 64, 1 core:     {items_per_second(resized, args.clips // 3):8.0f} clips/s")


if __name__ == "__main__":
    main()
