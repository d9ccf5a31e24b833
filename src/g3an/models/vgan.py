"""VGAN (Vondrick, Pirsiavash, Torralba, NIPS 2016): two-stream generator and 3D discriminator.

Written from the layer tables of spec baselines.md section A.1, which describes the official Lua Torch7
code (cvondrick/videogan, ``main.lua``); no code of that or any port is used. The official model makes 32
frames; the default here is the 16-frame adaptation used for G3AN / MoCoGAN-style comparisons (the
foreground stream starts with a temporal kernel of 1, the discriminator ends with one), and
``num_frames=32`` gives the official geometry back. docs/baselines.md lists every deviation.

This module also holds the small helpers the three baselines share (option checks, DCGAN-style width
plans, the discriminators' LeakyReLU), so that VGAN, TGAN and MoCoGAN state each rule once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from g3an.models.base import VideoDiscriminator, VideoGenerator
from g3an.models.blocks import log2_int
from g3an.registry import ModelEntry, register_model
from g3an.shapes import assert_shape

__all__ = [
    "BASELINE_RESOLUTIONS",
    "VGANConfig",
    "VGANDiscriminator",
    "VGANGenerator",
    "check_positive_ints",
    "check_resolution",
    "check_unconditional",
    "downsampling_widths",
    "upsampling_widths",
]

#: output sizes the baselines support: the spec's 64x64 tables, and 32x32 with one stride-2 layer fewer
BASELINE_RESOLUTIONS = (32, 64)


# -- helpers shared by the baselines --------------------------------------------------------------------


def check_positive_ints(obj: object, *names: str) -> None:
    """Raise a ``ValueError`` naming the option unless every ``obj.<name>`` is a positive integer."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_resolution(resolution: int, model: str) -> int:
    """Validate ``resolution`` and return the number of stride-2 layers (``log2(resolution) - 2``)."""
    if resolution not in BASELINE_RESOLUTIONS:
        raise ValueError(
            f"resolution must be one of {BASELINE_RESOLUTIONS} for {model} (the spec's layer tables are for 64x64; "
            f"32 drops one stride-2 layer), got {resolution!r}"
        )
    return log2_int(resolution, "resolution") - 2


def check_unconditional(num_classes: int, model: str) -> None:
    """Refuse class-conditional options for a baseline that has no conditional variant."""
    if num_classes != 0:
        raise ValueError(
            f"num_classes must be 0: {model} is unconditional in its original code (got {num_classes}); "
            "use model 'mocogan' or 'g3an' for class-conditional generation"
        )


def upsampling_widths(ch: int, stages: int) -> list[int]:
    """Widths of a DCGAN-style upsampling stack, counted from the output: ``[ch 2^(n-1), ..., 2ch, ch]``.

    With ``ch=64`` and 4 stages this is the 512, 256, 128, 64 of the VGAN and MoCoGAN tables.
    """
    return [ch * 2 ** (stages - 1 - i) for i in range(stages)]


def downsampling_widths(ch: int, stages: int) -> list[int]:
    """Widths of a DCGAN-style downsampling stack, counted from the input: ``[ch, 2ch, ..., ch 2^(n-1)]``."""
    return [ch * 2**i for i in range(stages)]


def lrelu() -> nn.LeakyReLU:
    """LeakyReLU with slope 0.2, the activation of every baseline discriminator."""
    return nn.LeakyReLU(0.2, inplace=True)


# -- VGAN -----------------------------------------------------------------------------------------------


