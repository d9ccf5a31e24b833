"""``g3an data``: datasets in the prepared format: draw the embedded ones, look at any, inspect and verify.

Sub-commands of other modules (``g3an data prepare``) attach themselves to the :func:`data` group.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from g3an.cli import main


@click.group("data")
def data() -> None:
    """Prepared datasets: synthesise the embedded ones, preview, inspect (see docs/data.md)."""


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


@data.command("synth")
@click.argument("dataset", type=click.Choice(["actions", "faces"]), metavar="actions|faces")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="Dataset directory to create (an interrupted run leaves DIR.partial; rerun to continue).",
)
@click.option(
    "--videos",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    metavar="N",
    help="Number of videos; classes are balanced to within one video.",
)
@click.option(
    "--size",
    type=click.IntRange(8, 1024),
    default=64,
    show_default=True,
    metavar="PX",
    help="Frame height and width in pixels.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    metavar="T",
    help="Frames per video (the paper's clips of 16 frames at steps up to 4 need 61).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="S",
    help="Seed: the same options give byte-identical datasets.",
)
@click.option(
    "--subjects",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Subjects (fixed appearance combinations). Default: videos / classes, so every subject performs "
    "every class once.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=0.2,
    show_default=True,
    metavar="F",
    help="Share of the subjects held out as the test split.",
)
@click.option(
    "--supersample",
    type=click.IntRange(1, 8),
    default=4,
    show_default=True,
    metavar="K",
    help="Anti-aliasing: drawing resolution / output resolution.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=max(1, min(8, len(_cpus()))),
    show_default=True,
    metavar="W",
    help="Processes drawing videos (the output does not depend on it).",
)
@click.option("--overwrite", is_flag=True, help="Replace DIR if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_cmd(dataset: str, out: Path, videos: int, size: int, frames: int, seed: int, subjects: int | None,
              test_fraction: float, supersample: int, workers: int, overwrite: bool, quiet: bool) -> None:  # fmt: skip
    """Draw the embedded dataset synth-actions (Weizmann analogue) or synth-faces (MUG analogue).

    \b
    g3an data synth actions --out data/synth-actions --videos 2000
    g3an data synth faces --out data/synth-faces --videos 1200 --size 64 --frames 64 --seed 0
    """
    from g3an.data.synthetic import SynthConfig, generate

    if out.exists() and not overwrite:
        raise click.ClickException(f"--out {out} already exists (pass --overwrite to replace it)")
    try:
        config = SynthConfig(dataset, videos=videos, size=size, frames=frames, seed=seed, subjects=subjects,
                             test_fraction=test_fraction, supersample=supersample)  # fmt: skip
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    if frames < 61:
        click.echo(f"note: {frames} frames are fewer than a 16-frame clip at step 4 needs (61)", err=True)
    t0 = time.perf_counter()
    try:
        ds = generate(config, out, workers=workers, progress=not quiet, overwrite=overwrite)
    except OSError as err:
        raise click.ClickException(f"--out {out}: {err}") from err
    dt = time.perf_counter() - t0
    click.echo(f"{config.name}: {len(ds)} videos of {frames}x{size}x{size} in {dt:.1f} s -> {out}")
    click.echo(f"  splits {ds.splits()}, content hash {ds.content_hash}")


@data.command("preview")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="Output: .gif or .mp4 (animated grid) or .png (one filmstrip row per clip).",
)
@click.option(
    "--rows",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    metavar="R",
    help="Rows: subjects for a labelled dataset (each row one subject across the classes).",
)
@click.option(
    "--cols",
    type=click.IntRange(1, 64),
    default=None,
    metavar="C",
    help="Columns. Default: one per class (at most 12), or 4 for an unlabeled dataset.",
)
@click.option(
    "--frames", type=click.IntRange(min=1), default=16, show_default=True, metavar="T", help="Frames per clip."
)
@click.option(
    "--step",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    metavar="S",
    help="Temporal stride of the clips.",
)
@click.option("--split", default=None, metavar="NAME", help="Only videos of this split (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, metavar="S", help="Which subjects / videos are shown.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0.1),
    default=None,
    metavar="FPS",
    help="Playback rate. Default: the dataset's frame rate divided by --step.",
)
def preview_cmd(path: Path, out: Path, rows: int, cols: int | None, frames: int, step: int, split: str | None,
                seed: int, fps: float | None) -> None:  # fmt: skip
    """Write a labelled grid of clips of the prepared dataset DIR, to look at it.

    \b
    g3an data preview data/synth-actions --out actions.gif
    g3an data preview data/synth-faces --out faces.png --rows 2 --frames 8 --step 4
    """
    from g3an.data.format import DatasetError, open_dataset
    from g3an.data.preview import preview_grid
    from g3an.media import VIDEO_EXTENSIONS, save_grid

    if out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise click.ClickException(f"--out {out}: unsupported extension; use one of {', '.join(VIDEO_EXTENSIONS)}")
    try:
        ds = open_dataset(path)
        grid = preview_grid(ds, rows=rows, cols=cols, frames=frames, step=step, split=split, seed=seed)
    except DatasetError as err:
        raise click.ClickException(str(err)) from err
    title = f"{path.name}: {ds.source}" + (f" ({split})" if split else "")
    save_grid(out, grid.videos, row_labels=grid.row_labels, col_labels=grid.col_labels,
              fps=fps or max(1.0, ds.fps / step), title=title)  # fmt: skip
    click.echo(f"wrote {out} ({len(grid.row_labels)}x{len(grid.col_labels)} clips of {frames} frames, step {step})")


@data.command("info")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--verify", is_flag=True, help="Also re-hash every frame and check the stored SHA-256.")
def info_cmd(path: Path, verify: bool) -> None:
    """Summarise the prepared dataset DIR: size, classes per split, subjects, hash."""
    from g3an.data.format import DatasetError, open_dataset

    try:
        ds = open_dataset(path, verify=verify)
    except DatasetError as err:
        raise click.ClickException(str(err)) from err
    meta = ds.meta
    click.echo(f"{ds.path}: {meta['format']} v{meta['version']}, source {ds.source}")
    click.echo(f"  {len(ds)} videos, {ds.total_frames} frames of {ds.height}x{ds.width} at {ds.fps:g} fps "
               f"(video length {int(ds.num_frames.min())}..{int(ds.num_frames.max())})")  # fmt: skip
    splits = sorted(ds.splits())
    subjects = {s: len({v.subject for v in ds.videos if v.split == s}) for s in splits}
    click.echo("  splits: " + ", ".join(f"{s or '(none)'} {n} videos / {subjects[s]} subjects"
                                         for s, n in sorted(ds.splits().items())))  # fmt: skip
    if ds.classes:
        width = max(len(c) for c in ds.classes)
        click.echo(f"  {len(ds.classes)} classes:" + "".join(f" {s or '(none)'}" for s in splits))
        for k, name in enumerate(ds.classes):
            counts = [sum(1 for v in ds.videos if v.label == k and v.split == s) for s in splits]
            click.echo(f"    {k:3d} {name:{width}s}" + "".join(f" {c:6d}" for c in counts))
    factors = sorted({k for v in ds.videos for k in v.factors})
    if factors:
        click.echo(f"  factors: {', '.join(factors)}")
    click.echo(f"  content hash {ds.content_hash}" + (" (verified)" if verify else ""))


main.add_command(data)
