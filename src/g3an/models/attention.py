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
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

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
        if self.axis == "time":
            seq = "(b h w) t c"  # one length-T sequence per spatial location
        else:
            seq = "(b t) (h w) c"  # one length-HW sequence per frame
        q = rearrange(self.q_conv(x), f"b c t h w -> {seq}")
        k = rearrange(self.k_conv(x), f"b c t h w -> {seq}")
        v = rearrange(self.v_conv(x), f"b c t h w -> {seq}")
        out = _attend(q, k, v)  # (N, L, C), softmax over keys
        if self.layout == "correct":
            out = rearrange(out, f"{seq} -> b c t h w", b=b, t=t, h=h, w=w)
        else:
            # Reference: reinterpret the (N, L, C) buffer as (b, h, w, C, t), then permute to (b, C, t, h, w).
            out = out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)
        return x + self.gamma * out


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v with scale 1 for q, k ``(N, L, d)`` and v ``(N, L, C)``.

    PyTorch's fused (flash) kernels need one head size for q, k and v, but here v is 8x wider. Without
    autograd, v is split into ``C / d`` heads of size d that share q and k, which runs the fused kernel and
    never materialises the ``L x L`` scores (sampling 64 videos at 64x64 would otherwise hold 4 GB of
    them per tensor). With autograd the math kernel is used: its backward is about twice as fast here.
    """
    d, c = q.shape[-1], v.shape[-1]
    if torch.is_grad_enabled():
        return _attend_checkpointed(q, k, v)
    if c % d:
        return F.scaled_dot_product_attention(q, k, v, scale=1.0)
    n, length, h = q.shape[0], q.shape[1], c // d
    vh = v.reshape(n, length, h, d).transpose(1, 2)  # (N, h, L, d)
    qh = q.unsqueeze(1).expand(n, h, length, d)  # the same scores for every head, not copied
    kh = k.unsqueeze(1).expand(n, h, length, d)
    out = F.scaled_dot_product_attention(qh, kh, vh, scale=1.0)  # (N, h, L, d)
    return out.transpose(1, 2).reshape(n, length, c)


#: With autograd, attention over more elements than this (sequences x L x L) runs in chunks of sequences
#: whose scores are recomputed in backward instead of being stored (about 128 MB of float32 per chunk).
CHUNK_SCORES = 32 * 1024 * 1024


def _math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def _attend_checkpointed(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Math-kernel attention whose ``L x L`` scores are kept for at most one chunk of sequences at a time.

    Small problems run directly. Large ones (the spatial attention: 1024 x 1024 scores per frame) run in
    chunks under ``torch.utils.checkpoint``: backward recomputes each chunk's scores, so training memory
    holds one chunk's scores instead of all of them; gradients are the same computation.
    """
    n, length = q.shape[0], q.shape[1]
    per_chunk = max(1, CHUNK_SCORES // (length * length))
    if n <= per_chunk:
        return _math_attention(q, k, v)
    outs = [
        checkpoint(_math_attention, q[i : i + per_chunk], k[i : i + per_chunk], v[i : i + per_chunk],
                   use_reentrant=False)
        for i in range(0, n, per_chunk)
    ]  # fmt: skip
    return torch.cat(outs, 0)


class FSA(nn.Module):
    """F-SA: :class:`AxisSelfAttention` over time, then over space; input and output ``(B, C, T, H, W)``."""

    def __init__(self, channels: int, layout: str = "correct") -> None:
        super().__init__()
        self.tsa = AxisSelfAttention(channels, "time", layout)
        self.ssa = AxisSelfAttention(channels, "space", layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ssa(self.tsa(x))