@dataclass
class VGANConfig:
    """Every option of VGAN; validated on construction.

    Attributes:
        dim_z: size of the latent code z ~ N(0, I) shared by both streams (100 in the official code).
        ch: generator width at the last hidden layer; hidden layers have ``8ch, 4ch, 2ch, ch`` channels at
            64x64 (64 in the official code: 512, 256, 128, 64).
        ch_d: discriminator width of the first layer; ``ch_d, 2ch_d, 4ch_d, 8ch_d`` at 64x64 (64).
        resolution: output height and width, 64 (the spec's tables) or 32 (one stride-2 layer fewer).
        num_frames: frames per video, a multiple of ``2^(log2(resolution) - 2)`` (16 at 64x64): 16 is the
            comparison adaptation (first temporal kernel 1), 32 the official model (kernel 2).
        num_classes: must be 0: VGAN's official code has no class-conditional generator.
        mask_l1: weight of the L1 sparsity penalty on the foreground mask, averaged over its pixels (0.1);
            read by the ``vgan`` training objective.
    """

    dim_z: int = 100
    ch: int = 64
    ch_d: int = 64
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 0
    mask_l1: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim_z", "ch", "ch_d", "num_frames")
        stages = check_resolution(self.resolution, "vgan")
        if self.num_frames % 2**stages:
            raise ValueError(
                f"num_frames must be a multiple of {2**stages} at resolution {self.resolution} (the foreground "
                f"stream doubles time {stages} times), got {self.num_frames}"
            )
        check_unconditional(self.num_classes, "vgan")
        if not isinstance(self.mask_l1, (int, float)) or isinstance(self.mask_l1, bool) or self.mask_l1 < 0:
            raise ValueError(f"mask_l1 must be a non-negative number, got {self.mask_l1!r}")


