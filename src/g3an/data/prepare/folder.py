"""Any folder of videos: one class per top-level sub-folder, or no classes.

Each video file (any container PyAV reads) or folder of frames is one video; its id is its path relative
to the source without the extension. A top-level sub-folder that is not itself a frame folder is a class
(searched recursively); videos directly in the source folder are unlabeled (``-1``). Without class
folders the dataset has no classes. Frames are resized (short side) and centre-cropped to
``size x size``.
"""

from __future__ import annotations

from pathlib import Path

from g3an.data.prepare.common import ScanResult, VideoItem, find_sources, probe_fps, unique_ids

__all__ = ["scan"]


def scan(src: Path, labels: bool = True) -> ScanResult:
    """Videos under ``src``; with ``labels``, the top-level sub-folder holding a video is its class."""
    sources, skipped = find_sources(src)
    ids = unique_ids(sources, src)
    tops = [p.relative_to(src).parts[0] if len(p.relative_to(src).parts) > 1 else None for p in sources]
    classes = sorted({t for t in tops if t is not None}) if labels else []
    items = [VideoItem(id=vid, path=p, rel=p.relative_to(src).as_posix(),
                       label=classes.index(t) if labels and t is not None else -1)
             for p, vid, t in zip(sources, ids, tops)]  # fmt: skip
    attributes = {"labels": "top-level sub-folder" if classes else "none", "split_source": "none"}
    return ScanResult(items=items, classes=classes, skipped=skipped, fps=probe_fps(sources), attributes=attributes)
