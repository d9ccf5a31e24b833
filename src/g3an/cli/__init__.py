"""The ``g3an`` command: a thin click group; each sub-command lives in its own module of this package."""

from __future__ import annotations

import click

from g3an import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="g3an")
def main() -> None:
    """G3AN video generation: data, training, sampling, latent manipulation and evaluation."""


@main.command("models")
def models_cmd() -> None:
    """List the registered models and the shipped pretrained ones."""
    from g3an.pretrained import list_shipped
    from g3an.registry import get_entry, list_models

    for name in list_models():
        click.echo(f"{name:10s} {get_entry(name).description}")
    shipped = list_shipped()
    if shipped:
        click.echo("\nshipped pretrained models (use the name as CKPT, or init=NAME to fine-tune):")
    for m in shipped:
        steps = m.get("steps")
        click.echo(f"{m['name']:14s} {m.get('model', 'g3an')}, {m['bytes'] / 1e6:.1f} MB"
                   + (f", {steps:,} steps" if steps else "") + f"  ({m['path']})")  # fmt: skip


def _register_subcommands() -> None:
    # Each sub-command module adds itself here; keep one line per module.
    # isort: off
    from g3an.cli import data  # noqa: F401
    from g3an.cli import prepare  # noqa: F401
    from g3an.cli import eval  # noqa: F401
    from g3an.cli import reference  # noqa: F401
    from g3an.cli import sample  # noqa: F401
    from g3an.cli import train  # noqa: F401
    from g3an.cli import weights  # noqa: F401
    from g3an.cli import study  # noqa: F401
    from g3an.cli import demo  # noqa: F401
    # isort: on


_register_subcommands()
