"""Train the embedded evaluator of synth-actions or synth-faces, deterministically, and write it as package data.

    python scripts/train_embedded_evaluator.py actions
    python scripts/train_embedded_evaluator.py faces

The script draws its own synthetic dataset in memory (``g3an.data.synthetic.render_video``; byte-identical
on every machine), trains :class:`g3an.metrics.embedded.EmbeddedEvaluator` on the train split (class head
plus one head per categorical appearance factor) and measures every head on the test split, whose
subjects never appear in training. It writes ``src/g3an/assets/evaluators/<name>.safetensors`` and the
manifest ``<name>.json`` (name, version, SHA-256, parameter count, held-out accuracies, training config).

Determinism: fixed seeds for data, initialisation and batches, ``torch.use_deterministic_algorithms``,
and a fixed number of CPU threads (recorded in the manifest). Training takes a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from g3an.data.synthetic import SynthConfig, render_video
from g3an.data.synthetic.common import VideoPlan
from g3an.metrics.embedded import (
    ASSET_DIR,
    CLIP_FRAMES,
    EVALUATOR_VERSION,
    EmbeddedEvaluator,
    evaluator_name,
    factor_index,
    factor_values,
    load_evaluator,
)
from g3an.metrics.protocols import sha256_file


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights.

    Attributes:
        dataset: ``actions`` or ``faces``.
        videos: videos drawn (train and test together).
        frames: frames per drawn video.
        size: frame size in pixels.
        data_seed: seed of the synthetic dataset (a different one from the tests' and the CLI default 0).
        seed: seed of initialisation and batch order.
        epochs: passes over the training videos (one random clip of each per pass).
        batch: clips per step.
        lr: Adam learning rate (cosine-decayed to 0).
        weight_decay: AdamW weight decay.
        short_clip_fraction: share of batches made of 4-frame clips, so the appearance heads also read
            short windows (the temporal consistency measure uses them).
        max_step: clips take every ``s``-th frame, ``s`` uniform in ``1..max_step``.
        threads: CPU threads of torch.
        factor_weight: weight of each appearance head's cross-entropy against the class head's 1;
            ``None``: ``1 / number of heads`` (their mean).
    """

    dataset: str
    videos: int = 1200
    frames: int = 64
    size: int = 64
    data_seed: int = 2026
    seed: int = 0
    epochs: int = 30
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    short_clip_fraction: float = 0.2
    max_step: int = 2
    threads: int = 1
    factor_weight: float | None = None


#: Per-dataset departures from the defaults: synth-actions' small figure needs heavier appearance losses.
DATASET_DEFAULTS: dict[str, dict] = {"actions": {"factor_weight": 0.4, "epochs": 40}, "faces": {}}


