"""Benchmark: F-SA's attention kernels (fused, chunked, the formula), forward and backward.

The shape defaults to the spatial attention (SSA) of a paper-configuration training step: F-SA after the
third G3 module sees (8, 256, 16, 32, 32), i.e. 8 x 16 sequences of 32 x 32 = 1,024 positions with 32
query/key channels and 256 value channels. ``fused`` is ``g3an.models.attention.attend_fused`` (PyTorch's
flash kernel with q, k zero-padded to the value width; g3an's choice on GPUs); ``chunked`` is
``attend_chunked`` (a few sequences at a time, float32 scores recomputed in backward; g3an's choice on
CPUs, ``attention_kernel``); ``formula`` is ``attend_formula`` (the L x L
scores in float32, a softmax and a second product; the scores are kept for backward), which g3an uses
for sequences no longer than the value width (TSA); ``plain`` is the formula with the scores in the
working precision, as the reference code computes it. Errors are relative to float64.

    python benchmarks/bench_attention.py                       # fp32 and bf16, the SSA shape
    python benchmarks/bench_attention.py --length 16 --sequences 8192   # the TSA shape (T = 16 at 32 x 32)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from g3an.models.attention import attend_chunked, attend_formula, attend_fused, attention_kernel


def plain(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.bmm(torch.bmm(q, k.transpose(1, 2)).softmax(-1), v)


KERNELS = (("fused", attend_fused), ("chunked", attend_chunked), ("formula", attend_formula), ("plain", plain))


def run(fn, inputs, grad, dtype: torch.dtype) -> tuple[list[torch.Tensor], float, float]:
    q, k, v = (x.detach().to(dtype).clone().requires_grad_() for x in inputs)
    t0 = time.perf_counter()
    out = fn(q, k, v)
    t1 = time.perf_counter()
    out.backward(grad.to(dtype))
    t2 = time.perf_counter()
    return [out, q.grad, k.grad, v.grad], t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=8 * 16, help="N, the number of sequences")
    parser.add_argument("--length", type=int, default=32 * 32, help="L, positions per sequence")
    parser.add_argument("--qk", type=int, default=32, help="query/key channels (C / 8)")
    parser.add_argument("--channels", type=int, default=256, help="value channels C")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    n, length = args.sequences, args.length
    inputs = (
        torch.randn(n, length, args.qk, generator=g) * 0.5,
        torch.randn(n, length, args.qk, generator=g) * 0.5,
        torch.randn(n, length, args.channels, generator=g),
    )
    grad = torch.randn(n, length, args.channels, generator=g)
    ref, _, _ = run(plain, inputs, grad, torch.float64)
    print(
        f"torch {torch.__version__}, {args.threads} threads; N={n} L={length} d={args.qk} C={args.channels}; "
        f"g3an's choice here: {attention_kernel(torch.device('cpu'))}"
    )
    print(f"{'kernel':8s} {'dtype':8s} {'forward s':>10s} {'backward s':>11s}  max relative error (out, dq, dk, dv)")
    for dtype in (torch.float32, torch.bfloat16):
        for name, fn in KERNELS:
            runs = [run(fn, inputs, grad, dtype) for _ in range(args.repeats + 1)][1:]  # first is a warm-up
            res = runs[-1][0]
            fwd = statistics.median(r[1] for r in runs)
            bwd = statistics.median(r[2] for r in runs)
            err = ", ".join(f"{((a - b.double()).abs().max() / a.abs().max()).item():.4f}" for a, b in zip(ref, res))
            print(f"{name:8s} {str(dtype).split('.')[-1]:8s} {fwd:10.3f} {bwd:11.3f}  {err}", flush=True)


if __name__ == "__main__":
    main()
