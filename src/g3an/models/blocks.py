"""Layers shared by the models: spectral normalisation, initialisation rules, class-map helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations
from torch.utils.checkpoint import checkpoint

__all__ = [
    "INIT_SCHEMES",
    "FrameConv3d",
    "FrameConvTranspose3d",
    "LateBiasConvTranspose3d",
    "add_bias_",
    "apply_init",
    "checkpointed",
    "class_maps",
    "init_dcgan",
    "init_reference",
    "log2_int",
    "one_hot",
    "spectral_norm",
    "spectral_weight_original",
]

INIT_SCHEMES = ("reference", "dcgan")


def spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise ``module.weight`` with one power iteration per training forward.

    Uses ``torch.nn.utils.parametrizations.spectral_norm``: for transposed convolutions the matrix is
    taken along dim 1, as the hook-based version of the reference code does, so imported ``weight_u`` /
    ``weight_v`` vectors keep their meaning.
    """
    return parametrizations.spectral_norm(module, n_power_iterations=1, eps=1e-12)


def spectral_weight_original(module: nn.Module) -> torch.Tensor:
    """The un-normalised weight of a layer, spectrally normalised or not (a parameter, for in-place init)."""
    if hasattr(module, "parametrizations") and "weight" in module.parametrizations:
        return module.parametrizations.weight.original
    return module.weight


