"""Benchmark: the G3AN paper's Tables 1, 3, 4 and 5 on the embedded datasets, at a budget one chooses.

Every row (G3AN, its ablations and the baselines VGAN, TGAN, MoCoGAN) trains through the library's one
training loop (:func:`g3an.train.fit`) with the same budget and seeds, at 32x32 on synth-actions and
synth-faces. Each run's EMA generator is then scored with the embedded FID and IS
(``fid<N>_embedded_<dataset>``, ``is<N>_embedded_<dataset>``), FVD when the I3D weights are installed,
and the disentanglement measures of :mod:`g3an.metrics.embedded`. One JSON per run goes to
``WORK_DIR/results``; a rerun skips finished runs and resumes interrupted ones from their checkpoint. The
tables (mean ± std over seeds) are written into ``docs/results.md`` between the markers
``<!-- paper-tables:start -->`` and ``<!-- paper-tables:end -->``; the rest of that file is left alone.

    python benchmarks/paper_tables.py                                   # every row, both datasets, defaults
    python benchmarks/paper_tables.py --rows g3an,mocogan --seeds 2 --steps 50 --work-dir /tmp/pt
    python benchmarks/paper_tables.py --list-rows                       # the rows and their tables
    python benchmarks/paper_tables.py --estimate                        # measured cost of each row, expected time

At 32x32 every row is cheap except F-SA at level 3 (attention over all 1024 pixels of every frame): that
one row costs about as much as the other thirteen together (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SECTION = "paper-tables"  # the tables' section of docs/results.md (g3an.report.replace_section)
RESULT_FORMAT = "g3an-paper-tables-run"
RESULT_VERSION = 1
RESOLUTION = 32  # every baseline supports 32x32 (docs/baselines.md); G3AN then has 4 levels (0-3)
DATASET_VIDEOS = 2000  # videos drawn when a dataset is missing (the `g3an data synth` default)
DATASET_FRAMES = 64  # frames per video: 16-frame clips at G3AN's time steps up to 4 need 61
DATASET_SEED = 0
DATASET_LABELS = {"actions": "synth-actions", "faces": "synth-faces"}
MEASURES = (
    "appearance_agreement_under_motion",
    "class_agreement_under_appearance",
    "conditional_accuracy",
    "temporal_appearance_consistency",
)
RUN_OVERHEAD_S = 5.0  # seconds per run beyond training steps and evaluation videos (setup, checkpoints, loading)
FULL_G3AN_FSA_LEVEL = 2  # the paper's level 3 of 0-4 at 64x64, mapped to 32x32 (see LEVEL_NOTE)


@dataclass(frozen=True)
class Row:
    """One trained configuration and the rows of the paper's tables it fills.

    Attributes:
        key: short name, used by ``--rows``, in run directories and result files.
        model: registered model name.
        options: ``model_config`` options on top of the resolution and the widths ``--ch`` sets.
        labels: paper table number -> the row's label in that table.
        cost: CPU seconds of one training step at the default budget, measured on the development machine;
            only used to start the longest runs first, so parallel jobs finish together.
    """

    key: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    cost: float = 1.0


#: Every configuration, once: the full G3AN serves Tables 1, 3, 4 and 5, "w/o F-SA" Tables 3 and 5.
ROWS: tuple[Row, ...] = (
    Row("g3an", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL},
        {1: "G3AN", 3: "G3AN (full)", 4: "(1+2)D (G3AN)", 5: f"level {FULL_G3AN_FSA_LEVEL} (G3AN)"}, 0.67),
    Row("vgan", "vgan", {}, {1: "VGAN"}, 0.14),
    Row("tgan", "tgan", {}, {1: "TGAN"}, 0.15),
    Row("mocogan", "mocogan", {}, {1: "MoCoGAN"}, 0.28),
    Row("g3an-no-gs", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL, "use_spatial": False}, {3: "w/o G_S"}, 0.56),
    Row("g3an-no-gt", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL, "use_temporal": False}, {3: "w/o G_T"}, 0.7),
    Row("g3an-no-gs-gt", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL, "use_spatial": False, "use_temporal": False},
        {3: "w/o G_S, G_T"}, 0.56),
    Row("g3an-no-fsa", "g3an", {"fsa_level": None}, {3: "w/o F-SA", 5: "no F-SA"}, 0.27),
    Row("g3an-no-gs-gt-fsa", "g3an", {"fsa_level": None, "use_spatial": False, "use_temporal": False},
        {3: "w/o G_S, G_T, F-SA (G_V alone)"}, 0.22),
    Row("g3an-3d", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL, "conv_type": "3d"}, {4: "3D"}, 0.71),
    Row("g3an-2p1d", "g3an", {"fsa_level": FULL_G3AN_FSA_LEVEL, "conv_type": "2p1d"}, {4: "(2+1)D"}, 0.69),
    Row("g3an-fsa0", "g3an", {"fsa_level": 0}, {5: "level 0"}, 0.27),
    Row("g3an-fsa1", "g3an", {"fsa_level": 1}, {5: "level 1"}, 0.32),
    Row("g3an-fsa3", "g3an", {"fsa_level": 3}, {5: "level 3"}, 6.1),
)  # fmt: skip
ROWS_BY_KEY = {r.key: r for r in ROWS}


@dataclass(frozen=True)
class Table:
    """One of the paper's tables: its rows come from :data:`ROWS`; ``expected`` is the paper's best row."""

    number: int
    title: str
    expected: str
    claim: str


TABLES: tuple[Table, ...] = (
    Table(1, "G3AN vs VGAN, TGAN and MoCoGAN", "g3an", "G3AN has the best FID and IS of the four methods"),
    Table(3, "Without G_S, G_T, F-SA and combinations", "g3an", "the full G3AN beats every ablation"),
    Table(4, "3D vs (2+1)D vs (1+2)D transposed convolutions in G_V", "g3an", "(1+2)D, G3AN's choice, is best"),
    Table(5, "F-SA at each level", "g3an",
          "F-SA at level 3 of 0-4 (64x64) is best; at 32x32 that is level 2 of 0-3"),
)  # fmt: skip

LEVEL_NOTE = (
    "At 32x32 G3AN has 4 levels (0-3, making 4, 8, 16 and 32 pixels) instead of the paper's 5 (0-4 at 64x64). "
    "Levels are matched from the output end, where the widths are the same (`ch`, `2ch`, ...) and the feature "
    "map has the same share of the output size: level k at 32x32 stands for the paper's level k+1, so the "
    "paper's F-SA at level 3 (a 32x32 map of a 64x64 video, width 2ch) is level 2 here (a 16x16 map of a "
    "32x32 video, width 2ch), which is what the full G3AN row uses. The paper's level 0 (a 4x4 map of a "
    "64x64 video) has no counterpart."
)


def width_options(model: str, ch: int) -> dict[str, int]:
    """Widths of ``model`` for ``--ch``: each model keeps its default ratios, scaled by ``ch / 64``.

    G3AN, VGAN and MoCoGAN default to ``ch = ch_d = 64``; TGAN to ``ch = 32`` (G1), ``ch_t = 128`` (G0)
    and ``ch_d = 64``.
    """
    if model == "tgan":
        return {"ch": max(1, ch // 2), "ch_t": 2 * ch, "ch_d": ch}
    return {"ch": ch, "ch_d": ch}


def dataset_dir(data_dir: Path, kind: str) -> Path:
    return data_dir / f"synth-{kind}-{RESOLUTION}"


def ensure_dataset(data_dir: Path, kind: str, videos: int, workers: int) -> Path:
    """The 32x32 synth dataset ``kind`` in ``data_dir``, drawn first when missing."""
    from g3an.data.synthetic import SynthConfig, generate

    path = dataset_dir(data_dir, kind)
    if not (path / "meta.json").is_file():
        print(f"drawing {DATASET_LABELS[kind]} ({videos} videos, {RESOLUTION}x{RESOLUTION}) into {path}", flush=True)
        cfg = SynthConfig(kind, videos=videos, size=RESOLUTION, frames=DATASET_FRAMES, seed=DATASET_SEED)
        generate(cfg, path, workers=workers)
    return path


def i3d_installed() -> bool:
    from g3an.metrics.weights import I3D_NAME, read_manifest

    try:
        return I3D_NAME in read_manifest()
    except Exception:  # an unreadable manifest means no usable weights
        return False


# ---------------------------------------------------------------------------------------------------
# One run: train, evaluate, write its JSON.


@dataclass
class RunSpec:
    """Everything one run depends on; its hash names the run directory and the result file."""

    dataset: str
    row: str
    seed: int
    train: dict[str, Any]
    eval: dict[str, Any]
    dataset_hash: str

    @property
    def digest(self) -> str:
        # ema_bn_videos=0, the behaviour before the option, keeps the digests (run directories) of earlier runs
        train = {k: v for k, v in self.train.items() if k != "data" and (k, v) != ("ema_bn_videos", 0)}
        spec = {"train": train, "eval": self.eval,
                "dataset_hash": self.dataset_hash, "format": RESULT_VERSION}  # fmt: skip
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        return f"{self.row}-s{self.seed}-{self.digest}"

    def run_dir(self, work_dir: Path) -> Path:
        return work_dir / "runs" / self.dataset / self.run_id

    def result_path(self, work_dir: Path) -> Path:
        return work_dir / "results" / self.dataset / f"{self.run_id}.json"


def git_commit() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def train_run(spec: RunSpec, work_dir: Path) -> dict[str, Any]:
    """Train one run (resuming its checkpoint if an earlier call was interrupted); what it did."""
    from g3an.train import TrainConfig, TrainingDiverged, fit, latest_checkpoint

    run_dir = spec.run_dir(work_dir)
    cfg = TrainConfig.from_dict(json.loads(json.dumps(spec.train)))
    previous = latest_checkpoint(run_dir)
    start = int(previous.name[5:13]) if previous is not None else 0
    t0 = time.perf_counter()
    try:
        result = fit(cfg, run_dir, resume=previous is not None, progress=False)
    except TrainingDiverged as err:
        return {"status": "diverged", "error": str(err), "resumed_from_step": start,
                "seconds": time.perf_counter() - t0, "train_config": cfg.to_dict()}  # fmt: skip
    if result.interrupted:  # a stop signal: the checkpoint is kept, the run is not finished
        return {"status": "interrupted", "error": f"stopped by {result.signal_name} at step {result.step} of "
                f"{cfg.steps}", "resumed_from_step": start, "steps": result.step,
                "seconds": time.perf_counter() - t0, "train_config": cfg.to_dict()}  # fmt: skip
    return {"status": "ok", "error": None, "resumed_from_step": start, "steps": result.step, "videos": result.videos,
            "seconds": time.perf_counter() - t0, "checkpoint": str(result.checkpoint), "train_config": cfg.to_dict(),
            "last_scalars": result.last_scalars}  # fmt: skip


def evaluate_run(spec: RunSpec, work_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Embedded FID / IS (and FVD with installed I3D weights) and the disentanglement measures of a checkpoint."""
    import torch

    import g3an.metrics.embedded as embedded
    from g3an.checkpoint import load_generator
    from g3an.data.format import open_dataset
    from g3an.metrics.cache import StatsCache
    from g3an.metrics.protocols import get_protocol, sha256_file
    from g3an.metrics.runner import evaluate_generator, load_extractor

    ev = spec.eval
    device = torch.device("cpu")
    dataset = open_dataset(spec.train["data"])
    _, _, generator, _ = load_generator(checkpoint, ema=True)
    generator = generator.to(device).eval()
    digest = sha256_file(checkpoint)
    cache = StatsCache(work_dir / "stats")
    names = {"fid": f"fid2048_embedded_{spec.dataset}", "is": f"is2048_embedded_{spec.dataset}"}
    if ev["fvd"]:
        names["fvd"] = "fvd2048_16f"
    metrics: dict[str, Any] = {}
    for short, name in names.items():
        protocol = get_protocol(name)
        extractor = load_extractor(protocol.extractor, None, device)
        result = evaluate_generator(generator, dataset, protocol, extractor, num_fake=ev["n"],
                                    num_real=ev["n"] if protocol.num_real is not None else None, seed=ev["seed"],
                                    batch=ev["batch"], device=device, checkpoint_sha256=digest, cache=cache,
                                    progress=False)  # fmt: skip
        metrics[short] = result.to_dict()
    evaluator = embedded.load_evaluator(spec.dataset, device=device)
    report = embedded.disentanglement_report(generator, evaluator, scale=ev["disentangle_scale"], seed=ev["seed"],
                                             batch=ev["batch"], device=device)  # fmt: skip
    found = {r.name: {"value": r.value, "details": r.details} for r in report}
    disentangle: dict[str, Any] = {}
    for name in MEASURES:
        if name in found:
            disentangle[name] = found[name]
        elif name == "conditional_accuracy":
            disentangle[name] = {"value": None, "not_applicable": "an unconditional model (no class input y): "
                                 "the paper's Tables 1 and 3-5 compare unconditional generators"}  # fmt: skip
        else:
            disentangle[name] = {"value": None, "not_applicable": f"{spec.row} has no separate appearance and "
                                 "motion codes (one latent z drives the whole video), so neither can be held "
                                 "fixed while the other changes"}  # fmt: skip
    return {"metrics": metrics, "disentangle": disentangle, "checkpoint_sha256": digest}


