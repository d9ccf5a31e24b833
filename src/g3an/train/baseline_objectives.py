"""Training objectives of the baselines VGAN, TGAN and MoCoGAN (spec baselines.md section A).

Each follows its original training loop as the spec describes it, with the deviations listed in
docs/baselines.md. As for G3AN, every random draw of a step comes from the step's context (latents,
labels, frame indices, MoCoGAN's instance noise), so training is exactly resumable and the same with 1
or N processes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from g3an.models.g3an import select_frames
from g3an.models.tgan import singular_value_clip
from g3an.train.config import OptimConfig
from g3an.train.objectives import (
    Loss,
    Objective,
    Phase,
    StepContext,
    adam,
    bce,
    real_fake_stats,
    register_objective,
)

__all__ = ["MoCoGANObjective", "TGANObjective", "VGANObjective", "frozen_bn_stats"]


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``module`` still normalise with batch statistics but leave their running ones alone.

    For a second forward pass over a batch the original code passed through the network only once, so the
    running statistics are updated exactly as often as in the original.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def _lrs(optim: OptimConfig, default: float) -> tuple[float, float]:
    """Generator and discriminator learning rates: the ``optim`` overrides, else the model's default."""
    return (optim.lr_g if optim.lr_g is not None else default, optim.lr_d if optim.lr_d is not None else default)


@register_objective("vgan")
class VGANObjective(Objective):
    """VGAN (``main.lua``): per step one D update (real batch, then fake batch), then one G update.

    BCE with logits (the official 2-way softmax cross-entropy), non-saturating G loss plus
    ``mask_l1 * mean |m|`` on the foreground mask. Adam lr 2e-4, betas (0.5, 0.999) for both networks.

    The G update reuses the step's fake batch, as the official code does (no second generator forward);
    the discriminator is run again on it with its updated weights, where the official code reused the
    D forward pass of the D update. That second pass leaves BatchNorm running statistics untouched, so they
    are updated as often as in the original.
    """

    # the original recipe: batch and frame step of its training clips
    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 64, "time_steps": (1,)}
    phases = (Phase("D", "discriminator", ("D",)), Phase("G", "generator", ("G",)))

    def build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        lr_g, lr_d = _lrs(optim, 2e-4)
        betas, wd = optim.betas or (0.5, 0.999), optim.weight_decay or 0.0
        return {"G": adam(self.G.parameters(), lr_g, betas, wd), "D": adam(self.D.parameters(), lr_d, betas, wd)}

    def begin_step(self, ctx: StepContext) -> None:
        parts = self.G(**ctx.latents(self.G, ctx.real.shape[2]), return_parts=True)
        ctx.cache["fake"], ctx.cache["mask"] = parts["video"], parts["mask"]

    def loss(self, phase: Phase, ctx: StepContext) -> Iterator[Loss]:
        fake = ctx.cache["fake"]
        if phase.name == "D":
            real_logit = self.D(ctx.real)["video"]
            fake_logit = self.D(fake.detach())["video"]
            loss = bce(real_logit, 1.0) + bce(fake_logit, 0.0)
            yield loss, {"loss/D": loss, **real_fake_stats("D", real_logit, fake_logit)}
            return
        with frozen_bn_stats(self.D):
            adv = bce(self.D(fake)["video"], 1.0)
        mask_l1 = ctx.cache["mask"].float().abs().mean()
        loss = adv + float(self.G.mask_l1) * mask_l1
        yield loss, {"loss/G": loss, "loss/G_adv": adv, "loss/mask_l1": mask_l1}


