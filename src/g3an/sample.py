"""Sampling videos from a generator, and latents files that regenerate them exactly.

Everything produced here is described by a :class:`LatentPlan`: a grid of ``rows x cols`` videos
(rows = appearances, columns = motions wherever the layout has a meaning, as in the paper's figures)
whose latent codes and class labels are stored in one or more :class:`LatentBatch` es. A plan is
rendered by :func:`render` into a ``(R, C, 3, T, H, W)`` tensor in [-1, 1] and written, together with
a small JSON *latents file* beside the media (:func:`save_latents`), so that ``g3an sample CKPT
--latents FILE`` (or :func:`load_latents` + :func:`render`) gives the same pixels again.

Latents are drawn on the CPU from ``torch.Generator`` s seeded with a stable hash of the seed and a
stream name (``appearance``, ``motion``, ``sample``, ...), so a code depends only on the seed, its
stream and its index, never on the device or on what else is drawn. A generator's output for one
video depends (by float rounding) on which other videos share its forward batch, so a plan records its
``batch_size`` and rendering always uses the same chunks.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from g3an import __version__
from g3an.checkpoint import CheckpointError, atomic_write, latest_checkpoint, load_generator, write_safetensors
from g3an.models.base import VideoGenerator
from g3an.train.config import PRECISIONS  # rendering precisions: the training ones
from g3an.train.sampler import derive_seed

__all__ = [
    "LATENTS_FORMAT",
    "CheckpointRef",
    "LatentBatch",
    "LatentPlan",
    "LatentsFileError",
    "LoadedGenerator",
    "SamplingError",
    "check_frames",
    "check_media_path",
    "check_plan",
    "checkpoint_file",
    "class_label",
    "class_names_of",
    "draw_latents",
    "file_sha256",
    "latents_path_for",
    "load_for_sampling",
    "load_latents",
    "output_paths",
    "plan_samples",
    "regenerate_plan",
    "render",
    "resolve_class",
    "sample",
    "save_latents",
    "write_plan",
]

LATENTS_FORMAT = "g3an-latents"
LATENTS_FORMAT_VERSION = 1
#: above this many floats the latents go to a safetensors side file instead of the JSON
MAX_INLINE_FLOATS = 50_000
MEDIA_EXTENSIONS = (".mp4", ".gif", ".png")


class SamplingError(ValueError):
    """A bad sampling or manipulation argument.

    Attributes:
        param: the command-line flag it comes from (``--class``, ``--frames``, ``--out``, ...), or ``None``.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class LatentsFileError(SamplingError):
    """A latents file is missing, malformed, or made with another model or checkpoint."""

    def __init__(self, message: str, param: str | None = "--latents") -> None:
        super().__init__(message, param)


@dataclass
class LatentBatch:
    """Latent codes of some cells of a grid, all of one length.

    Attributes:
        frames: video length in frames.
        cells: ``(row, col)`` grid position of each of the N videos.
        latents: the generator's named codes, each ``(N, ...)`` float32 on the CPU.
        labels: class indices ``(N,)`` int64, or ``None`` for an unconditional model.
    """

    frames: int
    cells: list[tuple[int, int]]
    latents: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.cells)
        for name, value in self.latents.items():
            if value.shape[0] != n:
                raise ValueError(f"latent {name!r} has {value.shape[0]} rows for {n} cells")
        if self.labels is not None and tuple(self.labels.shape) != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")


