"""Checkpoints: one self-describing dict, written atomically, loaded with ``weights_only=True``.

A checkpoint holds the model name and resolved config, the generator and discriminator state dicts
and, for training checkpoints, everything needed for an exact resume (optimizers, EMA, counters, RNG
states, training config). Nothing in it is pickled code. Exported weights for sharing are safetensors
files with the model config stored as JSON in their metadata (:func:`export_generator`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes

from g3an import __version__
from g3an.models.base import channels_last
from g3an.registry import get_entry, make_config, saved_config

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "build_models",
    "checkpoint_paths",
    "export_generator",
    "latest_checkpoint",
    "load_checkpoint",
    "load_generator",
    "load_init_weights",
    "make_checkpoint",
    "save_checkpoint",
    "write_safetensors",
]

FORMAT = "g3an-checkpoint"
FORMAT_VERSION = 1
EXPORT_FORMAT = "g3an-generator"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, foreign, or of another model."""


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then move the file into place, so ``path`` is never half-written.

    The one atomic-write helper of the package (checkpoints, exports, media, statistics, manifests). The
    temporary file lives in the destination directory (same file system), is flushed to disk, made
    readable like any file the user writes (0644; ``mkstemp`` creates 0600) and renamed over ``path``.
    On failure, including a full disk, it is removed and the previous file at ``path`` stays intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_checkpoint(
    model: str,
    config: Any,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Assemble a checkpoint dict. ``extra`` adds training state (optimizers, counters, rng, ...)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model": model,
        "model_config": cfg,
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict() if discriminator is not None else None,
    }
    ckpt.update(extra)
    return ckpt


def save_checkpoint(path: str | Path, ckpt: Mapping[str, Any]) -> None:
    """Write ``ckpt`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: torch.save(dict(ckpt), tmp))


def load_checkpoint(path: str | Path, model: str | None = None) -> dict[str, Any]:
    """Read and validate a checkpoint; ``model`` (if given) must match the checkpoint's model name.

    Raises:
        CheckpointError: naming the file and what is wrong (missing, truncated, not a g3an checkpoint,
            newer format, another model).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not a PyTorch file: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a g3an checkpoint (no 'format': '{FORMAT}' entry)")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} is newer than this g3an's "
            f"({FORMAT_VERSION}); upgrade g3an"
        )
    if model is not None and ckpt.get("model") != model:
        raise CheckpointError(f"{path}: checkpoint of model {ckpt.get('model')!r}, expected {model!r}")
    _fill_saved_config(ckpt, path)
    return ckpt


