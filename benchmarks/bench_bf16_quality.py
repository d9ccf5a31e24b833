"""Benchmark: does training in bf16 give as good a G3AN as float32, at the same number of steps?

Trains the paper-tables ``g3an`` row (G3AN with F-SA, 32x32, an embedded dataset) for several seeds in
float32 and in bf16 autocast, through the same code as ``benchmarks/paper_tables.py`` (same budget,
data, evaluation latents and real clips for every run), and compares the embedded FID of the EMA
generators: bf16 passes when its mean lies within the run-to-run spread of float32 (mean ± 2 standard
deviations over seeds). A Welch t-test of the two sets of FIDs is printed with it. The result goes to
the "bf16 training quality" section of ``docs/benchmarks.md``.

    python benchmarks/bench_bf16_quality.py                         # 4 seeds each, 300 steps, synth-actions
    python benchmarks/bench_bf16_quality.py --seeds 2 --steps 50 --markdown /tmp/q.md   # a quick look

bf16 needs a CPU with native bfloat16 (AMX or AVX512-BF16) or a GPU to be quick; elsewhere PyTorch
emulates it and the bf16 runs take many times longer.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling scripts; spawned workers inherit sys.path

import paper_tables  # noqa: E402
from bench_train import native_bf16, write_section  # noqa: E402

HEADING = "## bf16 training quality"
PRECISIONS = ("fp32", "bf16")


def fid_values(specs: list, work_dir: Path) -> list[float]:
    out = []
    for spec in specs:
        path = spec.result_path(work_dir)
        if not path.is_file():
            continue
        value = json.loads(path.read_text()).get("metrics", {}).get("fid", {}).get("value")
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append(float(value))
    return out


def welch_p(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(a, b, equal_var=False).pvalue)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(paper_tables.DATASET_LABELS), default="actions")
    p.add_argument("--seeds", type=int, default=4, help="seeds 0..SEEDS-1 in each precision")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--ch", type=int, default=16, help="width (paper_tables.py --ch)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-n", type=int, default=256)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--work-dir", default="runs/bf16-quality")
    p.add_argument("--markdown", type=Path, default=Path("docs/benchmarks.md"))
    args = p.parse_args()
    if args.seeds < 2:
        raise SystemExit("--seeds must be at least 2: the spread needs two runs")
    if not native_bf16():
        print("warning: this CPU has no native bfloat16; the bf16 runs will be slow", file=sys.stderr)

    pt_args = paper_tables.build_parser().parse_args([
        "--steps", str(args.steps), "--ch", str(args.ch), "--batch-size", str(args.batch_size),
        "--seeds", str(args.seeds), "--eval-n", str(args.eval_n), "--threads", str(args.threads),
        "--datasets", args.dataset, "--rows", "g3an", "--data-dir", args.data_dir,
    ])  # fmt: skip
    rows = paper_tables.selected_rows("g3an")
    data = {args.dataset: paper_tables.ensure_dataset(Path(args.data_dir), args.dataset, pt_args.videos, args.jobs)}
    work_dir = Path(args.work_dir)
    t0 = time.perf_counter()
    specs = {}
    for prec in PRECISIONS:
        specs[prec] = paper_tables.plan(pt_args, rows, [args.dataset], data)
        for spec in specs[prec]:
            spec.train["precision"] = prec  # part of the run's hash: its own directory and result file
    paper_tables.run_all(specs["fp32"] + specs["bf16"], work_dir, args.jobs, args.threads)
    wall = time.perf_counter() - t0

    fids = {prec: fid_values(specs[prec], work_dir) for prec in PRECISIONS}
    if any(len(v) < 2 for v in fids.values()):
        raise SystemExit(f"too few finished runs to compare: {fids}")
    mean = {k: statistics.fmean(v) for k, v in fids.items()}
    std = {k: statistics.stdev(v) for k, v in fids.items()}
    low, high = mean["fp32"] - 2 * std["fp32"], mean["fp32"] + 2 * std["fp32"]
    ok = low <= mean["bf16"] <= high
    pval = welch_p(fids["fp32"], fids["bf16"])
    seconds = {}
    for prec in PRECISIONS:
        recs = [json.loads(s.result_path(work_dir).read_text()) for s in specs[prec]]
        seconds[prec] = statistics.median(r["seconds"]["train"] / r["steps"] for r in recs if r.get("steps"))

    import torch

    from g3an import machine

    label = paper_tables.DATASET_LABELS[args.dataset]
    command = (f"python benchmarks/bench_bf16_quality.py --dataset {args.dataset} --seeds {args.seeds} "
               f"--steps {args.steps} --ch {args.ch} --batch-size {args.batch_size} --eval-n {args.eval_n} "
               f"--jobs {args.jobs} --threads {args.threads}")  # fmt: skip
    lines = [
        HEADING, "",
        f"Machine: {machine.describe()}; torch {torch.__version__}; {args.jobs} runs at a time, {args.threads} "
        f"thread(s) each; {wall / 60:.0f} minutes of wall time (runs finished earlier are reused).",
        f"Command: `{command}`", "",
        f"G3AN with F-SA (the paper-tables `g3an` row: 32x32, width ch {args.ch}, batch {args.batch_size}, "
        f"{args.steps} steps, EMA generator) on {label}, seeds 0-{args.seeds - 1} in each precision; "
        f"FID: `fid{args.eval_n}_embedded_{args.dataset}` (lower is better).", "",
        "| precision | FID per seed | mean ± std | s / step |", "| --- | --- | --- | --- |",
    ]  # fmt: skip
    for prec in PRECISIONS:
        per_seed = ", ".join(f"{v:.2f}" for v in fids[prec])
        lines.append(f"| {prec} | {per_seed} | {mean[prec]:.2f} ± {std[prec]:.2f} | {seconds[prec]:.2f} |")
    verdict = "**within**" if ok else "**outside**"
    ptext = f"; Welch t-test p = {pval:.2f}" if pval is not None else ""
    lines += ["", f"The bf16 mean ({mean['bf16']:.2f}) is {verdict} fp32's run-to-run spread "
              f"(mean ± 2 std: {low:.2f} to {high:.2f}){ptext}.", ""]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    write_section(args.markdown, HEADING, text)
    print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