@dataclass
class LatentPlan:
    """A ``rows x cols`` grid of videos to generate, with everything needed to regenerate it.

    Attributes:
        mode: what made it (``sample``, ``grid``, ``vary-motion``, ...).
        rows: grid rows (appearances, where the layout has a meaning).
        cols: grid columns (motions, classes, sweep values, ...).
        batches: the latents of the cells; a cell appears in at most one batch (an empty cell is white).
        row_labels: one label per row, or ``None`` when rows have no meaning.
        col_labels: one label per column, or ``None``.
        seed: seed the latents were drawn with (``None`` if given by hand).
        params: the mode's parameters, recorded for the reader.
        title: one line describing the grid.
        batch_size: videos per generator forward pass when rendering (part of the exact result).
        precision: ``fp32``, or ``bf16`` / ``fp16`` (CUDA) autocast when rendering (part of the exact result;
            bf16 is faster on CPUs with AVX512-BF16 or AMX and on GPUs, and its pixels differ from fp32's
            by bf16 rounding).
    """

    mode: str
    rows: int
    cols: int
    batches: list[LatentBatch]
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    batch_size: int = 16
    precision: str = "fp32"

    def __post_init__(self) -> None:
        cells = [c for b in self.batches for c in b.cells]
        if not cells:
            raise ValueError("a plan needs at least one video")
        if len(set(cells)) != len(cells):
            raise ValueError("a grid cell appears in more than one batch")
        outside = [c for c in cells if not (0 <= c[0] < self.rows and 0 <= c[1] < self.cols)]
        if outside:
            raise ValueError(f"cell {outside[0]} is outside the {self.rows}x{self.cols} grid")
        if self.row_labels is not None and len(self.row_labels) != self.rows:
            raise ValueError(f"{len(self.row_labels)} row labels for {self.rows} rows")
        if self.col_labels is not None and len(self.col_labels) != self.cols:
            raise ValueError(f"{len(self.col_labels)} column labels for {self.cols} columns")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def frames(self) -> list[int]:
        """Video length of every batch (frames)."""
        return [b.frames for b in self.batches]


@dataclass(frozen=True)
class CheckpointRef:
    """Where a plan's generator came from: recorded in latents files and checked on regeneration."""

    model: str
    path: str
    sha256: str


@dataclass
class LoadedGenerator:
    """A generator ready for sampling, with its origin and class names."""

    generator: VideoGenerator
    ref: CheckpointRef
    class_names: list[str] | None
    config: Any = None


# -- checkpoints and classes ------------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def class_names_of(info: dict[str, Any], num_classes: int) -> list[str] | None:
    """Class names stored with a checkpoint (``meta.class_names``), if there is one per class.

    Args:
        info: the ``info`` dict returned by :func:`g3an.checkpoint.load_generator`.
        num_classes: classes of the generator.
    """
    names: Any = None
    meta = info.get("meta")
    if isinstance(meta, dict):
        names = meta.get("class_names")
    if names is None and isinstance(info.get("class_names"), str):  # exported safetensors: JSON metadata
        try:
            names = json.loads(info["class_names"])
        except json.JSONDecodeError:
            names = None
    if not isinstance(names, (list, tuple)) or len(names) != num_classes or not num_classes:
        return None
    return [str(n) for n in names]


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file ``path`` names: itself, or for a training run directory its latest
    ``checkpoints/step-*.pt`` (as :func:`g3an.checkpoint.load_generator`), and for a shipped model's name
    its file, so the record names one file."""
    from g3an.pretrained import is_shipped, shipped_path

    if is_shipped(str(path)):
        try:
            return shipped_path(str(path))
        except FileNotFoundError as err:
            raise CheckpointError(str(err)) from None
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest
    return path


def load_for_sampling(path: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Load a generator (training checkpoint, exported safetensors or run directory) in eval mode for sampling.

    Raises:
        g3an.checkpoint.CheckpointError: for a missing or invalid file.
        SamplingError: for a device that does not exist here.
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SamplingError(f"not a device: {device!r} ({err})", "--device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SamplingError(f"device {device} requested, but CUDA is not available", "--device")
    path = checkpoint_file(path)
    name, cfg, gen, info = load_generator(path, ema=ema)
    gen = gen.to(device)
    ref = CheckpointRef(model=name, path=str(Path(path).resolve()), sha256=file_sha256(path))
    return LoadedGenerator(gen, ref, class_names_of(info, gen.num_classes), cfg)


def resolve_class(value: str | int | None, num_classes: int, class_names: Sequence[str] | None = None) -> int | None:
    """The class index named by ``value`` (a class name or an index), or ``None`` if ``value`` is ``None``.

    Raises:
        SamplingError: for an unconditional model, or a name / index that is not a class of the model.
    """
    if value is None:
        return None
    if not num_classes:
        raise SamplingError(
            f"class {value!r} given, but this generator is unconditional (it has no classes)", "--class"
        )
    names = list(class_names or [])
    if isinstance(value, str) and value in names:
        return names.index(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < num_classes:
            return index
        raise SamplingError(
            f"class index {index} out of range: this generator has classes 0..{num_classes - 1}", "--class"
        )
    known = ", ".join(names) if names else f"indices 0..{num_classes - 1} (the checkpoint stores no class names)"
    raise SamplingError(f"unknown class {value!r}; known classes: {known}", "--class")


def class_label(index: int, class_names: Sequence[str] | None) -> str:
    """A class's name if known, else ``class <index>``."""
    return str(class_names[index]) if class_names else f"class {index}"