def execute_run(spec_dict: dict[str, Any], work_dir: str, threads: int | None) -> dict[str, Any]:
    """Train and evaluate one run and write its JSON (a worker's entry point). Returns the record."""
    import torch

    import g3an

    if threads:
        torch.set_num_threads(threads)
    spec = RunSpec(**spec_dict)
    wd = Path(work_dir)
    record: dict[str, Any] = {"format": RESULT_FORMAT, "version": RESULT_VERSION, "run_id": spec.run_id,
                              "dataset": spec.dataset, "row": spec.row, "model": spec.train["model"],
                              "seed": spec.seed, "spec": dataclasses.asdict(spec),
                              "package_version": g3an.__version__, "torch_version": torch.__version__,
                              "git": git_commit(), "threads": torch.get_num_threads(),
                              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    cpu0 = time.process_time()
    trained = train_run(spec, wd)
    record.update(trained)
    # wall and CPU seconds of this process (on a shared machine the CPU time is the one to extrapolate from)
    record["seconds"] = {"train": trained["seconds"], "eval": 0.0, "train_cpu": time.process_time() - cpu0,
                         "eval_cpu": 0.0}  # fmt: skip
    record["fvd_note"] = None if spec.eval["fvd"] else "FVD: I3D weights not installed (`g3an weights install i3d`)"
    if trained["status"] == "ok":
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            record.update(evaluate_run(spec, wd, Path(trained["checkpoint"])))
        except (ValueError, RuntimeError) as err:  # e.g. a collapsed generator giving a non-finite FD
            record.update(status="eval_failed", error=f"{type(err).__name__}: {err}")
        record["seconds"]["eval"] = time.perf_counter() - t0
        record["seconds"]["eval_cpu"] = time.process_time() - cpu0
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if trained["status"] != "interrupted":  # an interrupted run has no result yet: a rerun resumes it
        _write_json(spec.result_path(wd), record)
    return record


# ---------------------------------------------------------------------------------------------------
# The plan: which runs, with which configs.


def selected_rows(text: str | None) -> list[Row]:
    if not text:
        return list(ROWS)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS_BY_KEY]
    if unknown:
        raise SystemExit(f"--rows: unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS_BY_KEY)}")
    return [r for r in ROWS if r.key in keys]


