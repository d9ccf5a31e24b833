"""``g3an demo``: data, fine-tuning, samples, manipulations, evaluation and an HTML report in one command.

Stages (each timed, each with the equivalent shell command recorded in the report):

1. ``data``: ``g3an data synth actions --size 32`` into ``OUT/data/synth-actions`` (kept when complete).
2. ``train``: fine-tune the shipped ``synth-actions`` G3AN (``init=synth-actions``) for ``steps`` steps into
   ``OUT/train``, or train from scratch; an interrupted run resumes from its last checkpoint.
3. ``media``: a dataset preview, samples and the manipulations (appearance x motion grid, vary-motion,
   vary-appearance, class sweep) as GIFs with their latents files, in ``OUT/media``.
4. ``eval``: embedded FID and IS with a reduced count (the metric names carry it) and the
   disentanglement measures, for the fine-tuned model and the shipped one, in ``OUT/eval``.
5. ``report``: ``OUT/report.html`` (:mod:`g3an.report`).

Every stage uses the library's Python functions (no subprocesses) and shows a progress bar. Outputs
that already exist and belong to the same checkpoint are reused, so a second call only redoes what
is missing. ``OUT/demo.json`` records the options and the time of each stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from g3an import __version__, machine
from g3an.report import MediaItem, MetricRow, Report, Stage, write_report

__all__ = ["DEFAULT_STEPS", "DemoConfig", "DemoError", "run_demo"]

#: Fine-tuning steps of the default demo (the whole demo took under 5 minutes on 2 CPU cores; the budget is 15).
DEFAULT_STEPS = 200

#: ``d_time_roll`` of the demo's training: the recipe of the shipped synth-actions model's fine-tuning
#: (docs/training.md, which also says that its effect on the noisy end frames is not established).
DEMO_TIME_ROLL = 0.5

#: ``appearance_consistency`` of the demo's fine-tuning: the recipe of the shipped synth-actions model's
#: last stages, which keeps the subject when only z_m changes (docs/training.md, "Identity across motion").
#: Not used from scratch, where the term from step 0 stops the motion codes from doing anything.
DEMO_APPEARANCE_CONSISTENCY = 100.0

#: The architecture of the shipped synth-actions model, used when training from scratch.
SCRATCH_MODEL = {"resolution": 32, "ch": 16, "ch_d": 16, "fsa_level": 2, "num_classes": 10}

DISENTANGLE = ("appearance_agreement_under_motion", "class_agreement_under_appearance", "conditional_accuracy",
               "temporal_appearance_consistency")  # fmt: skip


class DemoError(RuntimeError):
    """A demo that cannot run as asked (message says why and what to do)."""


@dataclass
class DemoConfig:
    """Options of the demo.

    Attributes:
        out: output directory (data, run, media, evaluation, report).
        steps: training steps (fine-tuning, or from scratch).
        init: the weights fine-tuning starts from: a shipped model name (``synth-actions``), an exported
            ``.safetensors`` or a training checkpoint; ``None``: train from scratch.
        videos: videos of the synthetic dataset.
        size: frame size of the dataset in pixels (the shipped model is 32).
        batch_size: training batch (videos per step).
        eval_n: generated videos of embedded FID / IS; also scales the disentanglement counts as
            ``g3an eval --n`` does (``512 // eval_n`` divides the default group counts).
        seed: seed of data, training, sampling and evaluation.
        threads: torch CPU threads (``None``: PyTorch's default, one per core).
        workers: processes drawing the dataset.
        model_overrides: ``KEY=VALUE`` model options for training from scratch (e.g. ``ch=4`` for tests).
        grid: rows and columns of the appearance x motion grid.
        progress: show progress bars.
    """

    out: Path = Path("runs/demo")
    steps: int = DEFAULT_STEPS
    init: str | None = "synth-actions"
    videos: int = 1000
    size: int = 32
    batch_size: int = 16
    eval_n: int = 128
    seed: int = 0
    threads: int | None = None
    workers: int = 2
    model_overrides: dict[str, Any] = field(default_factory=dict)
    grid: tuple[int, int] = (4, 4)
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("steps", "videos", "size", "batch_size", "workers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.eval_n, int) or self.eval_n < 10:
            raise ValueError(f"eval_n must be an integer >= 10 (IS has 10 splits), got {self.eval_n!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")


# -- helpers ------------------------------------------------------------------------------------------
def _cmd(*args: object) -> str:
    return shlex.join(str(a) for a in args)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def machine_facts() -> dict[str, str]:
    """Machine, Python and package versions, for the report."""
    import numpy

    facts = {
        "machine": machine.describe(),
        "python": platform.python_version(),
        "g3an": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torch threads": str(torch.get_num_threads()),
    }
    with contextlib.suppress(OSError, AttributeError):
        facts["load average at start (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return facts


class _Manifest:
    """``OUT/demo.json``: the options, and per stage its time and key, so a rerun can reuse finished stages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.is_file():
            with contextlib.suppress(json.JSONDecodeError):
                self.data = json.loads(path.read_text())
        self.data.setdefault("stages", {})

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"].get(name, {})

    def record(self, name: str, **values: Any) -> None:
        self.data["stages"][name] = values
        self.save()

    def save(self) -> None:
        from g3an.checkpoint import atomic_write

        text = json.dumps(self.data, indent=1, default=str) + "\n"
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))