def check_frames(generator: VideoGenerator, frames: int | None, param: str = "--frames") -> int:
    """``frames`` (or the generator's default length) after checking the generator can make it.

    Raises:
        SamplingError: naming the length and the generator's default (``param``: the flag to blame).
    """
    frames = generator.default_frames if frames is None else int(frames)
    if not generator.valid_frames(frames):
        try:  # the model's own explanation, when it has one
            generator.latent_shapes(frames)
            reason = ""
        except ValueError as err:
            reason = f" ({err})"
        default = generator.default_frames
        raise SamplingError(f"this generator cannot make {frames}-frame videos{reason}; default {default}", param)
    return frames


# -- drawing ----------------------------------------------------------------------------------------
def draw_latents(generator: VideoGenerator, n: int, frames: int, seed: int, stream: str) -> dict[str, torch.Tensor]:
    """``n`` standard-normal sets of the generator's latents, from the CPU stream ``(seed, stream)``.

    The i-th code of a stream does not depend on ``n`` (codes are drawn one video after another with
    the generator's own ``sample_latents``).
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, stream))
    shapes = generator.latent_shapes(frames)
    draws = [generator.sample_latents(1, frames, generator=gen, device="cpu") for _ in range(n)]
    return {
        name: torch.cat([d[name] for d in draws]) if draws else torch.zeros((0, *shape))
        for name, shape in shapes.items()
    }


def plan_samples(
    generator: VideoGenerator,
    n: int,
    seed: int = 0,
    frames: int | None = None,
    label: int | None = None,
    cols: int | None = None,
    class_names: Sequence[str] | None = None,
    batch_size: int = 16,
) -> LatentPlan:
    """``n`` independent videos laid out in a near-square grid (``cols`` columns) of no particular meaning.

    Args:
        generator: the model (only its latent shapes and classes are used).
        n: number of videos.
        seed: seed of the latents (and of the class labels when ``label`` is ``None``).
        frames: video length; default: the generator's.
        label: class of every video; ``None``: uniform random classes (conditional models).
        cols: grid columns; default ``ceil(sqrt(n))``.
        class_names: names shown in the cell labels of a conditional model.
        batch_size: videos per forward pass.
    """
    if n < 1:
        raise SamplingError(f"n must be >= 1, got {n}", "--n")
    frames = check_frames(generator, frames)
    cols = min(n, cols or math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    cells = [(i // cols, i % cols) for i in range(n)]
    latents = draw_latents(generator, n, frames, seed, "sample")
    labels = None
    if generator.num_classes:
        if label is None:
            gen = torch.Generator().manual_seed(derive_seed(seed, "labels"))
            labels = torch.cat([torch.randint(generator.num_classes, (1,), generator=gen) for _ in range(n)])
        else:
            labels = torch.full((n,), int(label), dtype=torch.long)
    elif label is not None:
        raise SamplingError("a class was given, but this generator is unconditional", "--class")
    title = f"{n} samples, seed {seed}, {frames} frames"
    if label is not None:
        title += f", {class_label(label, class_names)}"
    return LatentPlan(
        mode="sample",
        rows=rows,
        cols=cols,
        batches=[LatentBatch(frames, cells, latents, labels)],
        seed=seed,
        params={"n": n, "frames": frames, "class": label},
        title=title,
        batch_size=batch_size,
    )


# -- rendering --------------------------------------------------------------------------------------
def _hold_last(video: torch.Tensor, frames: int) -> torch.Tensor:
    """Pad ``(3, T, H, W)`` to ``frames`` frames by repeating its last frame."""
    if video.shape[1] == frames:
        return video
    return torch.cat([video, video[:, -1:].expand(-1, frames - video.shape[1], -1, -1)], 1)


@torch.no_grad()
def render(generator: VideoGenerator, plan: LatentPlan, device: str | torch.device | None = None) -> torch.Tensor:
    """Generate every cell of ``plan``: ``(R, C, 3, T, H, W)`` float32 on the CPU in [-1, 1].

    Shorter videos of a plan with several lengths (``length`` mode) hold their last frame up to the
    longest one; cells without a video are white. Each batch is run in chunks of ``plan.batch_size``
    videos, in the batch's order and in ``plan.precision``, so the same plan gives the same pixels (on one
    device and PyTorch build, with the same number of CPU threads).
    """
    from g3an.train.loop import autocast_context

    device = torch.device(device) if device is not None else generator.device
    try:
        autocast_context(plan.precision, device)  # refuses fp16 off CUDA before any work
    except ValueError as err:
        raise SamplingError(str(err), "--precision") from None
    was_training = generator.training
    generator.eval()
    outputs: dict[tuple[int, int], torch.Tensor] = {}
    try:
        for batch in plan.batches:
            n = len(batch.cells)
            for start in range(0, n, plan.batch_size):
                part = slice(start, min(n, start + plan.batch_size))
                latents = {k: v[part].to(device) for k, v in batch.latents.items()}
                y = batch.labels[part].to(device) if batch.labels is not None else None
                with autocast_context(plan.precision, device):
                    video = generator(**latents, y=y).float().cpu()  # (b, 3, T, H, W)
                for cell, v in zip(batch.cells[part], video):
                    outputs[cell] = v
    finally:
        generator.train(was_training)
    longest = max(v.shape[1] for v in outputs.values())
    blank = torch.ones_like(next(iter(outputs.values()))[:, :1])  # (3, 1, H, W) white, as the grid margins
    grid = [[_hold_last(outputs.get((r, c), blank), longest) for c in range(plan.cols)] for r in range(plan.rows)]
    return torch.stack([torch.stack(row) for row in grid])


# -- latents files ----------------------------------------------------------------------------------
def latents_path_for(media_path: str | Path) -> Path:
    """The latents file written beside ``media_path``: ``clip.mp4`` -> ``clip.mp4.latents.json``.

    The media extension stays in the name, so ``clip.mp4`` and ``clip.gif`` keep separate records.
    """
    media_path = Path(media_path)
    return media_path.with_name(media_path.name + ".latents.json")


def _tensor_record(value: torch.Tensor) -> dict[str, Any]:
    return {
        "shape": list(value.shape),
        "dtype": str(value.dtype).removeprefix("torch."),
        "data": value.flatten().tolist(),
    }


def _dumps(record: dict[str, Any]) -> str:
    """JSON with one key per line but every list of numbers (data, shapes, cells, labels) on one line."""
    compact: list[str] = []

    def hide(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: hide(v) for k, v in value.items()}
        if isinstance(value, list) and value and all(isinstance(v, (int, float, list)) for v in value):
            compact.append(json.dumps(value, separators=(",", ":")))
            return f"\0{len(compact) - 1}\0"
        if isinstance(value, list):
            return [hide(v) for v in value]
        return value

    text = json.dumps(hide(record), indent=1)
    for i, value in enumerate(compact):
        text = text.replace(f'"\\u0000{i}\\u0000"', value, 1)
    return text


def save_latents(
    path: str | Path,
    plan: LatentPlan,
    source: CheckpointRef | None = None,
    class_names: Sequence[str] | None = None,
    media: str | Path | None = None,
    fps: float | None = None,
) -> Path:
    """Write ``plan`` as a JSON latents file (floats inline, or a safetensors side file when large).

    Args:
        path: the ``.json`` file to write.
        plan: what to record.
        source: the checkpoint the media came from (model name, path, SHA-256).
        class_names: names of the classes, recorded next to the indices.
        media: the media file this records (stored by name).
        fps: frame rate of the media (frames per second).

    Returns:
        ``path``.
    """
    path = Path(path)
    total = sum(v.numel() for b in plan.batches for v in b.latents.values())
    side = path.with_name(path.name.removesuffix(".json") + ".safetensors") if total > MAX_INLINE_FLOATS else None
    tensors: dict[str, torch.Tensor] = {}
    batches = []
    for i, b in enumerate(plan.batches):
        lat = {}
        for name, value in b.latents.items():
            value = value.detach().to("cpu", torch.float32).contiguous()
            if side is None:
                lat[name] = _tensor_record(value)
            else:
                key = f"batch{i}.{name}"
                tensors[key] = value
                lat[name] = {"shape": list(value.shape), "dtype": "float32", "file": side.name, "key": key}
        batches.append(
            {
                "frames": b.frames,
                "cells": [list(c) for c in b.cells],
                "labels": None if b.labels is None else [int(x) for x in b.labels],
                "class_names": None
                if b.labels is None or not class_names
                else [str(class_names[int(x)]) for x in b.labels],
                "latents": lat,
            }
        )
    record = {
        "format": LATENTS_FORMAT,
        "format_version": LATENTS_FORMAT_VERSION,
        "package_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": source.model if source else None,
        "checkpoint": source.path if source else None,
        "checkpoint_sha256": source.sha256 if source else None,
        "media": Path(media).name if media is not None else None,
        "fps": fps,
        "mode": plan.mode,
        "seed": plan.seed,
        "params": plan.params,
        "title": plan.title,
        "rows": plan.rows,
        "cols": plan.cols,
        "row_labels": plan.row_labels,
        "col_labels": plan.col_labels,
        "batch_size": plan.batch_size,
        "precision": plan.precision,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "class_names": list(class_names) if class_names else None,
        "batches": batches,
    }
    if side is not None:
        write_safetensors(side, tensors, {"format": LATENTS_FORMAT})
    text = _dumps(record)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return path


def _read_tensor(
    spec: dict[str, Any], where: str, path: Path, side: dict[str, dict[str, torch.Tensor]]
) -> torch.Tensor:
    shape = tuple(int(s) for s in spec["shape"])
    if "file" in spec:
        file = path.with_name(spec["file"])
        if file.name not in side:
            if not file.is_file():
                raise LatentsFileError(f"{path}: its side file {file} is missing")
            side[file.name] = load_file(str(file))
        try:
            value = side[file.name][spec["key"]]
        except KeyError:
            raise LatentsFileError(f"{path}: {file.name} has no tensor {spec['key']!r} ({where})") from None
    else:
        value = torch.tensor(spec["data"], dtype=torch.float32)
    if value.numel() != math.prod(shape):
        raise LatentsFileError(f"{path}: {where} holds {value.numel()} values for shape {list(shape)}")
    return value.reshape(shape).to(torch.float32)


def load_latents(path: str | Path) -> tuple[LatentPlan, dict[str, Any]]:
    """Read a latents file written by :func:`save_latents`.

    Returns:
        ``(plan, record)``; ``record`` is the file's JSON (model, checkpoint, SHA-256, fps, ...).

    Raises:
        LatentsFileError: naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentsFileError(f"{path}: no such latents file")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LatentsFileError(f"{path}: not a JSON latents file ({err})") from None
    if not isinstance(record, dict) or record.get("format") != LATENTS_FORMAT:
        raise LatentsFileError(f"{path}: not a g3an latents file (no 'format': '{LATENTS_FORMAT}' entry)")
    if int(record.get("format_version", 0)) > LATENTS_FORMAT_VERSION:
        raise LatentsFileError(f"{path}: latents format {record['format_version']} is newer than this g3an's")
    side: dict[str, Any] = {}
    try:
        batches = []
        for i, b in enumerate(record["batches"]):
            latents = {name: _read_tensor(spec, f"batch {i} {name}", path, side) for name, spec in b["latents"].items()}
            labels = None if b.get("labels") is None else torch.tensor(b["labels"], dtype=torch.long)
            batches.append(LatentBatch(int(b["frames"]), [(int(r), int(c)) for r, c in b["cells"]], latents, labels))
        plan = LatentPlan(
            mode=str(record["mode"]),
            rows=int(record["rows"]),
            cols=int(record["cols"]),
            batches=batches,
            row_labels=record.get("row_labels"),
            col_labels=record.get("col_labels"),
            seed=record.get("seed"),
            params=record.get("params") or {},
            title=record.get("title"),
            batch_size=int(record.get("batch_size", 16)),
            precision=str(record.get("precision", "fp32")),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, LatentsFileError):
            raise
        raise LatentsFileError(f"{path}: malformed latents file ({type(err).__name__}: {err})") from None
    return plan, record


