"""The embedded procedural datasets synth-actions and synth-faces (spec/synthetic.md), in the prepared format.

``generate(SynthConfig("actions", videos=2000), "data/synth-actions", workers=2)`` draws every video and
writes a prepared dataset (:mod:`g3an.data.format`). Each video is a pure function of the config and its
index: its subject's appearance comes from ``(seed, subject)``, its motion from ``(seed, index)``, so
the output is byte-identical for the same config whatever the number of workers.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import numpy as np

from g3an.data.format import DatasetWriter, PreparedDataset
from g3an.data.synthetic import actions, faces
from g3an.data.synthetic.common import STREAM_MOTION, STREAM_SUBJECT, VideoPlan, make_rng, num_subjects, plan_videos
from g3an.machine import worker_context

__all__ = ["DATASETS", "GENERATOR_VERSION", "SynthConfig", "describe_video", "generate", "render_video"]

#: Version of the drawing code: bumped whenever the same config would give different pixels.
GENERATOR_VERSION = 1

DATASETS: dict[str, ModuleType] = {"actions": actions, "faces": faces}


@dataclass(frozen=True)
class SynthConfig:
    """Options of a synthetic dataset; the dataset is a pure function of them.

    Attributes:
        dataset: ``"actions"`` (synth-actions, the Weizmann analogue) or ``"faces"`` (synth-faces, MUG).
        videos: number of videos (classes are balanced to within one video).
        size: frame height and width in pixels.
        frames: frames per video (the paper's steps 1..4 over 16 frames need at least 61).
        seed: dataset seed.
        subjects: number of subjects (fixed appearance combinations); ``None``: one per ``len(classes)``
            videos, so every subject performs every class once.
        test_fraction: share of the subjects held out as the ``test`` split.
        supersample: anti-aliasing factor of the renderer.
    """

    dataset: str = "actions"
    videos: int = 1000
    size: int = 64
    frames: int = 64
    seed: int = 0
    subjects: int | None = None
    test_fraction: float = 0.2
    supersample: int = 4

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown synthetic dataset {self.dataset!r}; choose from {sorted(DATASETS)}")
        if self.videos < 1:
            raise ValueError(f"videos must be at least 1, got {self.videos}")
        if not 8 <= self.size <= 1024:
            raise ValueError(f"size must be in [8, 1024] pixels, got {self.size}")
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.subjects is not None and self.subjects < 1:
            raise ValueError(f"subjects must be at least 1 (or None), got {self.subjects}")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if not 1 <= self.supersample <= 8:
            raise ValueError(f"supersample must be in [1, 8], got {self.supersample}")

    @property
    def name(self) -> str:
        return f"synth-{self.dataset}"

    @property
    def module(self) -> ModuleType:
        return DATASETS[self.dataset]


def _sample(config: SynthConfig, plan: VideoPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    mod = config.module
    appearance = mod.sample_appearance(make_rng(config.seed, STREAM_SUBJECT, plan.subject))
    motion = mod.sample_motion(make_rng(config.seed, STREAM_MOTION, plan.index), plan.label, config.frames)
    return appearance, motion


def describe_video(config: SynthConfig, plan: VideoPlan) -> dict[str, Any]:
    """Every label of one video (appearance of its subject, its motion nuisances), without drawing it."""
    appearance, motion = _sample(config, plan)
    return {**appearance, **motion}


def render_video(config: SynthConfig, plan: VideoPlan) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw one video: ``(frames (T, size, size, 3) uint8, factors)``."""
    appearance, motion = _sample(config, plan)
    frames = config.module.render(appearance, motion, plan.label, config.size, config.frames, config.supersample)
    return frames, {**appearance, **motion}


def _render_chunk(config: SynthConfig, plans: list[VideoPlan]) -> list[tuple[np.ndarray, dict[str, Any]]]:
    return [render_video(config, p) for p in plans]


def _rendered(config: SynthConfig, plans: list[VideoPlan], workers: int,
              chunk: int = 4) -> Iterator[tuple[VideoPlan, np.ndarray, dict[str, Any]]]:  # fmt: skip
    """Videos in plan order, drawn by ``workers`` processes with a bounded number of chunks in flight."""
    if workers <= 1:
        for p in plans:
            yield p, *render_video(config, p)
        return
    chunks = [plans[i : i + chunk] for i in range(0, len(plans), chunk)]
    ctx = worker_context([__name__])  # the fork server imports the renderer once
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque[tuple[list[VideoPlan], Future]] = deque()
        todo = iter(chunks)
        try:
            for c in todo:
                pending.append((c, pool.submit(_render_chunk, config, c)))
                if len(pending) >= 3 * workers:
                    break
            while pending:
                c, fut = pending.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(_render_chunk, config, nxt)))
                for p, (frames, factors) in zip(c, fut.result()):
                    yield p, frames, factors
        except BaseException:
            for _, fut in pending:
                fut.cancel()
            raise


