"""``g3an sample`` and ``g3an manipulate``: videos and latent-manipulation grids from a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from g3an.cli import main

# existence is checked when loading, so `g3an manipulate CKPT MODE --help` works with the literal word CKPT
_CKPT = click.argument("ckpt", type=click.Path(path_type=Path), metavar="CKPT")


def _common(frames: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Options shared by ``sample`` and every manipulation mode."""
    options = [
        click.option(
            "--out",
            required=True,
            metavar="PATH",
            help="Output .mp4 (H.264), .gif or .png (filmstrips); PATH.latents.json is written beside it.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, metavar="S", help="Seed of the latent codes."),
        click.option(
            "--class",
            "class_",
            default=None,
            metavar="NAME",
            help="Class name (from the checkpoint) or index, for conditional models.  [default: drawn from the seed]",
        ),
        click.option(
            "--fps", type=click.FloatRange(min=0.5), default=8.0, show_default=True, metavar="FPS", help="Frame rate."
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            metavar="B",
            help="Videos per generator pass (recorded: the same batches give the same pixels).",
        ),
        click.option(
            "--ema/--no-ema", default=True, show_default=True, help="Use the EMA generator weights if present."
        ),
        click.option(
            "--device", default="cpu", show_default=True, metavar="DEVICE", help="Device to run on (cpu, cuda, cuda:1)."
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16", "fp16"]),
            default="fp32",
            show_default=True,
            help="bf16: autocast, faster on CPUs with AVX512-BF16 or AMX and on GPUs (docs/sampling.md); fp16: CUDA "
            "only. Recorded in the latents file (pixels differ from fp32's by the rounding).",
        ),
    ]
    if frames:
        options.append(
            click.option(
                "--frames",
                type=click.IntRange(min=1),
                default=None,
                metavar="T",
                help="Frames per video (G3AN: 16, 20, 24, ...).  [default: the model's]",
            )
        )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors as click errors naming the flag they come from."""
    from g3an.checkpoint import CheckpointError
    from g3an.sample import SamplingError

    try:
        yield
    except SamplingError as err:
        if err.param:
            raise click.BadParameter(str(err), param_hint=f"'{err.param}'") from None
        raise click.ClickException(str(err)) from None
    except CheckpointError as err:
        raise click.ClickException(f"CKPT: {err}") from None


@main.command("sample")
@_CKPT
@click.option("--n", "n", type=click.IntRange(min=1), default=16, show_default=True, metavar="N", help="Videos.")
@click.option(
    "--cols", type=click.IntRange(min=1), default=None, metavar="C", help="Grid columns.  [default: ceil(sqrt(N))]"
)
@click.option(
    "--latents",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Regenerate the videos recorded in a latents file (pixel-identical); --n, --seed, --frames, --class, "
    "--batch-size and --precision come from the file.",
)
@click.option(
    "--any-checkpoint",
    is_flag=True,
    help="With --latents: accept a checkpoint whose SHA-256 differs from the recorded one.",
)
@_common()
def sample_cmd(
    ckpt: Path,
    n: int,
    cols: int | None,
    latents: Path | None,
    any_checkpoint: bool,
    out: str,
    seed: int,
    class_: str | None,
    fps: float,
    batch_size: int,
    ema: bool,
    device: str,
    precision: str,
    frames: int | None,
) -> None:
    """Sample N videos from CKPT (training checkpoint .pt, exported .safetensors, or a run directory).

    \b
    One labelled grid:        g3an sample run/checkpoints/last.pt --n 16 --seed 0 --out samples.mp4
    One file per video:       g3an sample CKPT --n 8 --out 'samples/{i:03d}.mp4'
    Longer videos, one class: g3an sample CKPT --n 4 --frames 24 --class happiness --out happy.gif
    Regenerate exactly:       g3an sample CKPT --latents samples.latents.json --out again.mp4
    Faster on a bf16 CPU:     g3an sample CKPT --n 64 --precision bf16 --out samples.mp4
    """
    from g3an.machine import keep_freed_for_command
    from g3an.sample import sample

    keep_freed_for_command()
    with _errors():
        paths = sample(
            ckpt, out, n=n, seed=seed, frames=frames, class_=class_, cols=cols, fps=fps, batch_size=batch_size,
            ema=ema, device=device, latents=latents, strict_checkpoint=not any_checkpoint, precision=precision,
        )  # fmt: skip
    for path in paths[:3]:
        click.echo(f"wrote {path}")
    if len(paths) > 3:
        click.echo(f"... and {len(paths) - 3} more (latents files beside each)")


@main.group("manipulate", context_settings={"help_option_names": ["-h", "--help"]})
@_CKPT
@click.pass_context
def manipulate_group(ctx: click.Context, ckpt: Path) -> None:
    """Latent manipulation grids from CKPT: rows are appearances (z_a), columns motions (z_m) or sweep values.

    \b
    g3an manipulate CKPT vary-motion --n 6 --out fig6.mp4
    g3an manipulate CKPT grid --rows 4 --cols 4 --out grid.gif
    g3an manipulate CKPT dim --code appearance --dim 5 --out fig9.png
    g3an manipulate CKPT add --out fig11.mp4
    g3an manipulate CKPT interpolate --code motion --method slerp --out interp.mp4
    g3an manipulate CKPT classes --out fig7.mp4        (conditional models)
    g3an manipulate CKPT length --lengths 16,24,32 --out lengths.mp4
    """
    ctx.obj = ckpt


def _run(
    mode: str, out: str, class_: str | None, fps: float, ema: bool, device: str, precision: str, **params: Any
) -> None:
    from g3an.machine import keep_freed_for_command
    from g3an.manipulate import manipulate_checkpoint

    keep_freed_for_command()
    ckpt = click.get_current_context().obj
    with _errors():
        media, latents = manipulate_checkpoint(
            ckpt, mode, out, class_=class_, fps=fps, ema=ema, device=device, precision=precision, **params
        )
    click.echo(f"wrote {media}")
    click.echo(f"wrote {latents}")


_ROWS = click.option(
    "--rows", type=click.IntRange(min=1), default=3, show_default=True, metavar="R", help="Rows (appearances)."
)
_CODE = click.option(
    "--code",
    type=click.Choice(["appearance", "motion"]),
    default="appearance",
    show_default=True,
    help="Which code to change: appearance (z_a) or motion (z_m).",
)


@manipulate_group.command("vary-motion")
@click.option("--n", "n", type=click.IntRange(min=1), default=6, show_default=True, metavar="M", help="Motions.")
@_common()
def vary_motion_cmd(**kw: Any) -> None:
    """One appearance with M motions (paper Figure 6): a 1 x M row."""
    _run("vary-motion", **kw)


@manipulate_group.command("vary-appearance")
@click.option("--n", "n", type=click.IntRange(min=1), default=6, show_default=True, metavar="N", help="Appearances.")
@_common()
def vary_appearance_cmd(**kw: Any) -> None:
    """One motion under N appearances: an N x 1 column."""
    _run("vary-appearance", **kw)


@manipulate_group.command("grid")
@click.option("--rows", type=click.IntRange(min=1), default=4, show_default=True, metavar="R", help="Appearances.")
@click.option("--cols", type=click.IntRange(min=1), default=4, show_default=True, metavar="C", help="Motions.")
@_common()
def grid_cmd(**kw: Any) -> None:
    """R appearances (rows) x C motions (columns)."""
    _run("grid", **kw)


def _float_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


@manipulate_group.command("dim")
@_CODE
@click.option("--dim", "dim", type=int, required=True, metavar="K", help="Dimension of the code to sweep (0-based).")
@click.option(
    "--range",
    "range_",
    type=(float, float),
    default=(-3.0, 3.0),
    show_default=True,
    metavar="LO HI",
    help="Values swept, in standard deviations.",
)
@click.option("--steps", type=click.IntRange(min=1), default=7, show_default=True, metavar="K", help="Columns.")
@click.option(
    "--values", callback=_float_list, default=None, metavar="V1,V2,...", help="Explicit values instead of --range."
)
@_ROWS
@click.option("--same-other", is_flag=True, help="Every row keeps the same other code (appearance 0 or motion 0).")
@_common()
def dim_cmd(range_: tuple[float, float], **kw: Any) -> None:
    """Set one dimension of z_a or z_m to each column's value (paper Figures 9, 10); rows are base samples."""
    _run("dim", low=range_[0], high=range_[1], **kw)


@manipulate_group.command("add")
@click.option("--renorm", is_flag=True, help="Divide z_a0 + z_a1 by sqrt(2) (the paper adds them as they are).")
@_common()
def add_cmd(**kw: Any) -> None:
    """Rows z_a0, z_a1, z_a0 + z_a1 x columns z_m0, z_m1 (paper Figure 11); the diagonal holds the originals."""
    _run("add", **kw)


@manipulate_group.command("interpolate")
@_CODE
@click.option("--steps", type=click.IntRange(min=1), default=8, show_default=True, metavar="K", help="Columns.")
@click.option(
    "--method",
    type=click.Choice(["slerp", "lerp"]),
    default="slerp",
    show_default=True,
    help="Spherical or linear interpolation.",
)
@_ROWS
@_common()
def interpolate_cmd(**kw: Any) -> None:
    """Interpolate z_a or z_m between two codes over the columns (t = 0..1); one pair per row."""
    _run("interpolate", **kw)


@manipulate_group.command("classes")
@click.option("--rows", type=click.IntRange(min=1), default=2, show_default=True, metavar="R", help="Appearances.")
@click.option(
    "--cols", type=click.IntRange(min=1), default=4, show_default=True, metavar="C", help="Motions (with --class)."
)
@_common()
def classes_cmd(**kw: Any) -> None:
    """Conditional models (paper Figures 7, 8): each appearance through every class (columns); with
    --class, R appearances x C motions all within that class."""
    _run("classes", **kw)


@manipulate_group.command("length")
@click.option(
    "--lengths",
    callback=_int_list,
    default="16,20,24,32",
    show_default=True,
    metavar="T1,T2,...",
    help="Video lengths in frames (G3AN: 16 + 4k), one column each.",
)
@click.option("--rows", type=click.IntRange(min=1), default=2, show_default=True, metavar="R", help="Videos.")
@click.option(
    "--fresh-motion",
    is_flag=True,
    help="A new motion code per length (as the reference demo_multilength.py) instead of a shared first part.",
)
@_common(frames=False)
def length_cmd(**kw: Any) -> None:
    """The same videos at several lengths; shorter ones hold their last frame."""
    _run("length", **kw)
