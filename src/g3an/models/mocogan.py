"""MoCoGAN (Tulyakov, Liu, Yang, Kautz, CVPR 2018): content code, GRU motion code, image generator,
patch image discriminator and categorical video discriminator with instance noise.

Written from the layer tables of spec baselines.md section A.3, which describes the official PyTorch code
(sergeytulyakov/mocogan, CC BY-NC-ND: none of it is used here). Defaults follow the recipe most runs use
(PatchImageDiscriminator + CategoricalVideoDiscriminator, instance noise sigma 0.1, z_content 50,
z_motion 10). docs/baselines.md lists every deviation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import nn

from g3an.models.base import VideoDiscriminator, VideoGenerator
from g3an.models.blocks import one_hot
from g3an.models.g3an import select_frames
from g3an.models.vgan import check_positive_ints, check_resolution, downsampling_widths, lrelu, upsampling_widths
from g3an.registry import ModelEntry, register_model
from g3an.shapes import ShapeError, assert_shape

__all__ = [
    "IMAGE_DISCRIMINATORS",
    "CategoricalVideoDiscriminator",
    "FullImageDiscriminator",
    "MoCoGANConfig",
    "MoCoGANDiscriminator",
    "MoCoGANGenerator",
    "PatchImageDiscriminator",
    "instance_noise",
]

IMAGE_DISCRIMINATORS = ("patch", "full")
#: per-video instance-noise seeds: a ``(B,)`` integer tensor or B integers (``None``: the global RNG)
NoiseSeed = torch.Tensor | Sequence[int] | None


@dataclass
class MoCoGANConfig:
    """Every option of MoCoGAN; validated on construction.

    Attributes:
        dim_z_content: content code size, z_C ~ N(0, I) once per video (50).
        dim_z_motion: motion code size per frame, the GRU's state (10).
        num_classes: K > 0 adds a one-hot category z_A to every frame code and K category logits to the
            video discriminator (the original's z_category: 4, 6 or 101 in its recipes); 0: unconditional.
        ch: G_I width of the last hidden layer; ``8ch, 4ch, 2ch, ch`` at 64x64 (64: 512 ... 64).
        ch_d: discriminator width of the first layer; ``ch_d, 2ch_d, 4ch_d(, 8ch_d)`` (64).
        image_d: ``patch`` (PatchImageDiscriminator, a map of patch logits; the recipe) or ``full``
            (ImageDiscriminator, one logit per frame).
        resolution: output height and width, 64 (the spec's tables) or 32 (one stride-2 layer fewer in G_I
            and D_V; D_I then gives 2 x 2 patches).
        num_frames: frames of training videos (the video discriminator's input), at least 16 at 64x64
            (13 at 32x32); the generator itself makes any length.
        noise_sigma: standard deviation of the Gaussian instance noise added to the input of every
            discriminator layer marked [noise] while training (0.1, the recipe's ``--noise_sigma``); 0: none.
        use_categories: with K > 0, train D_V's category head with cross-entropy on real clips' labels
            (the original's ``--use_categories``).
        use_infogan: with K > 0, add to G's loss the cross-entropy between D_V's category logits on its
            fake videos and their sampled categories (the original's ``--use_infogan``).
        head_on_fakes: with K > 0, also train the category head on fake videos with their sampled
            categories, a proper InfoGAN Q head. Not in the original, whose head learns from real labels
            only (and never at all without ``use_categories``).
    """

    dim_z_content: int = 50
    dim_z_motion: int = 10
    num_classes: int = 0
    ch: int = 64
    ch_d: int = 64
    image_d: str = "patch"
    resolution: int = 64
    num_frames: int = 16
    noise_sigma: float = 0.1
    use_categories: bool = True
    use_infogan: bool = True
    head_on_fakes: bool = False

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim_z_content", "dim_z_motion", "ch", "ch_d", "num_frames")
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {self.num_classes!r}")
        if self.image_d not in IMAGE_DISCRIMINATORS:
            raise ValueError(f"image_d must be one of {', '.join(IMAGE_DISCRIMINATORS)}, got {self.image_d!r}")
        stages = check_resolution(self.resolution, "mocogan")
        min_frames = 3 * stages + 4
        if self.num_frames < min_frames:
            raise ValueError(
                f"num_frames must be at least {min_frames} at resolution {self.resolution}: the video "
                f"discriminator's unpadded temporal kernels consume {min_frames - 1} frames; got {self.num_frames}"
            )
        if not isinstance(self.noise_sigma, (int, float)) or isinstance(self.noise_sigma, bool) or self.noise_sigma < 0:
            raise ValueError(
                f"noise_sigma must be a non-negative number (0: no instance noise), got {self.noise_sigma!r}"
            )
        for name in ("use_categories", "use_infogan", "head_on_fakes"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.head_on_fakes and not self.num_classes:
            raise ValueError("head_on_fakes needs a category head: set num_classes > 0")


class MoCoGANGenerator(VideoGenerator):
    """MoCoGAN's generator: a GRU motion generator R_M and a per-frame DCGAN image generator G_I.

    ``G(z_content, z_motion, y=None)`` returns ``(B, 3, T, R, R)`` in [-1, 1], for any T >= 1:

    * ``z_content`` ``(B, dim_z_content)``: the content code z_C, repeated over frames (appearance latent).
    * ``z_motion`` ``(B, dim_z_motion, T + 1)``: the motion generator's noise (motion latent). Column 0 is
      the GRU's initial state h0, column t >= 1 its input eps_t; the frame codes are z_M(t) = h_t,
      t = 1..T (h0 itself is dropped), with no layer after the GRU.
    * ``y`` ``(B,)``: category labels for K > 0, entered as a one-hot z_A repeated over frames.

    Each frame's code ``[z_C, z_A, z_M(t)]`` goes through bias-free transposed convs (BatchNorm, ReLU) and
    tanh; batch and time are folded, so BatchNorm statistics cover every frame of the batch. PyTorch's
    default init, as the original.

    Args:
        dim_z_content, dim_z_motion: code sizes (50, 10).
        num_classes: K (0: no category code).
        ch: G_I width of the last hidden layer (64).
        resolution: output height and width (32 or 64).
        num_frames: frames of a default sample (16).
    """

    appearance_latent = "z_content"
    motion_latent = "z_motion"

    def __init__(
        self,
        *,
        dim_z_content: int = 50,
        dim_z_motion: int = 10,
        num_classes: int = 0,
        ch: int = 64,
        resolution: int = 64,
        num_frames: int = 16,
    ) -> None:
        super().__init__()
        stages = check_resolution(resolution, "mocogan")
        self.dim_z_content, self.dim_z_motion, self.num_classes = dim_z_content, dim_z_motion, num_classes
        self.resolution, self.default_frames = resolution, num_frames
        self.recurrent = nn.GRUCell(dim_z_motion, dim_z_motion)
        widths = upsampling_widths(ch, stages)
        dim_frame = dim_z_content + num_classes + dim_z_motion
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(dim_frame, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.image = nn.Sequential(*layers)

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        t = self.default_frames if num_frames is None else num_frames
        if not self.valid_frames(t):
            raise ValueError(f"MoCoGAN makes videos of one frame or more, not {t}")
        return {"z_content": (self.dim_z_content,), "z_motion": (self.dim_z_motion, t + 1)}

    def valid_frames(self, num_frames: int) -> bool:
        return num_frames >= 1

    def motion_codes(self, z_motion: torch.Tensor) -> torch.Tensor:
        """Unroll the GRU: ``(B, dim_z_motion, T + 1)`` noise -> ``(B, dim_z_motion, T)`` codes h_1..h_T."""
        assert_shape("z_motion", z_motion, (None, self.dim_z_motion, None))
        if z_motion.shape[2] < 2:
            raise ShapeError("z_motion needs T + 1 >= 2 columns: h0 and one GRU input per frame")
        h = z_motion[:, :, 0]  # (B, M): h0
        states = []
        for t in range(1, z_motion.shape[2]):
            h = self.recurrent(z_motion[:, :, t], h)  # (B, M)
            states.append(h)
        return torch.stack(states, 2)  # (B, M, T)

    def forward(self, z_content: torch.Tensor, z_motion: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape("z_content", z_content, (None, self.dim_z_content))
        b = z_content.shape[0]
        assert_shape("z_motion", z_motion, (b, self.dim_z_motion, None))
        self.check_labels(y, b)
        z_m = self.motion_codes(z_motion.to(z_content.dtype))  # (B, M, T)
        t = z_m.shape[2]
        codes = [z_content]
        if y is not None:
            codes.append(one_hot(y.to(z_content.device), self.num_classes, z_content.dtype))  # (B, K)
        per_video = repeat(torch.cat(codes, 1), "b c -> (b t) c", t=t)  # (B T, C [+ K])
        frame_codes = torch.cat([per_video, rearrange(z_m, "b m t -> (b t) m")], 1)  # (B T, C [+ K] + M)
        frames = self.image(frame_codes[:, :, None, None])  # (B T, 3, R, R)
        video = rearrange(frames, "(b t) c h w -> b c t h w", b=b)  # (B, 3, T, R, R)
        assert_shape("MoCoGAN output", video, (b, 3, t, self.resolution, self.resolution))
        return video


def instance_noise(x: torch.Tensor, sigma: float, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
    """``x + N(0, sigma^2)``; row ``i`` of the noise comes from ``generators[i]`` (the global RNG when ``None``).

    Per-row generators make the noise of a video independent of how the batch is split over processes,
    so training with instance noise stays exactly resumable and world-size independent.
    """
    if generators is None:
        return x + sigma * torch.randn_like(x)
    if len(generators) != x.shape[0]:
        raise ValueError(f"instance noise needs one generator per row: {len(generators)} for {x.shape[0]} rows")
    noise = torch.stack([torch.randn(x.shape[1:], generator=g, device=x.device) for g in generators])
    return x + sigma * noise.to(x.dtype)


def _row_generators(seeds: NoiseSeed, device: torch.device) -> list[torch.Generator] | None:
    if seeds is None:
        return None
    values = seeds.tolist() if isinstance(seeds, torch.Tensor) else list(seeds)
    return [torch.Generator(device=device).manual_seed(int(s)) for s in values]


class _NoisyStack(nn.Module):
    """Stages run in order; while training, instance noise is added to the input of each stage marked noisy."""

    def __init__(self, stages: list[nn.Module], noisy: list[bool], sigma: float) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.noisy, self.sigma = noisy, sigma

    def forward(self, x: torch.Tensor, noise_seed: NoiseSeed = None) -> torch.Tensor:
        use_noise = self.training and self.sigma > 0
        generators = _row_generators(noise_seed, x.device) if use_noise else None
        for stage, noisy in zip(self.stages, self.noisy):
            if use_noise and noisy:
                x = instance_noise(x, self.sigma, generators)
            x = stage(x)
        return x


def _down_stages(
    dims: int, widths: list[int], stride: int | tuple[int, ...], pad: int | tuple[int, ...]
) -> list[nn.Module]:
    """Bias-free kernel-4 conv stages from RGB: the first with LeakyReLU 0.2, the others BatchNorm + LeakyReLU."""
    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
    stages: list[nn.Module] = [nn.Sequential(conv(3, widths[0], 4, stride, pad, bias=False), lrelu())]
    for c_in, c_out in itertools.pairwise(widths):
        stages.append(nn.Sequential(conv(c_in, c_out, 4, stride, pad, bias=False), norm(c_out), lrelu()))
    return stages


class PatchImageDiscriminator(_NoisyStack):
    """MoCoGAN's default D_I: bias-free Conv2d k4 s2 p1, ``ch, 2ch, 4ch`` (BatchNorm after all but the first,
    LeakyReLU 0.2), then Conv2d k4 s2 p1 to one logit per patch: ``(B, 16)`` patch logits at 64x64.

    Instance noise (``noise_sigma``) on the input of all four convs while training.
    """

    def __init__(self, ch: int = 64, noise_sigma: float = 0.1) -> None:
        widths = downsampling_widths(ch, 3)
        stages = _down_stages(2, widths, 2, 1)
        stages.append(nn.Conv2d(widths[-1], 1, 4, 2, 1, bias=False))
        super().__init__(stages, [True] * 4, noise_sigma)


class FullImageDiscriminator(_NoisyStack):
    """MoCoGAN's non-patch D_I: bias-free Conv2d k4 s2 p1 blocks ``ch ... 8ch`` (4 at 64x64, BatchNorm after
    all but the first, LeakyReLU 0.2), then Conv2d k4 to one logit per frame, ``(B, 1)``.

    Instance noise on the input of every conv while training.
    """

    def __init__(self, ch: int = 64, resolution: int = 64, noise_sigma: float = 0.1) -> None:
        widths = downsampling_widths(ch, check_resolution(resolution, "mocogan"))
        stages = _down_stages(2, widths, 2, 1)
        stages.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
        super().__init__(stages, [True] * len(stages), noise_sigma)


class CategoricalVideoDiscriminator(_NoisyStack):
    """MoCoGAN's default D_V: bias-free Conv3d kernel 4, stride (1, 2, 2), padding (0, 1, 1), ``ch ... 8ch``
    (4 at 64x64, BatchNorm after all but the first, LeakyReLU 0.2), then Conv3d k4 to ``1 + K`` outputs.

    Time shrinks by 3 per layer (16 -> 13 -> 10 -> 7 -> 4 -> 1 at 64x64). Output ``(B, 1 + K, T')`` with
    ``T' = T - 15`` at 64x64: channel 0 is the real/fake logit, the last K the category logits; longer
    inputs give several temporal positions, which the objective treats like patches. Instance noise on the
    input of every conv but the last while training.
    """

    def __init__(self, ch: int = 64, resolution: int = 64, num_classes: int = 0, noise_sigma: float = 0.1) -> None:
        widths = downsampling_widths(ch, check_resolution(resolution, "mocogan"))
        stages = _down_stages(3, widths, (1, 2, 2), (0, 1, 1))
        stages.append(nn.Conv3d(widths[-1], 1 + num_classes, 4, 1, 0, bias=False))
        super().__init__(stages, [True] * (len(stages) - 1) + [False], noise_sigma)


class MoCoGANDiscriminator(VideoDiscriminator):
    """MoCoGAN's two discriminators: D_I on single frames, D_V on clips (with category logits for K > 0).

    ``forward(video, y=None, frame_index=None)`` returns raw logits: ``"image"`` ``(B,)`` (D_I's mean patch
    logit on frame ``frame_index[b]`` of each video, uniformly random when ``None``), ``"video"`` ``(B,)``
    (D_V's real/fake logit, averaged over temporal positions) and, for K > 0, ``"video_category"``
    ``(B, K)`` (D_V's category logits). ``y`` is accepted for the common interface and ignored: MoCoGAN's
    discriminators predict the category, they are not conditioned on it.

    The training objective calls :meth:`image_logits` and :meth:`video_logits` instead, which keep every
    patch / temporal position and take per-row ``noise_seed`` values for reproducible instance noise. In
    ``forward`` the instance noise (training mode only) comes from the global RNG.

    Args:
        ch: width of the first layer of D_I and D_V (64).
        resolution: input height and width (32 or 64).
        num_frames: D_V's input frames (16).
        num_classes: K (0: no category head).
        image_d: ``patch`` or ``full``.
        noise_sigma: instance noise standard deviation while training (0: none).
        use_categories, use_infogan, head_on_fakes: category-loss switches, stored for the ``mocogan``
            objective (see :class:`MoCoGANConfig`).
    """

    def __init__(
        self,
        *,
        ch: int = 64,
        resolution: int = 64,
        num_frames: int = 16,
        num_classes: int = 0,
        image_d: str = "patch",
        noise_sigma: float = 0.1,
        use_categories: bool = True,
        use_infogan: bool = True,
        head_on_fakes: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.num_frames, self.num_classes = resolution, num_frames, num_classes
        self.use_categories, self.use_infogan, self.head_on_fakes = use_categories, use_infogan, head_on_fakes
        self.heads = ("image", "video") + (("video_category",) if num_classes else ())
        if image_d == "patch":
            self.image: _NoisyStack = PatchImageDiscriminator(ch, noise_sigma)
        elif image_d == "full":
            self.image = FullImageDiscriminator(ch, resolution, noise_sigma)
        else:
            raise ValueError(f"image_d must be one of {', '.join(IMAGE_DISCRIMINATORS)}, got {image_d!r}")
        self.video = CategoricalVideoDiscriminator(ch, resolution, num_classes, noise_sigma)

    def image_logits(
        self, frames: torch.Tensor, noise_seed: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """D_I on frames ``(B, 3, R, R)``: patch logits ``(B, P)`` (P = 16 for the patch D at 64x64, 1 for full)."""
        assert_shape("D_I input", frames, (None, 3, self.resolution, self.resolution))
        return self.image(frames, noise_seed).flatten(1)  # (B, P)

    def video_logits(self, video: torch.Tensor, noise_seed: NoiseSeed = None) -> torch.Tensor:
        """D_V on clips ``(B, 3, T, R, R)``: logits ``(B, 1 + K, T')``, channel 0 real/fake, then K categories."""
        assert_shape("D_V input", video, (None, 3, self.num_frames, self.resolution, self.resolution))
        return self.video(video, noise_seed).flatten(2)  # (B, 1 + K, T')

    def forward(
        self, video: torch.Tensor, y: torch.Tensor | None = None, frame_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if y is not None:
            assert_shape("class labels y", y, (video.shape[0],))
        if frame_index is None:
            frame_index = torch.randint(video.shape[2], (video.shape[0],), device=video.device)
        v = self.video_logits(video).mean(2)  # (B, 1 + K): averaged over temporal positions
        out = {"image": self.image_logits(select_frames(video, frame_index)).mean(1), "video": v[:, 0]}
        if self.num_classes:
            out["video_category"] = v[:, 1:]
        return out


def _build_generator(cfg: MoCoGANConfig) -> MoCoGANGenerator:
    return MoCoGANGenerator(
        dim_z_content=cfg.dim_z_content, dim_z_motion=cfg.dim_z_motion, num_classes=cfg.num_classes, ch=cfg.ch,
        resolution=cfg.resolution, num_frames=cfg.num_frames,
    )  # fmt: skip


def _build_discriminator(cfg: MoCoGANConfig) -> MoCoGANDiscriminator:
    return MoCoGANDiscriminator(
        ch=cfg.ch_d, resolution=cfg.resolution, num_frames=cfg.num_frames, num_classes=cfg.num_classes,
        image_d=cfg.image_d, noise_sigma=cfg.noise_sigma, use_categories=cfg.use_categories,
        use_infogan=cfg.use_infogan, head_on_fakes=cfg.head_on_fakes,
    )  # fmt: skip


register_model(
    ModelEntry(
        name="mocogan",
        config_cls=MoCoGANConfig,
        build_generator=_build_generator,
        build_discriminator=_build_discriminator,
        loss="mocogan",
        description="MoCoGAN (CVPR 2018): content + GRU motion codes, patch image D and categorical video D",
    )
)
