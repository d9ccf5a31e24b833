"""``g3an data prepare``: a raw dataset download (or any folder of videos) -> a prepared dataset, once."""

from __future__ import annotations

from pathlib import Path

import click

from g3an.cli.data import data

_KINDS = ("mug", "uva-nemo", "weizmann", "ucf101", "folder")


@data.command("prepare")
@click.argument("kind", type=click.Choice(_KINDS), metavar="mug|uva-nemo|weizmann|ucf101|folder")
@click.option(
    "--src",
    type=click.Path(path_type=Path),
    required=True,
    metavar="RAW_DIR",
    help="The raw download: video files (avi, mp4, mov, mkv, ...) and/or folders of frames. Only read.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="DIR",
    help="The prepared dataset directory to create (an interrupted run left DIR.partial: rerun to continue).",
)
@click.option(
    "--size",
    type=click.IntRange(min=8),
    default=64,
    show_default=True,
    metavar="PX",
    help="Output frame height and width.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Decoding processes (the result does not depend on it).",
)
@click.option(
    "--min-frames",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    metavar="T",
    help="Skip videos with fewer frames (after --frame-step).",
)
@click.option(
    "--frame-step",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="K",
    help="Keep every K-th frame (the recorded fps is divided by K).",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="T",
    help="Keep at most T frames of each video (0: all).",
)
@click.option(
    "--flip",
    is_flag=True,
    help="Also store a horizontally mirrored copy of every video (id suffix _flip; e.g. Weizmann).",
)
@click.option(
    "--split-index",
    type=click.IntRange(1, 3),
    default=1,
    show_default=True,
    metavar="N",
    help="ucf101: which official train/test split (trainlist0N.txt / testlist0N.txt).",
)
@click.option(
    "--test-subjects",
    default="",
    metavar="A,B,...",
    help="Datasets without an official split (all but ucf101) put every video in split 'train'; "
    "the videos of these subjects go to 'test'.",
)
@click.option("--no-labels", is_flag=True, help="folder: do not use sub-folders as classes.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="FPS",
    help="Frame rate to record. Default: the dataset's own (folder: the first video's).",
)
@click.option("--crop", type=click.Choice(["default", "face", "short-side", "scale-crop", "stretch"]),
              default="default", show_default=True,
              help="Frame geometry; default: the paper's for the dataset (face crop for mug / uva-nemo, "
                   "85x64 + centre crop for ucf101 / weizmann, short side + centre crop for folder).")  # fmt: skip
@click.option(
    "--face-min-fraction",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    metavar="F",
    help="Face crop: skip a video whose face is found in fewer than this fraction of the searched frames.",
)
@click.option(
    "--face-margin",
    type=click.FloatRange(min=0, min_open=True),
    default=1.6,
    show_default=True,
    metavar="M",
    help="Face crop: box side = detected face side x M.",
)
@click.option(
    "--face-window",
    type=click.IntRange(min=1),
    default=9,
    show_default=True,
    metavar="T",
    help="Face crop: frames in the running median that smooths the box.",
)
@click.option(
    "--face-every",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="K",
    help="Face crop: run the detector on every K-th frame (boxes are interpolated between).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing DIR.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare_cmd(kind: str, src: Path, out: Path, size: int, workers: int, min_frames: int, frame_step: int,
                max_frames: int, flip: bool, split_index: int, test_subjects: str, no_labels: bool,
                fps: float | None, crop: str, face_min_fraction: float, face_margin: float, face_window: int,
                face_every: int, overwrite: bool, quiet: bool) -> None:  # fmt: skip
    """Turn the raw dataset in RAW_DIR into the prepared dataset DIR.

    The kind is mug, uva-nemo, weizmann, ucf101 or folder (one class per sub-folder, or none). Restartable:
    an interrupted run continues where it stopped with an identical result. Every file skipped and why
    is listed in DIR/prepare_report.json. See docs/prepare.md.

    \b
    g3an data prepare ucf101 --src raw/UCF101 --out data/ucf101 --workers 8
    g3an data prepare weizmann --src raw/weizmann --out data/weizmann --flip
    g3an data prepare mug --src raw/MUG/subjects3 --out data/mug
    g3an data prepare folder --src my_videos --out data/mine
    """
    from dataclasses import replace

    from g3an.data.prepare import default_preprocess, prepare_dataset

    if not src.is_dir():
        raise click.ClickException(f"--src {src}: no such directory")
    if src.resolve() == out.resolve() or src.resolve() in out.resolve().parents:
        raise click.ClickException(f"--out {out} must not be inside --src {src} (the source is never modified)")
    if out.exists() and not overwrite:
        raise click.ClickException(f"--out {out} already exists (pass --overwrite to replace it)")
    pre = default_preprocess(kind, size)
    if crop != "default":
        mode = {"face": "face", "short-side": "short_side", "scale-crop": "scale_crop", "stretch": "stretch"}[crop]
        pre = replace(pre, mode=mode, scale_width=pre.scale_width or round(size * 85 / 64))
    try:
        pre = replace(pre, min_frames=min_frames, frame_step=frame_step, max_frames=max_frames, flip=flip,
                      face_min_fraction=face_min_fraction, face_margin=face_margin, face_window=face_window,
                      face_every=face_every)  # fmt: skip
        if pre.mode == "face":
            from g3an.data.prepare.face import haar_detector

            haar_detector()
        result = prepare_dataset(kind, src, out, size=size, workers=workers, preprocess=pre, split_index=split_index,
                                 labels=not no_labels, fps=fps, overwrite=overwrite, progress=not quiet,
                                 test_subjects=[t.strip() for t in test_subjects.split(",") if t.strip()])  # fmt: skip
    except ImportError as err:
        raise click.ClickException(f"face crop: {err}") from None
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; run the same command again to continue ({out}.partial is kept)", err=True)
        raise SystemExit(130) from None
    click.echo(result.summary())
