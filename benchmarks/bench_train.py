"""Benchmark: one training step and sampling for a registered model, in fp32 or bf16, on this machine.

Each configuration runs in its own process so its peak resident memory is its own. Prints time (median
of ``--repeats`` after a warm-up), videos/s, FLOPs counted with ``torch.utils.flop_counter``, achieved
GFLOP/s, the fraction of the machine's measured matmul peak in that precision, and the peak resident
memory of the warm-up and timed runs. FLOPs are counted in one more, eager run, with F-SA's attention as
its formula (see ``_plain_attention``).

    python benchmarks/bench_train.py --model g3an --batch 8 --precision fp32            # paper configuration
    python benchmarks/bench_train.py --model g3an --batch 8 --precision fp32 --sample 64
    python benchmarks/bench_train.py --model g3an --batch 8 --precision fp32 --checkpoint-levels 2
    python benchmarks/bench_train.py --batch 8 --checkpoint-levels 5 --malloc-mmap-threshold 131072  # least memory
    python benchmarks/bench_train.py --batch 8 --precision bf16 --compile              # TrainConfig.compile
    python benchmarks/bench_train.py --batch 8 --no-channels-last                      # PyTorch's default layout
    python benchmarks/bench_train.py --all --repeats 2 --markdown docs/benchmarks.md     # the table in the docs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from g3an import machine


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Achieved GFLOP/s of an n x n matmul in ``dtype`` (the machine's practical peak)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


@contextlib.contextmanager
def _plain_attention() -> Iterator[None]:
    """Count F-SA's attention as its formula, gamma * softmax(q k^T) v: the flop counter does not count
    PyTorch's fused CPU kernel at all (whose q k^T runs on queries and keys zero-padded to the value width,
    8x the formula's work in that product), and it would count the chunked kernel's scores twice (once
    more when backward recomputes them). The FLOPs reported are the model's arithmetic, as the spec counts
    the reference's; the time is the chosen kernel's."""
    from g3an.models import attention

    chosen = attention._attend
    attention._attend = lambda q, k, v, gamma: attention.attend_formula(q, k, v) * gamma.to(v.dtype)
    try:
        yield
    finally:
        attention._attend = chosen


class _Clips(torch.utils.data.Dataset):
    def __init__(self, n: int, frames: int, size: int) -> None:
        self.video = torch.rand(3, frames, size, size) * 2 - 1
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        return {"video": self.video, "label": torch.tensor(0)}


def bench_trainer(run_dir: str, options: dict):
    """A ``Trainer`` on ``_Clips`` (no data on disk, no logging) for ``TrainConfig`` ``options``, with the
    benchmarks' common settings: CPU, no loader workers, no sampling, steps unbounded."""
    from g3an.train import TrainConfig
    from g3an.train.loop import Trainer

    cfg = TrainConfig.from_dict({"steps": 10**6, "workers": 0, "device": "cpu", "sample_every": 0, **options})
    res = cfg.model_config.get("resolution", 64)
    trainer = Trainer(cfg, Path(run_dir), _Clips(cfg.batch_size, cfg.num_frames, res), progress=False)
    trainer.logger.enabled = False
    return trainer