def train_dict(row: Row, data: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The unresolved :class:`~g3an.train.TrainConfig` of one run: same budget and seed for every row."""
    videos = args.steps * args.batch_size
    half_life = args.ema_half_life if args.ema_half_life is not None else max(1.0, videos / 10)
    values: dict[str, Any] = {
        "model": row.model,
        "model_config": {"resolution": RESOLUTION, **width_options(row.model, args.ch), **row.options},
        "data": str(data),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": seed,
        "device": "cpu",
        "ema_half_life": half_life or None,
        "ema_bn_videos": args.ema_bn_videos,
        "log_every": max(1, args.steps // 20),
        "sample_every": 0,
        "checkpoint_every": max(1, args.checkpoint_every),
        "keep_last": 1,
        "workers": 0,
        "threads": args.threads,
    }
    if args.precision != "fp32":  # fp32 runs keep the digests (run directories) they had before the option
        values["precision"] = args.precision
    if args.time_steps:
        values["time_steps"] = [int(s) for s in args.time_steps.split(",")]
    return values


def plan(args: argparse.Namespace, rows: list[Row], datasets: list[str], data_paths: dict[str, Path]) -> list[RunSpec]:
    from g3an.data.format import open_dataset

    ev = {
        "n": args.eval_n,
        "seed": args.eval_seed,
        "batch": args.eval_batch,
        "fvd": i3d_installed(),
        "disentangle_scale": args.disentangle_scale,
    }
    specs = []
    for kind in datasets:
        digest = open_dataset(data_paths[kind]).content_hash
        for seed in range(args.seeds):
            for row in rows:
                specs.append(RunSpec(kind, row.key, seed, train_dict(row, data_paths[kind], seed, args), dict(ev),
                                     digest))  # fmt: skip
    return specs


def run_all(specs: list[RunSpec], work_dir: Path, jobs: int, threads: int) -> tuple[list[str], list[str]]:
    """Run every spec without a result file; returns the run ids trained now and those skipped (done before)."""
    todo = sorted((s for s in specs if not s.result_path(work_dir).is_file()), key=lambda s: -ROWS_BY_KEY[s.row].cost)
    skipped = [s.run_id for s in specs if s.result_path(work_dir).is_file()]
    print(f"{len(specs)} runs: {len(skipped)} already done, {len(todo)} to do with {jobs} job(s)", flush=True)
    done: list[str] = []

    def report(i: int, rec: dict[str, Any]) -> None:
        fid = rec.get("metrics", {}).get("fid", {}).get("value")
        line = (f"[{i}/{len(todo)}] {rec['dataset']} {rec['row']} seed {rec['seed']}: {rec['status']}, "
                f"train {rec['seconds']['train']:.0f} s, eval {rec['seconds']['eval']:.0f} s")  # fmt: skip
        print(line + (f", FID {fid:.2f}" if fid is not None else ""), flush=True)
        done.append(rec["run_id"])

    stopped = False
    if jobs <= 1:
        import torch

        before = torch.get_num_threads()
        try:
            for i, spec in enumerate(todo, 1):
                rec = execute_run(dataclasses.asdict(spec), str(work_dir), threads)
                report(i, rec)
                if rec["status"] == "interrupted":
                    stopped = True
                    break
        finally:
            torch.set_num_threads(before)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(execute_run, dataclasses.asdict(s), str(work_dir), threads): s for s in todo}
            try:
                for i, fut in enumerate(as_completed(futures), 1):
                    if fut.cancelled():
                        continue
                    try:
                        rec = fut.result()
                    except Exception:
                        spec = futures[fut]
                        print(f"[{i}/{len(todo)}] {spec.dataset} {spec.row} seed {spec.seed} failed:\n"
                              f"{traceback.format_exc()}", file=sys.stderr, flush=True)  # fmt: skip
                        continue
                    report(i, rec)
                    if rec["status"] == "interrupted" and not stopped:  # a worker was told to stop: no new runs
                        stopped = True
                        for other in futures:
                            other.cancel()
            except KeyboardInterrupt:  # the workers got the signal too and save their checkpoints
                stopped = True
                for other in futures:
                    other.cancel()
                print("interrupted: waiting for the running runs to save their checkpoints", flush=True)
    if stopped:
        raise SystemExit("stopped before every run finished; interrupted runs keep their checkpoints and write no "
                         "result: run the same command again to resume them")  # fmt: skip
    return done, skipped


# ---------------------------------------------------------------------------------------------------
# The markdown.


@dataclass
class Cell:
    """Values of one metric of one row on one dataset, over seeds."""

    values: list[float]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self, digits: int) -> str:
        if not self.values:
            return "-"
        std = f" ± {self.std:.{digits}f}" if self.std is not None else ""
        return f"{self.mean:.{digits}f}{std}"


def metric_values(records: list[dict[str, Any]], path: tuple[str, ...]) -> Cell:
    out = []
    for rec in records:
        node: Any = rec
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and math.isfinite(node):
            out.append(float(node))
    return Cell(out)


def _bench_train() -> Any:
    """The sibling script ``benchmarks/bench_train.py`` (its constant clip dataset)."""
    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("bench_train.py"))
    bench_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_train)
    return bench_train


def eval_videos(args: argparse.Namespace) -> int:
    """Videos one run generates when evaluated: FID, IS and the disentanglement measures (unconditional)."""
    groups, temporal = max(2, 64 // args.disentangle_scale), max(2, 128 // args.disentangle_scale)
    return 2 * args.eval_n + 2 * groups * 8 + temporal


def estimate(args: argparse.Namespace, rows: list[Row], datasets: list[str]) -> float:
    """Measure each row's CPU seconds per training step and per generated video; print the run time to expect.

    A run costs ``steps x step + videos x (sampling + evaluator)`` plus :data:`RUN_OVERHEAD_S`; the real
    statistics cost one evaluator pass over a dataset's training videos. Returns the expected wall seconds.
    """
    import tempfile

    import torch

    import g3an.metrics.embedded as embedded

    torch.set_num_threads(args.threads)
    bench_train = _bench_train()
    evaluator = embedded.load_evaluator(datasets[0])
    clips = torch.rand(args.eval_batch, 3, 16, RESOLUTION, RESOLUTION) * 2 - 1
    evaluator.predict(clips)
    t = time.process_time()
    evaluator.predict(clips)
    per_clip = (time.process_time() - t) / args.eval_batch
    videos, total = eval_videos(args), 0.0
    print(f"CPU seconds with {args.threads} thread(s); evaluator {per_clip * 1e3:.1f} ms per clip; {videos} generated "
          f"videos per evaluation; {RUN_OVERHEAD_S:.0f} s overhead per run")  # fmt: skip
    print(f"{'row':20s} {'s/step':>8s} {'s/video':>8s} {'s/run':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            options = {**train_dict(row, Path(tmp), 0, args), "data": ""}
            trainer = bench_train.bench_trainer(str(Path(tmp) / row.key), options)
            batch = next(trainer.batches())
            times = []
            for _ in range(4):  # the first is a warm-up
                t = time.process_time()
                trainer.train_step(batch)
                times.append(time.process_time() - t)
            step = statistics.median(times[1:])
            G = trainer.G.eval()
            lat = G.sample_latents(args.eval_batch, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                t = time.process_time()
                G(**lat)
                gen = (time.process_time() - t) / args.eval_batch
            run = args.steps * step + videos * (gen + per_clip) + RUN_OVERHEAD_S
            total += run
            print(f"{row.key:20s} {step:8.3f} {gen:8.4f} {run:8.0f}", flush=True)
    real = len(datasets) * DATASET_VIDEOS * 0.8 * per_clip  # every training video once per dataset
    total = total * len(datasets) * args.seeds + real
    wall = total / args.jobs
    print(f"all {len(rows)} rows x {len(datasets)} dataset(s) x {args.seeds} seed(s): {total / 60:.0f} CPU min, "
          f"about {wall / 60:.0f} min with --jobs {args.jobs} (if {args.jobs} cores are free)")  # fmt: skip
    return wall


def command_line(args: argparse.Namespace, rows: Sequence[str] | None = None) -> str:
    """The invocation with every option spelled out (so it does not depend on the defaults of a later version)."""
    parts = ["python", "benchmarks/paper_tables.py"]
    opts = {"--steps": args.steps, "--batch-size": args.batch_size, "--ch": args.ch, "--seeds": args.seeds,
            "--datasets": args.datasets, "--rows": ",".join(rows) if rows else args.rows, "--eval-n": args.eval_n,
            "--disentangle-scale": args.disentangle_scale,
            "--eval-seed": args.eval_seed, "--ema-half-life": args.ema_half_life,
            "--ema-bn-videos": args.ema_bn_videos, "--time-steps": args.time_steps,
            "--precision": args.precision, "--jobs": args.jobs, "--threads": args.threads, "--data-dir": args.data_dir,
            "--work-dir": args.work_dir, "--out": args.out}  # fmt: skip
    for flag, value in opts.items():
        if value is not None and value != "":
            parts += [flag, str(value)]
    return shlex.join(parts)


def _ordering(table: Table, kind: str, rows: list[Row], cells: dict[str, Cell], metric: str,
              lower_is_better: bool) -> str:  # fmt: skip
    """One plain sentence: is the paper's best row the best here, and is the gap larger than the spread?"""
    have = [(r, cells[r.key]) for r in rows if cells[r.key].mean is not None]
    name = DATASET_LABELS[kind]
    if table.expected not in {r.key for r, _ in have}:
        return f"{name}, {metric}: no finished run of {table.expected}, so the paper's ordering cannot be checked."
    if len(have) < 2:
        return f"{name}, {metric}: only one finished row, nothing to compare."
    ranked = sorted(have, key=lambda rc: rc[1].mean if lower_is_better else -rc[1].mean)
    label = {r.key: r.labels[table.number] for r in rows}
    exp_cell = cells[table.expected]
    position = [r.key for r, _ in ranked].index(table.expected) + 1
    tied = [r for r, c in ranked if r.key != table.expected and f"{c.mean:.2f}" == f"{exp_cell.mean:.2f}"]
    if tied and position <= len(tied) + 1:
        others = ", ".join(label[r.key] for r in tied)
        return (f"{name}, {metric}: **not resolved**: {label[table.expected]} ties with {others} at "
                f"{exp_cell.mean:.2f} (no model has learnt enough to separate them).")  # fmt: skip
    if position == 1:
        runner_up, cell = ranked[1]
        overlap = _overlaps(exp_cell, cell)
        tail = (" (the seed spreads overlap with the runner-up, so at this budget it is not a clear win)" if overlap
                else " (by more than the seed spread)")  # fmt: skip
        return (f"{name}, {metric}: **reproduced**: {label[table.expected]} is best "
                f"({exp_cell.text(2)} vs {label[runner_up.key]} {cell.text(2)}){tail}.")  # fmt: skip
    best, cell = ranked[0]
    overlap = " (the seed spreads overlap)" if _overlaps(exp_cell, cell) else ""
    return (
        f"{name}, {metric}: **not reproduced**: {label[best.key]} is best ({cell.text(2)}); "
        f"{label[table.expected]} is {_ordinal(position)} of {len(ranked)} ({exp_cell.text(2)}){overlap}."
    )


def _overlaps(a: Cell, b: Cell) -> bool:
    if a.std is None or b.std is None:
        return True  # one seed: no spread to tell a win from noise
    return abs(a.mean - b.mean) <= a.std + b.std


def _seeds(n: int) -> str:
    return "seed 0" if n == 1 else f"seeds 0-{n - 1}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def render(args: argparse.Namespace, specs: list[RunSpec], work_dir: Path, wall: float, fvd: bool) -> str:
    """The markdown between the markers, from the result files of ``specs``."""
    from g3an import machine

    records: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        path = spec.result_path(work_dir)
        if not path.is_file():
            continue
        rec = json.loads(path.read_text())
        if rec["status"] == "ok":
            records.setdefault((spec.dataset, spec.row), []).append(rec)
        else:
            failed.setdefault((spec.dataset, spec.row), []).append(f"seed {rec['seed']}: {rec['status']}")
    all_recs = [r for rs in records.values() for r in rs]
    datasets = list(dict.fromkeys(s.dataset for s in specs))
    rows = [ROWS_BY_KEY[k] for k in dict.fromkeys(s.row for s in specs)]
    n = args.eval_n
    run_seconds = sum(r["seconds"]["train"] + r["seconds"]["eval"] for r in all_recs)
    cpu_seconds = sum(r["seconds"].get("train_cpu", 0.0) + r["seconds"].get("eval_cpu", 0.0) for r in all_recs)
    train_s = [r["seconds"]["train"] for r in all_recs]
    versions = ", ".join(sorted({r["package_version"] for r in all_recs})) or "?"
    commits = sorted({(r["git"]["commit"] or "unknown")[:12] + (" (with uncommitted changes)" if r["git"]["dirty"]
                      else "") for r in all_recs})  # fmt: skip
    commit = ", ".join(commits) or "?"
    lines = [
        "## The paper's tables on the embedded datasets",
        "",
        "Written by `benchmarks/paper_tables.py` from its own runs; every number below comes from one "
        "invocation's result files (one JSON per run in the work directory). All rows train with the library's "
        "one training loop, the same budget and the same seeds, at 32x32 on synth-actions and synth-faces; "
        "each run's EMA generator is then scored with the embedded evaluators (docs/metrics.md section 12). "
        "These are the project's own yardstick, never comparable with the paper's numbers. **At a budget this "
        "small the numbers mostly measure early training**: which model learns fastest in its first steps, not "
        "which model is best when trained to convergence as in the paper.",
        "",
        f"- command: `{command_line(args)}`",
        f"- budget: {args.steps} steps of batch {args.batch_size} ({args.steps * args.batch_size} videos) per run, "
        f"width `--ch {args.ch}` (each model's default widths scaled by {args.ch}/64), 32x32, 16 frames, "
        f"{_seeds(args.seeds)}; time steps: "
        + (
            f"{args.time_steps} for every row"
            if args.time_steps
            else "each model's recipe (G3AN 1-4, VGAN and TGAN 1, MoCoGAN 2)"
        )
        + "; optimisers and losses: each model's own (docs/baselines.md); EMA half-life "
        + (
            f"{args.ema_half_life:g} videos"
            if args.ema_half_life is not None
            else f"{max(1.0, args.steps * args.batch_size / 10):g} videos (a tenth of the training videos)"
        )
        + (
            f", its BatchNorm statistics recomputed from {args.ema_bn_videos} of its videos (`ema_bn_videos`)"
            if args.ema_bn_videos
            else ", with the trained generator's BatchNorm statistics (`ema_bn_videos=0`)"
        )
        + f"; precision {args.precision}.",
        f"- evaluation: {n} generated videos per metric (`fid{n}_embedded_*`, `is{n}_embedded_*`: FID against "
        f"every training video, IS with 1 split), evaluation seed {args.eval_seed}; disentanglement measures at "
        f"their default counts divided by {args.disentangle_scale} (`--disentangle-scale`).",
        "- "
        + (
            "FVD: `fvd2048_16f` with the installed I3D weights, counts as above."
            if fvd
            else "FVD: I3D weights not installed (`g3an weights install i3d`), so there is no FVD column."
        ),
        f"- machine: {machine.describe()}, Python {platform.python_version()}; {args.jobs} parallel job(s) of "
        f"{args.threads} thread(s).",
        f"- time: {run_seconds / 60:.1f} min of run time in total, {cpu_seconds / 60:.1f} CPU min (train + eval "
        f"over {len(all_recs)} runs; "
        + (f"training {min(train_s):.0f}-{max(train_s):.0f} s per run" if train_s else "no runs")
        + f"); this invocation's wall time {wall / 60:.1f} min (runs finished by earlier invocations are reused).",
        f"- g3an {versions}, commit {commit}. Values are mean ± sample std (n - 1) over the seeds; `n` is the "
        "number of seeds that finished.",
        "",
    ]
    fid_label, is_label = f"fid{n}_embedded (lower is better)", f"is{n}_embedded (higher is better)"
    for table in TABLES:
        trows = [r for r in rows if table.number in r.labels]
        if not trows:
            continue
        lines += [f"### Table {table.number}: {table.title}", ""]
        if table.number == 5:
            lines += [LEVEL_NOTE, ""]
        lines += [f"Reproduce this table alone: `{command_line(args, [r.key for r in trows])}`", ""]
        for kind in datasets:
            head = ["row", "n", fid_label, is_label] + (["fvd2048_16f (lower is better)"] if fvd else [])
            lines += [f"**{DATASET_LABELS[kind]}**", "", "| " + " | ".join(head) + " |",
                      "|" + " --- |" * len(head)]  # fmt: skip
            fid_cells, is_cells = {}, {}
            for r in trows:
                recs = records.get((kind, r.key), [])
                fid_cells[r.key] = metric_values(recs, ("metrics", "fid", "value"))
                is_cells[r.key] = metric_values(recs, ("metrics", "is", "value"))
                cols = [r.labels[table.number], str(len(recs)), fid_cells[r.key].text(2), is_cells[r.key].text(2)]
                if fvd:
                    cols.append(metric_values(recs, ("metrics", "fvd", "value")).text(2))
                notes = failed.get((kind, r.key))
                if notes:
                    cols[0] += f" ({'; '.join(notes)})"
                lines.append("| " + " | ".join(cols) + " |")
            lines += ["", f"Paper: {table.claim}. Here:", ""]
            lines.append("- " + _ordering(table, kind, trows, fid_cells, "FID", lower_is_better=True))
            lines.append("- " + _ordering(table, kind, trows, is_cells, "IS", lower_is_better=False))
            lines.append("")
    lines += [
        "### Disentanglement measures (every row)",
        "",
        "docs/metrics.md section 12.3, with the dataset's embedded evaluator. A: appearance agreement when only "
        "z_m changes (higher is better); C: class (motion) agreement when only z_a changes (higher is better); "
        "A': appearance agreement when only z_a changes (lower is better: z_a must change the subject); "
        "T: frame-to-frame appearance consistency (higher is better). Conditional accuracy does not apply to "
        "any row: all are unconditional, as in the paper's tables. VGAN has one latent z and no separate "
        "appearance and motion codes, so A, C and A' do not apply to it (n/a). On synth-actions the "
        "evaluator's skin and hair heads are at chance (docs/metrics.md 12.2), so A and A' rest on "
        "background and clothes there.",
        "",
    ]
    paths = {"A": ("disentangle", "appearance_agreement_under_motion", "value"),
             "C": ("disentangle", "class_agreement_under_appearance", "value"),
             "A'": ("disentangle", "class_agreement_under_appearance", "details", "appearance_modal"),
             "T": ("disentangle", "temporal_appearance_consistency", "value")}  # fmt: skip
    for kind in datasets:
        lines += [f"**{DATASET_LABELS[kind]}**", "", "| row | n | A | C | A' | T |", "| --- | --- | --- | --- | --- "
                  "| --- |"]  # fmt: skip
        for r in rows:
            recs = records.get((kind, r.key), [])
            cols = [r.key, str(len(recs))]
            for key, path in paths.items():
                na = recs and all(rec["disentangle"][path[1]]["value"] is None for rec in recs)
                cols.append("n/a" if na and key != "T" else metric_values(recs, path).text(3))
            lines.append("| " + " | ".join(cols) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------------
# Command line.


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    g = p.add_argument_group("budget (the same for every row)")
    g.add_argument("--steps", type=int, default=50, help="training steps per run (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=8, help="videos per step (default: %(default)s)")
    g.add_argument("--ch", type=int, default=8, help="width: every model's default widths times CH/64; a multiple "
                   "of 4 (F-SA needs channels divisible by 8) (default: %(default)s)")  # fmt: skip
    g.add_argument("--seeds", type=int, default=2, help="seeds 0..SEEDS-1 per row and dataset (default: %(default)s)")
    g.add_argument("--ema-half-life", type=float, default=None, metavar="VIDEOS",
                   help="generator EMA half-life in videos; 0: none, evaluate the raw generator "
                   "(default: a tenth of the training videos)")  # fmt: skip
    g.add_argument("--ema-bn-videos", type=int, default=256, metavar="VIDEOS",
                   help="TrainConfig.ema_bn_videos: videos from which the EMA generator's BatchNorm statistics are "
                   "recomputed; 0: keep the trained generator's, as every run before 2026-12-08 "
                   "(default: %(default)s)")  # fmt: skip
    g.add_argument(
        "--time-steps",
        default=None,
        metavar="LIST",
        help="frame steps of real clips for every row, e.g. 1 or 1,2,3,4 (default: each model's recipe)",
    )
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="training precision of every run: bf16 (autocast) pays on CPUs with AMX or AVX512-BF16 "
                   "and on GPUs (default: %(default)s)")  # fmt: skip
    g.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints of a run, so an "
                   "interrupted run resumes (default: %(default)s)")  # fmt: skip
    s = p.add_argument_group("what")
    s.add_argument("--datasets", default="actions,faces", help="comma-separated: actions, faces (default: %(default)s)")
    s.add_argument("--rows", default=None, help="comma-separated row keys (default: all; see --list-rows)")
    s.add_argument("--list-rows", action="store_true", help="print the rows and the tables they fill, and exit")
    e = p.add_argument_group("evaluation")
    e.add_argument(
        "--eval-n",
        type=int,
        default=256,
        help="generated videos per metric; the protocol names carry it (default: %(default)s)",
    )
    e.add_argument("--disentangle-scale", type=int, default=8, help="divide the disentanglement measures' default "
                   "counts (64 groups of 8 videos, 128 videos) by this (default: %(default)s)")  # fmt: skip
    e.add_argument("--eval-seed", type=int, default=0, help="seed of the evaluation latents and real clips, the "
                   "same for every run (default: %(default)s)")  # fmt: skip
    e.add_argument("--eval-batch", type=int, default=32, help="videos per forward when evaluating (default: "
                   "%(default)s)")  # fmt: skip
    r = p.add_argument_group("running")
    r.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default: %(default)s)")
    r.add_argument("--threads", type=int, default=1, help="torch threads per job (default: %(default)s)")
    r.add_argument("--data-dir", default="data", help="where synth-actions-32 / synth-faces-32 are, drawn there "
                   "when missing (default: %(default)s)")  # fmt: skip
    r.add_argument(
        "--videos",
        type=int,
        default=DATASET_VIDEOS,
        help="videos of a dataset drawn because it is missing (default: %(default)s)",
    )
    r.add_argument("--work-dir", default="runs/paper-tables", help="run directories and one JSON per run; a rerun "
                   "skips finished runs (default: %(default)s)")  # fmt: skip
    r.add_argument("--out", default=str(Path("docs") / "results.md"),
                   help="markdown file; only the part between the paper-tables markers is written "
                   "(default: %(default)s)")  # fmt: skip
    r.add_argument("--no-train", action="store_true", help="only rewrite the markdown from the finished runs")
    r.add_argument("--estimate", action="store_true", help="measure each selected row's step and sampling time and "
                   "print how long the run would take; trains nothing")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the experiment and write the markdown; returns ``{"trained", "skipped", "specs", "markdown"}``."""
    args = build_parser().parse_args(argv)
    if args.list_rows:
        for row in ROWS:
            tables = ", ".join(f"Table {t}: {label}" for t, label in row.labels.items())
            print(f"{row.key:20s} {row.model:8s} {json.dumps(row.options):60s} {tables}")
        return {"trained": [], "skipped": [], "specs": [], "markdown": ""}
    for name in (
        "steps",
        "batch_size",
        "ch",
        "seeds",
        "eval_n",
        "jobs",
        "threads",
        "eval_batch",
        "videos",
        "disentangle_scale",
    ):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    if args.eval_n < 2:
        raise SystemExit("--eval-n must be at least 2")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in datasets if d not in DATASET_LABELS]
    if bad or not datasets:
        raise SystemExit(f"--datasets: choose from {', '.join(DATASET_LABELS)}, got {args.datasets!r}")
    rows = selected_rows(args.rows)
    if args.estimate:
        estimate(args, rows, datasets)
        return {"trained": [], "skipped": [], "specs": [], "markdown": ""}
    from g3an.report import replace_section

    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))  # spinning BLAS threads slow a shared CPU
    t0 = time.perf_counter()
    work_dir, data_dir = Path(args.work_dir), Path(args.data_dir)
    data_paths = {k: ensure_dataset(data_dir, k, args.videos, args.jobs) for k in datasets}
    specs = plan(args, rows, datasets, data_paths)
    trained, skipped = ([], [s.run_id for s in specs]) if args.no_train else run_all(specs, work_dir, args.jobs,
                                                                                      args.threads)  # fmt: skip
    body = render(args, specs, work_dir, time.perf_counter() - t0, specs[0].eval["fvd"] if specs else False)
    replace_section(args.out, SECTION, body, new_file="# Results\n\n")
    print(f"wrote {args.out}", flush=True)
    return {"trained": trained, "skipped": skipped, "specs": specs, "markdown": body}


if __name__ == "__main__":
    main()
