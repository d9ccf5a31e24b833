"""``g3an train`` and ``g3an export``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from g3an.cli import main


@main.command("train", context_settings={"ignore_unknown_options": False})
@click.option(
    "--model", default=None, metavar="NAME", help="Registered model (g3an, ...); see `g3an models`.  [default: g3an]"
)
@click.option("--data", default=None, metavar="DIR", help="Prepared dataset directory (see `g3an data`).")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="RUN_DIR",
    help="Run directory: config.json, checkpoints/, samples/, log.jsonl, tb/.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="JSON config (the format of RUN_DIR/config.json); flags and KEY=VALUE override it.",
)
@click.option(
    "--resume",
    "resume",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="RUN_DIR",
    help="Continue a run exactly from its latest checkpoint (flags may extend --steps).",
)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training iterations.  [default: 10000]")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Global batch (videos per step).  [default: 16]"
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default=None,
    help="fp32, bf16 autocast (AMX or AVX512-BF16 CPU, or GPU), fp16 with gradient scaler (CUDA).  [default: fp32]",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Device.  [default: auto]")
@click.option("--seed", type=int, default=None, help="Seed of the run.  [default: 0]")
@click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers per process.  [default: 2]"
)
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines only).")
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
def train_cmd(model, data, out, config_file, resume, steps, batch_size, precision, device, seed, workers, dry_run,
              no_progress, overrides) -> None:  # fmt: skip
    """Train a model on a prepared dataset.

    \b
    KEY=VALUE overrides any option of the config, for example:
      g3an train --data data/synth-actions --out runs/a model.ch=32 model.fsa_level=none ema_half_life=2000
    Run on several GPUs or machines with torchrun:
      torchrun --nproc_per_node 4 -m g3an train --data DIR --out RUN_DIR --device cuda
    """
    from g3an.checkpoint import CheckpointError
    from g3an.train.config import TrainConfig, apply_overrides, load_config_file
    from g3an.train.loop import TrainingDiverged, fit

    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise click.UsageError("--resume RUN_DIR continues in RUN_DIR; do not pass a different --out")
    run_dir = resume or out
    if run_dir is None and not dry_run:
        raise click.UsageError("pass --out RUN_DIR (or --resume RUN_DIR)")
    try:
        values: dict = {}
        if resume is not None:
            cfg_path = Path(resume) / "config.json"
            if not cfg_path.is_file():
                raise click.ClickException(f"--resume {resume}: no config.json in that directory")
            values = load_config_file(cfg_path)
        if config_file is not None:
            values.update(load_config_file(config_file))
        flags = {"model": model, "data": data, "steps": steps, "batch_size": batch_size, "precision": precision,
                 "device": device, "seed": seed, "workers": workers}  # fmt: skip
        if resume is not None:
            fixed = ("model", "batch_size", "seed", "data")
            changed = [k for k in fixed if flags[k] is not None and flags[k] != values.get(k)]
            if changed:
                names = ", ".join("--" + k.replace("_", "-") for k in changed)
                raise click.UsageError(f"--resume cannot change {names}")
        values.update({k: v for k, v in flags.items() if v is not None})
        values = apply_overrides(values, list(overrides))
        cfg = TrainConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise click.ClickException(str(err)) from None
    if dry_run:
        click.echo(cfg.to_json())
        return
    ckpt_dir = Path(run_dir) / "checkpoints"
    if resume is None and ckpt_dir.is_dir() and any(ckpt_dir.iterdir()):
        raise click.ClickException(
            f"--out {run_dir} already holds checkpoints; use --resume {run_dir} or a new directory"
        )
    try:
        result = fit(cfg, run_dir, resume=resume is not None, progress=not no_progress)
    except TrainingDiverged as err:
        raise click.ClickException(str(err)) from None
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    if result.interrupted:
        click.echo(f"stopped by {result.signal_name} at step {result.step}; checkpoint {result.checkpoint}. "
                   f"Continue with: g3an train --resume {run_dir}", err=True)  # fmt: skip
        sys.exit(130 if result.signal_name == "SIGINT" else 143)
    click.echo(
        f"done: {result.step} steps ({result.videos} videos) in {result.seconds:.1f} s; checkpoint {result.checkpoint}"
    )


@main.command("export")
@click.argument("ckpt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.safetensors",
    help="Where to write the generator weights (safetensors, config as JSON metadata).",
)
@click.option("--no-ema", is_flag=True, help="Export the raw generator even when the checkpoint has EMA weights.")
@click.option(
    "--with-discriminator",
    is_flag=True,
    help="Also store the discriminator (and the raw generator), so the file can start a fine-tuning run (init=FILE).",
)
def export_cmd(ckpt: Path, out: Path, no_ema: bool, with_discriminator: bool) -> None:
    """Export the generator of a checkpoint for sharing and sampling (no optimizer state, no pickle)."""
    from g3an.checkpoint import (
        CheckpointError,
        build_models,
        export_generator,
        load_checkpoint,
        load_generator,
    )

    if out.suffix != ".safetensors":
        raise click.BadParameter(f"{out} must end in .safetensors", param_hint="--out")
    if with_discriminator and ckpt.suffix == ".safetensors":
        raise click.BadParameter("--with-discriminator needs a training checkpoint (.pt)", param_hint="CKPT")
    extra = {}
    try:
        if with_discriminator:  # the file is read once: both generators and the discriminator come from it
            info = load_checkpoint(ckpt)
            if info.get("discriminator") is None:
                raise CheckpointError(f"{ckpt}: the checkpoint holds no discriminator")
            ema = not no_ema and info.get("generator_ema") is not None
            main_weights = {**info, "generator": info["generator_ema"]} if ema else info
            name = info["model"]
            cfg, gen, _ = build_models(main_weights, discriminator=False, source=str(ckpt))
            extra = {"discriminator": info["discriminator"]}
            if ema:
                extra["generator_raw"] = info["generator"]
        else:
            name, cfg, gen, info = load_generator(ckpt, ema=not no_ema)
    except CheckpointError as err:
        raise click.ClickException(str(err)) from None
    step = (info.get("counters") or {}).get("step")
    class_names = json.dumps((info.get("meta") or {}).get("class_names") or [])
    export_generator(out, name, cfg, gen, source=str(ckpt.name), step=str(step), class_names=class_names, **extra)
    n = sum(p.numel() for p in gen.parameters())
    click.echo(f"wrote {out}: {name} generator, {n:,} parameters{'' if step is None else f', step {step}'}")