@torch.no_grad()
def init_vgan(model: nn.Module) -> None:
    """The official init: (transposed) conv weights N(0, 0.01), biases 0; BatchNorm gamma N(1, 0.02), beta 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            m.weight.normal_(0.0, 0.01)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            m.weight.normal_(1.0, 0.02)
            m.bias.zero_()


class VGANGenerator(VideoGenerator):
    """VGAN's two-stream generator: a 3D foreground stream with a mask and a 2D background stream.

    ``G(z)`` with z ``(B, dim_z)`` returns ``x = m * f + (1 - m) * b`` of shape ``(B, 3, T, R, R)`` in
    [-1, 1]: foreground video f ``(B, 3, T, R, R)`` (tanh), mask m ``(B, 1, T, R, R)`` (sigmoid, broadcast
    over colour) and one background image b ``(B, 3, R, R)`` (tanh, copied over every frame). Every
    transposed convolution has a bias, as in Torch. ``G(z, return_parts=True)`` returns a dict with
    ``video``, ``foreground``, ``mask`` and ``background`` (what the official ``generate.lua`` dumps).

    VGAN has one code for everything, so it names no appearance or motion latent.

    Args:
        dim_z: latent size (100).
        ch: width of the last hidden layer (64); earlier layers double it.
        resolution: output height and width (32 or 64).
        num_frames: frames per video; the first foreground layer's temporal kernel is
            ``num_frames / 2^(log2(resolution) - 2)``.
        mask_l1: weight of the mask's L1 sparsity penalty; the generator only stores it for the ``vgan``
            training objective.
    """

    def __init__(
        self, *, dim_z: int = 100, ch: int = 64, resolution: int = 64, num_frames: int = 16, mask_l1: float = 0.1
    ) -> None:
        super().__init__()
        stages = check_resolution(resolution, "vgan")
        self.dim_z, self.resolution, self.default_frames, self.mask_l1 = dim_z, resolution, num_frames, mask_l1
        widths = upsampling_widths(ch, stages)
        t0 = num_frames // 2**stages
        if t0 < 1 or t0 * 2**stages != num_frames:
            raise ValueError(f"num_frames must be a multiple of {2**stages} at resolution {resolution}")
        bg: list[nn.Module] = [nn.ConvTranspose2d(dim_z, widths[0], 4, 1, 0), nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        fg: list[nn.Module] = [
            nn.ConvTranspose3d(dim_z, widths[0], (t0, 4, 4), 1, 0),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            bg += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            fg += [nn.ConvTranspose3d(c_in, c_out, 4, 2, 1), nn.BatchNorm3d(c_out), nn.ReLU(True)]
        bg += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1), nn.Tanh()]
        self.background = nn.Sequential(*bg)
        self.foreground = nn.Sequential(*fg)
        self.video_head = nn.Sequential(nn.ConvTranspose3d(widths[-1], 3, 4, 2, 1), nn.Tanh())
        self.mask_head = nn.Sequential(nn.ConvTranspose3d(widths[-1], 1, 4, 2, 1), nn.Sigmoid())
        init_vgan(self)

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        if num_frames is not None and not self.valid_frames(num_frames):
            raise ValueError(f"this VGAN makes videos of exactly {self.default_frames} frames, not {num_frames}")
        return {"z": (self.dim_z,)}

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, *, return_parts: bool = False
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        assert_shape("z", z, (None, self.dim_z))
        b, r, t = z.shape[0], self.resolution, self.default_frames
        self.check_labels(y, b)
        background = self.background(z[:, :, None, None])  # (B, 3, R, R)
        hidden = self.foreground(z[:, :, None, None, None])  # (B, ch, T/2, R/2, R/2)
        foreground = self.video_head(hidden)  # (B, 3, T, R, R)
        mask = self.mask_head(hidden)  # (B, 1, T, R, R)
        video = mask * foreground + (1 - mask) * background[:, :, None]  # background broadcast over T
        assert_shape("VGAN output", video, (b, 3, t, r, r))
        if return_parts:
            return {"video": video, "foreground": foreground, "mask": mask, "background": background}
        return video


class VGANDiscriminator(VideoDiscriminator):
    """VGAN's 3D convolutional discriminator (no sigmoid).

    Conv3d k4 s2 p1 layers ``ch, 2ch, 4ch, 8ch`` with LeakyReLU 0.2 and BatchNorm (eps 1e-3) after all but
    the first, then a valid conv with kernel ``(T / 16, 4, 4)`` to two outputs, "real" and "fake", as in the
    official 2-way softmax. ``forward(video)`` returns ``{"video": (B,)}``, the logit
    ``out_real - out_fake``: the 2-way softmax cross-entropy equals BCE with this logit.

    Args:
        ch: width of the first layer (64).
        resolution: input height and width (32 or 64).
        num_frames: input frames (a multiple of 16 at 64x64).
    """

    heads = ("video",)

    def __init__(self, *, ch: int = 64, resolution: int = 64, num_frames: int = 16) -> None:
        super().__init__()
        stages = check_resolution(resolution, "vgan")
        self.resolution, self.num_frames = resolution, num_frames
        widths = downsampling_widths(ch, stages)
        layers: list[nn.Module] = [nn.Conv3d(3, widths[0], 4, 2, 1), lrelu()]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv3d(c_in, c_out, 4, 2, 1), nn.BatchNorm3d(c_out, eps=1e-3), lrelu()]
        layers.append(nn.Conv3d(widths[-1], 2, (num_frames // 2**stages, 4, 4)))
        self.net = nn.Sequential(*layers)
        init_vgan(self)

    def forward(self, video: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        assert_shape("VGAN D input", video, (None, 3, self.num_frames, self.resolution, self.resolution))
        if y is not None:
            raise ValueError("the VGAN discriminator is unconditional: do not pass class labels y")
        out = self.net(video).flatten(1)  # (B, 2): [real, fake]
        return {"video": out[:, 0] - out[:, 1]}


def _build_generator(cfg: VGANConfig) -> VGANGenerator:
    return VGANGenerator(
        dim_z=cfg.dim_z, ch=cfg.ch, resolution=cfg.resolution, num_frames=cfg.num_frames, mask_l1=cfg.mask_l1
    )


def _build_discriminator(cfg: VGANConfig) -> VGANDiscriminator:
    return VGANDiscriminator(ch=cfg.ch_d, resolution=cfg.resolution, num_frames=cfg.num_frames)


register_model(
    ModelEntry(
        name="vgan",
        config_cls=VGANConfig,
        build_generator=_build_generator,
        build_discriminator=_build_discriminator,
        loss="vgan",
        description="VGAN (NIPS 2016): foreground/mask/background two-stream generator, 3D discriminator",
    )
)
