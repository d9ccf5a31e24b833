"""Weizmann human actions: ``subject_action[n].avi``, e.g. ``daria_walk.avi``, ``lena_run2.avi``.

Classes are the ten actions of the dataset in this order (bend, jack, jump, pjump, run, side, skip,
walk, wave1, wave2; ``wave1`` / ``wave2`` are two actions, one- and two-hand waving, not repetitions),
then any other action name found, sorted, so labels do not depend on which files are present;
the subject is the person. The dataset has no official split (``split`` is empty). Frames are scaled to
85x64 and the central 64x64 kept, as the paper; ``--flip`` adds a mirrored copy of every video.
"""

from __future__ import annotations

import re
from pathlib import Path

from g3an.data.prepare.common import ScanResult, Skip, VideoItem, find_sources

__all__ = ["ACTIONS", "parse_name", "scan"]

#: The ten Weizmann actions.
ACTIONS = ("bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2")
_NAME = re.compile(r"^(?P<subject>[A-Za-z0-9]+)_(?P<rest>[A-Za-z0-9]+)$")


def parse_name(stem: str) -> tuple[str, str, int] | None:
    """``(subject, action, repetition)`` of a Weizmann file stem, ``None`` when it does not fit.

    ``lena_run2`` -> ``("lena", "run", 2)``; ``daria_wave1`` -> ``("daria", "wave1", 0)``.
    """
    m = _NAME.match(stem)
    if not m:
        return None
    subject, rest = m["subject"].lower(), m["rest"].lower()
    if rest in ACTIONS:
        return subject, rest, 0
    m2 = re.match(r"^([a-z]+?)(\d*)$", rest)
    if not m2:
        return None
    return subject, m2[1], int(m2[2] or 0)


def scan(src: Path) -> ScanResult:
    """Weizmann videos under ``src`` (any depth), labelled by action."""
    sources, skipped = find_sources(src)
    parsed: list[tuple[Path, str, str, int]] = []
    for p in sources:
        rel = p.relative_to(src).as_posix()
        stem = p.name if p.is_dir() else p.stem
        info = parse_name(stem)
        if info is None:
            skipped.append(Skip(rel, "unrecognised_name", "expected subject_action[n], e.g. daria_walk or lena_run2"))
            continue
        parsed.append((p, *info))
    classes = list(ACTIONS) + sorted({a for _, _, a, _ in parsed} - set(ACTIONS))
    items = []
    for p, subject, action, rep in parsed:
        vid = f"{subject}_{action}" + (str(rep) if rep else "")
        items.append(VideoItem(id=vid, path=p, rel=p.relative_to(src).as_posix(), label=classes.index(action),
                               subject=subject, factors={"action": action, "repetition": rep}))  # fmt: skip
    return ScanResult(items=items, classes=classes, skipped=skipped, fps=25.0,
                      attributes={"labels": "action from subject_action[n]", "split_source": "none"})  # fmt: skip
