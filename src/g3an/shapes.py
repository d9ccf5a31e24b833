"""Shape checks at module edges. The one video layout of this project is ``(B, C, T, H, W)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ShapeError", "assert_shape"]


class ShapeError(ValueError):
    """A tensor does not have the shape a module expects."""


def assert_shape(name: str, tensor: torch.Tensor, shape: Sequence[int | None]) -> None:
    """Raise :class:`ShapeError` unless ``tensor`` has ``len(shape)`` dims matching ``shape``.

    ``None`` in ``shape`` matches any size. ``name`` is used in the message, e.g. ``"z_a"``.
    """
    if not isinstance(tensor, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, tensor.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"{name} must have shape {want}, got {tuple(tensor.shape)}")
