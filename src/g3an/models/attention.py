"""Factorised spatio-temporal self-attention (F-SA) of G3AN (paper section 3.3; reference ``model/ops.py``).

F-SA is temporal self-attention (TSA, a T x T attention at every spatial location) followed by spatial
self-attention (SSA, an HW x HW attention in every frame). Each has spectrally normalised 1x1x1 query /
key convs (C -> C/8), a value conv (C -> C), no output projection, no 1/sqrt(d) scaling, and a residual
scaled by a learned scalar ``gamma`` that starts at 0, so F-SA starts as the identity.

Two layouts of the attended tensor are available:

* ``correct`` (default): the attended features are put back where they came from.
* ``reference``: reproduces the reference code's ``view(b, h, w, -1, t)`` of a tensor laid out
  ``(b, h, w, t, c)`` (TSA) or ``(b, t, h, w, c)`` (SSA), which scrambles axes before the residual add
  (spec g3an.md section 2.4). Needed to run the released weights as they were trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from g3an.models.blocks import spectral_norm
from g3an.shapes import assert_shape

__all__ = ["FSA", "FSA_LAYOUTS", "AxisSelfAttention"]

FSA_LAYOUTS = ("correct", "reference")


class AxisSelfAttention(nn.Module):
    """Self-attention of a ``(B, C, T, H, W)`` tensor along time (``axis="time"``) or space (``axis="space"``).

    Args:
        channels: C, channels of the input and output.
        axis: ``"time"`` (TSA) or ``"space"`` (SSA).
        layout: ``"correct"`` or ``"reference"`` (see the module docstring).
        reduction: query/key channels are ``channels // reduction`` (8 in the paper).
    """

    def __init__(self, channels: int, axis: str, layout: str = "correct", reduction: int = 8) -> None:
        super().__init__()
        if axis not in ("time", "space"):
            raise ValueError(f"axis must be 'time' or 'space', got {axis!r}")
        if layout not in FSA_LAYOUTS:
            raise ValueError(f"F-SA layout must be one of {FSA_LAYOUTS}, got {layout!r}")
        if channels % reduction or channels < reduction:
            raise ValueError(f"F-SA channels ({channels}) must be a positive multiple of {reduction}")
        self.channels, self.axis, self.layout = channels, axis, layout
        qk = channels // reduction
        self.q_conv = spectral_norm(nn.Conv3d(channels, qk, 1))
        self.k_conv = spectral_norm(nn.Conv3d(channels, qk, 1))
        self.v_conv = spectral_norm(nn.Conv3d(channels, channels, 1))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(f"{self.axis} attention input", x, (None, self.channels, None, None, None))
        b, c, t, h, w = x.shape
        # The 1x1x1 query/key/value convs are one matrix product on the channel axis of x laid out
        # (B, T, H, W, C) (a free view when x is channels-last-3d; under autocast x is cast once).
        qkv = _pointwise((self.q_conv, self.k_conv, self.v_conv), x.permute(0, 2, 3, 4, 1))
        # Sequences outermost: (B, H, W, T, .) for TSA, (B, T, H, W, .) for SSA.
        if self.axis == "time":
            qkv = qkv.permute(0, 2, 3, 1, 4)
            n, length = b * h * w, t
        else:
            n, length = b * t, h * w
        q, k, v = qkv.reshape(n, length, -1).split([self.q_conv.out_channels, self.k_conv.out_channels, c], -1)
        out = _attend(q, k, v)  # (N, L, C), softmax over keys
        if self.layout == "correct":
            if self.axis == "time":
                out = out.view(b, h, w, t, c).permute(0, 4, 3, 1, 2)
            else:
                out = out.view(b, t, h, w, c).permute(0, 4, 1, 2, 3)
            return x.addcmul(self.gamma, out)  # x + gamma * out, in x's layout, without a copy of out
        # Reference: reinterpret the (N, L, C) buffer as (b, h, w, C, t), then permute to (b, C, t, h, w).
        out = out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)
        return x + self.gamma * out


def _pointwise(convs: tuple[nn.Conv3d, ...], x: torch.Tensor) -> torch.Tensor:
    """1x1x1 ``convs`` applied to channels-last ``x`` (``(..., C)``) as one matrix product; their outputs
    concatenated on the last axis. Each conv's (spectrally normalised) weight is read once."""
    weight = torch.cat([conv.weight.flatten(1) for conv in convs])
    bias = torch.cat([conv.bias for conv in convs])
    return F.linear(x, weight, bias)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v with scale 1 for q, k ``(N, L, d)`` and v ``(N, L, C)``, ``d <= C``.

    Short sequences (``L <= C``: TSA's 16 frames) use the formula: the scores take no more memory than v,
    and are computed and normalised in float32 even under bf16 autocast. Long ones (SSA's 1,024 positions)
    use PyTorch's fused (flash) kernel, which never stores the ``L x L`` scores, in training (its backward
    recomputes them blockwise) or sampling, and also keeps them in float32 under autocast. It needs one
    head size for q, k and v, but v is 8x wider here, so q and k are padded with zero channels (q k^T is
    unchanged). On an AMX CPU (benchmarks/bench_attention.py), forward and backward of a paper-configuration
    step's SSA (8 x 16 sequences of 1,024) took 0.65 s in bf16 and 1.55 s in float32 fused, 1.45 s and
    2.4 s by the formula, which would also keep 0.5 GB of scores (the formula with bf16 scores, as the
    reference computes it: 0.56 s, with 1.7x the error); its TSA (8,192 sequences of 16) took 0.09 s
    by the formula against 0.58 s fused in bf16.
    """
    d, c = q.shape[-1], v.shape[-1]
    if d > c:
        raise ValueError(f"attention: query/key channels ({d}) exceed value channels ({c})")
    return attend_formula(q, k, v) if q.shape[1] <= c else attend_fused(q, k, v)


def attend_formula(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v as written, the scores in float32 (also under autocast); keeps them for backward."""
    with torch.autocast(q.device.type, enabled=False):
        weights = torch.bmm(q.float(), k.float().transpose(1, 2)).softmax(-1)
    return torch.bmm(weights.to(v.dtype), v)


def attend_fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v by PyTorch's fused kernel, q and k zero-padded to v's width."""
    d, c = q.shape[-1], v.shape[-1]
    if d < c:
        q, k = F.pad(q, (0, c - d)), F.pad(k, (0, c - d))
    return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0).squeeze(1)


class FSA(nn.Module):
    """F-SA: :class:`AxisSelfAttention` over time, then over space; input and output ``(B, C, T, H, W)``."""

    def __init__(self, channels: int, layout: str = "correct") -> None:
        super().__init__()
        self.tsa = AxisSelfAttention(channels, "time", layout)
        self.ssa = AxisSelfAttention(channels, "space", layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ssa(self.tsa(x))