@register_objective("tgan")
class TGANObjective(Objective):
    """TGAN with singular value clipping (the official UCF101 SVC config), with its 1:1 schedule as coded.

    Per step: one generator forward; first the G update with ``-mean D(fake)``; then the critic update with
    ``mean D(fake) - mean D(real)`` on the same (detached) fakes, seen by the same critic weights. After
    every ``svc_every``-th critic update (steps 5, 10, ... counted from 1), :func:`singular_value_clip`
    bounds the critic's convolutions and BatchNorm gains. RMSprop lr 5e-5, alpha 0.99, eps 1e-8 for
    G0 + G1 and for the critic. The critic's second pass over the fakes leaves its BatchNorm running
    statistics alone, so they are updated once per batch (fake, then real), as in the original.
    """

    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 32, "time_steps": (1,)}
    phases = (Phase("G", "generator", ("G",)), Phase("D", "discriminator", ("D",)))

    def build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        if optim.betas is not None:
            raise ValueError("optim.betas does not apply to TGAN, which trains with RMSprop; leave it unset")
        lr_g, lr_d = _lrs(optim, 5e-5)
        wd = optim.weight_decay or 0.0

        def rmsprop(params: Any, lr: float) -> torch.optim.RMSprop:
            return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, weight_decay=wd)

        return {"G": rmsprop(self.G.parameters(), lr_g), "D": rmsprop(self.D.parameters(), lr_d)}

    def begin_step(self, ctx: StepContext) -> None:
        ctx.cache["fake"] = self.G(**ctx.latents(self.G, ctx.real.shape[2]))

    def loss(self, phase: Phase, ctx: StepContext) -> Iterator[Loss]:
        fake = ctx.cache["fake"]
        if phase.name == "G":
            loss = -self.D(fake)["video"].float().mean()
            yield loss, {"loss/G": loss}
            return
        with frozen_bn_stats(self.D):
            fake_score = self.D(fake.detach())["video"].float().mean()
        real_score = self.D(ctx.real)["video"].float().mean()
        loss = fake_score - real_score
        yield loss, {"loss/D": loss, "wasserstein": real_score - fake_score, "D/real": real_score,
                     "D/fake": fake_score}  # fmt: skip

    def after_phase(self, phase: Phase, ctx: StepContext) -> None:
        every = int(getattr(self.D, "svc_every", 0))
        if phase.name == "D" and every and (ctx.step + 1) % every == 0:
            singular_value_clip(self.D)


