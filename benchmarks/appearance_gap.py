"""Diagnostic: does a generator keep the subject's colours and textures when only the motion changes?

For a checkpoint (a shipped model's name, an export, a training checkpoint or a run directory) this draws
pairs of generated videos that share the appearance code and differ in the motion code (and, for a
conditional model, in the class), and pairs of real clips of the same subject in two different videos of
the dataset (another action, as the dataset's subjects have one background and one set of clothes). For
each pair it computes the appearance gap of ``g3an.train.objectives.pair_gaps`` (time-averaged colour
and texture energy on a 4x4 grid, mean squared difference) and the colour shift of
``g3an.train.objectives.pair_colour_shifts`` (the share of the colour histogram that differs, wherever the
colours are: it sees a shirt of another colour that is too small to move the grid), and prints the
quantiles of both kinds of pair, and the share of pairs above a threshold. Real pairs show how much the
same subject's coarse look varies with the action; generated pairs far above that are a motion code
changing the subject (a green or brick background, a shirt of another colour).

The embedded evaluator's appearance heads (docs/metrics.md 12.3) see the background's kind and the clothes'
colours but not its texture; this sees both, at the price of knowing nothing about which pixels are which.

    python benchmarks/appearance_gap.py synth-actions --data runs/shipped/data/synth-actions-32
    python benchmarks/appearance_gap.py runs/x/checkpoints/step-00003000.pt --data DIR --pairs 256
    python benchmarks/appearance_gap.py synth-actions --data DIR --heads actions   # and mode dropping

``--heads actions`` (or ``faces``) adds how often the embedded evaluator's appearance heads name each
value (each background, shirt colour, ...) on real clips and on generated videos: a generator that keeps
its subjects under motion by no longer making some of them (mode dropping) shows it there. It also prints
each video's frame-to-frame change (mean absolute difference of consecutive frames on the -1..1 scale) for
real clips at the slowest and fastest time steps of training (1 and 4) and for generated videos: a
generator that keeps its subjects by no longer moving them shows it there.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch


def gaps_of_pairs(videos: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Appearance gap and colour shift of each pair ``(2i, 2i + 1)`` of ``(2P, C, T, H, W)`` videos in [-1, 1]."""
    from g3an.train.objectives import pair_colour_shifts, pair_gaps

    first = torch.arange(0, len(videos), 2)
    return pair_gaps(videos, first).numpy(), pair_colour_shifts(videos, first).numpy()


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


def fake_videos(G: torch.nn.Module, n: int, seed: int, paired: bool = True) -> torch.Tensor:
    """``n`` generated videos; with ``paired``, videos ``2i`` and ``2i + 1`` share the appearance code."""
    from g3an.models.base import sample_labels
    from g3an.train.objectives import share_in_pairs

    gen = torch.Generator().manual_seed(seed)
    latents = G.sample_latents(n, generator=gen)
    if paired:
        latents[G.appearance_latent] = share_in_pairs(latents[G.appearance_latent])
    y = sample_labels(G.num_classes, n, gen)
    out = []
    with torch.no_grad():
        for i in range(0, n, 32):
            part = {k: v[i : i + 32] for k, v in latents.items()}
            out.append(G(**part, y=None if y is None else y[i : i + 32]).float())
    return torch.cat(out)


def real_clips(data: str, n: int, num_frames: int, resolution: int, seed: int, step: int = 1) -> torch.Tensor:
    """``n`` clips of distinct videos of the dataset, drawn at random, every ``step``-th frame."""
    from g3an.data.loader import ClipDataset

    ds = ClipDataset(data, num_frames=num_frames, steps=(step,), size=resolution, seed=seed)
    picks = np.random.default_rng(seed).choice(len(ds.indices), size=min(n, len(ds.indices)), replace=False)
    return torch.stack([ds[(0, int(k))]["video"] for k in picks])


