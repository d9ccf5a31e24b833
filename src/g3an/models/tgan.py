"""TGAN (Saito, Matsumoto, Saito, ICCV 2017): temporal generator G0, image generator G1, WGAN critic with SVC.

Written from the layer tables of spec baselines.md section A.2, which describes the official Chainer code
(pfnet-research/tgan, UCF101 SVC configuration); no code of it or of any port is used. The critic is
trained with singular value clipping (:func:`singular_value_clip`, applied by the ``tgan`` objective).
docs/baselines.md lists every deviation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import nn

from g3an.models.base import VideoDiscriminator, VideoGenerator
from g3an.models.vgan import (
    check_positive_ints,
    check_resolution,
    check_unconditional,
    downsampling_widths,
    lrelu,
    upsampling_widths,
)
from g3an.registry import ModelEntry, register_model
from g3an.shapes import ShapeError, assert_shape

__all__ = [
    "BatchNormNoBeta",
    "TGANConfig",
    "TGANDiscriminator",
    "TGANGenerator",
    "TemporalGenerator",
    "singular_value_clip",
]

#: Chainer's BatchNormalization defaults: eps 2e-5, running averages with decay 0.9 (PyTorch momentum 0.1)
CHAINER_BN = {"eps": 2e-5, "momentum": 0.1}
#: TGAN's temporal generator always unrolls z_slow into this many frames
TGAN_FRAMES = 16


@dataclass
class TGANConfig:
    """Every option of TGAN; validated on construction.

    Attributes:
        dim_z_slow: size of z_slow (z0) ~ U(-1, 1) (100 in every published config).
        dim_z_fast: size of each frame's z_fast (z1(t)) made by G0 (100).
        ch_t: G0 width; its layers have ``4ch_t, 2ch_t, ch_t, ch_t`` channels (128: 512, 256, 128, 128).
        ch: G1 width of the last hidden layer; G1's two linear layers make ``8ch x 4 x 4`` each at 64x64 and
            its transposed convs ``8ch, 4ch, 2ch, ch`` channels (32: 256 ... 32).
        ch_d: critic width of the first layer; ``ch_d, 2ch_d, 4ch_d, 8ch_d`` at 64x64 (64).
        resolution: output height and width, 64 (the spec's tables) or 32 (one stride-2 layer fewer).
        num_frames: must be 16: G0 always makes 16 time steps.
        num_classes: must be 0: the official code has no conditional model.
        svc_every: singular value clipping of the critic after every ``svc_every``-th critic update (5,
            the official ``freq``); 0 switches it off (then the critic is unconstrained). Read by the
            ``tgan`` objective.
    """

    dim_z_slow: int = 100
    dim_z_fast: int = 100
    ch_t: int = 128
    ch: int = 32
    ch_d: int = 64
    resolution: int = 64
    num_frames: int = TGAN_FRAMES
    num_classes: int = 0
    svc_every: int = 5

    def __post_init__(self) -> None:
        check_positive_ints(self, "dim_z_slow", "dim_z_fast", "ch_t", "ch", "ch_d")
        check_resolution(self.resolution, "tgan")
        if self.num_frames != TGAN_FRAMES:
            raise ValueError(
                f"num_frames must be {TGAN_FRAMES}: TGAN's G0 makes exactly 16 frames, got {self.num_frames}"
            )
        check_unconditional(self.num_classes, "tgan")
        if not isinstance(self.svc_every, int) or isinstance(self.svc_every, bool) or self.svc_every < 0:
            raise ValueError(f"svc_every must be a non-negative integer (0: no clipping), got {self.svc_every!r}")


class BatchNormNoBeta(nn.Module):
    """BatchNorm with a learned scale (gamma) but no shift (beta): Chainer's ``use_beta=False``.

    Normalisation is a parameter-free :class:`torch.nn.BatchNorm1d/2d/3d` (``bn``, so the training loop
    can convert it for multi-process statistics); ``weight`` is gamma, initialised to 1.

    Args:
        num_features: channels C of a ``(B, C, ...)`` input.
        dims: 1, 2 or 3 spatial/temporal axes after C.
        eps: added to the variance (Chainer: 2e-5).
        momentum: running-average update weight (Chainer's decay 0.9 is momentum 0.1).
    """

    def __init__(self, num_features: int, dims: int, eps: float = 2e-5, momentum: float = 0.1) -> None:
        super().__init__()
        norm_cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]
        self.bn = norm_cls(num_features, eps=eps, momentum=momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.weight.view(1, -1, *([1] * (x.ndim - 2)))


@torch.no_grad()
def init_lecun_normal(model: nn.Module) -> None:
    """Chainer's default init (LeCun normal): weights N(0, 1 / fan_in), biases 0.

    Chainer computes fan_in from the stored weight as ``shape[1] * prod(shape[2:])``; its deconvolution
    weights are stored ``(in, out, k...)`` as PyTorch's, so for them this is ``out * prod(k)`` (the same rule
    is applied here).
    """
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
            fan_in = m.weight.shape[1] * math.prod(m.weight.shape[2:])
            m.weight.normal_(0.0, fan_in**-0.5)
            if m.bias is not None:
                m.bias.zero_()


@torch.no_grad()
def init_uniform(model: nn.Module, scale: float = 0.01) -> None:
    """The UCF101 SVC config's ``InitUniform`` for G1: weights U(-scale, scale), biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
            m.weight.uniform_(-scale, scale)
            if m.bias is not None:
                m.bias.zero_()


class TemporalGenerator(nn.Module):
    """G0: z_slow ``(B, dim_z_slow)`` -> z_fast ``(B, dim_z_fast, 16)`` in [-1, 1].

    z_slow is a length-1 sequence; 1-D transposed convs (with biases) grow it 1 -> 1 -> 2 -> 4 -> 8 -> 16,
    BatchNorm without beta and ReLU between, tanh at the end. LeCun-normal init (Chainer's default).

    Args:
        dim_z_slow: input size (100).
        dim_z_fast: output channels per time step (100).
        ch_t: base width; the layers have ``4ch_t, 2ch_t, ch_t, ch_t`` channels (128).
    """

    def __init__(self, *, dim_z_slow: int = 100, dim_z_fast: int = 100, ch_t: int = 128) -> None:
        super().__init__()
        self.dim_z_slow, self.dim_z_fast = dim_z_slow, dim_z_fast
        widths = [4 * ch_t, 2 * ch_t, ch_t, ch_t]
        layers: list[nn.Module] = [nn.ConvTranspose1d(dim_z_slow, widths[0], 1, 1, 0)]
        layers += [BatchNormNoBeta(widths[0], 1, **CHAINER_BN), nn.ReLU(True)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.ConvTranspose1d(c_in, c_out, 4, 2, 1), BatchNormNoBeta(c_out, 1, **CHAINER_BN), nn.ReLU(True)]
        layers += [nn.ConvTranspose1d(widths[-1], dim_z_fast, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_lecun_normal(self)

    def forward(self, z_slow: torch.Tensor) -> torch.Tensor:
        assert_shape("G0 input z_slow", z_slow, (None, self.dim_z_slow))
        z_fast = self.net(z_slow[:, :, None])  # (B, dim_z_fast, 16)
        assert_shape("G0 output z_fast", z_fast, (z_slow.shape[0], self.dim_z_fast, TGAN_FRAMES))
        return z_fast


class ImageGenerator(nn.Module):
    """G1: one frame from the pair (z_slow, z_fast(t)); batch and time are folded by the caller.

    Each code goes through a bias-free linear layer to ``8ch x 4 x 4`` (at 64x64), BatchNorm1d and ReLU;
    the two maps are concatenated along channels and upsampled by bias-free stride-2 transposed convs
    (BatchNorm, ReLU) to ``ch x R x R``; a 3x3 transposed conv with bias and tanh makes RGB.
    Uniform init in [-0.01, 0.01] (the UCF101 SVC config).

    Args:
        dim_z_slow, dim_z_fast: input sizes (100, 100).
        ch: width of the last hidden layer (32).
        resolution: output height and width (32 or 64).
    """

    def __init__(self, *, dim_z_slow: int = 100, dim_z_fast: int = 100, ch: int = 32, resolution: int = 64) -> None:
        super().__init__()
        stages = check_resolution(resolution, "tgan")
        self.dim_z_slow, self.dim_z_fast, self.resolution = dim_z_slow, dim_z_fast, resolution
        widths = upsampling_widths(ch, stages)
        self.top = widths[0]
        self.fc_slow = nn.Sequential(
            nn.Linear(dim_z_slow, self.top * 16, bias=False), nn.BatchNorm1d(self.top * 16, **CHAINER_BN), nn.ReLU(True)
        )
        self.fc_fast = nn.Sequential(
            nn.Linear(dim_z_fast, self.top * 16, bias=False), nn.BatchNorm1d(self.top * 16, **CHAINER_BN), nn.ReLU(True)
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip([2 * self.top, *widths[:-1]], widths):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out, **CHAINER_BN),
                       nn.ReLU(True)]  # fmt: skip
        layers += [nn.ConvTranspose2d(widths[-1], 3, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_uniform(self)

    def forward(self, z_slow: torch.Tensor, z_fast: torch.Tensor) -> torch.Tensor:
        assert_shape("G1 input z_slow", z_slow, (None, self.dim_z_slow))
        assert_shape("G1 input z_fast", z_fast, (z_slow.shape[0], self.dim_z_fast))
        h_slow = rearrange(self.fc_slow(z_slow), "n (c h w) -> n c h w", h=4, w=4)  # (N, 8ch, 4, 4)
        h_fast = rearrange(self.fc_fast(z_fast), "n (c h w) -> n c h w", h=4, w=4)  # (N, 8ch, 4, 4)
        return self.net(torch.cat([h_slow, h_fast], 1))  # (N, 3, R, R)


class TGANGenerator(VideoGenerator):
    """TGAN's generator: G0 turns z_slow into 16 per-frame codes z_fast(t); G1 renders every frame.

    ``G(z_slow, z_motion=None, *, z_fast=None)`` returns ``(B, 3, T, R, R)`` in [-1, 1]:

    * ``z_slow`` ``(B, dim_z_slow)``: G1's per-video code (the appearance latent).
    * ``z_motion`` ``(B, dim_z_slow)``: G0's input (the motion latent). In TGAN both are the same z0, so
      :meth:`sample_latents` returns a copy of z_slow and ``None`` means "the same as z_slow". Giving
      another video's z_slow keeps this video's G1 code and takes the other video's motion.
    * ``z_fast`` ``(B, dim_z_fast, T)``: overrides G0 entirely (any T >= 1, since G1 works per frame).

    Batch and time are folded for G1, so its BatchNorm statistics cover every frame of the batch, as in
    the original. Latents are U(-1, 1), not N(0, I).

    Args:
        dim_z_slow, dim_z_fast: latent sizes (100, 100).
        ch_t: G0 base width (128).
        ch: G1 width of the last hidden layer (32).
        resolution: output height and width (32 or 64).
    """

    appearance_latent = "z_slow"
    motion_latent = "z_motion"
    default_frames = TGAN_FRAMES

    def __init__(
        self, *, dim_z_slow: int = 100, dim_z_fast: int = 100, ch_t: int = 128, ch: int = 32, resolution: int = 64
    ) -> None:
        super().__init__()
        self.dim_z_slow, self.dim_z_fast, self.resolution = dim_z_slow, dim_z_fast, resolution
        self.temporal = TemporalGenerator(dim_z_slow=dim_z_slow, dim_z_fast=dim_z_fast, ch_t=ch_t)
        self.image = ImageGenerator(dim_z_slow=dim_z_slow, dim_z_fast=dim_z_fast, ch=ch, resolution=resolution)

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        if num_frames is not None and num_frames != TGAN_FRAMES:
            raise ValueError(
                f"TGAN's G0 makes exactly {TGAN_FRAMES} frames, not {num_frames} "
                "(pass z_fast of shape (B, dim_z_fast, T) to render other lengths with G1)"
            )
        return {"z_slow": (self.dim_z_slow,), "z_motion": (self.dim_z_slow,)}

    def sample_latents(
        self,
        batch: int,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """z0 ~ U(-1, 1) drawn on the CPU from ``generator``; ``z_motion`` is a copy of ``z_slow`` (TGAN's z0)."""
        self.latent_shapes(num_frames)
        z = torch.rand((batch, self.dim_z_slow), generator=generator) * 2 - 1
        device = device or self.device
        return {"z_slow": z.to(device), "z_motion": z.clone().to(device)}

    def forward(
        self,
        z_slow: torch.Tensor,
        z_motion: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
        *,
        z_fast: torch.Tensor | None = None,
    ) -> torch.Tensor:
        assert_shape("z_slow", z_slow, (None, self.dim_z_slow))
        b = z_slow.shape[0]
        self.check_labels(y, b)
        if z_fast is None:
            if z_motion is not None:
                assert_shape("z_motion", z_motion, (b, self.dim_z_slow))
            z_fast = self.temporal(z_slow if z_motion is None else z_motion.to(z_slow.dtype))  # (B, F, 16)
        assert_shape("z_fast", z_fast, (b, self.dim_z_fast, None))
        t = z_fast.shape[2]
        if t < 1:
            raise ShapeError("z_fast needs at least one time step")
        frames = self.image(
            repeat(z_slow, "b f -> (b t) f", t=t),  # (B T, dim_z_slow): z_slow for every frame
            rearrange(z_fast.to(z_slow.dtype), "b f t -> (b t) f"),  # (B T, dim_z_fast)
        )  # (B T, 3, R, R)
        video = rearrange(frames, "(b t) c h w -> b c t h w", b=b)  # (B, 3, T, R, R)
        assert_shape("TGAN output", video, (b, 3, t, self.resolution, self.resolution))
        return video


class TGANDiscriminator(VideoDiscriminator):
    """TGAN's critic: Conv3d k4 s2 p1 layers (with biases) ``ch, 2ch, 4ch, 8ch``, LeakyReLU 0.2, BatchNorm
    without beta (eps 2e-5) after all but the first, then a valid conv to one unbounded score.

    At 64x64 and 16 frames the last feature map is ``8ch x 1 x 4 x 4`` and the final conv has kernel
    ``(1, 4, 4)``: the original's "drop the time axis, Conv2d k4" with the same weights. LeCun-normal init.
    ``forward(video)`` returns ``{"video": (B,)}`` critic scores.

    Args:
        ch: width of the first layer (64).
        resolution: input height and width (32 or 64).
        svc_every: period of singular value clipping, stored for the ``tgan`` objective (0: none).
    """

    heads = ("video",)

    def __init__(self, *, ch: int = 64, resolution: int = 64, svc_every: int = 5) -> None:
        super().__init__()
        stages = check_resolution(resolution, "tgan")
        self.resolution, self.svc_every = resolution, svc_every
        widths = downsampling_widths(ch, stages)
        layers: list[nn.Module] = [nn.Conv3d(3, widths[0], 4, 2, 1), lrelu()]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv3d(c_in, c_out, 4, 2, 1), BatchNormNoBeta(c_out, 3, **CHAINER_BN), lrelu()]
        layers.append(nn.Conv3d(widths[-1], 1, (TGAN_FRAMES // 2**stages, 4, 4)))
        self.net = nn.Sequential(*layers)
        init_lecun_normal(self)

    def forward(self, video: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        assert_shape("TGAN D input", video, (None, 3, TGAN_FRAMES, self.resolution, self.resolution))
        if y is not None:
            raise ValueError("the TGAN critic is unconditional: do not pass class labels y")
        return {"video": self.net(video).flatten()}  # (B,)


@torch.no_grad()
def singular_value_clip(module: nn.Module, bound: float = 1.0, gain_floor: float = 0.01) -> None:
    """TGAN's singular value clipping (SVC), in place.

    * Every ``Conv2d`` / ``Conv3d`` / ``Linear`` weight is reshaped to a matrix ``W`` of shape
      ``(out_channels, everything else)`` and its singular values above ``bound`` are set to ``bound``.
      This equals the SVD recipe ``U min(S, bound) V^T`` but is computed (in float64) from the
      eigendecomposition of the smaller Gram matrix ``W W^T`` (or ``W^T W``): for each singular direction
      with ``s > bound``, ``W <- W - u (1 - bound / s) u^T W``. Directions with ``s <= bound`` are left
      exactly as they are, and a wide 512 x 16384 matrix takes about a second on a CPU instead of
      the 20 s of a full SVD.
    * Every BatchNorm gamma is clamped into ``[gain_floor * s, s]`` with ``s = sqrt(running_var)``, so the
      layer's gain ``gamma / s`` at inference is at most 1 (and at least ``gain_floor``).

    Args:
        module: the network to clip (TGAN's critic).
        bound: the largest singular value allowed (1).
        gain_floor: the smallest BatchNorm gain relative to ``s`` (0.01).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            _clip_matrix(m.weight, bound)
        elif isinstance(m, BatchNormNoBeta) or (isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine):
            bn = m.bn if isinstance(m, BatchNormNoBeta) else m
            if bn.running_var is None:
                continue
            s = bn.running_var.sqrt().to(m.weight.dtype)
            m.weight.copy_(torch.minimum(torch.maximum(m.weight, gain_floor * s), s))


def _clip_matrix(weight: torch.Tensor, bound: float) -> None:
    """Clamp the singular values of ``weight`` viewed as ``(out_channels, -1)`` to at most ``bound``, in place."""
    mat = weight.detach().reshape(weight.shape[0], -1).double()  # (out, in * kernel)
    tall = mat.shape[0] > mat.shape[1]
    if tall:
        mat = mat.T  # work on the side with fewer rows: the Gram matrix is (min, min)
    eigvals, eigvecs = torch.linalg.eigh(mat @ mat.T)  # singular values squared, left singular vectors
    s = eigvals.clamp(min=0).sqrt()
    large = s > bound
    if not large.any():
        return
    u = eigvecs[:, large]  # (rows, k)
    mat = mat - u @ ((1 - bound / s[large])[:, None] * (u.T @ mat))  # each s_k > bound becomes bound
    weight.copy_((mat.T if tall else mat).reshape(weight.shape).to(weight.dtype))


def _build_generator(cfg: TGANConfig) -> TGANGenerator:
    return TGANGenerator(dim_z_slow=cfg.dim_z_slow, dim_z_fast=cfg.dim_z_fast, ch_t=cfg.ch_t, ch=cfg.ch,
                         resolution=cfg.resolution)  # fmt: skip


def _build_discriminator(cfg: TGANConfig) -> TGANDiscriminator:
    return TGANDiscriminator(ch=cfg.ch_d, resolution=cfg.resolution, svc_every=cfg.svc_every)


register_model(
    ModelEntry(
        name="tgan",
        config_cls=TGANConfig,
        build_generator=_build_generator,
        build_discriminator=_build_discriminator,
        loss="tgan",
        description="TGAN (ICCV 2017): temporal generator G0 + image generator G1, WGAN critic with SVC",
    )
)
