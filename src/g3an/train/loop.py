"""The one training loop of every model: setup, phases, checkpoints, exact resume, logging.

``fit(cfg, run_dir)`` trains the registered model ``cfg.model`` with its objective
(:mod:`g3an.train.objectives`). A step runs the objective's phases; each phase: toggle which network
trains; for each term of its loss, forward under autocast, check it is finite, backward; all-reduce
gradients over processes, step that phase's optimisers. Every random draw of a step comes from (seed, step), and data
order from (seed, epoch), so ``N`` steps in one go and ``N/2`` + resume + ``N/2`` give the same weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from g3an.checkpoint import (
    CheckpointError,
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    load_init_weights,
    make_checkpoint,
    save_checkpoint,
)
from g3an.machine import KEEP_FREED, set_malloc_mmap_threshold
from g3an.models.base import VideoGenerator, channels_last
from g3an.registry import get_entry, make_config
from g3an.train import distributed as dist_utils
from g3an.train.config import TrainConfig
from g3an.train.ema import EMA, standing_statistics
from g3an.train.objectives import OBJECTIVES, Objective, Phase, StepContext, trainable
from g3an.train.sampler import InfiniteBatchSampler, derive_seed, step_generator
from g3an.train.stats import RunLogger

__all__ = [
    "TrainResult",
    "TrainingDiverged",
    "autocast_context",
    "build_dataset",
    "build_evaluator",
    "checkpoint_paths",
    "eager",
    "fit",
    "latest_checkpoint",
    "sample_grid",
]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What :func:`fit` did."""

    step: int
    videos: int
    checkpoint: Path | None
    interrupted: bool = False
    signal_name: str | None = None
    last_scalars: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device; use bf16 on the CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def eager() -> contextlib.AbstractContextManager:
    """Run networks compiled with ``TrainConfig.compile`` eagerly inside: sampling and evaluation use other
    batch sizes and modes than the training step and would each cost a recompilation (torch >= 2.6)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


def build_dataset(cfg: TrainConfig) -> Dataset:
    """The clip dataset of ``cfg.data`` (a prepared dataset directory)."""
    from g3an.data.loader import ClipDataset

    if not cfg.data:
        raise ValueError("no dataset given: pass --data DIR (a prepared dataset)")
    res = cfg.model_config.get("resolution", 64)
    return ClipDataset(
        cfg.data, num_frames=cfg.num_frames, steps=cfg.time_steps, size=res, flip=cfg.flip, split=cfg.split,
        seed=cfg.seed,
    )  # fmt: skip


class _StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves a checkpoint at the end of the step and returns."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _ignore_stop_signals(_worker_id: int) -> None:
    # DataLoader workers leave Ctrl-C and SIGTERM to the main process, which finishes its step, saves a
    # checkpoint and then shuts them down. Schedulers (SLURM, `kill -- -PGID`, `pkill -f`) signal every
    # process of the job; a worker dying of it would crash the main process before it could save.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _grad_norm(params: list[torch.nn.Parameter]) -> float:
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def sample_grid(
    generator: VideoGenerator, seed: int, rows: int = 4, cols: int = 4, device: torch.device | None = None
) -> torch.Tensor:
    """A fixed appearance x motion grid ``(rows, cols, 3, T, H, W)``: row i keeps appearance i, column j motion j.

    Models without separate appearance / motion codes get independent samples. Latents depend only on
    ``seed``, so grids of one run are comparable across steps.
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, "sample-grid"))
    device = device or generator.device
    lat = generator.sample_latents(rows * cols, generator=gen, device="cpu")
    a, m = generator.appearance_latent, generator.motion_latent
    if a is not None and m is not None:
        lat[a] = lat[a][:rows].repeat_interleave(cols, 0)  # same appearance along a row
        lat[m] = lat[m][:cols].repeat(rows, *([1] * (lat[m].ndim - 1)))  # same motion down a column
    y = torch.arange(rows * cols) % generator.num_classes if generator.num_classes else None
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        video = generator(**{k: v.to(device) for k, v in lat.items()}, y=None if y is None else y.to(device))
    generator.train(was_training)
    return video.float().cpu().view(rows, cols, *video.shape[1:])


