"""Inception-v1 I3D (Carreira and Zisserman, CVPR 2017) with the TF-Hub Kinetics-400 semantics FVD uses.

Re-implemented from the description of the TF-Hub model ``deepmind/i3d-kinetics-400/1`` and its
faithful Flax port (spec metrics.md sections 2 and 6): TF ``SAME`` padding computed per input size
(asymmetric, the extra row at the end) for every convolution and max-pool, Sonnet-v1 batch norm with
``eps = 1e-3`` and no scale (only ``beta``), a ``(2, 7, 7)`` stride-1 ``VALID`` average pool, a
1x1x1 logits convolution with bias, spatial squeeze and a mean over time: the 400-d output is what
FVD embeds. Input: ``(B, 3, T, 224, 224)`` in ``[-1, 1]`` (see
:func:`g3an.metrics.preprocess.preprocess_i3d`), ``T >= 9``.

Module names follow the TF end points with the compact branch names of the PyTorch ports
(``Conv3d_1a_7x7.conv3d``, ``Mixed_3b.b1b.bn``, ``logits.conv3d``), so the TATS / VideoGPT state
dict (``i3d_pretrained_400.pt``) loads by name once its all-ones ``bn.weight`` entries are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from g3an.metrics.protocols import sha256_file
from g3an.shapes import assert_shape

__all__ = [
    "BatchNormNoScale",
    "I3DCheckpointError",
    "InceptionI3d",
    "check_i3d_state_dict",
    "load_i3d_safetensors",
    "load_i3d_tats",
    "same_padding",
]

# (out channels of b0, b1a, b1b, b2a, b2b, b3b) of the Inception modules, as in the TF model.
INCEPTION_CHANNELS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# The layers after MaxPool3d_3a_3x3, in order; the two max-pools among them with (kernel, stride).
_BODY = (
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)
_POOLS = {"MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)), "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2))}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF ``SAME`` padding of one dimension: ``(before, after)`` with the odd pixel at the end.

    The output has ``ceil(size / stride)`` elements; the total padding is
    ``max((ceil(size / stride) - 1) * stride + kernel - size, 0)``.
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float
) -> torch.Tensor:
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pads.extend(same_padding(size, k, s))  # F.pad wants the last dimension first
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class BatchNormNoScale(nn.Module):
    """Inference batch norm of Sonnet v1 as used by I3D: ``(x - mean) / sqrt(var + eps) + beta``, no scale.

    Args:
        channels: number of channels (dimension 1 of the input).
        eps: variance epsilon (``1e-3`` in Sonnet v1 / TF-Hub; the TATS port used ``1e-5``).
    """

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, False, 0.0, self.eps)


class Unit3D(nn.Module):
    """Convolution with TF ``SAME`` padding, then batch norm without scale and ReLU (or a bare conv).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: kernel size ``(t, h, w)``.
        stride: stride ``(t, h, w)``.
        batch_norm_relu: ``True`` for conv-BN-ReLU (every unit but the logits); ``False`` for a conv
            with bias and no activation (the logits).
        bn_eps: batch-norm epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm_relu: bool = True,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=not batch_norm_relu)
        self.bn = BatchNormNoScale(out_channels, bn_eps) if batch_norm_relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride, 0.0))
        return x if self.bn is None else F.relu(self.bn(x))


