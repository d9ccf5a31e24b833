"""UvA-NEMO smiles: ``001_deliberate_smile_1.mp4``, ``001_spontaneous_smile_2.mp4`` (any folder depth).

The subject is the leading number of the file name. The label is ``deliberate`` or ``spontaneous`` when
the file name (or a parent folder) says so, ``-1`` otherwise; the paper trains unconditionally. There is
no official split (``split`` is empty). Faces are cropped with the offline detector (see
:mod:`g3an.data.prepare.face`) and resized to ``size x size``.
"""

from __future__ import annotations

import re
from pathlib import Path

from g3an.data.prepare.common import ScanResult, VideoItem, find_sources, probe_fps, unique_ids

__all__ = ["CLASSES", "scan"]

#: Smile classes, in label order.
CLASSES = ("deliberate", "spontaneous")
_SUBJECT = re.compile(r"^(\d+)")


def scan(src: Path) -> ScanResult:
    """UvA-NEMO videos under ``src`` with subject and spontaneous / deliberate labels where named."""
    sources, skipped = find_sources(src)
    ids = unique_ids(sources, src)
    items = []
    for p, vid in zip(sources, ids):
        rel = p.relative_to(src)
        words = re.split(r"[_\-\s./]+", rel.as_posix().lower())
        kinds = [c for c in CLASSES if c in words or any(w.startswith(c) for w in words)]
        label = CLASSES.index(kinds[0]) if len(kinds) == 1 else -1
        m = _SUBJECT.match(p.name)
        items.append(VideoItem(id=vid, path=p, rel=rel.as_posix(), label=label, subject=m[1] if m else ""))
    classes = list(CLASSES) if any(it.label >= 0 for it in items) else []
    attributes = {"labels": "spontaneous / deliberate from the name", "split_source": "none"}
    fps = probe_fps(sources, 50.0)
    return ScanResult(items=items, classes=classes, skipped=skipped, fps=fps, attributes=attributes)
