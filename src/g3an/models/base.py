"""The interface every registered generator and discriminator follows, so commands never special-case a model.

A generator names its latent codes (``latent_shapes``), says which one carries appearance and which
carries motion (for sampling and latent manipulation), samples them, and is called as
``G(**latents, y=labels)``. A discriminator returns a dict of named raw logits, so the training loop
never needs to know how many heads a model has.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VideoDiscriminator", "VideoGenerator", "channels_last", "is_channels_last_3d", "sample_labels"]


class VideoGenerator(nn.Module):
    """Base class of registered generators. Subclasses set the class attributes and implement the methods."""

    #: name of the latent code that carries appearance (``None`` if the model has no such code)
    appearance_latent: str | None = None
    #: name of the latent code that carries motion (``None`` if the model has no such code)
    motion_latent: str | None = None
    #: number of classes for conditional generation (0: unconditional)
    num_classes: int = 0
    #: number of frames of a default sample
    default_frames: int = 16

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        """Shape of one sample's latent codes (no batch axis) for a video of ``num_frames`` frames."""
        raise NotImplementedError

    def valid_frames(self, num_frames: int) -> bool:
        """Whether the generator can produce videos of ``num_frames`` frames."""
        return num_frames == self.default_frames

    def sample_latents(
        self,
        batch: int,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Standard-normal latents for ``batch`` videos, drawn on the CPU from ``generator`` (device-independent)."""
        shapes = self.latent_shapes(num_frames)
        out = {}
        for name, shape in shapes.items():
            out[name] = torch.randn((batch, *shape), generator=generator).to(device or self.device)
        return out

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_labels(self, y: torch.Tensor | None, batch: int) -> None:
        """Clear errors for labels given to an unconditional model or missing from a conditional one."""
        if self.num_classes and y is None:
            raise ValueError(f"this generator is conditional on {self.num_classes} classes: pass y of shape ({batch},)")
        if not self.num_classes and y is not None:
            raise ValueError("this generator is unconditional: do not pass class labels y")
        if y is not None and tuple(y.shape) != (batch,):
            raise ValueError(f"class labels y must have shape ({batch},), got {tuple(y.shape)}")


class VideoDiscriminator(nn.Module):
    """Base class of registered discriminators: ``forward(video, y=None, **kw) -> {head: (B,) logits}``."""

    #: names of the logits returned by ``forward``
    heads: tuple[str, ...] = ()
    num_classes: int = 0


def sample_labels(num_classes: int, batch: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """Uniform class labels ``(batch,)`` on the CPU, or ``None`` for an unconditional model."""
    if not num_classes:
        return None
    return torch.randint(num_classes, (batch,), generator=generator)


def is_channels_last_3d(x: torch.Tensor) -> bool:
    """Whether ``x`` is a 5-D tensor laid out channels-last-3d (and not also plainly contiguous)."""
    return x.ndim == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)


def _channels_last_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    return t


def channels_last(x: nn.Module | torch.Tensor) -> nn.Module | torch.Tensor:
    """Lay out a network's 5-D (and 4-D) weights, or a tensor, channels last; shapes are unchanged.

    Convolutions whose weights are channels-last give channels-last outputs, so a network converted here
    computes in that layout from end to end (G3AN's fusion and F-SA keep it). On CPUs oneDNN runs 3-D
    convolutions several times faster so (on an AMX CPU in bf16, 4-8x for G3AN's layers; about 2x in
    float32; benchmarks/bench_train.py). A module is converted in place (its parameters stay the same
    objects) and returned.
    """
    if isinstance(x, torch.Tensor):
        return _channels_last_tensor(x)
    return x._apply(_channels_last_tensor)