def check_plan(generator: VideoGenerator, plan: LatentPlan) -> None:
    """Check that ``plan``'s latents fit ``generator`` (names, shapes, classes), with a clear error."""
    for i, b in enumerate(plan.batches):
        shapes = generator.latent_shapes(check_frames(generator, b.frames))
        if set(shapes) != set(b.latents):
            raise LatentsFileError(
                f"batch {i}: latents {sorted(b.latents)} do not match the generator's {sorted(shapes)}"
            )
        for name, shape in shapes.items():
            if tuple(b.latents[name].shape[1:]) != tuple(shape):
                raise LatentsFileError(
                    f"batch {i}: latent {name!r} has shape {list(b.latents[name].shape[1:])}, "
                    f"the generator expects {list(shape)}"
                )
        if bool(generator.num_classes) != (b.labels is not None):
            raise LatentsFileError(
                f"batch {i}: class labels do not match a generator with {generator.num_classes} classes"
            )
        if b.labels is not None and ((b.labels < 0) | (b.labels >= generator.num_classes)).any():
            raise LatentsFileError(f"batch {i}: class labels outside 0..{generator.num_classes - 1}")


# -- writing ----------------------------------------------------------------------------------------
def check_precision(precision: str) -> None:
    """:class:`SamplingError` naming ``--precision`` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise SamplingError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}", "--precision")


def check_media_path(path: str | Path) -> Path:
    """``path`` if its extension is one of the media formats; :class:`SamplingError` naming it otherwise."""
    path = Path(path)
    if path.suffix.lower() not in MEDIA_EXTENSIONS:
        raise SamplingError(
            f"{path}: unsupported extension {path.suffix or '(none)'!r}; use one of {', '.join(MEDIA_EXTENSIONS)}",
            "--out",
        )
    return path


def write_plan(
    path: str | Path,
    plan: LatentPlan,
    videos: torch.Tensor,
    source: CheckpointRef | None = None,
    class_names: Sequence[str] | None = None,
    fps: float = 8.0,
) -> tuple[Path, Path]:
    """Write the rendered grid ``videos`` ``(R, C, 3, T, H, W)`` to ``path`` (.mp4/.gif/.png) and its latents file.

    A 1x1 plan without labels is written as a plain video; anything else as a labelled grid.

    Returns:
        ``(media_path, latents_path)``.
    """
    from g3an import media

    path = check_media_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if plan.rows == plan.cols == 1 and plan.row_labels is None and plan.col_labels is None:
        media.save_video(path, videos[0, 0], fps=fps)
    else:
        media.save_grid(path, videos, row_labels=plan.row_labels, col_labels=plan.col_labels, fps=fps, title=plan.title)
    latents = save_latents(latents_path_for(path), plan, source, class_names, media=path, fps=fps)
    return path, latents


def output_paths(out: str | Path, n: int) -> list[Path] | None:
    """The files of a ``{i}`` output pattern (``samples/{i:04d}.mp4``) for ``n`` videos, or ``None`` for one file.

    Raises:
        SamplingError: for a pattern with other fields, giving one name twice, or an unsupported extension.
    """
    text = str(out)
    if "{" not in text:
        check_media_path(out)
        return None
    try:
        paths = [Path(text.format(i=i)) for i in range(n)]
    except (KeyError, IndexError, ValueError) as err:
        raise SamplingError(
            f"{out}: a pattern may only use {{i}}, e.g. samples/{{i:04d}}.mp4 ({err})", "--out"
        ) from None
    if len(set(paths)) != n:
        raise SamplingError(f"{out}: the pattern gives several videos the same file name", "--out")
    for path in paths:
        check_media_path(path)
    return paths


def regenerate_plan(
    loaded: LoadedGenerator, latents: str | Path, strict_checkpoint: bool = True
) -> tuple[LatentPlan, dict[str, Any]]:
    """Read a latents file and check it fits ``loaded`` (model, checkpoint SHA-256, shapes, classes).

    Returns:
        ``(plan, record)`` as :func:`load_latents`.

    Raises:
        LatentsFileError: naming the file and the mismatch.
    """
    plan, record = load_latents(latents)
    if record.get("model") not in (None, loaded.ref.model):
        raise LatentsFileError(f"{latents}: made with model {record['model']!r}, not {loaded.ref.model!r}")
    recorded = record.get("checkpoint_sha256")
    if strict_checkpoint and recorded not in (None, loaded.ref.sha256):
        raise LatentsFileError(
            f"{latents}: made with checkpoint {record.get('checkpoint')} (sha256 {recorded[:12]}...), "
            f"but {loaded.ref.path} has sha256 {loaded.ref.sha256[:12]}...; the pixels would differ"
        )
    try:
        check_plan(loaded.generator, plan)
    except SamplingError as err:
        raise LatentsFileError(f"{latents}: {err}") from None
    return plan, record


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op CPU threads (CPU results differ in the last bits with the thread count)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sample(
    checkpoint: str | Path,
    out: str | Path,
    n: int = 16,
    seed: int = 0,
    frames: int | None = None,
    class_: str | int | None = None,
    cols: int | None = None,
    fps: float = 8.0,
    batch_size: int = 16,
    ema: bool = True,
    device: str | torch.device = "cpu",
    latents: str | Path | None = None,
    strict_checkpoint: bool = True,
    precision: str = "fp32",
) -> list[Path]:
    """``g3an sample`` as a function: write ``n`` videos as one grid, or one file each.

    Args:
        checkpoint: training checkpoint (.pt) or exported generator (.safetensors).
        out: ``grid.mp4`` / ``.gif`` / ``.png`` for one grid; a pattern with ``{i}`` (e.g.
            ``samples/{i:04d}.mp4``) for one file per video, each with its own latents file.
        n: number of videos.
        seed: seed of the latents.
        frames: video length (frames); default: the model's.
        class_: class name or index (conditional models); default: random classes.
        cols: grid columns; default ``ceil(sqrt(n))``.
        fps: frame rate of MP4 / GIF (frames per second).
        batch_size: videos per forward pass (separate files use 1, so each regenerates alone).
        ema: use the EMA generator weights when the checkpoint has them.
        device: device to run the generator on.
        latents: a latents file to regenerate instead of drawing new codes (``n``, ``seed``,
            ``frames``, ``class_``, ``cols`` and ``batch_size`` then come from the file).
        strict_checkpoint: with ``latents``, refuse a checkpoint whose SHA-256 differs from the recorded one.
        precision: ``fp32`` or ``bf16`` / ``fp16`` (CUDA) autocast (:attr:`LatentPlan.precision`; with
            ``latents``, the file's).

    Returns:
        The media files written (a latents file ``<name>.latents.json`` beside each).

    Raises:
        SamplingError: a bad argument (``param`` names its flag).
        g3an.checkpoint.CheckpointError: a missing or invalid checkpoint.
    """
    check_precision(precision)
    paths = output_paths(out, 1 if latents is not None else n)
    if latents is not None and paths is not None:
        raise SamplingError("regenerating a latents file writes one file: give --out without {i}", "--out")
    loaded = load_for_sampling(checkpoint, ema=ema, device=device)
    gen, names = loaded.generator, loaded.class_names
    if latents is not None:
        plan, record = regenerate_plan(loaded, latents, strict_checkpoint)
        with _threads(record.get("threads") if gen.device.type == "cpu" else None):
            videos = render(gen, plan)
        write_plan(out, plan, videos, loaded.ref, record.get("class_names") or names, fps)
        return [Path(out)]
    label = resolve_class(class_, gen.num_classes, names)
    if paths is None:
        plan = replace(plan_samples(gen, n, seed, frames, label, cols, names, batch_size), precision=precision)
        write_plan(out, plan, render(gen, plan), loaded.ref, names, fps)
        return [Path(out)]
    full = plan_samples(gen, n, seed, frames, label, 1, names, batch_size=1)
    (batch,) = full.batches
    for i, path in enumerate(paths):
        one = LatentBatch(
            batch.frames,
            [(0, 0)],
            {k: v[i : i + 1] for k, v in batch.latents.items()},
            None if batch.labels is None else batch.labels[i : i + 1],
        )
        title = f"sample {i} of {n}, seed {seed}"
        params = {**full.params, "index": i}
        plan = LatentPlan(
            "sample", 1, 1, [one], seed=seed, params=params, title=title, batch_size=1, precision=precision
        )
        write_plan(path, plan, render(gen, plan), loaded.ref, names, fps)
    return paths
