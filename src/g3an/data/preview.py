"""Choosing what a dataset preview shows: a grid of clips, one subject per row and one class per column."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from g3an.data.format import PreparedDataset

__all__ = ["PreviewGrid", "preview_grid"]


@dataclass(frozen=True)
class PreviewGrid:
    """Clips to show and their labels.

    Attributes:
        videos: ``(R, C, T, H, W, 3)`` uint8 clips.
        indices: ``(R, C)`` dataset index of each clip (``-1``: empty cell).
        row_labels: subject of each row (``""`` when a row mixes subjects).
        col_labels: class of each column (``""`` for unlabeled data).
    """

    videos: np.ndarray
    indices: np.ndarray
    row_labels: list[str]
    col_labels: list[str]


def preview_grid(ds: PreparedDataset, rows: int = 3, cols: int | None = None, frames: int = 16, step: int = 2,
                 split: str | None = None, seed: int = 0) -> PreviewGrid:  # fmt: skip
    """Pick clips for a labelled preview.

    With classes, column ``c`` shows class ``c`` and each row one subject (subjects that have every
    shown class first; a cell the row's subject lacks is filled with another subject's video). Without
    classes, the cells are distinct videos. Clips are ``frames`` frames at stride ``step`` from the
    first frame; a video too short holds its last frame. The choice is a function of ``seed``.
    """
    rng = np.random.default_rng(seed)
    pool = ds.split(split)
    if ds.classes:
        present = sorted({int(ds.labels[i]) for i in pool if ds.labels[i] >= 0})
        shown = present[: cols or 12]
    else:
        shown = [-1] * (cols or 4)
    by_subject: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in pool:
        by_subject[ds.videos[i].subject][int(ds.labels[i]) if ds.classes else -1].append(i)
    subjects = list(by_subject)
    order = rng.permutation(len(subjects))
    wanted = set(shown)
    subjects = sorted((subjects[k] for k in order), key=lambda s: -len(wanted & set(by_subject[s])))
    used: set[int] = set()
    grid = np.full((rows, len(shown)), -1, np.int64)
    labels = []
    for r in range(rows):
        subj = subjects[r % len(subjects)] if subjects else ""
        same = True
        for c, label in enumerate(shown):
            mine = [i for i in by_subject[subj].get(label, []) if i not in used]
            others = [i for s in subjects for i in by_subject[s].get(label, []) if i not in used]
            choice = mine or others
            if choice:
                grid[r, c] = choice[int(rng.integers(len(choice)))] if mine else choice[0]
                used.add(int(grid[r, c]))
            same = same and bool(mine)
        labels.append(subj if same and subj else "")
    t_idx = np.arange(frames) * step
    videos = np.full((rows, len(shown), frames, ds.height, ds.width, 3), 255, np.uint8)
    for (r, c), i in np.ndenumerate(grid):
        if i >= 0:
            v = ds.frames(int(i))
            videos[r, c] = v[np.minimum(t_idx, len(v) - 1)]
    col_labels = [ds.classes[k] if k >= 0 else "" for k in shown]
    return PreviewGrid(videos, grid, labels, col_labels)