def _fill_saved_config(record: dict[str, Any], path: Path) -> None:
    """Give ``record["model_config"]`` the values of options added after the file was saved."""
    try:
        record["model_config"] = saved_config(record["model"], record["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: no valid model name and config ({err})") from None


def build_models(
    ckpt: Mapping[str, Any], discriminator: bool = True, source: str = "checkpoint"
) -> tuple[Any, torch.nn.Module, torch.nn.Module | None]:
    """Rebuild ``(config, generator, discriminator)`` from a checkpoint dict and load their weights.

    A state dict that does not fit the architecture named by the checkpoint raises :class:`CheckpointError`.
    """
    name = ckpt["model"]
    try:
        cfg = make_config(name, ckpt["model_config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{source}: invalid model config: {err}") from None
    entry = get_entry(name)
    gen = entry.build_generator(cfg)
    _load_state(gen, ckpt["generator"], f"{source}: generator")
    disc = None
    if discriminator and ckpt.get("discriminator") is not None:
        disc = entry.build_discriminator(cfg)
        _load_state(disc, ckpt["discriminator"], f"{source}: discriminator")
    return cfg, gen, disc


def _load_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise CheckpointError(f"{what} does not fit the architecture in the config: {' '.join(first)}") from None


DISCRIMINATOR_PREFIX = "discriminator/"
RAW_GENERATOR_PREFIX = "generator_raw/"


def export_generator(
    path: str | Path,
    model: str,
    config: Any,
    generator: torch.nn.Module,
    *,
    discriminator: torch.nn.Module | Mapping[str, torch.Tensor] | None = None,
    generator_raw: torch.nn.Module | Mapping[str, torch.Tensor] | None = None,
    **meta: str,
) -> None:
    """Write generator weights as safetensors, with the model name and config as JSON metadata.

    ``discriminator`` and ``generator_raw`` (the non-EMA generator) are stored too when given, under the
    key prefixes ``discriminator/`` and ``generator_raw/``, so the file can start a fine-tuning run
    (``TrainConfig.init``); samplers read only the unprefixed generator weights.
    """
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    parts = ["generator"]
    for prefix, extra in ((DISCRIMINATOR_PREFIX, discriminator), (RAW_GENERATOR_PREFIX, generator_raw)):
        if extra is None:
            continue
        state = extra.state_dict() if isinstance(extra, torch.nn.Module) else extra
        tensors.update({prefix + k: v.detach().cpu().contiguous() for k, v in state.items()})
        parts.append(prefix.rstrip("/"))
    metadata = {"format": EXPORT_FORMAT, "format_version": str(FORMAT_VERSION), "model": model,
                "model_config": json.dumps(cfg), "package_version": __version__, "contents": ",".join(parts),
                **meta}  # fmt: skip
    write_safetensors(path, tensors, metadata)


def write_safetensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write a safetensors file atomically and reproducibly: the same tensors and metadata give the same bytes."""
    blob = _sorted_header(safetensors_bytes(dict(tensors), metadata=dict(metadata)))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))


def _sorted_header(blob: bytes) -> bytes:
    """The safetensors file ``blob`` with its JSON header's keys sorted, so equal weights and metadata give
    equal bytes (safetensors writes the header from hash maps, in an order that changes between runs).

    Only the order of keys changes: the tensor offsets, the data and the header's length stay the same.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(
        {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in sorted(header.items())},
        separators=(",", ":"), ensure_ascii=False,
    ).encode()  # fmt: skip
    if len(text) > n:  # never expected (same content, same compact format); keep the file as written
        return blob
    return blob[:8] + text.ljust(n, b" ") + blob[8 + n :]


def _read_export(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != EXPORT_FORMAT:
        found = metadata.get("format")
        raise CheckpointError(f"{path}: not a g3an generator export (metadata 'format' is {found!r})")
    try:
        record = {"model": metadata["model"], "model_config": json.loads(metadata["model_config"])}
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: export metadata without a valid model and config ({err})") from None
    _fill_saved_config(record, path)
    return {**metadata, "model_config": json.dumps(record["model_config"])}, tensors


def _strip(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_init_weights(source: str | Path, model: str | None = None) -> dict[str, Any]:
    """The weights a fine-tuning run starts from (``TrainConfig.init``).

    Args:
        source: a shipped model name (``synth-actions``), an export holding the discriminator
            (``g3an export --with-discriminator``), a training checkpoint ``.pt`` or a run directory.
        model: the run's model name; a file of another model raises :class:`CheckpointError`.

    Returns:
        ``{"model", "model_config", "generator", "discriminator", "generator_ema", "source"}``;
        ``generator_ema`` is ``None`` when the source has no EMA weights.
    """
    from g3an.pretrained import resolve

    try:
        path = resolve(source)
    except (KeyError, FileNotFoundError) as err:
        raise CheckpointError(f"init: {err}") from None
    if path.is_dir():
        path = _latest_step(path)
    if path.suffix == ".safetensors":
        metadata, tensors = _read_export(path)
        disc = _strip(tensors, DISCRIMINATOR_PREFIX)
        if not disc:
            raise CheckpointError(
                f"{path}: holds only a generator; fine-tuning needs the discriminator too "
                "(export it with `g3an export CKPT --with-discriminator`, or start from a training checkpoint)"
            )
        main = {k: v for k, v in tensors.items() if "/" not in k}
        raw = _strip(tensors, RAW_GENERATOR_PREFIX)
        out = {"model": metadata["model"], "model_config": json.loads(metadata["model_config"]),
               "generator": raw or main, "discriminator": disc, "generator_ema": main if raw else None}  # fmt: skip
    else:
        ckpt = load_checkpoint(path)
        out = {k: ckpt.get(k) for k in ("model", "model_config", "generator", "discriminator", "generator_ema")}
    if model is not None and out["model"] != model:
        raise CheckpointError(f"{path}: weights of model {out['model']!r}, but this run trains {model!r}")
    return {**out, "source": str(path)}


CKPT_RE = re.compile(r"^step-(\d{8})\.pt$")


def checkpoint_paths(run_dir: str | Path) -> list[Path]:
    """A training run's periodic checkpoints (``checkpoints/step-XXXXXXXX.pt``), oldest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if CKPT_RE.match(p.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """A training run's newest periodic checkpoint, or ``None``."""
    paths = checkpoint_paths(run_dir)
    return paths[-1] if paths else None


def _latest_step(run_dir: Path) -> Path:
    path = latest_checkpoint(run_dir)
    if path is None:
        raise CheckpointError(f"{run_dir}: a directory without checkpoints/step-*.pt (not a training run)")
    return path


def load_generator(path: str | Path, ema: bool = True) -> tuple[str, Any, torch.nn.Module, dict[str, Any]]:
    """Load a generator from a training checkpoint (``.pt``) or an exported ``.safetensors`` file.

    Args:
        path: checkpoint, exported file, a run directory (its latest ``checkpoints/step-*.pt``) or a
            shipped model's name (``synth-actions``, ``synth-faces``; :mod:`g3an.pretrained`).
        ema: use the EMA weights when the checkpoint has them.

    Returns:
        ``(model_name, config, generator_in_eval_mode, info)``; ``info`` holds the file's metadata. The
        generator's weights are laid out channels last (:func:`g3an.models.base.channels_last`).
    """
    from g3an.pretrained import resolve

    try:
        path = resolve(path)
    except (KeyError, FileNotFoundError) as err:
        raise CheckpointError(str(err)) from None
    if path.is_dir():
        path = _latest_step(path)
    if path.suffix == ".safetensors":
        metadata, tensors = _read_export(path)
        generator = {k: v for k, v in tensors.items() if "/" not in k}
        if not ema and _strip(tensors, RAW_GENERATOR_PREFIX):  # the export's main weights are the EMA ones
            generator = _strip(tensors, RAW_GENERATOR_PREFIX)
        config = json.loads(metadata["model_config"])
        ckpt = {"model": metadata["model"], "model_config": config, "generator": generator}
        info = dict(metadata)
    else:
        ckpt = load_checkpoint(path)
        if ema and ckpt.get("generator_ema") is not None:
            ckpt = {**ckpt, "generator": ckpt["generator_ema"]}
        info = {k: v for k, v in ckpt.items() if k in ("model", "package_version", "counters", "meta")}
    cfg, gen, _ = build_models(ckpt, discriminator=False, source=str(path))
    channels_last(gen)  # faster convolutions, the same outputs to float rounding (TrainConfig.channels_last)
    return ckpt["model"], cfg, gen.eval(), info