def run_one(args: argparse.Namespace) -> dict:
    from g3an.models.attention import attention_kernel
    from g3an.train.loop import autocast_context, eager

    torch.set_num_threads(args.threads)
    model_cfg = json.loads(args.model_config)
    trainer = bench_trainer("/tmp/g3an-bench-run", {
        "model": args.model, "model_config": model_cfg, "batch_size": args.batch, "precision": args.precision,
        "checkpoint_levels": args.checkpoint_levels, "malloc_mmap_threshold": args.malloc_mmap_threshold,
        "channels_last": args.channels_last, "compile": args.compile})  # fmt: skip
    out = {"model": args.model, "config": model_cfg, "precision": args.precision, "threads": args.threads,
           "checkpoint_levels": args.checkpoint_levels, "malloc_mmap_threshold": args.malloc_mmap_threshold,
           "channels_last": args.channels_last, "compile": args.compile,
           "attention": attention_kernel(torch.device("cpu"))}  # fmt: skip
    if args.sample:
        G = trainer.G.eval()
        lat = G.sample_latents(args.sample, generator=torch.Generator().manual_seed(0))

        def work() -> None:
            with torch.no_grad(), autocast_context(args.precision, torch.device("cpu")):
                G(**lat)

        out.update(task=f"sample {args.sample} videos", videos=args.sample)
    else:
        batch = next(trainer.batches())

        def work() -> None:
            trainer.train_step(batch)

        out.update(task=f"train step, batch {args.batch}", videos=args.batch)
    t = time.perf_counter()
    work()  # warm-up; with --compile the first calls compile (the phases differ in which networks need gradients)
    if args.compile:
        out["compile_seconds"] = round(time.perf_counter() - t, 1)
        work()
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # before the counting run's formula
    with eager(), _plain_attention(), FlopCounterMode(display=False) as counter:
        work()
    flops = counter.get_total_flops()
    peak = matmul_peak(torch.bfloat16 if args.precision == "bf16" else torch.float32)
    out.update(
        seconds=round(sec, 3), times=[round(t, 3) for t in times], videos_per_sec=round(out["videos"] / sec, 2),
        gflop=round(flops / 1e9, 1), gflops_per_sec=round(flops / 1e9 / sec, 1), matmul_peak_gflops=round(peak, 1),
        fraction_of_peak=round(flops / 1e9 / sec / peak, 3), peak_rss_gb=round(peak_rss, 2),
    )  # fmt: skip
    return out


