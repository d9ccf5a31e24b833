"""Typed training configuration: defaults, a JSON config file, ``key=value`` overrides, validation.

The resolved configuration (including the model's full architecture config) is written to
``RUN_DIR/config.json``; ``g3an train --dry-run`` prints it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g3an.registry import get_entry, make_config

__all__ = ["OptimConfig", "TrainConfig", "apply_overrides", "load_config_file", "parse_override"]

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class OptimConfig:
    """Optimiser settings; ``None`` takes the model family's default (G3AN: Adam 2e-4, betas (0.5, 0.999)).

    Attributes:
        lr_g: generator learning rate.
        lr_d: discriminator learning rate (every discriminator network).
        betas: Adam betas.
        weight_decay: L2 weight decay.
    """

    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None

    def __post_init__(self) -> None:
        for name in ("lr_g", "lr_d", "weight_decay"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"optim.{name} must be a non-negative number, got {v!r}")
        if self.betas is not None:
            b = tuple(self.betas)
            if len(b) != 2 or not all(isinstance(x, (int, float)) and 0 <= x < 1 for x in b):
                raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas!r}")
            self.betas = (float(b[0]), float(b[1]))


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        model: registered model name (``g3an``, ...).
        model_config: options of that model (see its config class); resolved to the full config.
        data: prepared dataset directory.
        split: dataset split to train on (``None``: every video).
        num_frames: frames per training clip; the model's ``num_frames`` follows it.
        time_steps: temporal strides drawn uniformly per clip (``None``: the model family's recipe; G3AN: 1..4
            as the paper; VGAN and TGAN: 1; MoCoGAN: 2).
        flip: random horizontal flip of whole clips (the paper uses it on Weizmann).
        batch_size: global batch (videos per step over all processes; ``None``: the model family's recipe,
            G3AN 16, VGAN 64, TGAN and MoCoGAN 32).
        steps: training iterations (each: the discriminator phases, then the generator phase).
        seed: seeds initialisation, data order, clip sampling and latents; a run is a function of it.
        precision: ``fp32``, ``bf16`` (autocast; fast on AMX or AVX512-BF16 CPUs) or ``fp16`` (CUDA, grad scaler).
        device: ``auto``, ``cpu`` or ``cuda``.
        optim: optimiser settings.
        ema_half_life: half-life of the generator EMA in videos (``None``: no EMA).
        ema_bn_videos: generated videos from which the EMA generator's BatchNorm statistics are recomputed
            before it is saved, sampled or evaluated (:func:`g3an.train.ema.standing_statistics`); 0 keeps
            the trained generator's statistics, as before 2026-12-08 (docs/training.md).
        log_every: steps between logged scalars.
        sample_every: steps between sample grids (0: never).
        checkpoint_every: steps between checkpoints (a final one is always written).
        keep_last: checkpoints kept (older ones are deleted; ``best.pt`` is kept apart).
        eval_every: steps between evaluations during training (0: never).
        eval_metric: metric for ``best.pt`` when evaluating (lower is better).
        eval_samples: generated videos per evaluation (the metric name carries the count).
        eval_weights: extractor weights file for ``eval_metric`` (``None``: the weights store, for I3D).
        workers: DataLoader worker processes per training process.
        threads: torch CPU threads (``None``: PyTorch's default).
        compile: ``torch.compile`` G and D (in place: checkpoints keep their keys; the EMA copy stays eager).
            The first steps compile (tens of seconds, more with a cold cache; on the CPU it needs a C++
            compiler); then a step is about 20-30% faster (docs/benchmarks.md). Sampling and evaluation
            during training run eagerly. Not part of the model: a run may be resumed with another value.
        channels_last: lay out weights and activations channels last (``channels_last_3d``), which oneDNN
            and cuDNN convolve faster (on an AMX CPU a paper-configuration step is about 1.3x faster in
            float32 and 1.6x in bf16; docs/benchmarks.md); results agree with the default layout to float
            rounding. Not part of the model.
        checkpoint_levels: activation checkpointing of the generator's last this many levels (with the F-SA
            after one of them): their activations are recomputed in backward instead of stored. Saves
            memory, costs one more forward of those levels; weights, outputs and gradients are the same
            (0: off; 5 or more: every level at 64x64; G3AN only). Not part of the model: a run may be
            resumed with another value.
        malloc_mmap_threshold: bytes from which glibc's ``malloc`` maps every allocation on its own and
            returns it to the system when freed (:func:`g3an.machine.set_malloc_mmap_threshold`; Linux with
            glibc only, process-wide). The default, 1 GiB, keeps freed activations for the next step: no
            page faults, 10-20% faster steps on a 2-core CPU than glibc's own threshold, 0.2-0.4 GB more
            resident memory (docs/training.md). ``131072`` gives the least memory: with
            ``checkpoint_levels=5`` a paper-configuration step peaked at 2.3 GB instead of 2.8 GB, and was
            slower. ``None``: glibc's dynamic default.
        d_time_roll: probability that a clip shown to the discriminators, real or fake, is circularly shifted
            in time by a uniform offset in 1..T-1 (G3AN; 0, the default, is the paper). D_V's unpadded
            temporal convolutions all but ignore the first and last frames, which a generator can then
            leave noisy; the shift brings them to the middle of D_V's view. Values below 1 keep unshifted
            clips in the mix, so the generator gains nothing by making shifted clips (the augmentation
            does not leak into the samples; ADA's argument, Karras et al. 2020). Not part of the model: a
            run may be resumed with another value (docs/training.md).
        appearance_consistency: weight ``w`` of a generator loss term that is not in the paper (G3AN; 0,
            the default, is the paper): the step's fake videos come in pairs sharing the appearance code
            z_a (with independent motion codes and classes), and ``w`` times the mean over pairs of
            ``max(0, gap - appearance_margin)`` is added to the generator's loss, where ``gap`` is the mean
            squared difference of the pair's time-averaged colour and texture on a 4x4 grid
            (:func:`g3an.train.objectives.appearance_gap`), so that a change of motion does not change the
            background, its texture or the clothes. Not part of the model: a run may be resumed with another
            value (docs/training.md).
        appearance_margin: the gap a pair may have at no cost under ``appearance_consistency``: real clips
            of one synth-actions subject in two videos (another action) have gaps below 0.011 in 95% of
            pairs (``benchmarks/appearance_gap.py``), so the default 0.01 leaves the figure's own motion free.
        colour_consistency: weight of a second term of the same kind (G3AN; 0, the default, is the paper):
            the pairs' colour shift, the total variation distance of their soft colour histograms over all
            pixels and frames (:func:`g3an.train.objectives.pair_colour_shifts`, 0..1), beyond
            ``colour_margin``. It ignores where colours are, so it lets the figure move and sees a change of
            clothes or skin that covers too few pixels to move a 4x4 grid's averages.
        colour_margin: the colour shift a pair may have at no cost: real clips of one synth-actions subject
            in two videos shift 0.03 on average and less than 0.06 in 90% of pairs.
        init: start from these weights instead of a random initialisation (fine-tuning): a shipped model's
            name (``synth-actions``, ``synth-faces``), an export holding the discriminator, a training
            checkpoint or a run directory. G, D and (with ``ema_half_life``) the EMA generator are loaded;
            optimisers and counters start fresh at step 0. The model config must equal the source's.
    """

    model: str = "g3an"
    model_config: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    split: str | None = "train"
    num_frames: int = 16
    time_steps: tuple[int, ...] | None = None
    flip: bool = False
    batch_size: int | None = None
    steps: int = 10_000
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema_half_life: float | None = None
    ema_bn_videos: int = 256
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_last: int = 3
    eval_every: int = 0
    eval_metric: str | None = None
    eval_samples: int = 512
    eval_weights: str | None = None
    workers: int = 2
    threads: int | None = None
    compile: bool = False
    channels_last: bool = True
    checkpoint_levels: int = 0
    malloc_mmap_threshold: int | None = 1 << 30  # g3an.machine.KEEP_FREED
    d_time_roll: float = 0.0
    appearance_consistency: float = 0.0
    appearance_margin: float = 0.01
    colour_consistency: float = 0.0
    colour_margin: float = 0.05
    init: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        entry = get_entry(self.model)  # clear error for unknown model names
        from g3an.train.objectives import OBJECTIVES

        recipe = OBJECTIVES[entry.loss].data_defaults
        if self.batch_size is None:
            self.batch_size = int(recipe["batch_size"])
        if self.time_steps is None:
            self.time_steps = tuple(recipe["time_steps"])
        self.time_steps = tuple(int(s) for s in self.time_steps)
        if not self.time_steps or any(s < 1 for s in self.time_steps):
            raise ValueError(f"time_steps must be positive integers, got {self.time_steps!r}")
        for name in ("batch_size", "steps", "num_frames"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("log_every", "sample_every", "checkpoint_every", "eval_every", "workers", "eval_samples",
                     "checkpoint_levels"):  # fmt: skip
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if (
            isinstance(self.d_time_roll, bool)
            or not isinstance(self.d_time_roll, (int, float))
            or not (0 <= self.d_time_roll < 1)
        ):
            raise ValueError(f"d_time_roll must be a probability in [0, 1), got {self.d_time_roll!r}")
        if self.d_time_roll and not OBJECTIVES[entry.loss].supports_time_roll:
            raise ValueError(f"d_time_roll: only G3AN's objective shifts clips in time, not the {self.model} model's")
        for name in ("appearance_consistency", "appearance_margin", "colour_consistency", "colour_margin"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w < float("inf")):
                raise ValueError(f"{name} must be a non-negative number, got {w!r}")
        for name in ("appearance_consistency", "colour_consistency"):
            if getattr(self, name) and not OBJECTIVES[entry.loss].supports_appearance_consistency:
                raise ValueError(
                    f"{name}: only G3AN's objective pairs its fakes by appearance, not the {self.model} model's"
                )
        if self.malloc_mmap_threshold is not None and (
            not isinstance(self.malloc_mmap_threshold, int) or self.malloc_mmap_threshold < 0
        ):
            value = self.malloc_mmap_threshold
            raise ValueError(f"malloc_mmap_threshold must be a non-negative number of bytes or null, got {value!r}")
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {self.keep_last}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.ema_half_life is not None and self.ema_half_life <= 0:
            raise ValueError(f"ema_half_life must be positive (videos) or null, got {self.ema_half_life}")
        if isinstance(self.ema_bn_videos, bool) or not isinstance(self.ema_bn_videos, int) or self.ema_bn_videos < 0:
            raise ValueError(f"ema_bn_videos must be a non-negative number of videos, got {self.ema_bn_videos!r}")
        if self.init is not None and (not isinstance(self.init, str) or not self.init):
            raise ValueError(f"init must be a shipped model name or a path, got {self.init!r}")
        if self.eval_every and not self.eval_metric:
            raise ValueError("eval_every > 0 needs eval_metric (the metric that picks best.pt)")
        cfg = dict(self.model_config)
        cfg.setdefault("num_frames", self.num_frames)
        if "num_frames" in {f.name for f in dataclasses.fields(entry.config_cls)}:
            if cfg["num_frames"] != self.num_frames:
                raise ValueError(
                    f"model_config.num_frames ({cfg['num_frames']}) differs from num_frames ({self.num_frames})"
                )
        else:
            cfg.pop("num_frames")
        self.model_config = dataclasses.asdict(make_config(self.model, cfg))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config file (the format of ``RUN_DIR/config.json``); errors name the file."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds a JSON object")
    return values


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model_config.ch=32"`` -> ``(["model_config", "ch"], 32)``; values are JSON, else strings.

    ``none`` / ``null`` give ``None``; ``model.`` is accepted as a short form of ``model_config.``.
    """
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value (for example model.ch=32)")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if path[0] == "model" and len(path) > 1:
        path[0] = "model_config"
    if raw.strip().lower() == "none":
        return path, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return path, value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a nested dict of options (a copy is returned)."""
    out = json.loads(json.dumps(values, default=list))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {part!r} is not a group of options")
        node[path[-1]] = value
    return out
