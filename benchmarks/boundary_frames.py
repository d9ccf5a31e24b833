"""Diagnostic: are a G3AN's first and last frames as clean as the others, and does D_V look at them?

For a checkpoint (a shipped model's name, an export with its discriminator, a training checkpoint or a
run directory) this prints, frame by frame:

- the high-frequency energy of generated clips (mean absolute difference of neighbouring pixels, on
  [-1, 1] frames) next to real clips of the dataset: a noisy frame stands out above its neighbours;
- how much each frame moves the generator's video loss ``BCE(D_V(fake), 1)`` and image loss (D_I on
  every frame), as the mean absolute gradient per frame over its mean over all frames (1: average).

D_V's temporal convolutions are unpadded, so its gradient falls off towards both ends of the clip;
``d_time_roll`` (docs/training.md) shifts the clips it sees to bring the ends to the middle.

    python benchmarks/boundary_frames.py synth-actions --data runs/shipped/data/synth-actions-32
    python benchmarks/boundary_frames.py runs/x/checkpoints/step-00012000.pt --data DIR --no-ema --n 256
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def high_frequency(video: torch.Tensor) -> np.ndarray:
    """Per-frame mean ``|x[i+1] - x[i]|`` over both image axes of ``(B, C, T, H, W)`` clips in [-1, 1]: ``(T,)``."""
    dx = (video[..., 1:] - video[..., :-1]).abs().mean(dim=(0, 1, 3, 4))
    dy = (video[..., 1:, :] - video[..., :-1, :]).abs().mean(dim=(0, 1, 3, 4))
    return (dx + dy).numpy()


def frame_gradients(D: torch.nn.Module, video: torch.Tensor, y: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """Relative per-frame gradient magnitude of the generator's D_V loss and of its D_I loss on every frame."""
    from g3an.train.objectives import bce

    video = video.detach().requires_grad_(True)
    (g_video,) = torch.autograd.grad(bce(D.video(video, y), 1.0), video)
    b, c, t, h, w = video.shape
    frames = video.transpose(1, 2).reshape(b * t, c, h, w)
    labels = None if y is None else y.repeat_interleave(t)
    (g_image,) = torch.autograd.grad(bce(D.image(frames, labels), 1.0), video)

    def share(g: torch.Tensor) -> np.ndarray:
        per_frame = g.abs().mean(dim=(0, 1, 3, 4))
        return (per_frame / per_frame.mean()).numpy()

    return share(g_video), share(g_image)


def real_clips(data: str, n: int, num_frames: int, resolution: int) -> torch.Tensor:
    from g3an.data.loader import ClipDataset

    ds = ClipDataset(data, num_frames=num_frames, steps=(2,), size=resolution, seed=0)
    picks = np.random.default_rng(0).choice(len(ds), size=min(n, len(ds)), replace=False)
    items = [ds[(0, int(i))] for i in picks]
    return torch.stack([x["video"] for x in items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="shipped model name, export with discriminator, checkpoint or run dir")
    parser.add_argument("--data", help="prepared dataset for the real clips (optional)")
    parser.add_argument("--n", type=int, default=128, help="clips of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ema", action="store_true", help="the raw generator instead of its EMA")
    args = parser.parse_args()

    from g3an import create_discriminator, create_generator
    from g3an.checkpoint import load_init_weights
    from g3an.models.base import sample_labels

    weights = load_init_weights(args.checkpoint)
    cfg = weights["model_config"]
    G = create_generator(weights["model"], **cfg)
    G.load_state_dict(weights["generator"] if args.no_ema or weights["generator_ema"] is None
                      else weights["generator_ema"])  # fmt: skip
    D = create_discriminator(weights["model"], **cfg)
    D.load_state_dict(weights["discriminator"])
    G.eval()
    D.eval()
    gen = torch.Generator().manual_seed(args.seed)
    latents = G.sample_latents(args.n, generator=gen)
    y = sample_labels(G.num_classes, args.n, gen)
    with torch.no_grad():
        fake = G(**latents, y=y).float()
    np.set_printoptions(precision=2, floatmode="fixed", linewidth=200)
    which = "raw" if args.no_ema else "EMA"
    print(f"{weights['source']} ({which} generator), {args.n} clips, frames 0..{fake.shape[2] - 1}")
    print("high-frequency energy, generated:", high_frequency(fake))
    if args.data:
        real = real_clips(args.data, args.n, fake.shape[2], fake.shape[-1])
        print("high-frequency energy, real:     ", high_frequency(real))
    g_video, g_image = frame_gradients(D, fake, y)
    print("generator's D_V loss, gradient per frame / mean:", g_video)
    print("generator's D_I loss, gradient per frame / mean:", g_image)


if __name__ == "__main__":
    main()
