"""Exponential moving average of the generator, with the half-life counted in videos (StyleGAN's rule)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from g3an.train.objectives import share_in_pairs

__all__ = ["EMA", "standing_statistics"]


class EMA:
    """Keeps ``shadow``, an EMA copy of a network; buffers (BatchNorm statistics, spectral-norm vectors) are copied.

    The BatchNorm statistics so copied are the trained network's, not the averaged one's:
    :func:`standing_statistics` recomputes them for the shadow (``TrainConfig.ema_bn_videos``).

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


@torch.no_grad()
def standing_statistics(generator: nn.Module, videos: int, batch: int, seed: int = 0, pair: str | None = None) -> int:
    """Recompute the running statistics of ``generator``'s BatchNorm layers from its own samples.

    The mean of the batch statistics of ``ceil(videos / batch)`` batches of ``batch`` generated videos
    (latents and class labels drawn from ``seed``), in place of the running averages (BigGAN's "standing
    statistics"). With ``pair`` (a latent's name) rows ``2i`` and ``2i + 1`` of each batch share that code,
    as the batches of a run with ``appearance_consistency`` or ``colour_consistency`` do, whose generator
    was trained with those statistics (``benchmarks/ema_batchnorm.py``, FID512 of the shipped models,
    which trained that way: synth-faces 49.8 with pairs, 53.7 without, 47.4 with the statistics it ships
    with; synth-actions 115.9 with pairs against 126.0). Only the BatchNorm layers run in training
    mode meanwhile: spectral norm's power iteration and everything else stay as they are. Runs under the
    caller's autocast. Returns the number of BatchNorm layers recomputed (0: nothing to do).
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    norms = [m for m in norms if m.track_running_stats]
    if not norms or videos < 1:
        return 0
    modes = {m: m.training for m in generator.modules()}
    momenta = [m.momentum for m in norms]
    try:
        generator.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
            m.train()
        rng = torch.Generator().manual_seed(seed)
        device = next(generator.parameters()).device
        classes = getattr(generator, "num_classes", 0)
        for _ in range(math.ceil(videos / batch)):
            latents = generator.sample_latents(batch, generator=rng, device=device)
            if pair is not None:
                latents[pair] = share_in_pairs(latents[pair])
            y = torch.randint(classes, (batch,), generator=rng).to(device) if classes else None
            generator(**latents, y=y)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    return len(norms)