@register_objective("mocogan")
class MoCoGANObjective(Objective):
    """MoCoGAN (``trainers.py`` as the spec describes it): a D_I update, a D_V update, then a G update.

    * D_I: BCE over patch logits, real frames (one uniformly drawn frame of each real clip) against one
      random frame of each of a fresh batch of generated videos.
    * D_V: BCE of real clips against another fresh batch of generated clips; for K > 0 and
      ``use_categories``, plus cross-entropy of the category logits on real clips against their labels
      (and, with ``head_on_fakes``, on the fake clips against their sampled categories).
    * G: on fresh samples again (one batch for D_I, one for D_V), ``BCE(D_I, 1) + BCE(D_V, 1)``, plus for
      K > 0 and ``use_infogan`` the cross-entropy of D_V's category logits on the fakes against their
      sampled categories.

    Instance noise (``noise_sigma``) is drawn per video from seeds of the step's generator. Adam lr 2e-4,
    betas (0.5, 0.999), weight decay 1e-5 for G, D_I and D_V. The image batch is the video batch size.
    """

    data_defaults: ClassVar[dict[str, Any]] = {"batch_size": 32, "time_steps": (2,)}
    phases = (
        Phase("D_I", "discriminator", ("D_I",)),
        Phase("D_V", "discriminator", ("D_V",)),
        Phase("G", "generator", ("G",)),
    )

    def build_optimizers(self, optim: OptimConfig) -> dict[str, torch.optim.Optimizer]:
        lr_g, lr_d = _lrs(optim, 2e-4)
        betas = optim.betas or (0.5, 0.999)
        wd = optim.weight_decay if optim.weight_decay is not None else 1e-5
        D: Any = self.D
        return {
            "G": adam(self.G.parameters(), lr_g, betas, wd),
            "D_I": adam(D.image.parameters(), lr_d, betas, wd),
            "D_V": adam(D.video.parameters(), lr_d, betas, wd),
        }

    # -- the step's random draws ------------------------------------------------------------------------
    def _fake_draw(self, ctx: StepContext) -> dict[str, Any]:
        """Latents, categories, a frame index and instance-noise seeds for one batch of fakes."""
        G = self.G
        return {
            "latents": ctx.latents(G, ctx.real.shape[2]),
            "y": ctx.randint(G.num_classes) if G.num_classes else None,
            "frame": ctx.randint(ctx.real.shape[2]),
            "seed": self._seeds(ctx),
        }

    @staticmethod
    def _seeds(ctx: StepContext) -> torch.Tensor:
        """One instance-noise seed per video (b,), from the step's generator."""
        return ctx.local(lambda n: torch.randint(2**62, (n,), generator=ctx.rng)).cpu()

    def begin_step(self, ctx: StepContext) -> None:
        c = ctx.cache
        c["real_frame"] = ctx.randint(ctx.real.shape[2])
        c["real_seed_i"], c["real_seed_v"] = self._seeds(ctx), self._seeds(ctx)
        c["d_image"], c["d_video"] = self._fake_draw(ctx), self._fake_draw(ctx)
        c["g_image"], c["g_video"] = self._fake_draw(ctx), self._fake_draw(ctx)
        with torch.no_grad():  # the discriminator phases see detached fakes
            d_img, d_vid = c["d_image"], c["d_video"]
            c["fake_frames"] = select_frames(self.G(**d_img["latents"], y=d_img["y"]), d_img["frame"])
            c["fake_videos"] = self.G(**d_vid["latents"], y=d_vid["y"])

    def loss(self, phase: Phase, ctx: StepContext) -> Iterator[Loss]:
        c, D = ctx.cache, self.D
        if phase.name == "D_I":
            real = D.image_logits(select_frames(ctx.real, c["real_frame"]), c["real_seed_i"])
            fake = D.image_logits(c["fake_frames"], c["d_image"]["seed"])
            loss = bce(real, 1.0) + bce(fake, 0.0)
            yield loss, {"loss/D_I": loss, **real_fake_stats("D_image", real, fake)}
            return
        if phase.name == "D_V":
            real = D.video_logits(ctx.real, c["real_seed_v"])
            fake = D.video_logits(c["fake_videos"], c["d_video"]["seed"])
            loss = bce(real[:, 0], 1.0) + bce(fake[:, 0], 0.0)
            stats = real_fake_stats("D_video", real[:, 0], fake[:, 0])
            if D.num_classes and D.use_categories:
                if ctx.labels is None:
                    raise ValueError("MoCoGAN with use_categories needs class labels from the dataset")
                stats["loss/D_V_category"] = _category_loss(real, ctx.labels)
                loss = loss + stats["loss/D_V_category"]
            if D.num_classes and D.head_on_fakes:
                stats["loss/D_V_category_fake"] = _category_loss(fake, c["d_video"]["y"])
                loss = loss + stats["loss/D_V_category_fake"]
            yield loss, {"loss/D_V": loss, **stats}
            return
        g_img, g_vid = c["g_image"], c["g_video"]
        frames = select_frames(self.G(**g_img["latents"], y=g_img["y"]), g_img["frame"])
        videos = D.video_logits(self.G(**g_vid["latents"], y=g_vid["y"]), g_vid["seed"])
        loss_i = bce(D.image_logits(frames, g_img["seed"]), 1.0)
        loss_v = bce(videos[:, 0], 1.0)
        stats = {"loss/G_image": loss_i, "loss/G_video": loss_v}
        loss = loss_i + loss_v
        if D.num_classes and D.use_infogan:
            stats["loss/G_category"] = _category_loss(videos, g_vid["y"])
            loss = loss + stats["loss/G_category"]
        yield loss, {"loss/G": loss, **stats}


def _category_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of D_V's category logits ``(B, 1 + K, T')`` (averaged over positions) against ``(B,)``."""
    return F.cross_entropy(logits[:, 1:].float().mean(2), labels.to(logits.device).long())
