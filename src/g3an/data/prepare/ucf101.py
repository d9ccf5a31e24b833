"""UCF101: ``UCF-101/Class/v_Class_gXX_cYY.avi`` with the official ``trainlist0N`` / ``testlist0N`` splits.

Classes come from ``classInd.txt`` when present (its order; ``1 ApplyEyeMakeup``), else from the
file names, sorted. Splits come from ``trainlist0N.txt`` / ``testlist0N.txt`` found anywhere under the
source (``--split-index N``, default 1); without them the official rule is applied: the test set of
split N is groups ``7N-6 .. 7N``. Names are matched case-insensitively (the official files spell
``HandStandPushups`` and ``HandstandPushups`` both ways). The group is the subject. Frames are scaled to
85x64 and the central 64x64 kept, as the paper.
"""

from __future__ import annotations

import re
from pathlib import Path

from g3an.data.prepare.common import ScanResult, Skip, VideoItem, find_sources

__all__ = ["parse_name", "scan"]

_NAME = re.compile(r"^v_(?P<cls>[A-Za-z0-9]+)_g(?P<group>\d+)_c(?P<clip>\d+)$")


def parse_name(stem: str) -> tuple[str, int, int] | None:
    """``(class, group, clip)`` of ``v_Class_gXX_cYY``, ``None`` when the stem does not fit."""
    m = _NAME.match(stem)
    return (m["cls"], int(m["group"]), int(m["clip"])) if m else None


def _find(src: Path, name: str) -> Path | None:
    hits = sorted(p for p in src.rglob(name) if p.is_file())
    return hits[0] if hits else None


def _read_list(path: Path) -> set[str]:
    """Lower-case file stems of a train/test list (``Class/v_Class_g08_c01.avi 1`` per line)."""
    out = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            out.add(Path(line.split()[0].replace("\\", "/")).stem.lower())
    return out


def scan(src: Path, split_index: int = 1) -> ScanResult:
    """UCF101 videos under ``src`` with labels and the train/test split ``split_index`` (1, 2 or 3)."""
    if split_index not in (1, 2, 3):
        raise ValueError(f"UCF101 has splits 1, 2 and 3, got {split_index}")
    sources, skipped = find_sources(src)
    parsed: list[tuple[Path, str, int, int]] = []
    for p in sources:
        info = parse_name(p.name if p.is_dir() else p.stem)
        if info is None:
            skipped.append(Skip(p.relative_to(src).as_posix(), "unrecognised_name", "expected v_Class_gXX_cYY"))
            continue
        parsed.append((p, *info))
    ind = _find(src, "classInd.txt")
    attributes: dict = {"labels": "class from v_Class_gXX_cYY"}
    if ind is not None:
        classes = [ln.split()[1] for ln in ind.read_text(encoding="utf-8").splitlines() if len(ln.split()) >= 2]
        attributes["classes_source"] = ind.relative_to(src).as_posix()
    else:
        classes = sorted({c for _, c, _, _ in parsed}, key=str.lower)
        attributes["classes_source"] = "file names"
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    train_path, test_path = _find(src, f"trainlist0{split_index}.txt"), _find(src, f"testlist0{split_index}.txt")
    train = _read_list(train_path) if train_path else None
    test = _read_list(test_path) if test_path else None
    if train is not None and test is not None:
        attributes["split_source"] = [train_path.relative_to(src).as_posix(), test_path.relative_to(src).as_posix()]
    else:
        attributes["split_source"] = f"official group rule: test = groups {7 * split_index - 6}..{7 * split_index}"
    attributes["split_index"] = split_index
    items = []
    for p, cls, group, clip in parsed:
        rel = p.relative_to(src).as_posix()
        label = by_lower.get(cls.lower())
        if label is None:
            skipped.append(Skip(rel, "excluded_class", f"class {cls!r} is not in {attributes['classes_source']}"))
            continue
        stem = f"v_{cls}_g{group:02d}_c{clip:02d}".lower()
        if train is not None and test is not None:
            split = "train" if stem in train else "test" if stem in test else ""
        else:
            split = "test" if 7 * split_index - 6 <= group <= 7 * split_index else "train"
        items.append(VideoItem(id=f"v_{classes[label]}_g{group:02d}_c{clip:02d}", path=p, rel=rel, label=label,
                               subject=f"g{group:02d}", split=split, factors={"clip": clip}))  # fmt: skip
    return ScanResult(items=items, classes=classes, skipped=skipped, fps=25.0, attributes=attributes)