# (model, model options, batch, sampled videos, label, precisions, run options). Run options: TrainConfig's
# checkpoint_levels, malloc_mmap_threshold, channels_last (default True) and compile; "attention" sets
# G3AN_ATTENTION (F-SA's long-sequence kernel; default: g3an's choice for the machine). bf16 rows run only on
# a CPU with native bfloat16 (AMX or AVX512-BF16): elsewhere PyTorch emulates it and one paper-size step
# takes minutes (native_bf16()).
LEAST_MEMORY = {"checkpoint_levels": 5, "malloc_mmap_threshold": 131072}
CASES = [
    ("g3an", {}, 8, 0, "paper configuration (ch 64, F-SA at level 3)", ("fp32", "bf16"), {}),
    ("g3an", {}, 8, 0, "paper configuration, every generator level recomputed in backward", ("fp32",),
     {"checkpoint_levels": 5}),
    ("g3an", {}, 8, 0, "paper configuration, every level recomputed, malloc mmap threshold 128 KiB",
     ("fp32", "bf16"), LEAST_MEMORY),
    ("g3an", {}, 8, 0, "paper configuration, glibc's malloc threshold (the default before 1 GiB)", ("fp32", "bf16"),
     {"malloc_mmap_threshold": None}),
    ("g3an", {}, 8, 0, "paper configuration, G3AN_ATTENTION=fused", ("fp32", "bf16"), {"attention": "fused"}),
    ("g3an", {}, 8, 0, "paper configuration, G3AN_ATTENTION=chunked", ("fp32", "bf16"), {"attention": "chunked"}),
    ("g3an", {}, 8, 0, "paper configuration, torch.compile", ("fp32", "bf16"), {"compile": True}),
    ("g3an", {}, 8, 0, "paper configuration, contiguous layout (before channels-last)", ("fp32", "bf16"),
     {"channels_last": False}),
    ("g3an", {"fsa_level": None}, 8, 0, "paper configuration without F-SA", ("fp32", "bf16"), {}),
    ("g3an", {}, 0, 64, "paper configuration, sampling", ("fp32", "bf16"), {}),
    ("g3an", {}, 0, 64, "paper configuration, sampling, torch.compile", ("bf16",), {"compile": True}),
    ("g3an", {"ch": 16, "ch_d": 16}, 8, 0, "demo configuration (ch 16)", ("fp32", "bf16"), {}),
    ("vgan", {}, 8, 0, "VGAN (registry defaults, 16x64x64)", ("fp32", "bf16"), {}),
    ("vgan", {}, 0, 64, "VGAN, sampling", ("fp32", "bf16"), {}),
    ("tgan", {}, 8, 0, "TGAN (registry defaults, 16x64x64)", ("fp32", "bf16"), {}),
    ("tgan", {}, 0, 64, "TGAN, sampling", ("fp32", "bf16"), {}),
    ("mocogan", {}, 8, 0, "MoCoGAN (registry defaults, 16x64x64)", ("fp32", "bf16"), {}),
    ("mocogan", {}, 0, 64, "MoCoGAN, sampling", ("fp32", "bf16"), {}),
]  # fmt: skip


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's check: AMX, AVX512-BF16 or AVX512 core)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="g3an")
    p.add_argument("--model-config", default="{}", help="JSON options of the model")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--sample", type=int, default=0, help="benchmark sampling this many videos instead of training")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--checkpoint-levels", type=int, default=0, help="TrainConfig.checkpoint_levels (0: off)")
    p.add_argument(
        "--malloc-mmap-threshold",
        type=machine.malloc_threshold_arg,
        default=machine.KEEP_FREED,
        metavar="BYTES",
        help="TrainConfig.malloc_mmap_threshold (default: its default, 1 GiB; 'glibc': glibc's dynamic threshold)",
    )
    p.add_argument(
        "--no-channels-last",
        dest="channels_last",
        action="store_false",
        help="keep PyTorch's default (contiguous) layout instead of channels-last-3d",
    )
    p.add_argument("--compile", action="store_true", help="TrainConfig.compile: torch.compile G and D")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--all", action="store_true", help="run the table of CASES in both precisions, one process each")
    p.add_argument("--markdown", type=Path, default=None, help="write the table to this file's Training section")
    args = p.parse_args()
    if not args.all:
        print(json.dumps(run_one(args)))
        return
    rows = []
    skip_bf16 = not native_bf16()
    if skip_bf16:
        print("this CPU has no native bfloat16: the bf16 rows are skipped", file=sys.stderr)
    for model, cfg, batch, sample, what, precisions, memory in CASES:
        for prec in precisions:
            if prec == "bf16" and skip_bf16:
                continue
            cmd = [sys.executable, __file__, "--model", model, "--model-config", json.dumps(cfg), "--batch",
                   str(batch or 8), "--sample", str(sample), "--precision", prec, "--threads", str(args.threads),
                   "--repeats", str(args.repeats)]  # fmt: skip
            cmd += [a for k, v in memory.items() if k not in ("channels_last", "compile", "attention")
                    for a in ("--" + k.replace("_", "-"), str(v))]  # fmt: skip
            cmd += ["--no-channels-last"] if memory.get("channels_last") is False else []
            cmd += ["--compile"] if memory.get("compile") else []
            env = dict(os.environ, G3AN_ATTENTION=memory.get("attention", "auto"))
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["what"] = what
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = [
        "| what | task | precision | seconds | videos/s | GFLOP | GFLOP/s | of matmul peak | peak RSS GB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def compiled(r: dict) -> str:
        return f" (first step {r['compile_seconds']} s: compiling)" if "compile_seconds" in r else ""

    for r in rows:
        peak = f"{r['fraction_of_peak']:.0%} of {r['matmul_peak_gflops']}"
        table.append(
            f"| {r['what']}{compiled(r)} | {r['task']} | {r['precision']} | {r['seconds']} | {r['videos_per_sec']} | "
            f"{r['gflop']} | {r['gflops_per_sec']} | {peak} | {r['peak_rss_gb']} |"
        )
    text = "\n".join(table)
    print(text)
    if args.markdown:
        command = f"python benchmarks/bench_train.py --all --repeats {args.repeats} --markdown {args.markdown}"
        section = (
            f"## Training and sampling\n\nMachine: {machine.describe()}; {args.threads} threads; load average at "
            f"the end {os.getloadavg()[0]:.2f}.\nCommand: `{command}`\n\n{text}\n"
        )
        write_section(args.markdown, "## Training and sampling", section)


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace (or append) the section starting at ``heading`` in a markdown file, keeping the others."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text)


if __name__ == "__main__":
    main()
