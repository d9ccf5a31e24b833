"""Training objectives: one object per model family, organised as phases the one training loop runs.

An objective builds its optimisers, says which phases a step has (which networks each phase trains and
which optimisers it steps), makes the step's fake videos once (``begin_step``), and yields each phase's
loss, in one term or several (each backpropagated before the next is computed). The loop owns everything
else: autocast, backward, gradient all-reduce, optimiser steps, the non-finite guard, EMA, logging and
checkpoints. Adding a model family is one subclass and one entry in :data:`OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from g3an.models.base import VideoDiscriminator, VideoGenerator
from g3an.train.config import OptimConfig, TrainConfig

__all__ = ["OBJECTIVES", "G3ANObjective", "Loss", "Objective", "Phase", "StepContext", "register_objective"]


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of a step.

    Attributes:
        name: label used in logs (``D``, ``G``, ...).
        trains: ``generator`` or ``discriminator``: the network whose parameters get gradients.
        optimizers: names of the optimisers stepped after this phase's backward.
    """

    name: str
    trains: str
    optimizers: tuple[str, ...]


@dataclass
class StepContext:
    """What a step's phases share: the real batch, the random draws of the step, the fakes.

    Random draws are made for the global batch from a generator seeded by (run seed, step) and sliced for
    this process, so a step is the same with 1 or N processes and after a resume.
    """

    real: torch.Tensor  # (b, 3, T, H, W), this process's part of the global batch
    labels: torch.Tensor | None  # (b,) class labels of the real clips (None: unlabelled or unconditional)
    rng: torch.Generator  # CPU generator, identical on every process
    rank: int
    world: int
    step: int
    device: torch.device
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.real.shape[0]

    def local(self, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """Draw a global-batch tensor with ``draw(global_batch)`` and keep this process's rows."""
        b = self.batch
        return draw(b * self.world)[self.rank * b : (self.rank + 1) * b].to(self.device)

    def randint(self, high: int) -> torch.Tensor:
        """``(b,)`` integers uniform in ``[0, high)``."""
        return self.local(lambda n: torch.randint(high, (n,), generator=self.rng))

    def latents(self, generator: VideoGenerator, num_frames: int | None = None,
                pair: str | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """The generator's latent codes for this process's part of the batch.

        With ``pair`` (a latent's name), rows ``2i`` and ``2i + 1`` of the global batch share that code.
        """
        full = generator.sample_latents(self.batch * self.world, num_frames, generator=self.rng, device="cpu")
        if pair is not None:
            full[pair] = share_in_pairs(full[pair])
        return {k: v[self.rank * self.batch : (self.rank + 1) * self.batch].to(self.device) for k, v in full.items()}

    def local_pairs(self) -> torch.Tensor:
        """Local rows ``i`` that start a pair of the global batch (an even global row) whose ``i + 1`` is local too."""
        first = self.rank * self.batch
        rows = torch.arange(self.batch)
        return rows[((first + rows) % 2 == 0) & (rows + 1 < self.batch)]


class Objective:
    """Base class: subclasses set :attr:`phases` and implement :meth:`build_optimizers`, :meth:`loss`."""

    phases: tuple[Phase, ...] = ()
    #: training-data settings of the original recipe, used when the run does not set them
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 16, "time_steps": (1, 2, 3, 4)}

    #: whether the ``d_time_roll`` and ``appearance_consistency`` / ``colour_consistency`` options are supported
    #: (:class:`~g3an.train.config.TrainConfig` checks)
    supports_time_roll: ClassVar[bool] = False
    supports_appearance_consistency: ClassVar[bool] = False

    def __init__(self, generator: VideoGenerator, discriminator: VideoDiscriminator, time_roll: float = 0.0,
                 appearance_consistency: float = 0.0,
                 appearance_margin: float = TrainConfig.appearance_margin, colour_consistency: float = 0.0,
                 colour_margin: float = TrainConfig.colour_margin) -> None:  # fmt: skip
        self.G, self.D = generator, discriminator  # TrainConfig refuses the options where they are not supported
        self.time_roll = time_roll
        self.appearance_consistency, self.appearance_margin = appearance_consistency, appearance_margin
        self.colour_consistency, self.colour_margin = colour_consistency, colour_margin

    def build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def begin_step(self, ctx: StepContext) -> None:
        """Draw the step's latents and generate its fakes (once per step)."""

    def loss(self, phase: Phase, ctx: StepContext) -> Iterator[Loss]:
        """Yield ``phase``'s scalar loss and the scalars to log, as one term or as several whose sum is the
        loss. The loop backpropagates each term before asking for the next, so two terms' graphs are never
        held at once (G3AN's discriminators see the real clips, then the fakes); the phase's gradient is
        their sum, and its optimisers step after the last."""
        raise NotImplementedError

    def after_phase(self, phase: Phase, ctx: StepContext) -> None:
        """Called after the phase's optimiser step (e.g. weight clipping)."""

    def paired_latent(self) -> str | None:
        """The latent that rows ``2i`` and ``2i + 1`` of a step's fakes share (``None``: no pairs)."""
        return None


#: one term of a phase's loss: the scalar and the scalars to log
Loss = tuple[torch.Tensor, dict[str, torch.Tensor]]

OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    def deco(cls: type[Objective]) -> type[Objective]:
        OBJECTIVES[name] = cls
        return cls

    return deco


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy with logits against a constant label, mean over the batch (float32)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def real_fake_stats(prefix: str, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean D probabilities of real and fake inputs (logits), for the log."""
    return {f"{prefix}/real": torch.sigmoid(real.detach().float()).mean(),
            f"{prefix}/fake": torch.sigmoid(fake.detach().float()).mean()}  # fmt: skip


def roll_time(video: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Video ``b`` circularly shifted in time so that its frame ``shift[b]`` comes first: ``(B, C, T, H, W)``."""
    b, c, t, h, w = video.shape
    assert shift.shape == (b,), f"shift must have shape ({b},), got {tuple(shift.shape)}"
    index = (torch.arange(t, device=video.device) + shift.to(video.device).view(b, 1)) % t
    return video.gather(2, index.view(b, 1, t, 1, 1).expand(b, c, t, h, w))


def appearance_descriptor(videos: torch.Tensor, grid: int = 4) -> torch.Tensor:
    """The coarse look of ``(B, C, T, H, W)`` videos: time-averaged colour and texture on a ``grid x grid`` map.

    Colour: the frames averaged over time, then over each cell. Texture: the root of the mean energy of each
    frame's detail (the frame minus its 2x2-block average), over time and the cell. ``(B, 2C, grid, grid)``.
    A moving figure changes little of either; a change of background, its texture or the clothes changes
    all of it.
    """
    x = videos.float()
    b, c, t, h, w = x.shape
    colour = F.adaptive_avg_pool2d(x.mean(2), grid)
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    detail = frames - F.interpolate(F.avg_pool2d(frames, 2), size=(h, w), mode="nearest")
    energy = detail.pow(2).reshape(b, t, c, h, w).mean(1)
    return torch.cat([colour, F.adaptive_avg_pool2d(energy, grid).add(1e-4).sqrt()], 1)


def colour_histogram(videos: torch.Tensor, bins: int = 6) -> torch.Tensor:
    """The colours of ``(B, 3, T, H, W)`` videos in ``[-1, 1]``, wherever they are: a soft histogram, ``(B, bins**3)``.

    Every pixel of every frame spreads its weight over the 8 bins around its colour (trilinear weights, so
    the histogram is differentiable in the pixels); each row sums to 1. It does not see where a colour is, so
    a figure moving across a fixed background leaves it almost unchanged, while a shirt, skin or background
    of another colour moves mass between bins.
    """
    b, c = videos.shape[:2]
    if c != 3:
        raise ValueError(f"colour_histogram: expected RGB videos (B, 3, T, H, W), got {tuple(videos.shape)}")
    x = (videos.float().clamp(-1, 1) + 1) * ((bins - 1) / 2)
    x = x.flatten(2)  # (B, 3, P)
    low = x.floor().clamp(max=bins - 2)
    frac = x - low
    hist = x.new_zeros(b, bins**3)
    for corner in range(8):
        up = [(corner >> k) & 1 for k in range(3)]
        weight = torch.ones_like(frac[:, 0])
        index = torch.zeros_like(low[:, 0])
        for k in range(3):
            weight = weight * (frac[:, k] if up[k] else 1 - frac[:, k])
            index = index * bins + low[:, k] + up[k]
        hist = hist.scatter_add(1, index.long(), weight)
    return hist / x.shape[-1]


def pair_colour_shifts(videos: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Colour shift of each pair ``(first[k], first[k] + 1)``: the total variation distance of their
    :func:`colour_histogram` (the share of the pixels' colour mass that differs, 0..1), ``(len(first),)``."""
    hist = colour_histogram(videos)
    return (hist[first] - hist[first + 1]).abs().sum(1) / 2


def share_in_pairs(codes: torch.Tensor) -> torch.Tensor:
    """``codes`` with row ``2i + 1`` replaced by row ``2i``: pairs of rows that share the code."""
    return codes[torch.arange(len(codes), device=codes.device) // 2 * 2]


def pair_gaps(videos: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Gap of each pair ``(first[k], first[k] + 1)``: mean squared difference of their
    :func:`appearance_descriptor` maps, ``(len(first),)``."""
    looks = appearance_descriptor(videos)
    return (looks[first] - looks[first + 1]).pow(2).flatten(1).mean(1)


PairMeasure = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def appearance_gap(videos: torch.Tensor, first: torch.Tensor, margin: float = 0.0,
                   measure: PairMeasure = pair_gaps) -> torch.Tensor:  # fmt: skip
    """Mean over the pairs ``(first[k], first[k] + 1)`` of ``max(0, measure - margin)`` (``measure`` is
    :func:`pair_gaps` or :func:`pair_colour_shifts`; 0 without pairs)."""
    if len(first) == 0:
        return videos.float().sum() * 0.0
    return (measure(videos, first) - margin).clamp(min=0).mean()


def adam(params: Any, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


@register_objective("g3an")
class G3ANObjective(Objective):
    """G3AN's objective as the paper and reference ``trainer.py`` (spec g3an.md section 3.3).

    Per step: one generator forward; D_V and D_I trained with BCE on real (1) and detached fake (0)
    (losses summed, not halved); then G trained with the non-saturating loss
    ``BCE(D_V(fake), 1) + BCE(D_I(fake frame), 1)`` on the same fakes, seen by the updated
    discriminators. D_I sees one uniformly drawn frame per video, drawn separately for real and fake
    videos (the reference draws one index per batch; per video is the issue's and the paper's reading).
    Adam lr 2e-4, betas (0.5, 0.999) for G, D_V and D_I.

    With ``time_roll`` p > 0 (``d_time_roll``, not in the paper), every clip the discriminators see, real
    or fake, is with probability p circularly shifted in time by a uniform offset in ``1..T-1``: D_V's
    unpadded temporal convolutions weigh the first and last frames about twenty times less than the
    middle ones, and the shift brings them to the middle (docs/training.md).

    With ``appearance_consistency`` w > 0 (not in the paper), the fakes come in pairs that share z_a and
    differ in z_m and class, and the generator's loss gains ``w *`` :func:`appearance_gap` of the pairs
    (beyond ``appearance_margin``): the coarse colours and textures must not depend on the motion
    (docs/training.md). ``colour_consistency`` does the same with the pairs' :func:`pair_colour_shifts`
    (beyond ``colour_margin``): the colours present anywhere in the video, clothes and skin included.
    """

    supports_time_roll = True
    supports_appearance_consistency = True
    phases = (Phase("D", "discriminator", ("D_V", "D_I")), Phase("G", "generator", ("G",)))

    def build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        betas = optim.betas or (0.5, 0.999)
        wd = optim.weight_decay or 0.0
        lr_g = optim.lr_g if optim.lr_g is not None else 2e-4
        lr_d = optim.lr_d if optim.lr_d is not None else 2e-4
        D: Any = self.D
        return {
            "G": adam(self.G.parameters(), lr_g, betas, wd),
            "D_V": adam(D.video.parameters(), lr_d, betas, wd),
            "D_I": adam(D.image.parameters(), lr_d, betas, wd),
        }

    def paired_latent(self) -> str | None:
        return self.G.appearance_latent if self.appearance_consistency or self.colour_consistency else None

    def begin_step(self, ctx: StepContext) -> None:
        G = self.G
        num_frames = ctx.real.shape[2]
        latents = ctx.latents(G, num_frames, pair=self.paired_latent())
        y_fake = ctx.local(lambda n: torch.randint(G.num_classes, (n,), generator=ctx.rng)) if G.num_classes else None
        ctx.cache["y_fake"] = y_fake
        ctx.cache["y_real"] = ctx.labels if G.num_classes else None
        ctx.cache["real_frame"] = ctx.randint(num_frames)
        ctx.cache["fake_frame"] = ctx.randint(num_frames)
        ctx.cache["fake"] = G(**latents, y=y_fake)
        if self.time_roll:
            for name in ("real", "fake"):
                rolled = ctx.local(lambda n: torch.rand(n, generator=ctx.rng)) < self.time_roll
                offset = ctx.local(lambda n: torch.randint(1, num_frames, (n,), generator=ctx.rng))
                ctx.cache[f"{name}_shift"] = torch.where(rolled, offset, 0)

    def _shown(self, video: torch.Tensor, ctx: StepContext, name: str) -> torch.Tensor:
        """The clip as the discriminators see it (shifted in time under ``time_roll``)."""
        shift = ctx.cache.get(f"{name}_shift")
        return video if shift is None or not shift.any() else roll_time(video, shift)

    def loss(self, phase: Phase, ctx: StepContext) -> Iterator[Loss]:
        c = ctx.cache
        if phase.name == "D":
            # two terms, the real clips' backpropagated before the fakes' are seen: D's graphs of the two never
            # coexist with G's (the step's memory peak); D is called on each as before, and the gradient is the sum
            real = self.D(self._shown(ctx.real, ctx, "real"), c["y_real"], c["real_frame"])
            real_v, real_i = bce(real["video"], 1.0), bce(real["image"], 1.0)
            yield real_v + real_i, {}
            fake = self.D(self._shown(c["fake"].detach(), ctx, "fake"), c["y_fake"], c["fake_frame"])
            fake_v, fake_i = bce(fake["video"], 0.0), bce(fake["image"], 0.0)
            stats = {"loss/D_V": real_v.detach() + fake_v, "loss/D_I": real_i.detach() + fake_i}
            for head in ("video", "image"):
                stats.update(real_fake_stats(f"D_{head}", real[head], fake[head]))
            yield fake_v + fake_i, stats
            return
        out = self.D(self._shown(c["fake"], ctx, "fake"), c["y_fake"], c["fake_frame"])
        loss_v, loss_i = bce(out["video"], 1.0), bce(out["image"], 1.0)
        stats = {"loss/G": loss_v + loss_i, "loss/G_video": loss_v, "loss/G_image": loss_i}
        loss = loss_v + loss_i
        if self.appearance_consistency or self.colour_consistency:
            terms = (("appearance_gap", self.appearance_consistency, self.appearance_margin, pair_gaps),
                     ("colour_shift", self.colour_consistency, self.colour_margin, pair_colour_shifts))  # fmt: skip
            first = ctx.local_pairs().to(c["fake"].device)
            for name, weight, margin, measure in terms:
                if weight:
                    gap = appearance_gap(c["fake"], first, margin, measure)
                    stats[f"loss/G_{name}"] = gap
                    loss = loss + weight * gap
        yield loss, stats


def trainable(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


from g3an.train import baseline_objectives  # noqa: E402, F401  (registers the baselines' objectives)