class MaxPoolSame(nn.Module):
    """Max pool with TF ``SAME`` padding (padded cells never win: they hold ``-inf``)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride, -math.inf), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated on channels: 1x1; 1x1-3x3; 1x1-3x3; 3x3 max-pool-1x1.

    Args:
        in_channels: input channels.
        channels: outputs of ``b0, b1a, b1b, b2a, b2b, b3b``.
        bn_eps: batch-norm epsilon.
    """

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int], bn_eps: float) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0, bn_eps=bn_eps)
        self.b1a = Unit3D(in_channels, c1a, bn_eps=bn_eps)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(in_channels, c2a, bn_eps=bn_eps)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b, bn_eps=bn_eps)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """The Kinetics I3D of FVD: ``(B, 3, T, 224, 224)`` in ``[-1, 1]`` -> ``(B, num_classes)`` logits.

    Args:
        num_classes: logits (400 for Kinetics-400).
        bn_eps: batch-norm epsilon; ``1e-3`` is the TF model, ``1e-5`` reproduces the TATS port.
    """

    def __init__(self, num_classes: int = 400, bn_eps: float = 1e-3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), bn_eps=bn_eps)
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in _BODY:
            if name in _POOLS:
                self.add_module(name, MaxPoolSame(*_POOLS[name]))
            else:
                module = InceptionModule(channels, INCEPTION_CHANNELS[name], bn_eps)
                self.add_module(name, module)
                channels = module.out_channels
        self.logits = Unit3D(channels, num_classes, batch_norm_relu=False)
        self.feature_dim = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged logits ``(B, num_classes)`` of clips ``(B, 3, T, H, W)`` in ``[-1, 1]``."""
        assert_shape("clips", x, (None, 3, None, None, None))
        for name, module in self.named_children():  # registration order = network order
            if name == "logits":
                break
            x = module(x)  # (B, C, T', H', W')
        if x.shape[2] < 2 or x.shape[3] < 7 or x.shape[4] < 7:
            raise ValueError(
                f"the Mixed_5c map is {tuple(x.shape[2:])}, smaller than the (2, 7, 7) VALID average pool: "
                "I3D needs 224x224 frames and at least 9 frames"
            )
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # (B, 1024, T', H', W'), VALID
        x = self.logits(x)  # (B, num_classes, T', H', W')
        if x.shape[3:] != (1, 1):
            raise ValueError(f"logits map {tuple(x.shape[2:])} is not 1x1 in space: use 224x224 frames")
        return x.flatten(2).mean(dim=2)


class I3DCheckpointError(ValueError):
    """A file is not a usable Kinetics I3D state dict; the message says why."""


def check_i3d_state_dict(state: Mapping[str, torch.Tensor], source: str, num_classes: int = 400) -> None:
    """Raise :class:`I3DCheckpointError` unless ``state`` has exactly the names and shapes of :class:`InceptionI3d`.

    Args:
        state: a state dict in the project's layout (no ``bn.weight``, no ``num_batches_tracked``).
        source: where it came from, for the message.
        num_classes: classes of the logits layer.
    """
    with torch.device("meta"):
        expected = InceptionI3d(num_classes).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise I3DCheckpointError(
            f"{source}: names do not match the I3D: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise I3DCheckpointError(f"{source}: {len(wrong)} tensors have the wrong shape, e.g. {wrong[0]}")


def _load_validated(state: Mapping[str, torch.Tensor], source: str, bn_eps: float) -> InceptionI3d:
    classes = state["logits.conv3d.bias"].shape[0] if "logits.conv3d.bias" in state else 400
    check_i3d_state_dict(state, source, classes)
    with torch.device("meta"):  # no allocation and no random init: every tensor comes from the file
        model = InceptionI3d(classes, bn_eps)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return model.eval()


def load_i3d_safetensors(path: str | Path, bn_eps: float = 1e-3) -> tuple[InceptionI3d, str]:
    """Load the project's converted weights (``g3an weights install i3d``).

    Args:
        path: ``i3d-kinetics-400.safetensors`` written by :func:`g3an.metrics.weights.install_i3d`.
        bn_eps: batch-norm epsilon (keep ``1e-3``, the TF model's).

    Returns:
        ``(model in eval mode, SHA-256 of the file)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run `g3an weights install i3d` first")
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise I3DCheckpointError(f"{path}: not a readable safetensors file ({err})") from err
    return _load_validated(state, str(path), bn_eps), sha256_file(path)


def load_i3d_tats(path: str | Path, bn_eps: float = 1e-3) -> tuple[InceptionI3d, str]:
    """Load a TATS / VideoGPT ``i3d_pretrained_400.pt`` state dict (``torch.load(weights_only=True)``).

    Its ``*.bn.weight`` entries were set to ones by the conversion (the TF model has no scale); they
    are checked and dropped, as are ``num_batches_tracked`` buffers.

    Args:
        path: the ``.pt`` file.
        bn_eps: batch-norm epsilon; ``1e-3`` (TF semantics, default) or ``1e-5`` (what TATS ran).

    Returns:
        ``(model in eval mode, SHA-256 of the file)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, weights-only refusal: all unusable
        raise I3DCheckpointError(f"{path}: not a loadable PyTorch state dict ({type(err).__name__}: {err})") from err
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise I3DCheckpointError(f"{path}: not a state dict of tensors")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        key = key.removeprefix("module.")
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("bn.weight"):
            if not torch.all(value == 1):
                raise I3DCheckpointError(f"{path}: {key} is not all ones; the TF I3D has no batch-norm scale")
            continue
        state[key] = value
    return _load_validated(state, str(path), bn_eps), sha256_file(path)
