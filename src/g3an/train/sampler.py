"""Deterministic, rank-aware, infinite sampling of (epoch, index) keys and per-step random generators.

The global order is a fixed function of the seed: epoch ``e`` visits the videos in the permutation drawn
from (seed, e), and global position ``p`` is video ``perm_{p // N}[p % N]``. Process ``r`` of ``W`` with
local batch ``b`` takes positions ``step * b * W + r * b + [0, b)`` at each step. So the data of step
``s`` is the same with 1 or N processes and after a resume from any step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["InfiniteBatchSampler", "derive_seed", "step_generator"]


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a stable hash of ``parts`` (same on every machine and Python)."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def step_generator(seed: int, step: int, stream: str = "step") -> torch.Generator:
    """The CPU generator of a training step's random draws (latents, labels, frame indices)."""
    return torch.Generator().manual_seed(derive_seed(seed, stream, step))


class InfiniteBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this process's batches of ``(epoch, index)`` keys, forever, starting at ``start_step``.

    Args:
        num_items: videos in the dataset.
        local_batch: videos per process per step.
        rank: this process.
        world: number of processes.
        seed: seed of the permutations.
        start_step: first step to produce (for resume).
    """

    def __init__(self, num_items: int, local_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 start_step: int = 0) -> None:  # fmt: skip
        if num_items < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.b, self.rank, self.world, self.seed, self.start = (
            num_items,
            local_batch,
            rank,
            world,
            seed,
            start_step,
        )
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {
                epoch: torch.randperm(
                    self.n, generator=torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
                )
            }
        return self._perms[epoch]

    def batch_keys(self, step: int) -> list[tuple[int, int]]:
        first = step * self.b * self.world + self.rank * self.b
        keys = []
        for p in range(first, first + self.b):
            epoch = p // self.n
            keys.append((epoch, int(self._perm(epoch)[p % self.n])))
        return keys

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start
        while True:
            yield self.batch_keys(step)
            step += 1
