"""Diagnostic: does a generator keep the subject's colours and textures when only the motion changes?

For a checkpoint (a shipped model's name, an export, a training checkpoint or a run directory) this draws
pairs of generated videos that share the appearance code and differ in the motion code (and, for a
conditional model, in the class), and pairs of real clips of the same subject in two different videos of
the dataset (another action, as the dataset's subjects have one background and one set of clothes). For
each pair it computes the appearance gap of ``g3an.train.objectives.pair_gaps`` (time-averaged colour
and texture energy on a 4x4 grid, mean squared difference) and prints the quantiles of both, and the share
of pairs above a threshold. Real pairs show how much the same subject's coarse look varies with the action;
generated pairs far above that are a motion code changing the subject (a green or brick background).

The embedded evaluator's appearance heads (docs/metrics.md 12.3) see the background's kind and the clothes'
colours but not its texture; this sees both, at the price of knowing nothing about which pixels are which.

    python benchmarks/appearance_gap.py synth-actions --data runs/shipped/data/synth-actions-32
    python benchmarks/appearance_gap.py runs/x/checkpoints/step-00003000.pt --data DIR --pairs 256
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch


def gaps_of_pairs(videos: torch.Tensor) -> np.ndarray:
    """Appearance gap of each pair ``(2i, 2i + 1)`` of ``(2P, C, T, H, W)`` videos in [-1, 1]: ``(P,)``."""
    from g3an.train.objectives import pair_gaps

    return pair_gaps(videos, torch.arange(0, len(videos), 2)).numpy()


def real_pairs(data: str, pairs: int, num_frames: int, resolution: int, seed: int) -> torch.Tensor:
    """``2 * pairs`` real clips: pairs of two different videos of one subject (subjects drawn at random)."""
    from g3an.data.loader import ClipDataset

    ds = ClipDataset(data, num_frames=num_frames, steps=(2,), size=resolution, seed=seed)
    by_subject: dict[str, list[int]] = defaultdict(list)
    for k, index in enumerate(ds.indices):
        by_subject[ds.data.videos[int(index)].subject].append(k)
    groups = [v for s, v in sorted(by_subject.items()) if s and len(v) > 1]
    if not groups:
        raise SystemExit(f"{data}: no subject has two videos, so there are no real pairs to compare with")
    rng = np.random.default_rng(seed)
    clips = []
    for g in rng.choice(len(groups), size=pairs):
        a, b = rng.choice(groups[g], size=2, replace=False)
        clips += [ds[(0, int(a))]["video"], ds[(0, int(b))]["video"]]
    return torch.stack(clips)


def fake_pairs(G: torch.nn.Module, pairs: int, seed: int) -> torch.Tensor:
    """``2 * pairs`` generated videos; videos ``2i`` and ``2i + 1`` share the appearance code."""
    from g3an.models.base import sample_labels
    from g3an.train.objectives import share_in_pairs

    gen = torch.Generator().manual_seed(seed)
    latents = G.sample_latents(2 * pairs, generator=gen)
    latents[G.appearance_latent] = share_in_pairs(latents[G.appearance_latent])
    y = sample_labels(G.num_classes, 2 * pairs, gen)
    out = []
    with torch.no_grad():
        for i in range(0, 2 * pairs, 32):
            part = {k: v[i : i + 32] for k, v in latents.items()}
            out.append(G(**part, y=None if y is None else y[i : i + 32]).float())
    return torch.cat(out)


def summary(gaps: np.ndarray, threshold: float) -> str:
    q = np.quantile(gaps, [0.5, 0.75, 0.9, 0.95, 0.99])
    quantiles = " ".join(f"{v:.4f}" for v in q)
    above = (gaps > threshold).mean()
    return f"mean {gaps.mean():.4f}; quantiles 50/75/90/95/99% {quantiles}; above {threshold}: {above:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="shipped model name, export, checkpoint or run dir")
    parser.add_argument("--data", required=True, help="prepared dataset with subjects (the real pairs)")
    parser.add_argument("--pairs", type=int, default=128, help="pairs of each kind")
    parser.add_argument("--threshold", type=float, default=0.01, help="report the share of pairs above this gap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ema", action="store_true", help="the raw generator instead of its EMA")
    args = parser.parse_args()

    from g3an.sample import load_for_sampling

    G = load_for_sampling(args.checkpoint, ema=not args.no_ema).generator
    G.eval()
    if G.appearance_latent is None:
        raise SystemExit(f"{args.checkpoint}: the generator has no appearance code to share")
    fake = fake_pairs(G, args.pairs, args.seed)
    real = real_pairs(args.data, args.pairs, fake.shape[2], fake.shape[-1], args.seed)
    which = "raw" if args.no_ema else "EMA"
    print(f"{args.checkpoint} ({which} generator), {args.pairs} pairs of each kind, appearance gap per pair:")
    print("real, same subject, two videos:  ", summary(gaps_of_pairs(real), args.threshold))
    print("generated, same appearance code: ", summary(gaps_of_pairs(fake), args.threshold))


if __name__ == "__main__":
    main()
