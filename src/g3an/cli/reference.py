"""``g3an import-reference``: convert state dicts of the reference G3AN code into a g3an checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from g3an.cli import main


@main.command("import-reference")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="CKPT",
              help="Checkpoint to write (.pt).")  # fmt: skip
@click.option("--video-d", "video_d", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="VD.pth", help="Reference D_V state dict (VD_<epoch>.pth), imported with --image-d.")  # fmt: skip
@click.option("--image-d", "image_d", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="ID.pth", help="Reference D_I state dict (ID_<epoch>.pth), imported with --video-d.")  # fmt: skip
def import_reference_cmd(path: Path, out: Path, video_d: Path | None, image_d: Path | None) -> None:
    """Import PATH, a generator saved by the reference code (e.g. the released g3an.pth).

    PATH may also be a dict holding 'G', 'D_V' and 'D_I' state dicts. The configuration (widths, conv
    type, F-SA) is read from the tensor shapes; F-SA uses the reference layout the weights were trained with.
    """
    from g3an.checkpoint import make_checkpoint, save_checkpoint
    from g3an.models.reference import ReferenceImportError, import_reference, load_reference_file

    try:
        parts = load_reference_file(path)
        if video_d is not None:
            parts["D_V"] = load_reference_file(video_d)["G"]
        if image_d is not None:
            parts["D_I"] = load_reference_file(image_d)["G"]
        cfg, gen, disc = import_reference(parts["G"], parts.get("D_V"), parts.get("D_I"))
    except ReferenceImportError as err:
        raise click.ClickException(str(err)) from None
    ckpt = make_checkpoint("g3an", cfg, gen, disc, meta={"imported_from": str(path)})
    save_checkpoint(out, ckpt)
    n_g = sum(p.numel() for p in gen.parameters())
    click.echo(f"wrote {out}: G3AN ch={cfg.ch} {cfg.conv_type} F-SA={'on' if cfg.fsa_level is not None else 'off'} "
               f"({n_g:,} generator parameters){', with D_V and D_I' if disc is not None else ''}")  # fmt: skip
