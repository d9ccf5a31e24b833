"""``g3an data prepare``: raw MUG, UvA-NEMO, Weizmann, UCF101 or any folder of videos -> a prepared dataset.

One call per dataset::

    from g3an.data.prepare import prepare_dataset
    result = prepare_dataset("ucf101", "raw/UCF101", "data/ucf101-64", workers=2)
    print(result.summary())

Each kind knows its raw layout and labels (see the modules of this package and ``docs/prepare.md``);
:mod:`g3an.data.prepare.common` decodes, resizes, runs the workers and writes the skip report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from g3an.data.prepare import folder, mug, ucf101, uva_nemo, weizmann
from g3an.data.prepare.common import REPORT_FILE, PrepareResult, Preprocess, ScanResult, Skip, prepare

__all__ = ["KINDS", "REPORT_FILE", "PrepareResult", "Preprocess", "Skip", "default_preprocess", "prepare_dataset",
           "scan"]  # fmt: skip

#: Dataset kinds, in the order the CLI lists them.
KINDS = ("mug", "uva-nemo", "weizmann", "ucf101", "folder")


def default_preprocess(kind: str, size: int = 64) -> Preprocess:
    """The paper's preprocessing of ``kind`` at ``size``.

    UCF101 and Weizmann: scale to 85x64 (``round(size * 85 / 64)`` wide) and keep the central square;
    MUG and UvA-NEMO: a smoothed face crop; folder: resize the short side and centre crop.
    """
    if kind in ("ucf101", "weizmann"):
        return Preprocess(size=size, mode="scale_crop", scale_width=round(size * 85 / 64))
    if kind in ("mug", "uva-nemo"):
        return Preprocess(size=size, mode="face")
    if kind == "folder":
        return Preprocess(size=size, mode="short_side")
    raise ValueError(f"unknown dataset kind {kind!r}; choose from {', '.join(KINDS)}")


def scan(kind: str, src: str | os.PathLike, split_index: int = 1, labels: bool = True) -> ScanResult:
    """Find the videos and labels of a raw dataset of ``kind`` in ``src`` (nothing is decoded)."""
    root = Path(src)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    if kind == "ucf101":
        return ucf101.scan(root, split_index)
    if kind == "weizmann":
        return weizmann.scan(root)
    if kind == "mug":
        return mug.scan(root)
    if kind == "uva-nemo":
        return uva_nemo.scan(root)
    if kind == "folder":
        return folder.scan(root, labels)
    raise ValueError(f"unknown dataset kind {kind!r}; choose from {', '.join(KINDS)}")


def _subject_split(found: ScanResult, test_subjects: Sequence[str]) -> ScanResult:
    """Every video in ``"train"``, those of ``test_subjects`` in ``"test"``."""
    test = {str(t) for t in test_subjects}
    unknown = sorted(test - {it.subject for it in found.items})
    if unknown:
        known = sorted({it.subject for it in found.items if it.subject})
        raise ValueError(f"test subjects {unknown} have no video (subjects: {known})")
    found.items = [replace(it, split="test" if it.subject in test else "train") for it in found.items]
    found.attributes["split_source"] = f"test subjects {sorted(test)}" if test else "none: every video in train"
    return found


def prepare_dataset(kind: str, src: str | os.PathLike, out: str | os.PathLike, size: int = 64, workers: int = 1,
                    preprocess: Preprocess | None = None, split_index: int = 1, labels: bool = True,
                    fps: float | None = None, test_subjects: Sequence[str] = (), overwrite: bool = False,
                    progress: bool = True, on_video: Callable[[int], None] | None = None,
                    **options: object) -> PrepareResult:  # fmt: skip
    """Prepare the raw dataset ``src`` of ``kind`` into ``out`` (restartable; ``src`` is only read).

    Args:
        kind: one of :data:`KINDS`.
        src: the raw download.
        out: the prepared dataset directory to create.
        size: output frame height and width.
        workers: decoding processes.
        preprocess: full preprocessing options (default: :func:`default_preprocess` of ``kind`` and ``size``).
        split_index: UCF101 split (1, 2 or 3).
        labels: ``folder`` only: use top-level sub-folders as classes.
        fps: frame rate to record (default: the dataset's, or the first video's for ``folder``).
        test_subjects: datasets without an official split (all but UCF101) put every video in split
            ``"train"`` (the paper trains on all of them); the videos of these subjects go to ``"test"``.
        overwrite: replace an existing ``out``.
        progress: show a progress bar.
        on_video: called with the number of videos stored after each one (an exception raised there
            interrupts the run like Ctrl-C: ``OUT.partial`` is kept and the same call continues it).
        **options: overrides of the :class:`Preprocess` fields (``flip=True``, ``min_frames=8``, ...).

    Returns:
        The result: the opened dataset, the skip report and the face-detector statistics.
    """
    pre = preprocess or default_preprocess(kind, size)
    if options:
        pre = replace(pre, **options)
    found = scan(kind, src, split_index=split_index, labels=labels)
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        found.fps = float(fps)
    if kind != "ucf101":
        found = _subject_split(found, test_subjects)
    elif test_subjects:
        raise ValueError("ucf101 has official splits (--split-index); test subjects cannot be chosen")
    if not found.items:
        reasons = sorted({s.reason for s in found.skipped})
        raise ValueError(f"{src}: no {kind} video found" + (f" (skipped: {', '.join(reasons)})" if reasons else ""))
    return prepare(
        found,
        pre,
        Path(src),
        Path(out),
        kind,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        on_video=on_video,
    )