def draw(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Videos ``(N, T, H, W, 3)`` uint8, labels ``(N,)``, factor targets name -> ``(N,)``, test mask ``(N,)``."""
    synth = SynthConfig(cfg.dataset, videos=cfg.videos, size=cfg.size, frames=cfg.frames, seed=cfg.data_seed)
    n_classes = len(synth.module.CLASSES)
    test_subjects = set(
        np.random.default_rng(cfg.data_seed).permutation(cfg.videos)[: round(0.2 * cfg.videos)].tolist()
    )
    plans = [VideoPlan(i, i % n_classes, i, "test" if i in test_subjects else "train") for i in range(cfg.videos)]
    videos = np.empty((cfg.videos, cfg.frames, cfg.size, cfg.size, 3), np.uint8)
    targets: dict[str, list[int]] = {k: [] for k in factor_values(cfg.dataset)}
    for p in plans:
        videos[p.index], factors = render_video(synth, p)
        for k, v in factor_index(cfg.dataset, factors).items():
            targets[k].append(v)
    labels = np.array([p.label for p in plans])
    test = np.array([p.split == "test" for p in plans])
    return videos, labels, {k: np.array(v) for k, v in targets.items()}, test


def clips(videos: np.ndarray, idx: np.ndarray, length: int, step: int, rng: np.random.Generator | None) -> torch.Tensor:
    """``(B, 3, length, H, W)`` float clips in [-1, 1]: random starts (``rng``) or centred ones (``None``)."""
    span = (length - 1) * step + 1
    t = videos.shape[1]
    out = []
    for i in idx:
        start = int(rng.integers(0, t - span + 1)) if rng is not None else (t - span) // 2
        out.append(videos[i, start : start + span : step])
    x = torch.from_numpy(np.stack(out)).permute(0, 4, 1, 2, 3)
    return x.float() / 127.5 - 1.0


def loss_fn(model: EmbeddedEvaluator, x: torch.Tensor, y: torch.Tensor, fac: dict[str, torch.Tensor],
            factor_weight: float | None) -> torch.Tensor:  # fmt: skip
    out = model(x)
    weight = 1 / len(out.factor_logits) if factor_weight is None else factor_weight
    loss = F.cross_entropy(out.class_logits, y)
    for k, logits in out.factor_logits.items():
        loss = loss + F.cross_entropy(logits, fac[k]) * weight
    return loss


@torch.no_grad()
def accuracy(model: EmbeddedEvaluator, videos: np.ndarray, idx: np.ndarray, labels: np.ndarray,
             targets: dict[str, np.ndarray], length: int = CLIP_FRAMES) -> dict[str, float]:  # fmt: skip
    """Per-head accuracy on the centred clip of ``length`` consecutive frames of each video in ``idx``."""
    model.eval()
    hits: dict[str, int] = {"class": 0, **dict.fromkeys(targets, 0)}
    for i in range(0, len(idx), 64):
        b = idx[i : i + 64]
        out = model(clips(videos, b, length, 1, None))
        hits["class"] += int((out.class_logits.argmax(-1).numpy() == labels[b]).sum())
        for k in targets:
            hits[k] += int((out.factor_logits[k].argmax(-1).numpy() == targets[k][b]).sum())
    return {k: round(v / len(idx), 4) for k, v in hits.items()}


def train(cfg: TrainConfig, out_dir: Path) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    videos, labels, targets, test = draw(cfg)
    print(f"drew {len(videos)} videos in {time.time() - t0:.0f} s", flush=True)
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    values = factor_values(cfg.dataset)
    model = EmbeddedEvaluator(int(labels.max()) + 1, {k: len(v) for k, v in values.items()})
    steps_per_epoch = len(train_idx) // cfg.batch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    y_all = torch.from_numpy(labels)
    fac_all = {k: torch.from_numpy(v) for k, v in targets.items()}
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(train_idx)
        total = 0.0
        for s in range(steps_per_epoch):
            b = order[s * cfg.batch : (s + 1) * cfg.batch]
            length = 4 if rng.random() < cfg.short_clip_fraction else CLIP_FRAMES
            x = clips(videos, b, length, int(rng.integers(1, cfg.max_step + 1)), rng)
            bt = torch.from_numpy(b)
            loss = loss_fn(model, x, y_all[bt], {k: v[bt] for k, v in fac_all.items()}, cfg.factor_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{cfg.epochs} loss {total / steps_per_epoch:.3f} ({time.time() - t0:.0f} s)",
              flush=True)  # fmt: skip
    model.eval()
    name = evaluator_name(cfg.dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    from g3an.data.synthetic import DATASETS

    held_out = accuracy(model, videos, test_idx, labels, targets)
    manifest = {
        "name": name,
        "version": EVALUATOR_VERSION,
        "file": weights.name,
        "sha256": sha256_file(weights),
        "architecture": "g3an.metrics.embedded.EmbeddedEvaluator",
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "input": {"frames": CLIP_FRAMES, "size": 64, "range": "[-1, 1]", "layout": "(B, 3, T, H, W)"},
        "classes": list(DATASETS[cfg.dataset].CLASSES),
        "factor_heads": {k: [str(x) for x in v] for k, v in values.items()},
        "held_out_accuracy": held_out,
        "held_out_accuracy_4_frames": accuracy(model, videos, test_idx, labels, targets, length=4),
        "train_accuracy": accuracy(model, videos, train_idx, labels, targets),
        "held_out": {
            "videos": len(test_idx),
            "subjects": "test split (20 % of the subjects, never trained on)",
            "clip": "centred 16 consecutive frames",
        },
        "training": {
            **asdict(cfg),
            "train_videos": len(train_idx),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "seconds": round(time.time() - t0),
        },
    }
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    load_evaluator(cfg.dataset, out_dir)  # the manifest and weights check out
    print(json.dumps({"held_out_accuracy": held_out, "seconds": manifest["training"]["seconds"]}), flush=True)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["actions", "faces"])
    parser.add_argument("--out", type=Path, default=ASSET_DIR, help="output directory (default: package assets)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recorded default")
    parser.add_argument("--videos", type=int, default=None, help="override the recorded default")
    args = parser.parse_args()
    cfg = TrainConfig(args.dataset, **DATASET_DEFAULTS[args.dataset])
    over = {k: v for k, v in {"epochs": args.epochs, "videos": args.videos}.items() if v is not None}
    if over:
        cfg = TrainConfig(**{**asdict(cfg), **over})
    train(cfg, args.out)


if __name__ == "__main__":
    main()