class Trainer:
    """Holds the state of one run; :func:`fit` is the public entry point."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, dataset: Dataset | None, progress: bool) -> None:
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress
        self.env = dist_utils.init_distributed(cfg.device)
        if cfg.batch_size % self.env.world:
            raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {self.env.world} processes")
        self.local_batch = cfg.batch_size // self.env.world
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        threshold = cfg.malloc_mmap_threshold
        if threshold is not None and not set_malloc_mmap_threshold(threshold) and threshold != KEEP_FREED:
            # (the default is silently a no-op off glibc)
            warnings.warn("malloc_mmap_threshold: the C library is not glibc; the option has no effect", stacklevel=2)
        entry = get_entry(cfg.model)
        self.model_cfg = make_config(cfg.model, cfg.model_config)
        torch.manual_seed(derive_seed(cfg.seed, "init"))  # identical initialisation on every process
        self.G = entry.build_generator(self.model_cfg).to(self.env.device)
        self.D = entry.build_discriminator(self.model_cfg).to(self.env.device)
        if cfg.channels_last:
            channels_last(self.G)
            channels_last(self.D)
        if cfg.checkpoint_levels:
            if not hasattr(self.G, "checkpoint_levels"):
                raise ValueError(f"checkpoint_levels: the {cfg.model} generator has no activation checkpointing")
            self.G.checkpoint_levels = cfg.checkpoint_levels
        if self.env.world > 1:
            dist_utils.convert_batchnorm(self.G)
            dist_utils.convert_batchnorm(self.D)
            dist_utils.broadcast_module(self.G)
            dist_utils.broadcast_module(self.D)
        self.objective: Objective = OBJECTIVES[entry.loss](
            self.G,
            self.D,
            time_roll=cfg.d_time_roll,
            appearance_consistency=cfg.appearance_consistency,
            appearance_margin=cfg.appearance_margin,
            colour_consistency=cfg.colour_consistency,
            colour_margin=cfg.colour_margin,
        )
        self.optimizers = self.objective.build_optimizers(cfg.optim)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
        self.ema = EMA(self.G, cfg.ema_half_life) if cfg.ema_half_life else None
        self._standing_step: int | None = None  # the step whose EMA BatchNorm statistics were last recomputed
        if cfg.compile:  # in place, after the EMA copy (which stays eager); state_dict keys are unchanged
            if self.env.device.type == "cpu" and not (os.environ.get("CXX") or shutil.which("g++")):
                raise ValueError("compile: torch.compile on the CPU needs a C++ compiler (g++, or CXX naming one); "
                                 "install one (e.g. apt install g++) or train without compile=true")  # fmt: skip
            self.G.compile()
            self.D.compile()
        self.step = 0
        self.best: float | None = None
        self.dataset = dataset if dataset is not None else build_dataset(cfg)
        if self.G.num_classes:
            n_cls = len(getattr(self.dataset, "classes", []) or [])
            if n_cls != self.G.num_classes:
                raise ValueError(
                    f"the model is conditional on {self.G.num_classes} classes but the dataset has {n_cls}; "
                    f"set model.num_classes={n_cls} (or 0 for unconditional training)"
                )
        self.logger = RunLogger(self.run_dir, enabled=self.env.is_main)
        self.last_good: Path | None = None

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return make_checkpoint(
            self.cfg.model, self.model_cfg, self.G, self.D,
            generator_ema=self.ema.state_dict() if self.ema else None,
            optimizers={k: o.state_dict() for k, o in self.optimizers.items()},
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            counters={"step": self.step, "videos": self.step * self.cfg.batch_size, "best": self.best},
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            train_config=self.cfg.to_dict(),
            world_size=self.env.world,
            meta={"class_names": [str(c) for c in (getattr(self.dataset, "classes", None) or [])]},
        )  # fmt: skip

    def _config_difference(self, saved: dict[str, Any]) -> str:
        """``"field: saved there, current here, ..."`` for the options where ``saved`` differs; ``""`` if none."""
        theirs = dataclasses.asdict(make_config(self.cfg.model, saved))
        ours = dataclasses.asdict(self.model_cfg)
        return ", ".join(f"{k}: {v!r} there, {ours[k]!r} here" for k, v in theirs.items() if ours[k] != v)

    def load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, model=self.cfg.model)
        detail = self._config_difference(ckpt["model_config"])
        if detail:
            raise CheckpointError(f"{path}: its model config differs from this run's ({detail}); refusing to resume")
        try:
            self.G.load_state_dict(ckpt["generator"])
            self.D.load_state_dict(ckpt["discriminator"])
            if self.ema is not None:
                if ckpt.get("generator_ema") is None:
                    raise CheckpointError(f"{path}: has no EMA weights but this run uses ema_half_life")
                self.ema.load_state_dict(ckpt["generator_ema"])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(ckpt["optimizers"][name])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(f"{path}: does not fit this run ({str(err).splitlines()[0]})") from None
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["counters"]["step"])
        self.best = ckpt["counters"].get("best")
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.last_good = path

    def initialise_from(self, source: str) -> None:
        """Load G, D and the EMA generator from ``source`` (``TrainConfig.init``) before step 0."""
        init = load_init_weights(source, model=self.cfg.model)
        detail = self._config_difference(init["model_config"])
        if detail:
            raise CheckpointError(f"init {init['source']}: its model config differs from this run's ({detail})")
        try:
            self.G.load_state_dict(init["generator"])
            self.D.load_state_dict(init["discriminator"])
            if self.ema is not None:
                self.ema.load_state_dict(init["generator_ema"] or init["generator"])
        except (RuntimeError, KeyError) as err:
            first = str(err).splitlines()[0]
            raise CheckpointError(f"init {init['source']}: does not fit this run ({first})") from None

    def save(self, calibrate: bool = True) -> Path | None:
        """Write a checkpoint of this step. ``calibrate=False`` (a stop by signal, which must be quick) saves
        the EMA generator with the trained generator's BatchNorm statistics (:meth:`sampling_generator`)."""
        path = None
        if self.env.is_main:
            path = self.run_dir / "checkpoints" / f"step-{self.step:08d}.pt"
            if calibrate:
                self.sampling_generator()
            save_checkpoint(path, self.state())
            for old in checkpoint_paths(self.run_dir)[: -self.cfg.keep_last]:
                old.unlink(missing_ok=True)
            self.last_good = path
        dist_utils.barrier()
        return path

    # -- data ------------------------------------------------------------------------------------
    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        sampler = InfiniteBatchSampler(len(self.dataset), self.local_batch, self.env.rank, self.env.world,
                                       self.cfg.seed, start_step=self.step)  # fmt: skip
        loader = DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=self.cfg.workers,
            pin_memory=self.env.device.type == "cuda",
            worker_init_fn=_ignore_stop_signals if self.cfg.workers else None,
            persistent_workers=False, prefetch_factor=2 if self.cfg.workers else None,
        )  # fmt: skip
        return iter(loader)

    # -- one step --------------------------------------------------------------------------------
    def _check_finite(self, phase: Phase, loss: torch.Tensor) -> None:
        value = float(loss.detach())
        finite = math.isfinite(value)
        if self.env.world > 1:  # every process stops together, or none (no deadlock in the next all-reduce)
            finite = dist_utils.all_reduce_scalars({"bad": 0.0 if finite else 1.0}, self.env.device)["bad"] == 0
        if not finite:
            where = f"the last good checkpoint {self.last_good} is kept" if self.last_good else "no checkpoint yet"
            raise TrainingDiverged(
                f"non-finite {phase.name} loss ({value}) at step {self.step}; stopping ({where}). "
                "Try a lower learning rate or --precision fp32."
            )

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        dev = self.env.device
        real = batch["video"].to(dev, non_blocking=True)
        if self.cfg.channels_last:
            real = channels_last(real)
        labels = batch.get("label")
        labels = labels.to(dev) if labels is not None and self.G.num_classes else None
        ctx = StepContext(real=real, labels=labels, rng=step_generator(self.cfg.seed, self.step),
                          rank=self.env.rank, world=self.env.world, step=self.step, device=dev)  # fmt: skip
        autocast = autocast_context(self.cfg.precision, dev)
        scalars: dict[str, float] = {}
        trainable(self.G, True)
        with autocast:
            self.objective.begin_step(ctx)
        for phase in self.objective.phases:
            training_g = phase.trains == "generator"
            trainable(self.G, training_g)
            trainable(self.D, not training_g)
            params = [p for name in phase.optimizers for g in self.optimizers[name].param_groups for p in g["params"]]
            # normally None already (freed after each optimiser step, below); this drops any gradient an
            # earlier phase's backward left on these parameters, so it never adds to this phase's
            for name in phase.optimizers:
                self.optimizers[name].zero_grad(set_to_none=True)
            terms = self.objective.loss(phase, ctx)
            while True:  # each term of the loss backpropagated before the next is computed; gradients add up
                with autocast:
                    term = next(terms, None)
                if term is None:
                    break
                loss, stats = term
                self._check_finite(phase, loss)
                self.scaler.scale(loss).backward()
                scalars.update({k: float(v.detach()) for k, v in stats.items()})
            dist_utils.all_reduce_grads(params)
            scalars[f"grad_norm/{phase.name}"] = _grad_norm(params) / (
                self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
            )
            for name in phase.optimizers:
                self.scaler.step(self.optimizers[name])
                # freed now, not before the next backward: G's gradients would otherwise sit through the next
                # D phase, where the step's memory peaks (and D's through the G phase)
                self.optimizers[name].zero_grad(set_to_none=True)
            self.scaler.update()
            self.objective.after_phase(phase, ctx)
        trainable(self.G, True)
        trainable(self.D, True)
        if self.ema is not None:
            self.ema.update(self.G, self.cfg.batch_size)
        return scalars

    # -- periodic work ---------------------------------------------------------------------------
    def sampling_generator(self) -> torch.nn.Module:
        """The generator that is sampled, evaluated and exported: the EMA one if any, its BatchNorm statistics
        recomputed from its own samples (``ema_bn_videos``, once a step). Training is unaffected: the next
        EMA update copies the trained generator's buffers into it again."""
        if self.ema is None:
            return self.G
        cfg, shadow = self.cfg, self.ema.shadow
        if cfg.ema_bn_videos and self._standing_step != self.step:
            pair = self.objective.paired_latent()  # the batches' composition the generator was trained on
            with eager(), autocast_context(cfg.precision, self.env.device):
                standing_statistics(shadow, cfg.ema_bn_videos, self.local_batch, seed=cfg.seed, pair=pair)
            self._standing_step = self.step
        return shadow

    def write_samples(self) -> None:
        if not self.env.is_main:
            return
        from g3an.media import save_grid, to_uint8

        gen = self.sampling_generator()
        with eager():
            grid = sample_grid(gen, self.cfg.seed, device=self.env.device)
        rows, cols = grid.shape[:2]
        path = self.run_dir / "samples" / f"step-{self.step:08d}.gif"
        save_grid(path, grid, row_labels=[f"z_a {i}" for i in range(rows)],
                  col_labels=[f"z_m {j}" for j in range(cols)], fps=8)  # fmt: skip
        frames = to_uint8(grid[:, :, :, 0], channel_axis=2)  # (R, C, H, W, 3): first frames, for TensorBoard
        image = frames.transpose(0, 2, 1, 3, 4).reshape(rows * frames.shape[2], cols * frames.shape[3], 3)
        self.logger.image("samples/first_frames", self.step, image)

    def run(self, evaluator: Callable[[torch.nn.Module], dict[str, float]] | None) -> TrainResult:
        cfg = self.cfg
        if self.env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(cfg.to_json() + "\n")
        start_step, t0 = self.step, time.perf_counter()
        last_scalars: dict[str, float] = {}
        bar = None
        if self.progress and self.env.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, unit="it", dynamic_ncols=True, desc=f"train {cfg.model}")
        batches = self.batches()
        interrupted = None
        with _StopFlag() as stop:
            while self.step < cfg.steps:
                if stop.signum is not None:
                    interrupted = stop.signum
                    break
                try:
                    batch = next(batches)
                except RuntimeError:
                    if stop.signum is not None:  # a worker died with the signal
                        interrupted = stop.signum
                        break
                    raise
                t_step = time.perf_counter()
                scalars = self.train_step(batch)
                self.step += 1
                dt = time.perf_counter() - t_step
                if self.step % max(cfg.log_every, 1) == 0 or self.step == cfg.steps:
                    scalars = dist_utils.all_reduce_scalars(scalars, self.env.device)
                    scalars.update({f"lr/{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()})
                    scalars["time/sec_per_step"] = dt
                    scalars["time/videos_per_sec"] = cfg.batch_size / dt
                    self.logger.scalars(self.step, scalars, videos=self.step * cfg.batch_size)
                    last_scalars = scalars
                if bar is not None:
                    bar.update(1)
                    shown = {k.split("/")[-1]: f"{v:.3f}" for k, v in scalars.items() if k.startswith("loss/")}
                    bar.set_postfix(vid_s=f"{cfg.batch_size / dt:.1f}", **shown, refresh=False)
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.write_samples()
                if evaluator is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate(evaluator)
                if self.step % max(cfg.checkpoint_every, 1) == 0 and self.step < cfg.steps:
                    self.save()
        path = self.save(calibrate=not interrupted) if self.step > start_step or interrupted else self.last_good
        if bar is not None:
            bar.close()
        self.logger.close()
        sig_name = signal.Signals(interrupted).name if interrupted else None
        return TrainResult(self.step, self.step * cfg.batch_size, path, interrupted is not None, sig_name,
                           last_scalars, time.perf_counter() - t0)  # fmt: skip

    def evaluate(self, evaluator: Callable[[torch.nn.Module], dict[str, float]]) -> None:
        gen = self.sampling_generator()
        with eager():
            metrics = evaluator(gen)
        self.logger.scalars(self.step, {f"metric/{k}": v for k, v in metrics.items()})
        value = metrics.get(self.cfg.eval_metric)
        higher_is_better = self.cfg.eval_metric.startswith("is")  # Inception Score; FD, KVD: lower is better
        improved = value is not None and (
            self.best is None or (value > self.best if higher_is_better else value < self.best)
        )
        if improved and self.env.is_main:
            self.best = value
            save_checkpoint(
                self.run_dir / "checkpoints" / "best.pt", {**self.state(), "best_metric": {self.cfg.eval_metric: value}}
            )


def build_evaluator(cfg: TrainConfig, device: torch.device) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Evaluation during training: ``cfg.eval_metric`` (a protocol name) on ``cfg.eval_samples`` videos.

    Real statistics are cached, so only the generated side is recomputed at each evaluation.
    """
    from g3an.data.format import open_dataset
    from g3an.metrics.cache import StatsCache
    from g3an.metrics.protocols import get_protocol
    from g3an.metrics.runner import evaluate_generator, load_extractor, protocol_for_counts

    try:
        protocol = get_protocol(cfg.eval_metric)
    except KeyError as err:
        raise ValueError(f"eval_metric: {err.args[0]}") from None
    protocol = protocol_for_counts(protocol, cfg.eval_samples, cfg.eval_samples if protocol.num_real else None)
    extractor = load_extractor(protocol.extractor, cfg.eval_weights, device)
    dataset = open_dataset(cfg.data)
    cache = StatsCache()

    def evaluate(generator: torch.nn.Module) -> dict[str, float]:
        was_training = generator.training
        generator.eval()
        result = evaluate_generator(generator, dataset, protocol, extractor, seed=cfg.seed, device=device,
                                    cache=cache, progress=False)  # fmt: skip
        generator.train(was_training)
        return {cfg.eval_metric: result.value}

    return evaluate


def fit(
    cfg: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    progress: bool = True,
    evaluator: Callable[[torch.nn.Module], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data`` (or ``dataset``) into ``run_dir``.

    Args:
        cfg: the resolved training configuration.
        run_dir: run directory (config.json, checkpoints/, samples/, log.jsonl, tb/).
        resume: continue from the run's latest checkpoint (exactly: same data, same random draws).
        dataset: a dataset to use instead of ``cfg.data``; ``dataset[(epoch, index)]`` returns
            ``{"video": (3, T, H, W) float in [-1, 1], "label": int}``.
        progress: show a tqdm progress bar.
        evaluator: called with the generator every ``cfg.eval_every`` steps; returns metrics by name.

    Returns:
        A :class:`TrainResult`. Raises :class:`TrainingDiverged` on a non-finite loss.
    """
    threads = torch.get_num_threads()  # cfg.threads applies to this run only
    try:
        trainer = Trainer(cfg, Path(run_dir), dataset, progress)
        if evaluator is None and cfg.eval_every:
            evaluator = build_evaluator(cfg, trainer.env.device)
        if resume:
            path = latest_checkpoint(run_dir)
            if path is None:
                raise CheckpointError(f"{run_dir}: no checkpoint to resume from (checkpoints/step-*.pt)")
            trainer.load(path)
        elif cfg.init:
            trainer.initialise_from(cfg.init)
        return trainer.run(evaluator)
    finally:
        torch.set_num_threads(threads)