def factor_schema(factors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Machine-readable description of factors: ``categorical`` (``values``), ``continuous`` / ``integer``
    (``range``), ``continuous`` per class (``range_per_class``) or ``other`` (``description``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in factors.items():
        if isinstance(spec, list):
            out[name] = {"kind": "categorical", "values": spec}
        elif isinstance(spec, tuple):
            kind = "integer" if all(isinstance(v, int) for v in spec) else "continuous"
            out[name] = {"kind": kind, "range": list(spec)}
        elif isinstance(spec, dict):
            out[name] = {"kind": "continuous", "range_per_class": {k: list(v) for k, v in spec.items()}}
        else:
            out[name] = {"kind": "other", "description": str(spec)}
    return out


def attributes(config: SynthConfig) -> dict[str, Any]:
    """Dataset-level metadata: generator, config and the description of every factor."""
    mod = config.module
    return {
        "generator": config.name,
        "generator_version": GENERATOR_VERSION,
        "config": asdict(config),
        "num_subjects": num_subjects(config.videos, len(mod.CLASSES), config.subjects),
        "appearance_factors": factor_schema(mod.APPEARANCE_FACTORS),
        "motion_factors": factor_schema(mod.MOTION_FACTORS),
    }


def generate(config: SynthConfig, out_dir: str | os.PathLike, workers: int = 1, progress: bool = False,
             overwrite: bool = False) -> PreparedDataset:  # fmt: skip
    """Draw a synthetic dataset and write it in the prepared format.

    An interrupted run leaves ``OUT.partial``; the same call continues it (videos already stored are
    kept), a call with other options starts afresh.

    Args:
        config: what to draw.
        out_dir: the dataset directory to create.
        workers: processes drawing videos (the output does not depend on it).
        progress: show a progress bar on stderr.
        overwrite: replace an existing dataset at ``out_dir``.

    Returns:
        The written dataset, opened.
    """
    from tqdm.auto import tqdm

    mod = config.module
    plans = plan_videos(config.videos, len(mod.CLASSES), config.seed, config.subjects, config.test_fraction)
    writer = DatasetWriter(out_dir, config.size, config.size, mod.FPS, source=f"{config.name} v{GENERATOR_VERSION}",
                           class_names=mod.CLASSES, attributes=attributes(config), overwrite=overwrite,
                           resume=True)  # fmt: skip
    todo = [p for p in plans if not writer.has(f"{p.index:06d}")]
    bar = tqdm(total=len(plans), initial=len(plans) - len(todo), unit="video", desc=config.name,
               disable=not progress, file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    try:
        for p, frames, factors in _rendered(config, todo, workers):
            writer.add_video(frames, label=p.label, subject=f"s{p.subject:04d}", split=p.split, factors=factors,
                             source=f"{config.name}:{p.index}", id=f"{p.index:06d}")  # fmt: skip
            bar.update(1)
    except BaseException:
        writer.close()  # keep OUT.partial: the same call continues from here
        raise
    finally:
        bar.close()
    return writer.finalize()