def head_coverage(evaluator_name: str, real: torch.Tensor, fake: torch.Tensor) -> list[str]:
    """Lines comparing how often the evaluator's appearance heads name each value, real against generated.

    A generator that drops a background or a shirt colour (mode dropping) shows it here: a value with a
    real share of several percent and a generated share near 0. ``tv`` is the total variation distance of
    the two shares (0 the same, 1 disjoint)."""
    from g3an.metrics.embedded import factor_values, load_evaluator

    evaluator = load_evaluator(evaluator_name)
    values = factor_values(evaluator_name)
    outs = {"real": evaluator.predict(real), "generated": evaluator.predict(fake)}
    lines = [f"appearance heads of the embedded {evaluator_name} evaluator, share of each value "
             f"({len(real)} real clips, {len(fake)} generated videos with independent codes):"]  # fmt: skip
    for head, names in values.items():
        shares = {k: np.bincount(o.factor_logits[head].argmax(1).numpy(), minlength=len(names)) / len(o.class_logits)
                  for k, o in outs.items()}  # fmt: skip
        tv = np.abs(shares["real"] - shares["generated"]).sum() / 2
        missing = [n for n, r, g in zip(names, shares["real"], shares["generated"]) if r >= 0.05 and g < 0.01]
        dropped = ", ".join(missing) or "-"
        lines.append(f"  {head}: tv {tv:.2f}; never generated (real >= 5%, generated < 1%): {dropped}")
        for k, share in shares.items():
            lines.append(f"    {k:9s} " + " ".join(f"{n} {v:.2f}" for n, v in zip(names, share)))
    return lines


def frame_change(videos: torch.Tensor) -> np.ndarray:
    """Each video's mean absolute difference of consecutive frames ((B, C, T, H, W), -1..1): how much it moves."""
    videos = videos.float()
    return (videos[:, :, 1:] - videos[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4)).numpy()


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
    parser.add_argument("--colour-threshold", type=float, default=0.05,
                        help="report the share of pairs whose colour shift is above this")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ema", action="store_true", help="the raw generator instead of its EMA")
    parser.add_argument(
        "--heads",
        choices=("actions", "faces"),
        help="also compare the embedded evaluator's appearance heads on real and generated videos "
        "(the evaluator of the dataset --data was made by; another is refused)",
    )
    parser.add_argument("--heads-n", type=int, default=512, help="videos of each kind for --heads")  # fmt: skip
    args = parser.parse_args()

    from g3an.data.format import open_dataset
    from g3an.sample import load_for_sampling

    if args.heads:  # the heads name the values of one generator's factors: refuse another dataset's evaluator
        made_by = str(open_dataset(args.data).attributes.get("generator", ""))
        if made_by != f"synth-{args.heads}":
            parser.error(
                f"--heads {args.heads}: {args.data} was not made by g3an data synth {args.heads} "
                f"(its generator: {made_by or 'none recorded'})"
            )

    G = load_for_sampling(args.checkpoint, ema=not args.no_ema).generator
    G.eval()
    if G.appearance_latent is None:
        raise SystemExit(f"{args.checkpoint}: the generator has no appearance code to share")
    fake = fake_videos(G, 2 * args.pairs, args.seed)
    real = real_pairs(args.data, args.pairs, fake.shape[2], fake.shape[-1], args.seed)
    which = "raw" if args.no_ema else "EMA"
    measured = {"real, same subject, two videos:  ": gaps_of_pairs(real),
                "generated, same appearance code: ": gaps_of_pairs(fake)}  # fmt: skip
    print(f"{args.checkpoint} ({which} generator), {args.pairs} pairs of each kind, appearance gap per pair:")
    for name, (gaps, _) in measured.items():
        print(name, summary(gaps, args.threshold))
    print("colour shift per pair (total variation of the colour histograms, 0..1):")
    for name, (_, shifts) in measured.items():
        print(name, summary(shifts, args.colour_threshold))
    if args.heads:
        many = fake_videos(G, args.heads_n, args.seed + 1, paired=False)
        clips = real_clips(args.data, args.heads_n, many.shape[2], many.shape[-1], args.seed)
        print("\n".join(head_coverage(args.heads, clips, many)))
        fast = real_clips(args.data, args.heads_n, many.shape[2], many.shape[-1], args.seed, step=4)
        print("frame-to-frame change per video (mean |frame t+1 - frame t|, -1..1 scale):")
        for name, videos in (
            ("real, time step 1: ", clips),
            ("real, time step 4: ", fast),
            ("generated:         ", many),
        ):
            print(name, summary(frame_change(videos), 0.01).replace("above", "share above"))


if __name__ == "__main__":
    main()
