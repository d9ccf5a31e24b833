"""MUG facial expressions: ``subject/expression/take`` with each take a folder of frames or a video file.

The official layout is ``subjects3/001/anger/take000/img_0001.jpg``; any number of leading folders is
accepted. Labels are the six basic expressions the paper uses (anger, disgust, fear, happiness,
sadness, surprise); other expression folders (``neutral``) are reported as ``excluded_class``. The
subject is the folder above the expression. MUG has no official split (``split`` is empty). Faces are
cropped with the offline detector (see :mod:`g3an.data.prepare.face`) and resized to ``size x size``.
"""

from __future__ import annotations

from pathlib import Path

from g3an.data.prepare.common import ScanResult, Skip, VideoItem, find_sources

__all__ = ["EXPRESSIONS", "scan"]

#: The six expression classes of the paper, in label order.
EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
_OTHER = ("neutral",)


def scan(src: Path) -> ScanResult:
    """MUG takes under ``src`` labelled by expression."""
    sources, skipped = find_sources(src)
    items = []
    for p in sources:
        rel_parts = p.relative_to(src).parts
        rel = p.relative_to(src).as_posix()
        if len(rel_parts) < 3:
            skipped.append(Skip(rel, "unrecognised_name", "expected subject/expression/take"))
            continue
        subject, expression = rel_parts[-3], rel_parts[-2].lower()
        take = p.name if p.is_dir() else p.stem
        if expression in _OTHER:
            skipped.append(Skip(rel, "excluded_class", f"expression {expression!r} is not one of {list(EXPRESSIONS)}"))
            continue
        if expression not in EXPRESSIONS:
            skipped.append(Skip(rel, "unrecognised_name", f"expression folder {rel_parts[-2]!r} is not one of "
                                                          f"{list(EXPRESSIONS + _OTHER)}"))  # fmt: skip
            continue
        items.append(VideoItem(id=f"{subject}/{expression}/{take}", path=p, rel=rel,
                               label=EXPRESSIONS.index(expression), subject=subject,
                               factors={"take": take}))  # fmt: skip
    return ScanResult(items=items, classes=list(EXPRESSIONS), skipped=skipped, fps=19.0,
                      attributes={"labels": "expression folder", "split_source": "none"})  # fmt: skip
