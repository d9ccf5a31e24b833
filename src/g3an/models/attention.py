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

import os

import torch
import torch.nn.functional as F
from torch import nn

from g3an.models.blocks import spectral_norm
from g3an.shapes import assert_shape

__all__ = [
    "FSA",
    "FSA_LAYOUTS",
    "KERNELS",
    "AxisSelfAttention",
    "attend_chunked",
    "attend_formula",
    "attend_fused",
    "attention_kernel",
]

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
        out = _attend(q, k, v, self.gamma)  # gamma * softmax(q k^T) v, (N, L, C), softmax over keys
        if self.layout == "correct":
            if self.axis == "time":
                out = out.view(b, h, w, t, c).permute(0, 4, 3, 1, 2)
            else:
                out = out.view(b, t, h, w, c).permute(0, 4, 1, 2, 3)
            # x + gamma * out in x's layout. An elementwise op over operands in different memory orders is
            # several times slower than a copy, so TSA's output ((B, H, W, T, C) in memory) is first copied
            # into x's order; SSA's already is when x is channels-last-3d.
            if not _same_layout(out, x):
                out = out.contiguous(memory_format=_memory_format(x))
            return x + out
        # Reference: reinterpret the (N, L, C) buffer as (b, h, w, C, t), then permute to (b, C, t, h, w).
        return x + out.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    cl = x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
    return torch.channels_last_3d if cl else torch.contiguous_format


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` (same shape) lay out their elements in the same order in memory."""
    fmt = _memory_format(b)
    return b.is_contiguous(memory_format=fmt) and a.is_contiguous(memory_format=fmt)


def _pointwise(convs: tuple[nn.Conv3d, ...], x: torch.Tensor) -> torch.Tensor:
    """1x1x1 ``convs`` applied to channels-last ``x`` (``(..., C)``) as one matrix product; their outputs
    concatenated on the last axis. Each conv's (spectrally normalised) weight is read once."""
    weight = torch.cat([conv.weight.flatten(1) for conv in convs])
    bias = torch.cat([conv.bias for conv in convs])
    return F.linear(x, weight, bias)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``gamma * softmax(q k^T) v`` with scale 1 for q, k ``(N, L, d)``, v ``(N, L, C)``, ``d <= C``, and a
    scalar ``gamma``, by :func:`attention_kernel`'s choice:

    * ``chunked`` (CPUs): :func:`attend_chunked`, a few sequences at a time with float32 scores that are
      recomputed in backward, q k^T at the true 32 channels. It keeps only q, k, v (views of the one
      q/k/v product) and a number per query for backward, with ``gamma`` applied inside, so neither the
      scores nor the attended output are stored.
    * ``fused`` (GPUs): PyTorch's fused (flash) kernel for long sequences (SSA's 1,024 positions). It needs
      one head size for q, k and v, but v is 8x wider here, so q and k are padded with zero channels (q k^T
      is unchanged, its cost is not). Short sequences (``L <= C``: TSA's 16 frames) take the formula, whose
      scores take no more memory than v, in float32 even under bf16 autocast.

    Measured with ``benchmarks/bench_attention.py`` on a paper-configuration step's SSA (8 x 16 sequences
    of 1,024, 32 query/key and 256 value channels), forward + backward, with the same error against
    float64: on a 2-core AMX Xeon chunked 0.58 s in bf16 and 1.08 s in fp32, fused 0.73 s and 1.91 s
    (2026-12-07; the unchunked formula 1.06 s in bf16, keeping 0.5 GB of scores); on one core of an AMD
    EPYC with AVX512-BF16 (no AMX) chunked 2.4 s and fused 4.6 s in bf16. TSA (8,192 sequences of 16) took
    0.09 s by the formula against 0.58 s fused in bf16 on the Xeon; on one core of the EPYC (beside other
    jobs, alternating in one process, times gamma) 0.47 s chunked against 0.60 s by the formula.
    """
    d, c = q.shape[-1], v.shape[-1]
    if d > c:
        raise ValueError(f"attention: query/key channels ({d}) exceed value channels ({c})")
    if attention_kernel(q.device) == "chunked":
        return attend_chunked(q, k, v, gamma)
    out = attend_formula(q, k, v) if q.shape[1] <= c else attend_fused(q, k, v)
    return out * gamma.to(out.dtype)


KERNELS = ("auto", "fused", "chunked")


def attention_kernel(device: torch.device) -> str:
    """F-SA's kernel: ``fused`` under ``torch.compile`` (which would unroll the chunk loop); else
    ``G3AN_ATTENTION`` (``fused`` or ``chunked``) when set; else ``fused`` on GPUs and ``chunked`` on CPUs
    (faster there, with or without AMX, and it keeps less for backward)."""
    if torch.compiler.is_compiling():
        return "fused"
    choice = os.environ.get("G3AN_ATTENTION", "auto") or "auto"
    if choice not in KERNELS:
        raise ValueError(f"G3AN_ATTENTION must be one of {', '.join(KERNELS)}, got {choice!r}")
    if choice != "auto":
        return choice
    return "fused" if device.type != "cpu" else "chunked"


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


def attend_chunked(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor | None = None
) -> torch.Tensor:
    """softmax(q k^T) v, times the scalar ``gamma`` when given, a few sequences at a time, the scores in
    float32 (also under autocast).

    Forward keeps q, k, v and each query's log-sum-exp: not the scores, nor the output. Backward recomputes
    the scores chunk by chunk and takes softmax's ``rowsum(p * dp)`` from them (L numbers a row, against
    C for the usual ``rowsum(grad_out * out)``), which is also all ``gamma``'s gradient needs. Under bf16,
    the score gradients are computed in float32 and rounded to bf16 for the two products that give dq and
    dk, as p is for p v (on the paper configuration's SSA, 2 cores of an AMD EPYC: backward 0.86 against
    0.94 s, alternating in one process). The largest relative errors against float64 there
    (``benchmarks/bench_attention.py``, 2026-12-08): out 0.0076, dq 0.0090, dk 0.0092, dv 0.0073; PyTorch's
    fused kernel 0.0073, 0.0069, 0.0112, 0.0087.

    The chunk holds about 2 M scores (8 MB in float32) so that it stays in cache, and its buffers are
    reused across chunks: a fresh multi-megabyte tensor per chunk costs more in page faults than its
    products.
    """
    return _ChunkedAttention.apply(q, k, v, gamma)


_CHUNK_SCORES = 1 << 21


class _ChunkedAttention(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor | None
    ) -> torch.Tensor:
        n, length, _ = q.shape
        chunk = max(1, min(n, _CHUNK_SCORES // (length * length)))
        out = torch.empty_like(v, memory_format=torch.contiguous_format)
        lse = torch.empty(n, length, 1, dtype=torch.float32, device=q.device)
        scores = q.new_empty((chunk, length, length), dtype=torch.float32)
        probs = scores if v.dtype == torch.float32 else torch.empty_like(scores, dtype=v.dtype)
        with torch.autocast(q.device.type, enabled=False):
            scale = None if gamma is None else gamma.detach().float()
            for i in range(0, n, chunk):
                rows = slice(i, i + chunk)
                m = q[rows].shape[0]
                s, p = scores[:m], probs[:m]
                torch.bmm(q[rows].float(), k[rows].float().transpose(1, 2), out=s)
                top = s.amax(-1, keepdim=True)
                s.sub_(top).exp_()
                total = s.sum(-1, keepdim=True)
                torch.add(top, total.log(), out=lse[rows])
                if p is not s:
                    p.copy_(s)
                torch.bmm(p, v[rows], out=out[rows])
                # normalising the output (C values a row, not L), gamma with it
                norm = total.reciprocal_() if scale is None else torch.div(scale, total)
                out[rows].mul_(norm.to(out.dtype))
        ctx.save_for_backward(q, k, v, lse, gamma)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        q, k, v, lse, gamma = ctx.saved_tensors
        chunk, (n, length, _) = ctx.chunk, q.shape
        grad_out = grad_out.to(v.dtype).contiguous()
        dq = torch.empty(q.shape, dtype=v.dtype, device=q.device)
        dk = torch.empty_like(dq)
        dv = torch.empty_like(v, memory_format=torch.contiguous_format)
        probs = q.new_empty((chunk, length, length), dtype=torch.float32)
        low = probs if v.dtype == torch.float32 else torch.empty_like(probs, dtype=v.dtype)
        dscores, product = torch.empty_like(probs), torch.empty_like(probs)
        dprobs = dscores if v.dtype == torch.float32 else torch.empty_like(probs, dtype=v.dtype)
        q_low, k_low = q.to(v.dtype), k.to(v.dtype)
        scale = None if gamma is None else gamma.detach().float()
        dgamma = torch.zeros((), dtype=torch.float32, device=q.device)
        with torch.autocast(q.device.type, enabled=False):
            for i in range(0, n, chunk):
                rows = slice(i, i + chunk)
                m = q[rows].shape[0]
                p, pl, ds, dp, pds = probs[:m], low[:m], dscores[:m], dprobs[:m], product[:m]
                qf, kf, go = q[rows].float(), k[rows].float(), grad_out[rows]
                torch.bmm(qf, kf.transpose(1, 2), out=p)
                p.sub_(lse[rows]).exp_()
                if pl is not p:
                    pl.copy_(p)
                torch.bmm(pl.transpose(1, 2), go, out=dv[rows])
                torch.bmm(go, v[rows].transpose(1, 2), out=dp)  # d(probs), before gamma
                if ds is not dp:
                    ds.copy_(dp)
                delta = torch.mul(p, ds, out=pds).sum(-1, keepdim=True)  # = rowsum(grad_out * out / gamma)
                ds.sub_(delta).mul_(p)  # d(scores) = p * (dp - rowsum(p * dp)), in float32
                if scale is not None:
                    dgamma += delta.sum()
                    ds.mul_(scale)
                    dv[rows].mul_(scale.to(dv.dtype))
                if dp is not ds:  # in low precision, dq and dk take d(scores) rounded as p v takes p
                    dp.copy_(ds)
                torch.bmm(dp, k_low[rows], out=dq[rows])
                torch.bmm(dp.transpose(1, 2), q_low[rows], out=dk[rows])
        grad_gamma = None if gamma is None else dgamma.reshape(gamma.shape).to(gamma.dtype)
        return dq.to(q.dtype), dk.to(k.dtype), dv, grad_gamma


class FSA(nn.Module):
    """F-SA: :class:`AxisSelfAttention` over time, then over space; input and output ``(B, C, T, H, W)``."""

    def __init__(self, channels: int, layout: str = "correct") -> None:
        super().__init__()
        self.tsa = AxisSelfAttention(channels, "time", layout)
        self.ssa = AxisSelfAttention(channels, "space", layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ssa(self.tsa(x))
