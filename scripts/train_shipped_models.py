"""Train, export, evaluate and describe the shipped G3AN models (``g3an/assets/models``).

For each embedded dataset this runs the project's own commands, in order, and records them:

1. ``g3an data synth DATASET --size 32`` (skipped when the data exist);
2. ``g3an train`` with the shipped configuration (or ``--resume`` when the run directory has checkpoints, so
   an interrupted run continues; ``--steps`` may stop earlier or extend it);
3. ``g3an export --with-discriminator`` of the last checkpoint into ``src/g3an/assets/models`` (EMA generator,
   raw generator and discriminator, so ``init=synth-actions`` can fine-tune it);
4. ``g3an eval`` of the export: embedded FID and IS and the disentanglement measures;
5. the model card ``NAME.json`` beside the weights, and ``docs/models.md`` from every card.

    python scripts/train_shipped_models.py --work runs/shipped --steps 4000
    python scripts/train_shipped_models.py --work runs/shipped --steps 1400 --datasets faces   # stop / export at 1400

With ``--finetune-steps N`` it instead continues the shipped model: a copy of the current export and its
card are kept in ``WORK/base/`` (the first time), a run ``WORK/runs/finetune-DATASET`` fine-tunes that copy
for N steps (``init=``) with ``--finetune-overrides``, and the export, evaluation and card follow as above;
the card adds both stages' steps and time and lists both training commands.

    python scripts/train_shipped_models.py --datasets actions --finetune-steps 12000 \
        --finetune-overrides "d_time_roll=0.5 threads=2"

``--finetune-name NAME`` makes a named stage (its base in ``WORK/base-NAME/``, its run
``WORK/runs/finetune-DATASET-NAME``), so stages chain: each continues the export the previous one left, and
the card lists every stage's command.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "g3an" / "assets" / "models"
CLASSES = {"actions": 10, "faces": 6}
STEM = {"actions": "g3an_synth_actions", "faces": "g3an_synth_faces"}
D_CLASS = {"projection": "a projection discriminator (`d_class=projection`, docs/architecture.md)",
           "concat": "discriminators taking a class map (`d_class=concat`, docs/architecture.md)"}  # fmt: skip

# The shipped configuration: a conditional G3AN at 32x32, small enough to train on a 2-core CPU.
TRAIN_OPTIONS = ["--batch-size", "16", "--workers", "1", "--no-progress"]
TRAIN_OVERRIDES = ["model.resolution=32", "model.ch=16", "model.ch_d=16", "model.fsa_level=2", "threads=1",
                   "precision=bf16",
                   "ema_half_life=8000", "sample_every=250", "checkpoint_every=200", "keep_last=2",
                   "log_every=25"]  # fmt: skip


def g3an(*args: str) -> list[str]:
    return [sys.executable, "-m", "g3an", *args]


def shown(cmd: list[str]) -> str:
    """The command as a user types it (``g3an ...``)."""
    return shlex.join(["g3an", *cmd[3:]] if cmd[:3] == [sys.executable, "-m", "g3an"] else cmd)


def run(cmd: list[str]) -> None:
    print("$", shown(cmd), flush=True)
    subprocess.run(cmd, check=True)


def train_seconds(run_dir: Path, final_step: int) -> tuple[float, float, float]:
    """Training time up to ``final_step`` from ``log.jsonl`` (seconds per step x steps per log interval),
    and the fastest and slowest logged seconds per step. Entries a resumed run logged again replace the
    interrupted run's."""
    per_step: dict[int, float] = {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "time/sec_per_step" in rec and rec["step"] <= final_step:
            per_step[int(rec["step"])] = float(rec["time/sec_per_step"])
    seconds, last = 0.0, 0
    for step in sorted(per_step):
        seconds += per_step[step] * (step - last)
        last = step
    if last < final_step and per_step:  # the steps after the last log line
        seconds += per_step[last] * (final_step - last)
    values = list(per_step.values()) or [float("nan")]
    return seconds, min(values), max(values)


def real_class_accuracy(dataset: str, data: Path, clips: int = 200) -> float:
    """The embedded evaluator's class accuracy on real test clips of ``data``: the ceiling of
    ``conditional_accuracy`` at this resolution."""
    import torch

    from g3an.data.format import open_dataset
    from g3an.data.loader import ClipDataset
    from g3an.metrics.embedded import load_evaluator

    ds = ClipDataset(open_dataset(data), num_frames=16, steps=(1,), split="test")
    items = [ds[(0, i)] for i in range(0, len(ds), max(1, len(ds) // clips))]
    with torch.no_grad():
        out = load_evaluator(dataset).predict(torch.stack([x["video"] for x in items]))
    labels = torch.tensor([int(x["label"]) for x in items])
    return float((out.class_logits.argmax(-1) == labels).float().mean())


def prepare_data(dataset: str, work: Path, seed: int) -> tuple[Path, str]:
    """The embedded dataset at 32x32 (synthesised unless present) and the command that makes it."""
    data = work / "data" / f"synth-{dataset}-32"
    data_cmd = g3an("data", "synth", dataset, "--out", str(data), "--size", "32", "--seed", str(seed), "--quiet")
    if not (data / "meta.json").is_file():
        run(data_cmd)
    return data, shown(data_cmd)


def train_or_resume(run_dir: Path, train_cmd: list[str], steps: int) -> Path:
    """Run ``train_cmd``, or resume ``run_dir`` when it has checkpoints; the last checkpoint."""
    if any((run_dir / "checkpoints").glob("step-*.pt")):
        run(g3an("train", "--resume", str(run_dir), "--steps", str(steps), "--no-progress"))
    else:
        run(train_cmd)
    return sorted((run_dir / "checkpoints").glob("step-*.pt"))[-1]


def ship(dataset: str, work: Path, steps: int, eval_n: int, seed: int, note: str = "") -> dict:
    data, data_cmd = prepare_data(dataset, work, seed)
    run_dir = work / "runs" / f"ship-{dataset}"
    train_cmd = g3an("train", "--data", str(data), "--out", str(run_dir), "--steps", str(steps), "--seed", str(seed),
                     *TRAIN_OPTIONS, *TRAIN_OVERRIDES, f"model.num_classes={CLASSES[dataset]}")  # fmt: skip
    last = train_or_resume(run_dir, train_cmd, steps)
    return publish(dataset, work, data, run_dir, last, {"data": data_cmd, "train": shown(train_cmd)}, eval_n, seed,
                   note)  # fmt: skip


def finetune(dataset: str, work: Path, steps: int, overrides: list[str], eval_n: int, seed: int,
             note: str = "", name: str = "", run_seed: int | None = None) -> dict:  # fmt: skip
    """Continue the shipped model: fine-tune a kept copy of it (the stages before) for ``steps`` steps.

    ``name`` names the stage (its base copy and run directory), so several fine-tuning stages can follow one
    another; ``run_seed`` is the stage's training seed (default ``seed + 1``)."""
    stage = f"-{name}" if name else ""
    base_dir = work / f"base{stage}"
    base_dir.mkdir(parents=True, exist_ok=True)
    base_file = base_dir / f"{STEM[dataset]}.safetensors"
    if not base_file.is_file():  # kept once: later exports overwrite the shipped file, not the base
        for ext in (".json", ".safetensors"):
            (base_dir / f"{STEM[dataset]}{ext}").write_bytes((ASSETS / f"{STEM[dataset]}{ext}").read_bytes())
    base = json.loads((base_dir / f"{STEM[dataset]}.json").read_text())
    if hashlib.sha256(base_file.read_bytes()).hexdigest() != base["sha256"]:
        raise SystemExit(f"{base_file}: does not match its card {base_dir / STEM[dataset]}.json")
    data, _ = prepare_data(dataset, work, seed)
    run_dir = work / "runs" / f"finetune-{dataset}{stage}"
    train_cmd = g3an("train", "--data", str(data), "--out", str(run_dir), "--steps", str(steps), "--seed",
                     str(seed + 1 if run_seed is None else run_seed), *TRAIN_OPTIONS, *TRAIN_OVERRIDES,
                     f"model.num_classes={CLASSES[dataset]}", f"init={base_file}", *overrides)  # fmt: skip
    last = train_or_resume(run_dir, train_cmd, steps)
    # the training commands of the stages before (not their export and evaluation), then this stage's
    cmds = {k: v for k, v in base["commands"].items() if k == "data" or k == "train" or k.startswith("finetune")}
    cmds[f"finetune{stage}"] = shown(train_cmd)
    return publish(dataset, work, data, run_dir, last, cmds, eval_n, seed, note,
                   base={**base, "overrides": overrides}, stage_cmd=shown(train_cmd))  # fmt: skip


def publish(dataset: str, work: Path, data: Path, run_dir: Path, last: Path, cmds: dict[str, str], eval_n: int,
            seed: int, note: str, base: dict | None = None, stage_cmd: str | None = None) -> dict:  # fmt: skip
    """Export ``last`` into the package, evaluate it, write its card (``base``: the card of the stages it
    continued; ``stage_cmd``: this stage's training command, default ``cmds["train"]``)."""
    out = ASSETS / f"{STEM[dataset]}.safetensors"
    export_cmd = g3an("export", str(last), "--out", str(out), "--with-discriminator")
    cmds["export"] = shown(export_cmd)
    run(export_cmd)
    metrics_json = work / f"eval-{dataset}.json"
    eval_cmd = g3an("eval", str(out), "--data", str(data), "--n", str(eval_n), "--out", str(metrics_json),
                    "--metrics", f"fid2048_embedded_{dataset},is2048_embedded_{dataset},disentangle")  # fmt: skip
    cmds["eval"] = shown(eval_cmd)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    done = metrics_json.is_file() and all(r.get("checkpoint_sha256") == digest
                                          for r in json.loads(metrics_json.read_text()))  # fmt: skip
    if not done:  # the export is byte-identical for the same checkpoint: its evaluation is kept
        run(eval_cmd)
    records = json.loads(metrics_json.read_text())
    floor_json = work / f"eval-{dataset}-real.json"
    floor_cmd = g3an("eval", "--real-vs-real", "--data", str(data), "--n", str(eval_n), "--out", str(floor_json),
                     "--metrics", f"fid2048_embedded_{dataset},is2048_embedded_{dataset}")  # fmt: skip
    cmds["eval_real_vs_real"] = shown(floor_cmd)
    if not floor_json.is_file():
        run(floor_cmd)
    floor = {r["metric"]: r["value"] for r in json.loads(floor_json.read_text())}
    floor["evaluator class accuracy on real test clips (32x32, 16 frames)"] = real_class_accuracy(dataset, data)
    from g3an import machine
    from g3an.checkpoint import load_checkpoint

    last_step = int(load_checkpoint(last)["counters"]["step"])
    seconds, fastest, slowest = train_seconds(run_dir, last_step)
    config = json.loads((run_dir / "config.json").read_text())
    stages = [{"steps": last_step, "train_seconds": round(seconds), "command": stage_cmd or cmds["train"],
               "note": note}]  # fmt: skip
    if base is not None:  # a fine-tuning stage: the card counts both
        first = [{"steps": base["steps"], "train_seconds": base["train_seconds"], "command": base["commands"]["train"],
                  "note": base.get("training_note", ""), "sha256": base["sha256"]}]  # fmt: skip
        stages = [*base.get("stages", first), *stages]
        fastest, slowest = (
            min(fastest, base["seconds_per_step_range"][0]),
            max(slowest, base["seconds_per_step_range"][1]),
        )
        base_note, base_cpu = base.get("training_note", ""), base.get("trained_on", "").split(",")[0]
        if base_cpu and base["trained_on"] != machine.describe() and base_cpu not in base_note:
            base_note = f"on {base_cpu}" + (f": {base_note}" if base_note else "")
        note = (
            f"{base_note}; then {last_step:,} steps fine-tuned from that model "
            f"with {' '.join(base['overrides'])} in {seconds / 3600:.2f} h{': ' + note if note else ''}"
        )
    from g3an.checkpoint import load_generator

    _, _, gen, info = load_generator(out)
    card = {
        "name": f"synth-{dataset}",
        "model": "g3an",
        "dataset": f"synth-{dataset} (g3an data synth {dataset} --size 32 --seed {seed}), split train",
        "class_names": json.loads(info["class_names"]),
        "model_config": config["model_config"],
        "steps": sum(st["steps"] for st in stages),
        "videos_seen": sum(st["steps"] for st in stages) * int(config["batch_size"]),
        "batch_size": config["batch_size"],
        "precision": config.get("precision", "fp32"),
        "train_seconds": sum(st["train_seconds"] for st in stages),
        "seconds_per_step_range": [round(fastest, 2), round(slowest, 2)],
        "trained_on": machine.describe(),
        "training_note": note,
        "stages": stages,
        "generator_parameters": sum(p.numel() for p in gen.parameters()),
        "bytes": out.stat().st_size,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "metrics": {r["metric"]: r["value"] for r in records},
        "real_data": floor,
        "commands": cmds,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} ({card['bytes'] / 1e6:.2f} MB) and its card", flush=True)
    return card


def identity_note(cards: list[dict]) -> list[str]:
    """What docs/models.md says about identity across motion: which models trained with the
    ``appearance_consistency`` term (from their cards' commands)."""
    with_term = []
    for c in cards:
        weights = [w.split("=", 1)[1] for v in c["commands"].values() for w in v.split()
                   if w.startswith("appearance_consistency=")]  # fmt: skip
        if weights:
            with_term.append(f"`{c['name']}` (weight {weights[-1]})")
    if not with_term:
        return ["How a model trained with the paper's objective changes the subject with some motion codes, and",
                "a training option that reduces it: docs/training.md, \"Identity across motion\"."]  # fmt: skip
    their = "its" if len(with_term) == 1 else "their"
    return [f"{' and '.join(with_term)} trained with `appearance_consistency` in {their} later stages (two videos",
            "sharing z_a must look alike; not part of the paper's objective), so that changing z_m changes the",
            "subject less (backgrounds and clothes still change colour more than in real clips); what that",
            "gains and costs: docs/training.md, \"Identity across motion\"."]  # fmt: skip


def write_docs(cards: list[dict], path: Path) -> None:
    lines = ["# Shipped models", "",
             "Small G3AN generators trained by `scripts/train_shipped_models.py` on the embedded datasets ship inside",
             "the package (`src/g3an/assets/models/`, each with its discriminator and raw generator for fine-tuning).",
             "Use a name wherever a checkpoint goes:", "",
             "```bash",
             "g3an sample synth-actions --n 16 --out samples.gif --class walk",
             "g3an manipulate synth-faces vary-motion --out motion.gif",
             "g3an train --data data/synth-actions-32 --out runs/ft model.resolution=32 model.ch=16 model.ch_d=16 \\",
             "    model.fsa_level=2 model.num_classes=10 init=synth-actions   # fine-tune",
             "```", "",
             "They are conditional G3AN models at 32x32 (16 frames) with "
             + " / ".join(sorted({D_CLASS[c["model_config"].get("d_class", "concat")] for c in cards})) + ",",
             "trained for "
             + " and ".join(sorted({f"{c['steps']:,}" for c in cards})) + " steps on a 2-core CPU: far from",
             "converged. This file is written by the script from the model cards (`NAME.json` beside each file);",
             "the numbers below say what they do and do not do yet:", "",
             "- FID against the real-vs-real floor at the same count (how far the samples are from real clips);",
             "- `appearance_agreement_under_motion` (1: changing z_m never changes the subject) and",
             "  `temporal_appearance_consistency`: the appearance code holds the subject across motions and frames;",
             "- `conditional_accuracy` against the evaluator's accuracy on real clips and chance (1 / number of",
             "  classes): how often a sample shows the class it was asked for.", "",
             *identity_note(cards), "",
             "In short:", ""]  # fmt: skip
    for c in cards:
        fid_key = next(k for k in c["metrics"] if k.startswith("fid"))
        real_acc = next((v for k, v in c.get("real_data", {}).items() if "class accuracy" in k), float("nan"))
        lines.append(f"- `{c['name']}`: FID {c['metrics'][fid_key]:.0f} against a floor of "
                     f"{c.get('real_data', {}).get(fid_key, float('nan')):.0f}; videos sharing z_a with another z_m "
                     f"show the group's most common subject in "
                     f"{c['metrics']['disentangle/appearance_agreement_under_motion']:.0%} of cases; the "
                     f"class is followed in {c['metrics']['disentangle/conditional_accuracy']:.0%} of samples "
                     f"(chance {1 / len(c['class_names']):.0%}, real clips {real_acc:.0%}).")  # fmt: skip
    lines.append("")
    for c in cards:
        m = c["metrics"]
        lines += [f"## `{c['name']}`", "",
                  "| | |", "| --- | --- |",
                  f"| data | {c['dataset']} |",
                  f"| classes | {', '.join(c['class_names'])} |",
                  f"| architecture | G3AN, {json.dumps(c['model_config'], sort_keys=True)} |",
                  f"| generator parameters | {c['generator_parameters']:,} |",
                  f"| file | {c['bytes'] / 1e6:.2f} MB (G EMA + G raw + D), sha256 `{c['sha256'][:16]}...` |",
                  f"| training | {c['steps']} steps at batch {c['batch_size']} ({c['videos_seen']:,} videos), "
                  f"{c['train_seconds'] / 3600:.2f} h in {c.get('precision', 'fp32')}, "
                  f"{c['seconds_per_step_range'][0]}-"
                  f"{c['seconds_per_step_range'][1]} s per step"
                  + (f" ({c['training_note']})" if c.get("training_note") else "") + " |",
                  f"| machine | {c['trained_on']} |", ""]  # fmt: skip
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| `{k}` | {v:.4f} |" for k, v in m.items()]
        lines += ["", "Reference points on real data (the same evaluator; `g3an eval --real-vs-real` compares two",
                  "disjoint halves of the dataset, so its FID is the floor at this count):", "",
                  "| on real data | value |", "| --- | --- |"]  # fmt: skip
        lines += [f"| {k if ' ' in k else f'`{k}`'} | {v:.4f} |" for k, v in c.get("real_data", {}).items()]
        lines += ["", "Commands:", "", "```bash", *c["commands"].values(), "```", ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}", flush=True)


def write_results_section(cards: list[dict], path: Path) -> None:
    """The "Shipped models" section of docs/results.md (between its markers; the rest of the file is kept)."""
    from g3an.report import replace_section

    rows = ["## Shipped models", "",
            "Trained by `python scripts/train_shipped_models.py` (commands and metrics per model in "
            "[models.md](models.md)).", "",
            "| model | steps x batch | training time | machine | FID (embedded) | IS (embedded) |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for c in cards:
        fid = next((v for k, v in c["metrics"].items() if k.startswith("fid")), float("nan"))
        is_ = next((v for k, v in c["metrics"].items() if k.startswith("is")), float("nan"))
        rows.append(f"| `{c['name']}` | {c['steps']} x {c['batch_size']} | {c['train_seconds'] / 3600:.2f} h "
                    f"| {c['trained_on']} | {fid:.2f} | {is_:.2f} |")  # fmt: skip
    replace_section(path, "shipped-models", "\n".join(rows) + "\n", new_file="# Results\n\n")
    print(f"wrote {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "shipped", help="data, runs and evaluations")
    parser.add_argument("--datasets", default="actions,faces")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--eval-n", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--note",
        default="",
        help="how the machine was used while training, for the card "
        "(e.g. 'both models trained at once, one core each')",
    )
    parser.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        help="continue the shipped models instead: fine-tune them this many steps (0: off)",
    )
    parser.add_argument(
        "--finetune-overrides",
        default="d_time_roll=0.5",
        help="KEY=VALUE training options of the fine-tuning, space-separated",
    )
    parser.add_argument(
        "--finetune-name",
        default="",
        help="name of the fine-tuning stage (its base copy and run directory), so stages can follow one another",
    )
    parser.add_argument(
        "--finetune-seed", type=int, default=None, help="seed of the fine-tuning run (default --seed + 1)"
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args()
    if args.finetune_name and not args.finetune_name.replace("-", "").replace("_", "").isalnum():
        parser.error(f"--finetune-name: use letters, digits, '-' and '_', not {args.finetune_name!r}")
    t0 = time.time()
    for d in args.datasets.split(","):
        if d not in CLASSES:
            parser.error(f"--datasets: unknown dataset {d!r} (actions, faces)")
        if args.finetune_steps:
            finetune(d, args.work, args.finetune_steps, args.finetune_overrides.split(), args.eval_n, args.seed,
                     args.note, args.finetune_name, args.finetune_seed)  # fmt: skip
        else:
            ship(d, args.work, args.steps, args.eval_n, args.seed, args.note)
    cards = [json.loads(p.read_text()) for p in sorted(ASSETS.glob("*.json"))]
    write_docs(cards, args.docs)
    write_results_section(cards, args.docs.parent / "results.md")
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