@dataclass
class _Timed:
    seconds: float = 0.0
    cpu_seconds: float | None = None
    reused: bool = False


def _cpu_time() -> float:
    """CPU seconds of this process (every thread) and of its finished child processes (dataset workers)."""
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def _timed(manifest: _Manifest, name: str) -> Iterator[_Timed]:
    """Time a stage (wall clock and CPU); a reused stage keeps the times it took when it ran."""
    t = _Timed()
    t0, c0 = time.perf_counter(), _cpu_time()
    yield t
    before = manifest.stage(name)
    if t.reused and before.get("seconds") is not None:
        t.seconds, t.cpu_seconds = float(before["seconds"]), before.get("cpu_seconds")
    else:
        t.seconds, t.cpu_seconds = time.perf_counter() - t0, _cpu_time() - c0


# -- stages -------------------------------------------------------------------------------------------
def _data(cfg: DemoConfig, manifest: _Manifest) -> tuple[Path, Stage]:
    from g3an.data.format import DatasetError, open_dataset
    from g3an.data.synthetic import SynthConfig, generate

    path = cfg.out / "data" / "synth-actions"
    synth = SynthConfig("actions", videos=cfg.videos, size=cfg.size, seed=cfg.seed)
    command = _cmd("g3an", "data", "synth", "actions", "--out", path, "--videos", cfg.videos, "--size", cfg.size,
                   "--seed", cfg.seed)  # fmt: skip
    _say(f"[1/5] data: synth-actions, {cfg.videos} videos of {synth.frames} frames at {cfg.size}x{cfg.size}")
    with _timed(manifest, "data") as t:
        reuse = False
        if (path / "meta.json").is_file():
            try:
                ds = open_dataset(path)
                reuse = ds.attributes.get("config") == dataclasses.asdict(synth)
            except DatasetError:
                reuse = False
            if not reuse:
                raise DemoError(f"{path} holds another dataset than this demo asks for; remove it or use another --out")
        t.reused = reuse
        if not reuse:
            generate(synth, path, workers=cfg.workers, progress=cfg.progress)
    if cfg.workers > 1 and not t.reused:
        t.cpu_seconds = None  # the videos are drawn by fork-server workers, which are not our child processes
    note = "reused from an earlier run" if t.reused else ""
    manifest.record("data", seconds=t.seconds, cpu_seconds=t.cpu_seconds, command=command)
    return path, Stage("data", t.seconds, command, note, t.cpu_seconds)


def _shipped_missing(init: str) -> bool:
    """True when ``init`` names a shipped model whose weights are not installed (a source checkout without them)."""
    try:
        from g3an.pretrained import is_shipped, resolve
    except ImportError:
        return False
    if not is_shipped(init):
        return False
    try:
        resolve(init)
    except FileNotFoundError:
        return True
    return False


