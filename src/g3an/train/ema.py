"""Exponential moving average of the generator, with the half-life counted in videos (StyleGAN's rule)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps ``shadow``, an EMA copy of a network; buffers (BatchNorm statistics, spectral-norm vectors) are copied.

    Args:
        model: the network being trained.
        half_life: videos after which an old weight's share has halved.
    """

    def __init__(self, model: nn.Module, half_life: float) -> None:
        self.half_life = float(half_life)
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, videos: int) -> None:
        """Blend in ``model`` after a step of ``videos`` videos: ``beta = 0.5 ** (videos / half_life)``."""
        beta = 0.5 ** (videos / self.half_life)
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p.detach(), 1.0 - beta)
        for s, b in zip(self.shadow.buffers(), model.buffers()):
            s.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)