class _PerFrame:
    """A 3-D (transposed) convolution whose kernel spans one frame, computed as a 2-D one over the B*T frames.

    Same parameters (the weight keeps its ``(.., 1, kh, kw)`` shape, so state dicts and imported reference
    weights are unchanged) and the same result. Why: oneDNN's bfloat16 weight gradient of such 3-D layers
    on few, large frames is wrong on AMX CPUs. With torch 2.13 on one thread, the spatial stream's
    ``ConvTranspose3d`` of G3AN's last level (128 -> 64 channels, an input of 8 x 1 x 32 x 32) returned
    NaN in 16,384 of its 131,072 weight-gradient entries, and a paper-configuration step in bf16
    diverged at once; 54 of 94 such 3-D shapes swept (64-512 channels, 16-64 pixel frames) had NaN in
    their weight gradient, while the 2-D kernels gave float32's gradient to bf16 rounding at all of them
    (docs/benchmarks.md, "bf16 convolutions"). A 2-D convolution over frames is as fast here; with
    channels-last-3d input the frames are a free view.
    """

    def _check_frame_kernel(self) -> None:
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation  # type: ignore[attr-defined]
        extra = getattr(self, "output_padding", (0,))
        if (k[0], s[0], p[0], d[0], extra[0]) != (1, 1, 0, 1, 0):
            raise ValueError(f"{type(self).__name__} needs a one-frame kernel (1, kh, kw), temporal stride 1, "
                             f"no temporal padding; got kernel {k}, stride {s}, padding {p}")  # fmt: skip
        if self.padding_mode != "zeros":  # type: ignore[attr-defined]
            raise ValueError(f"{type(self).__name__} pads with zeros only, got padding_mode={self.padding_mode!r}")  # type: ignore[attr-defined]

    def _per_frame(self, x: torch.Tensor, conv2d: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"{type(self).__name__} expects (B, C, T, H, W) input, got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        keep_contiguous = x.is_contiguous() and t > 1
        # (B, C, T, H, W) -> (B*T, C, H, W): a view for channels-last-3d x (or T = 1), else a copy
        y = conv2d(x.transpose(1, 2).reshape(b * t, c, h, w))
        y = y.view(b, t, *y.shape[1:]).transpose(1, 2)
        return y.contiguous() if keep_contiguous else y


class FrameConv3d(_PerFrame, nn.Conv3d):
    """``nn.Conv3d`` with a ``(1, kh, kw)`` kernel, computed frame by frame as a 2-D convolution (see
    :class:`_PerFrame` for why); a drop-in replacement with the same parameters and outputs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check_frame_kernel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.squeeze(2)
        return self._per_frame(x, lambda frames: self._conv2d(frames, weight, self.bias))

    def forward_concat(self, front: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
        """``self(torch.cat([front.expand(-1, -1, T, -1, -1), back], 1))`` without building that input.

        ``front`` ``(B, C1, 1, H, W)`` is the same in every frame of ``back`` ``(B, C2, T, H, W)``. The
        convolution is linear in its input, so the weight's first C1 input channels apply to ``front``, once
        per video instead of once per frame, and the rest to ``back``; the bias is added once. The result
        is the same up to rounding, with no concatenated tensor to write, keep for backward and split again,
        and C1 / (C1 + C2) less of the per-frame arithmetic. G3AN's ``to_rgb`` at the paper configuration,
        bf16 on 2 cores of an AMD EPYC (2026-12-07), alternating the two ways in one process: a training
        step 0.04-0.1 s faster (medians 4.00 against 4.04 s and 4.21 against 4.31 s in two runs), sampling
        64 videos 0.4 s faster (9.3 against 9.7 s), and the 1 GB fused tensor of those 64 videos is gone.
        """
        if self.groups != 1:
            raise ValueError(f"{type(self).__name__}.forward_concat needs groups=1, got groups={self.groups}")
        if front.ndim != 5 or back.ndim != 5 or front.shape[2] != 1:
            raise ValueError(f"{type(self).__name__}.forward_concat expects front (B, C1, 1, H, W) and back "
                             f"(B, C2, T, H, W), got {tuple(front.shape)} and {tuple(back.shape)}")  # fmt: skip
        c1 = front.shape[1]
        if c1 + back.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}.forward_concat: {c1} + {back.shape[1]} input channels, "
                             f"the layer takes {self.in_channels}")  # fmt: skip
        weight = self.weight.squeeze(2)
        per_video = self._per_frame(front, lambda frames: self._conv2d(frames, weight[:, :c1], self.bias))
        return self._per_frame(back, lambda frames: self._conv2d(frames, weight[:, c1:], None)) + per_video

    def _conv2d(self, frames: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(frames, weight, bias, self.stride[1:], self.padding[1:], self.dilation[1:], self.groups)


class FrameConvTranspose3d(_PerFrame, nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` with a ``(1, kh, kw)`` kernel, computed frame by frame as a 2-D transposed
    convolution (see :class:`_PerFrame` for why); the same parameters and outputs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check_frame_kernel()

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("FrameConvTranspose3d does not take output_size")

        weight = self.weight.squeeze(2)

        def conv2d(frames: torch.Tensor) -> torch.Tensor:
            y = F.conv_transpose2d(frames, weight, None, self.stride[1:], self.padding[1:],
                                   self.output_padding[1:], self.groups, self.dilation[1:])  # fmt: skip
            return add_bias_(y, self.bias)

        return self._per_frame(x, conv2d)


class LateBiasConvTranspose3d(nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` with its bias added after the convolution (:func:`add_bias_`); the same
    parameters and outputs."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("LateBiasConvTranspose3d does not take output_size")
        y = F.conv_transpose3d(x, self.weight, None, self.stride, self.padding, self.output_padding, self.groups,
                               self.dilation)  # fmt: skip
        return add_bias_(y, self.bias)


def add_bias_(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A transposed convolution's output ``y`` ``(N, C, ...)`` plus its ``bias`` ``(C,)``, added in place.

    PyTorch's CPU transposed convolutions compute the bias gradient inside their backward, many times
    slower than autograd's sum of the output gradient for a separate add. Measured in bf16, channels-last,
    forward and backward on 2 cores of an AMD EPYC (2026-12-07): G3AN's last spatial layer (64 -> 64
    channels, 128 frames of 32 -> 64 pixels) 275-303 ms with the bias in the convolution, 183 ms added
    here, 160-167 ms without a bias; the bias gradient alone 210 ms inside the backward against 8 ms for
    the sum; a paper-configuration bf16 training step 0.3 s faster (3.85 against 4.18 s, alternating
    steps in one process). Ordinary convolutions showed no such gap and keep their bias. Under bf16
    autocast the sum is rounded twice (the convolution's output, then with the bias): in
    ``benchmarks/check_bf16_convs.py`` the output error of G3AN's transposed convolutions rose from
    0.002-0.003 to 0.004-0.006 of the largest value, still bf16 rounding; their gradients are unchanged.
    """
    if bias is None:
        return y
    return y.add_(bias.to(y.dtype).view(1, -1, *([1] * (y.ndim - 2))))


_CONVS = (nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def init_reference(model: nn.Module, std: float = 0.02) -> None:
    """Initialise as the reference code really does (spec g3an.md section 2.5).

    Regular convolutions (including the spectrally normalised attention convs and ``to_rgb``) get
    N(0, ``std``) weights; transposed convolutions keep PyTorch's default Kaiming-uniform init, since the
    reference's ``isinstance(m, nn.Conv3d)`` test misses them; BatchNorm weights N(1, ``std``), biases 0.
    Conv biases keep PyTorch's default.
    """
    for m in model.modules():
        if isinstance(m, _CONVS):
            spectral_weight_original(m).normal_(0.0, std)
        elif isinstance(m, _NORMS) and m.affine:
            m.weight.normal_(1.0, std)
            m.bias.zero_()


@torch.no_grad()
def init_dcgan(model: nn.Module, std: float = 0.02) -> None:
    """DCGAN init as the paper states it: every (transposed) conv weight N(0, ``std``), BN N(1, ``std``) / 0."""
    for m in model.modules():
        if isinstance(m, _CONVS + _TRANSPOSED):
            spectral_weight_original(m).normal_(0.0, std)
        elif isinstance(m, _NORMS) and m.affine:
            m.weight.normal_(1.0, std)
            m.bias.zero_()


def apply_init(model: nn.Module, scheme: str) -> None:
    """Apply the named initialisation scheme (``reference`` or ``dcgan``)."""
    if scheme == "reference":
        init_reference(model)
    elif scheme == "dcgan":
        init_dcgan(model)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")


def checkpointed(fn: Callable[..., Any], modules: Iterable[nn.Module], *args: Any) -> Any:
    """``fn(*args)`` under activation checkpointing: its activations are recomputed in backward, not stored.

    Uses ``torch.utils.checkpoint`` (``use_reentrant=False``). A training forward changes some buffers:
    spectral norm's power iteration updates its ``u`` / ``v`` vectors, BatchNorm its running statistics. So
    that the recomputation repeats the original forward exactly (same normalised weights, same outputs, same
    gradients), the buffers of ``modules`` are set back to their values before the original forward while
    it runs, then restored to their current values.

    Args:
        fn: the function to run; it must use only ``modules`` (and ``args``) as state.
        modules: the modules ``fn`` calls, whose buffers it may change.
        *args: arguments of ``fn`` (tensors are kept for the recomputation; ``None`` is allowed).
    """
    buffers = [b for m in modules for b in m.buffers()]
    before = [b.clone() for b in buffers]
    calls = [0]

    def run(*a: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            return fn(*a)
        now = [b.clone() for b in buffers]
        with torch.no_grad():
            for b, v in zip(buffers, before, strict=True):
                b.copy_(v)
        try:
            return fn(*a)
        finally:  # also when the recomputation stops early, once it has what backward needs
            with torch.no_grad():
                for b, v in zip(buffers, now, strict=True):
                    b.copy_(v)

    return checkpoint(run, *args, use_reentrant=False)


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B,)`` integer labels to ``(B, num_classes)`` one-hot vectors; a clear error for out-of-range labels."""
    if y.ndim != 1 or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"class labels must be a 1-D integer tensor, got {tuple(y.shape)} {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"class labels must lie in [0, {num_classes - 1}], got min {int(y.min())}, max {int(y.max())}")
    return nn.functional.one_hot(y.long(), num_classes).to(dtype)


def class_maps(onehot: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast ``(B, K)`` one-hot vectors over the trailing dims of ``like`` (no copy until concatenated)."""
    shape = (onehot.shape[0], onehot.shape[1], *like.shape[2:])
    return onehot.view(*onehot.shape, *([1] * (like.ndim - 2))).expand(shape)


def log2_int(n: int, what: str) -> int:
    """``log2(n)`` for a power of two, else a clear error naming ``what``."""
    k = int(math.log2(n)) if n > 0 else -1
    if k < 0 or 2**k != n:
        raise ValueError(f"{what} must be a power of two, got {n}")
    return k
