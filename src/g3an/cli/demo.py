"""``g3an demo``: data, fine-tuning, samples, manipulations, evaluation and an HTML report (g3an.demo)."""

from __future__ import annotations

from pathlib import Path

import click

from g3an.cli import main
from g3an.demo import DemoConfig


@main.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DemoConfig.out,
    show_default=True,
    metavar="DIR",
    help="Output directory; a rerun reuses what is already there.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=DemoConfig.steps,
    show_default=True,
    metavar="N",
    help="Training (fine-tuning) steps.",
)
@click.option("--from-scratch", is_flag=True, help="Train without the shipped model (expect blurry figures).")
@click.option(
    "--init",
    default=DemoConfig.init,
    show_default=True,
    metavar="NAME|FILE",
    help="Weights fine-tuning starts from: a shipped model, an exported .safetensors or a checkpoint.",
)
@click.option(
    "--videos",
    type=click.IntRange(min=10),
    default=DemoConfig.videos,
    show_default=True,
    metavar="N",
    help="Videos of the synthetic dataset.",
)
@click.option(
    "--eval-n",
    type=click.IntRange(min=10),
    default=DemoConfig.eval_n,
    show_default=True,
    metavar="N",
    help="Generated videos for embedded FID / IS (the metric names carry it; IS needs 10 for its 10 splits); "
    "the disentanglement group counts are divided by 512 / N as `g3an eval --n N` does.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DemoConfig.batch_size,
    show_default=True,
    metavar="B",
    help="Training batch (videos per step).",
)
@click.option("--seed", type=int, default=DemoConfig.seed, show_default=True, help="Seed of every random draw.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    metavar="T",
    help="Torch CPU threads.  [default: one per core]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=DemoConfig.workers,
    show_default=True,
    metavar="W",
    help="Processes drawing the dataset.",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.argument("model_overrides", nargs=-1, metavar="[model.KEY=VALUE]...")
def demo_cmd(out: Path, steps: int, from_scratch: bool, init: str, videos: int, eval_n: int, batch_size: int,
             seed: int, threads: int | None, workers: int, no_progress: bool,
             model_overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Make data, fine-tune the shipped G3AN, sample, manipulate, evaluate and write OUT/report.html.

    \b
    g3an demo                                  # about 10 minutes on 2 CPU cores
    g3an demo --out runs/demo2 --steps 400
    g3an demo --from-scratch model.ch=8        # model options only apply from scratch
    """
    from g3an.demo import DemoConfig, DemoError, run_demo
    from g3an.train.config import parse_override

    overrides = {}
    for text in model_overrides:
        try:
            path, value = parse_override(text)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="model.KEY=VALUE") from None
        if len(path) != 2 or path[0] != "model_config":
            raise click.BadParameter(f"{text!r}: only model.KEY=VALUE options", param_hint="model.KEY=VALUE")
        overrides[path[1]] = value
    if overrides and not from_scratch:
        raise click.UsageError("model.KEY=VALUE options need --from-scratch (fine-tuning keeps the shipped model's)")
    try:
        cfg = DemoConfig(out=out, steps=steps, init=None if from_scratch else init, videos=videos, eval_n=eval_n,
                         batch_size=batch_size, seed=seed, threads=threads, workers=workers,
                         model_overrides=overrides, progress=not no_progress)  # fmt: skip
        path = run_demo(cfg)
    except (DemoError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"report: {path.resolve()}")