def _model_config(cfg: DemoConfig) -> dict[str, Any]:
    """The model options: those of the weights fine-tuning starts from, else the shipped architecture."""
    if cfg.init is None:
        return {**SCRATCH_MODEL, **cfg.model_overrides}
    from g3an.checkpoint import CheckpointError, load_generator

    try:
        from g3an.pretrained import resolve

        source = resolve(cfg.init)
        _, model_cfg, _, _ = load_generator(source)
    except (ImportError, KeyError, FileNotFoundError, CheckpointError) as err:
        raise DemoError(f"cannot fine-tune from {cfg.init!r}: {err}; pass --from-scratch to train without it") from None
    return dataclasses.asdict(model_cfg)


def _train_values(cfg: DemoConfig, data: Path) -> dict[str, Any]:
    values: dict[str, Any] = {
        "model": "g3an", "data": str(data), "steps": cfg.steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "model_config": _model_config(cfg), "ema_half_life": 1000.0, "log_every": 5,
        "sample_every": max(50, cfg.steps // 2), "checkpoint_every": 50, "keep_last": 2, "workers": 0,
        "threads": cfg.threads, "d_time_roll": DEMO_TIME_ROLL,
    }  # fmt: skip
    if cfg.init is not None:
        values["init"] = cfg.init
        values["appearance_consistency"] = DEMO_APPEARANCE_CONSISTENCY
    return values


def _train_command(cfg: DemoConfig, data: Path, values: dict[str, Any]) -> str:
    args: list[object] = ["g3an", "train", "--model", "g3an", "--data", data, "--out", cfg.out / "train", "--steps",
                          cfg.steps, "--batch-size", cfg.batch_size, "--seed", cfg.seed, "--workers", 0]  # fmt: skip
    from g3an.registry import make_config

    default = dataclasses.asdict(make_config("g3an", {}))
    args += [f"model.{k}={json.dumps(v)}" for k, v in values["model_config"].items() if default.get(k) != v]
    if cfg.init is not None:
        args.append(f"init={cfg.init}")
    from g3an.train import TrainConfig

    flags = {"model", "data", "steps", "batch_size", "seed", "workers", "model_config", "init"}
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    args += [f"{k}={json.dumps(v)}" for k, v in values.items() if k not in flags and v != defaults[k]]
    return _cmd(*args)


def _train(cfg: DemoConfig, data: Path, manifest: _Manifest) -> tuple[Path, Stage]:
    from g3an.train import TrainConfig, fit
    from g3an.train.loop import latest_checkpoint

    run = cfg.out / "train"
    how = f"fine-tuning {cfg.init}" if cfg.init else "training from scratch"
    _say(f"[2/5] train: {how}, {cfg.steps} steps of {cfg.batch_size} videos -> {run}")
    values = _train_values(cfg, data)
    try:
        train_cfg = TrainConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise DemoError(f"training configuration: {err}") from None
    command = _train_command(cfg, data, values)
    existing = latest_checkpoint(run)
    if existing is not None:
        old = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        same = {k: old.get(k) for k in ("model_config", "init", "data", "batch_size", "seed")}
        want = {k: train_cfg.to_dict().get(k) for k in same}
        if same != want:
            raise DemoError(f"{run} holds a run with other options ({', '.join(k for k in same if same[k] != want[k])})"
                            "; remove it or use another --out")  # fmt: skip
    with _timed(manifest, "train") as t:
        done_before = existing is not None and int(existing.stem.split("-")[-1]) >= cfg.steps
        t.reused = done_before
        result = fit(train_cfg, run, resume=existing is not None, progress=cfg.progress)
    if result.interrupted:
        raise DemoError(f"training stopped by {result.signal_name} at step {result.step} (checkpoint "
                        f"{result.checkpoint}); run the same command again to continue")  # fmt: skip
    if result.checkpoint is None:
        raise DemoError(f"{run}: training wrote no checkpoint")
    note = "reused from an earlier run" if t.reused else ("resumed" if existing is not None else "")
    manifest.record(
        "train", seconds=t.seconds, cpu_seconds=t.cpu_seconds, command=command, checkpoint=str(result.checkpoint)
    )
    return Path(result.checkpoint), Stage("train", t.seconds, command, note, t.cpu_seconds)


@dataclass
class _MediaJob:
    key: str
    title: str
    caption: str
    command_args: list[object]
    run: Callable[[Path], object]


def _latents_sha(path: Path) -> str | None:
    from g3an.sample import latents_path_for

    lat = latents_path_for(path)
    if not lat.is_file():
        return None
    try:
        return json.loads(lat.read_text()).get("checkpoint_sha256")
    except json.JSONDecodeError:
        return None


def _media(cfg: DemoConfig, data: Path, ckpt: Path, manifest: _Manifest) -> tuple[list[MediaItem], Stage]:
    from g3an.data.format import open_dataset
    from g3an.data.preview import preview_grid
    from g3an.manipulate import manipulate_checkpoint
    from g3an.media import save_grid
    from g3an.sample import file_sha256, latents_path_for, sample

    media = cfg.out / "media"
    sha = file_sha256(ckpt)
    rows, cols = cfg.grid
    seed = cfg.seed

    def manip(mode: str, **params: Any) -> Callable[[Path], object]:
        return lambda out: manipulate_checkpoint(ckpt, mode, out, seed=seed, **params)

    def preview(out: Path) -> None:
        ds = open_dataset(data)
        grid = preview_grid(ds, rows=3, cols=None, frames=16, step=2, split=None, seed=seed)
        save_grid(out, grid.videos, row_labels=grid.row_labels, col_labels=grid.col_labels,
                  fps=max(1.0, ds.fps / 2), title=f"{data.name}: {ds.source}")  # fmt: skip

    # fmt: off
    jobs = [
        _MediaJob("dataset", "The dataset (real videos)", "Rows: subjects; columns: the 10 actions. Compare the "
                  "generated figures with these.", ["g3an", "data", "preview", data, "--seed", seed], preview),
        _MediaJob("samples", "Random samples", "Each cell: a random appearance, motion and class.",
                  ["g3an", "sample", ckpt, "--n", 16, "--seed", seed],
                  lambda out: sample(ckpt, out, n=16, seed=seed)),
        _MediaJob("grid", "Appearance x motion", "Rows: appearance codes z_a; columns: motion codes z_m (one "
                  "class). A row keeps one person; a column keeps one movement.",
                  ["g3an", "manipulate", ckpt, "grid", "--rows", rows, "--cols", cols, "--seed", seed],
                  manip("grid", rows=rows, cols=cols)),
        _MediaJob("vary-motion", "Vary motion (paper Fig. 6)", "One appearance code, six motion codes: the same "
                  "person should move differently.", ["g3an", "manipulate", ckpt, "vary-motion", "--n", 6,
                  "--seed", seed], manip("vary-motion", n=6)),
        _MediaJob("vary-appearance", "Vary appearance", "One motion code, six appearance codes: different people "
                  "should make the same movement.", ["g3an", "manipulate", ckpt, "vary-appearance", "--n", 6,
                  "--seed", seed], manip("vary-appearance", n=6)),
        _MediaJob("classes", "Class sweep (paper Figs. 7, 8)", "Rows: appearance codes; columns: the 10 action "
                  "classes, one shared motion code.", ["g3an", "manipulate", ckpt, "classes", "--rows", 3,
                  "--seed", seed], manip("classes", rows=3)),
    ]
    # fmt: on
    _say(f"[3/5] media: {len(jobs)} GIFs -> {media}")
    items: list[MediaItem] = []
    commands = []
    with _timed(manifest, "media") as t:
        fresh = 0
        bar = _bar(len(jobs), "media", cfg.progress)
        for job in jobs:
            out = media / f"{job.key}.gif"
            command = _cmd(*job.command_args, "--out", out)
            commands.append(command)
            own_ckpt = job.key != "dataset"
            done = out.is_file() and (_latents_sha(out) == sha if own_ckpt else True)
            if not done:
                bar.set_postfix_str(job.key)
                with _threads(cfg.threads):
                    job.run(out)
                fresh += 1
            links = [["latents file", str(latents_path_for(out).relative_to(cfg.out))]] if own_ckpt else []
            items.append(MediaItem(job.title, str(out.relative_to(cfg.out)), command, job.caption, links))
            bar.update(1)
        bar.close()
        t.reused = fresh == 0
    manifest.record("media", seconds=t.seconds, cpu_seconds=t.cpu_seconds, command="\n".join(commands))
    note = "reused from an earlier run" if t.reused else ""
    return items, Stage("media", t.seconds, "\n".join(commands), note, t.cpu_seconds)


def _evaluate_one(cfg: DemoConfig, source: Path, ckpt_arg: str, data: Path, out: Path,
                  progress: bool) -> list[dict[str, Any]]:  # fmt: skip
    """What ``g3an eval CKPT --data DATA --metrics fid2048_embedded_actions,is2048_embedded_actions,disentangle
    --n N --out OUT`` computes, as records of the same form."""
    from g3an.checkpoint import load_generator
    from g3an.data.format import open_dataset
    from g3an.metrics.cache import StatsCache
    from g3an.metrics.embedded import disentanglement_report, load_evaluator
    from g3an.metrics.protocols import get_protocol, sha256_file
    from g3an.metrics.runner import evaluate_generator, load_extractor

    dataset = open_dataset(data)
    _, _, generator, _ = load_generator(source)
    digest = sha256_file(source)
    records = []
    for name in ("fid2048_embedded_actions", "is2048_embedded_actions"):
        protocol = get_protocol(name)
        extractor = load_extractor(protocol.extractor, None, "cpu")
        result = evaluate_generator(generator, dataset, protocol, extractor, num_fake=cfg.eval_n,
                                    num_real=cfg.eval_n if protocol.num_real is not None else None, seed=cfg.seed,
                                    batch=16, device="cpu", checkpoint_sha256=digest, cache=StatsCache(),
                                    progress=progress)  # fmt: skip
        records.append(result.to_dict())
    evaluator = load_evaluator("actions", device="cpu")
    bar = _bar(len(DISENTANGLE), f"disentangle ({ckpt_arg})", progress)
    scale = max(1, 512 // cfg.eval_n)
    for r in disentanglement_report(generator, evaluator, scale=scale, seed=cfg.seed, batch=16, device="cpu"):
        records.append({"metric": f"disentangle/{r.name}", "value": r.value, "details": r.details,
                        "checkpoint_sha256": digest, "seed": cfg.seed})  # fmt: skip
        bar.update(1)
    bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(records, indent=2) + "\n")
    return records


def _eval(cfg: DemoConfig, data: Path, ckpt: Path, manifest: _Manifest) -> tuple[dict[str, Any], Stage]:
    from g3an.sample import file_sha256

    models = {"trained": (ckpt, str(ckpt))}
    if cfg.init is not None:
        from g3an.pretrained import resolve

        models["init"] = (resolve(cfg.init), cfg.init)
    _say(f"[4/5] eval: embedded FID / IS on {cfg.eval_n} videos and the disentanglement measures, "
         f"{len(models)} model(s)")  # fmt: skip
    results: dict[str, Any] = {}
    commands = []
    with _timed(manifest, "eval") as t:
        fresh = 0
        for key, (source, arg) in models.items():
            out = cfg.out / "eval" / f"{key}.json"
            command = _cmd("g3an", "eval", arg, "--data", data, "--metrics",
                           "fid2048_embedded_actions,is2048_embedded_actions,disentangle", "--n", cfg.eval_n,
                           "--seed", cfg.seed, "--out", out)  # fmt: skip
            commands.append(command)
            records = None
            if out.is_file():
                with contextlib.suppress(json.JSONDecodeError):
                    records = json.loads(out.read_text())
                sha = file_sha256(source)
                if not records or any(r.get("checkpoint_sha256") != sha for r in records):
                    records = None
            if records is None:
                with _threads(cfg.threads):
                    records = _evaluate_one(cfg, Path(source), arg, data, out, cfg.progress)
                fresh += 1
            results[key] = {"records": records, "command": command}
        t.reused = fresh == 0
    manifest.record("eval", seconds=t.seconds, cpu_seconds=t.cpu_seconds, command="\n".join(commands))
    note = "reused from an earlier run" if t.reused else ""
    return results, Stage("eval", t.seconds, "\n".join(commands), note, t.cpu_seconds)


def _metric_rows(results: dict[str, Any]) -> list[MetricRow]:
    trained = results["trained"]
    baseline = {r["metric"]: r["value"] for r in results.get("init", {}).get("records", [])}
    rows = []
    for r in trained["records"]:
        name = r["metric"]
        better = "lower" if name.startswith(("fid", "kvd", "fvd")) else "higher"
        videos = r.get("num_fake") or r.get("details", {}).get("num") or 0
        if not videos and "groups" in r.get("details", {}):
            videos = r["details"]["groups"] * r["details"]["members"]
        rows.append(MetricRow(name, float(r["value"]), baseline.get(name), better, r.get("std"), int(videos),
                              trained["command"]))  # fmt: skip
    return rows


def demo_command(cfg: DemoConfig) -> str:
    """The ``g3an demo`` command line of ``cfg`` (options that differ from the defaults)."""
    default = DemoConfig()
    args: list[object] = ["g3an", "demo", "--out", cfg.out]
    for name, flag in (("steps", "--steps"), ("videos", "--videos"), ("eval_n", "--eval-n"),
                       ("batch_size", "--batch-size"), ("seed", "--seed"), ("threads", "--threads")):  # fmt: skip
        if getattr(cfg, name) != getattr(default, name):
            args += [flag, getattr(cfg, name)]
    if cfg.init is None:
        args.append("--from-scratch")
        args += [f"model.{k}={json.dumps(v)}" for k, v in cfg.model_overrides.items()]
    elif cfg.init != default.init:
        args += ["--init", cfg.init]
    return _cmd(*args)


def run_demo(cfg: DemoConfig) -> Path:
    """Run every stage (reusing finished ones) and write ``OUT/report.html``; returns its path."""
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    cfg.out.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(cfg.out / "demo.json")
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
    manifest.data["options"] = options
    notes = []
    if cfg.init is not None and _shipped_missing(cfg.init):
        notes.append(f"The shipped model {cfg.init!r} is not part of this installation, so this demo trained "
                     "from scratch instead of fine-tuning it.")  # fmt: skip
        _say(f"note: the shipped model {cfg.init!r} is not installed; training from scratch instead")
        cfg = dataclasses.replace(cfg, init=None)
    facts = machine_facts()
    with _threads(cfg.threads):
        facts["torch threads"] = str(torch.get_num_threads())
    data, s_data = _data(cfg, manifest)
    ckpt, s_train = _train(cfg, data, manifest)
    items, s_media = _media(cfg, data, ckpt, manifest)
    results, s_eval = _eval(cfg, data, ckpt, manifest)
    _say(f"[5/5] report -> {cfg.out / 'report.html'}")
    t0, c0 = time.perf_counter(), _cpu_time()
    how = f"fine-tuned from the shipped model {cfg.init}" if cfg.init else "trained from scratch"
    facts["started"] = started.strftime("%Y-%m-%d %H:%M:%S UTC")
    facts["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    facts["this invocation"] = f"{time.perf_counter() - t_start:.1f} s (stages reused from earlier runs take ~0 s)"
    facts["checkpoint"] = str(ckpt)
    if cfg.init is None:
        notes.append("Trained from scratch for few steps: expect blurry figures. The default demo fine-tunes "
                     "the shipped model instead.")  # fmt: skip
    notes.append("Metric values use reduced sample counts (the names carry them) and the project's own embedded "
                 "evaluator: compare them with each other, never with the paper's numbers.")  # fmt: skip
    report = Report(
        title="g3an demo: G3AN on synth-actions",
        summary=f"A conditional G3AN {how} for {cfg.steps} steps of {cfg.batch_size} videos on the synthetic "
        f"dataset synth-actions ({cfg.videos} videos, {cfg.size}x{cfg.size}). Every item below names the command "
        "that makes it again; latents files regenerate the videos pixel for pixel.",
        media=items,
        metrics=_metric_rows(results),
        baseline_name=f"{cfg.init} (before fine-tuning)" if cfg.init else None,
        model_name="fine-tuned" if cfg.init else "trained",
        stages=[s_data, s_train, s_media, s_eval],
        log=str(Path("train") / "log.jsonl") if (cfg.out / "train" / "log.jsonl").is_file() else None,
        facts=facts,
        notes=notes,
    )
    report.stages.append(Stage("report", 0.0, demo_command(cfg)))
    path = write_report(report, cfg.out)
    report.stages[-1].seconds, report.stages[-1].cpu_seconds = time.perf_counter() - t0, _cpu_time() - c0
    path = write_report(report, cfg.out)
    manifest.record("report", seconds=report.stages[-1].seconds, command=report.stages[-1].command)
    return path
