"""G3AN (Wang, Bilinski, Bremond, Dantcheva, CVPR 2020): generator, video and image discriminators, config.

Matches the authors' reference code (wyhsirius/g3an-project, commit 74764fd, ``model/networks.py`` and
``model/ops.py``) layer by layer at the default configuration; spec g3an.md sections 2-3 and 6 give the
facts and parameter counts, and docs/architecture.md the decisions where paper and code differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from g3an.models.attention import FSA, FSA_LAYOUTS
from g3an.models.base import VideoDiscriminator, VideoGenerator, is_channels_last_3d
from g3an.models.blocks import (
    INIT_SCHEMES,
    FrameConv3d,
    FrameConvTranspose3d,
    LateBiasConvTranspose3d,
    apply_init,
    checkpointed,
    class_maps,
    log2_int,
    one_hot,
    spectral_norm,
)
from g3an.registry import ModelEntry, register_model
from g3an.shapes import ShapeError, assert_shape

__all__ = [
    "CONV_TYPES",
    "G3",
    "G3ANConfig",
    "G3ANDiscriminator",
    "G3ANGenerator",
    "ImageDiscriminator",
    "VideoDiscriminator2p1d",
    "VideoDiscriminator3d",
    "level_plan",
]

CONV_TYPES = ("1p2d", "2p1d", "3d")
VIDEO_DISCRIMINATORS = ("2p1d", "3d")
CLASS_INPUTS_D = ("projection", "concat")
RESOLUTIONS = (32, 64, 128)


@dataclass
class G3ANConfig:
    """Every architectural option of G3AN; validated on construction.

    Attributes:
        dim_z_a: appearance code size (128 in the paper).
        dim_z_m: motion code size per latent time step (10 in the paper).
        ch: generator base width; level widths are ``8ch, 8ch, 4ch, 2ch, ch`` at 64x64 (64 in the paper).
        ch_d: discriminator base width (64 in the paper).
        conv_type: G_V's transposed convolution: ``1p2d`` (temporal then spatial, the paper's (1+2)D),
            ``2p1d`` (spatial then temporal) or ``3d`` (one 3D transposed conv).
        fsa_level: F-SA after this G3 level (0..levels-1; 3 in the paper); ``None`` disables F-SA.
        fsa_layout: ``correct`` (default) or ``reference`` (reproduces the reference code's reshape).
        use_spatial: keep the spatial stream G_S (``False`` is the paper's "w/o G_S" ablation).
        use_temporal: keep the temporal stream G_T (``False`` is the paper's "w/o G_T" ablation).
        resolution: output height and width: 32, 64 (paper) or 128; levels are removed or added.
        num_frames: frames of training videos; 16 (T_z = 1), or 16 + 4k.
        num_classes: 0 for unconditional; K > 0 adds a one-hot class vector to z_m at G_T's input and
            lets both discriminators see the class.
        init: weight initialisation, ``reference`` (what the reference code really does) or ``dcgan``.
        video_d: video discriminator, ``2p1d`` (reference code, default) or ``3d`` (the paper's).
        d_class: how a conditional model's discriminators see the class: ``projection`` (default; an
            inner product of a class embedding with the last features, Miyato & Koyama 2018) or ``concat``
            (a one-hot map concatenated after the first conv, as ImaGINator).
    """

    dim_z_a: int = 128
    dim_z_m: int = 10
    ch: int = 64
    ch_d: int = 64
    conv_type: str = "1p2d"
    fsa_level: int | None = 3
    fsa_layout: str = "correct"
    use_spatial: bool = True
    use_temporal: bool = True
    resolution: int = 64
    num_frames: int = 16
    num_classes: int = 0
    init: str = "reference"
    video_d: str = "2p1d"
    d_class: str = "projection"

    def __post_init__(self) -> None:
        for name in ("dim_z_a", "dim_z_m", "ch", "ch_d"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.conv_type not in CONV_TYPES:
            raise ValueError(f"conv_type must be one of {', '.join(CONV_TYPES)}, got {self.conv_type!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution!r}")
        levels = num_levels(self.resolution)
        if self.fsa_level is not None and (
            not isinstance(self.fsa_level, int) or isinstance(self.fsa_level, bool) or not 0 <= self.fsa_level < levels
        ):
            raise ValueError(
                f"fsa_level must be None or an integer in [0, {levels - 1}] at resolution {self.resolution}, "
                f"got {self.fsa_level!r}"
            )
        if self.fsa_layout not in FSA_LAYOUTS:
            raise ValueError(f"fsa_layout must be one of {', '.join(FSA_LAYOUTS)}, got {self.fsa_layout!r}")
        if self.fsa_level is not None:
            fused = level_plan(self.ch, self.resolution)[self.fsa_level]["out"] * (2 if self.use_spatial else 1)
            if fused % 8:
                raise ValueError(f"F-SA at level {self.fsa_level} needs a channel count divisible by 8, got {fused}")
        if self.num_frames < 16 or (self.num_frames - 16) % 4:
            raise ValueError(f"num_frames must be 16 + 4k (16, 20, 24, ...), got {self.num_frames}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        if self.video_d not in VIDEO_DISCRIMINATORS:
            raise ValueError(f"video_d must be one of {', '.join(VIDEO_DISCRIMINATORS)}, got {self.video_d!r}")
        if self.d_class not in CLASS_INPUTS_D:
            raise ValueError(f"d_class must be one of {', '.join(CLASS_INPUTS_D)}, got {self.d_class!r}")


def num_levels(resolution: int) -> int:
    """G3 levels for an output of ``resolution`` pixels: level 0 makes 4x4, every further level doubles."""
    return log2_int(resolution, "resolution") - 1


def level_plan(ch: int, resolution: int) -> list[dict[str, int]]:
    """Width and kernel/stride/padding of every G3 level.

    Widths count from the output: the last level has ``ch`` channels, each earlier one twice as many,
    capped at ``8ch`` (so 64x64 gives the reference's ``8ch, 8ch, 4ch, 2ch, ch``). Time grows only at
    levels 0-2 (1 -> 4 -> 8 -> 16 for T_z = 1); later levels use a pointwise temporal conv.
    """
    n = num_levels(resolution)
    plan = []
    for i in range(n):
        out = ch * min(8, 2 ** (n - 1 - i))
        if i == 0:
            spatial, temporal = (4, 1, 0), (4, 1, 0)
        else:
            spatial = (4, 2, 1)
            temporal = (4, 2, 1) if i < 3 else (1, 1, 0)
        plan.append({"out": out, "k_s": spatial[0], "s_s": spatial[1], "p_s": spatial[2],
                     "k_t": temporal[0], "s_t": temporal[1], "p_t": temporal[2]})  # fmt: skip
    return plan


def _tconv_block(
    in_c: int, out_c: int, kernel: tuple[int, int, int], stride: tuple[int, int, int], pad: tuple[int, int, int]
) -> list[nn.Module]:
    """Spectrally normalised ConvTranspose3d -> BatchNorm3d -> ReLU (the reference's building block); a
    spatial kernel ``(1, k, k)`` runs frame by frame (:class:`~g3an.models.blocks.FrameConvTranspose3d`); both add
    their bias after the convolution (:func:`~g3an.models.blocks.add_bias_`)."""
    conv = FrameConvTranspose3d if kernel[0] == 1 and stride[0] == 1 and pad[0] == 0 else LateBiasConvTranspose3d
    return [spectral_norm(conv(in_c, out_c, kernel, stride, pad)), nn.BatchNorm3d(out_c), nn.ReLU(True)]


class G3(nn.Module):
    """One G3 module: spatial (G_S), temporal (G_T) and video (G_V) streams plus spatio-temporal fusion.

    Fusion (paper section 3.2): ``h_v <- h_v + h_t`` broadcast over H, W; then ``h_v <- [h_s, h_v]``
    with h_s broadcast over T and concatenated in front. The next level's G_S and G_T take the un-fused
    h_s and h_t. A removed stream (``in_s=0`` / ``in_t=0``) takes no part in the fusion.

    Args:
        in_s: G_S input channels (0: no spatial stream).
        in_v: G_V input channels.
        in_t: G_T input channels (0: no temporal stream).
        out_c: output channels of every stream; the fused video tensor has ``2 out_c`` (``out_c`` without G_S).
        k_s, s_s, p_s: spatial kernel, stride, padding.
        k_t, s_t, p_t: temporal kernel, stride, padding.
        conv_type: ``1p2d``, ``2p1d`` or ``3d`` for G_V.
    """

    def __init__(
        self,
        in_s: int,
        in_v: int,
        in_t: int,
        out_c: int,
        *,
        k_s: int,
        s_s: int,
        p_s: int,
        k_t: int,
        s_t: int,
        p_t: int,
        conv_type: str = "1p2d",
    ) -> None:
        super().__init__()
        sk, ss, sp = (1, k_s, k_s), (1, s_s, s_s), (0, p_s, p_s)
        tk, ts, tp = (k_t, 1, 1), (s_t, 1, 1), (p_t, 0, 0)
        self.out_c = out_c
        if conv_type == "1p2d":
            conv_v = _tconv_block(in_v, out_c, tk, ts, tp) + _tconv_block(out_c, out_c, sk, ss, sp)
        elif conv_type == "2p1d":
            conv_v = _tconv_block(in_v, out_c, sk, ss, sp) + _tconv_block(out_c, out_c, tk, ts, tp)
        elif conv_type == "3d":
            conv_v = _tconv_block(in_v, out_c, (k_t, k_s, k_s), (s_t, s_s, s_s), (p_t, p_s, p_s))
        else:
            raise ValueError(f"conv_type must be one of {', '.join(CONV_TYPES)}, got {conv_type!r}")
        self.conv_v = nn.Sequential(*conv_v)
        self.conv_s = nn.Sequential(*_tconv_block(in_s, out_c, sk, ss, sp)) if in_s else None
        self.conv_t = nn.Sequential(*_tconv_block(in_t, out_c, tk, ts, tp)) if in_t else None

    def forward(
        self, h_s: torch.Tensor | None, h_v: torch.Tensor, h_t: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        h_s, h_v, h_t = self.streams(h_s, h_v, h_t)
        return h_s, self.concat(h_s, h_v), h_t

    def streams(
        self, h_s: torch.Tensor | None, h_v: torch.Tensor, h_t: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """The three streams and the temporal fusion ``h_v + h_t``; h_v has C channels (not yet concatenated)."""
        h_v = self.conv_v(h_v)  # (B, C, T, H, W)
        if self.conv_t is not None:
            h_t = self.conv_t(h_t)  # (B, C, T, 1, 1)
            if is_channels_last_3d(h_v):
                # the same sum on (B, T, H, W, C) views: backward then reduces h_t's gradient over H, W with
                # channels innermost, which PyTorch does about 15x faster than in the (B, C, T, H, W) view
                h_v = (h_v.permute(0, 2, 3, 4, 1) + h_t.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
            else:
                h_v = h_v + h_t  # replicated over H, W by broadcasting
        if self.conv_s is not None:
            h_s = self.conv_s(h_s)  # (B, C, 1, H, W)
        return h_s, h_v, h_t

    def concat(self, h_s: torch.Tensor | None, h_v: torch.Tensor) -> torch.Tensor:
        """The spatial fusion: h_s broadcast over T, concatenated in front of h_v."""
        if self.conv_s is None:
            return h_v
        t = h_v.shape[2]
        if is_channels_last_3d(h_v):
            # concatenated along the innermost axis of (B, T, H, W, C) views, so the result stays channels-last
            # (and the expand's backward reduces over T with channels innermost, the fast way)
            h_s = h_s.permute(0, 2, 3, 4, 1).expand(-1, t, -1, -1, -1)
            return torch.cat([h_s, h_v.permute(0, 2, 3, 4, 1)], -1).permute(0, 4, 1, 2, 3)
        return torch.cat([h_s.expand(-1, -1, t, -1, -1), h_v], dim=1)  # (B, 2C, T, H, W)


class G3ANGenerator(VideoGenerator):
    """The G3AN generator: a stack of G3 modules, optional F-SA, ``to_rgb`` (3x3 conv) and tanh.

    Called as ``G(z_a, z_m, y=None)`` with z_a ``(B, dim_z_a)``, z_m ``(B, dim_z_m, T_z)`` (or
    ``(B, dim_z_m)`` for T_z = 1) and, for a conditional model, class labels y ``(B,)``. Returns a video
    ``(B, 3, 16 + 4 (T_z - 1), R, R)`` in [-1, 1]. See :class:`G3ANConfig` for the arguments.

    ``checkpoint_levels`` (an attribute set by the trainer, not part of the architecture; 0 by default)
    runs the last that many G3 levels under activation checkpointing when autograd is on. Each such level,
    each half (temporal, spatial) of an F-SA that follows one of them, and the last level's spatial fusion
    with ``to_rgb`` keep only their inputs; backward recomputes the rest, one piece at a time. Outputs and
    gradients are the same; memory drops, and time grows by one more forward of those levels.
    """

    appearance_latent = "z_a"
    motion_latent = "z_m"
    #: G3 levels, counted from the output, whose activations backward recomputes (0: none)
    checkpoint_levels: int = 0

    def __init__(
        self,
        *,
        dim_z_a: int = 128,
        dim_z_m: int = 10,
        ch: int = 64,
        conv_type: str = "1p2d",
        fsa_level: int | None = 3,
        fsa_layout: str = "correct",
        use_spatial: bool = True,
        use_temporal: bool = True,
        resolution: int = 64,
        num_frames: int = 16,
        num_classes: int = 0,
        init: str = "reference",
    ) -> None:
        super().__init__()
        self.dim_z_a, self.dim_z_m, self.num_classes = dim_z_a, dim_z_m, num_classes
        self.resolution, self.default_frames = resolution, num_frames
        self.use_spatial, self.use_temporal = use_spatial, use_temporal
        self.fsa_level = fsa_level
        plan = level_plan(ch, resolution)
        k = num_classes
        self.levels = nn.ModuleList()
        for i, p in enumerate(plan):
            if i == 0:
                in_s = dim_z_a
                in_t = dim_z_m + k
                in_v = dim_z_a + dim_z_m + (0 if use_temporal else k)
            else:
                prev = plan[i - 1]["out"]
                in_s, in_t = prev, prev
                in_v = prev * (2 if use_spatial else 1)
            kw = {key: p[key] for key in ("k_s", "s_s", "p_s", "k_t", "s_t", "p_t")}
            self.levels.append(
                G3(in_s if use_spatial else 0, in_v, in_t if use_temporal else 0, p["out"], conv_type=conv_type, **kw)
            )
        fused = [p["out"] * (2 if use_spatial else 1) for p in plan]
        self.fsa = FSA(fused[fsa_level], fsa_layout) if fsa_level is not None else None
        self.to_rgb = nn.Sequential(FrameConv3d(fused[-1], 3, (1, 3, 3), 1, (0, 1, 1)), nn.Tanh())
        apply_init(self, init)

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        return {"z_a": (self.dim_z_a,), "z_m": (self.dim_z_m, self.latent_steps(num_frames or self.default_frames))}

    @staticmethod
    def latent_steps(num_frames: int) -> int:
        """T_z for a video of ``num_frames`` frames (16 + 4 (T_z - 1)); a clear error for other lengths."""
        if num_frames < 16 or (num_frames - 16) % 4:
            raise ValueError(f"G3AN makes videos of 16 + 4k frames (16, 20, 24, ...), not {num_frames}")
        return (num_frames - 16) // 4 + 1

    def valid_frames(self, num_frames: int) -> bool:
        return num_frames >= 16 and (num_frames - 16) % 4 == 0

    def forward(self, z_a: torch.Tensor, z_m: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape("z_a", z_a, (None, self.dim_z_a))
        b = z_a.shape[0]
        if z_m.ndim == 2:
            z_m = z_m.unsqueeze(-1)
        assert_shape("z_m", z_m, (b, self.dim_z_m, None))
        self.check_labels(y, b)
        t_z = z_m.shape[2]
        if t_z < 1:
            raise ShapeError("z_m needs at least one latent time step")
        z_m = z_m.to(z_a.dtype)
        if y is not None:
            classes = one_hot(y.to(z_a.device), self.num_classes, z_a.dtype)  # (B, K)
            z_m = torch.cat([z_m, classes[:, :, None].expand(-1, -1, t_z)], 1)  # (B, M + K, T_z)
        h_s = z_a[:, :, None, None, None]  # (B, A, 1, 1, 1)
        h_t = z_m[:, :, :, None, None]  # (B, M [+K], T_z, 1, 1)
        if self.use_temporal:
            h_v = torch.cat([h_s.expand(-1, -1, t_z, -1, -1), z_m[:, : self.dim_z_m, :, None, None]], 1)
        else:  # without G_T the class vector (if any) enters through the video stream
            h_v = torch.cat([h_s.expand(-1, -1, t_z, -1, -1), h_t], 1)
        video = self._decode(h_s, h_v, h_t)
        assert_shape("G3AN output", video, (b, 3, 4 * (t_z + 3), self.resolution, self.resolution))
        return video

    def _decode(self, h_s: torch.Tensor, h_v: torch.Tensor, h_t: torch.Tensor) -> torch.Tensor:
        """The G3 levels, F-SA and ``to_rgb``, the last ``checkpoint_levels`` levels under checkpointing."""
        last = len(self.levels) - 1
        first_recomputed = last + 1 - self.checkpoint_levels if torch.is_grad_enabled() else last + 1
        for i, level in enumerate(self.levels[:last]):
            if i < first_recomputed:
                h_s, h_v, h_t = level(h_s, h_v, h_t)
                if i == self.fsa_level:
                    h_v = self.fsa(h_v)
            else:
                h_s, h_v, h_t = checkpointed(level, [level], h_s, h_v, h_t)
                if i == self.fsa_level:  # its two halves apart: each keeps one tensor, recomputes the rest
                    h_v = checkpointed(self.fsa.tsa, [self.fsa.tsa], h_v)
                    h_v = checkpointed(self.fsa.ssa, [self.fsa.ssa], h_v)
        # the last level's streams, then its spatial fusion and to_rgb (apart when recomputed)
        if last < first_recomputed:
            h_s, h_v, _ = self.levels[last].streams(h_s, h_v, h_t)
            return self._head(h_s, h_v)
        h_s, h_v, _ = checkpointed(self.levels[last].streams, [self.levels[last]], h_s, h_v, h_t)
        return checkpointed(self._head, [self.fsa] if self.fsa_level == last else [], h_s, h_v)

    def _head(self, h_s: torch.Tensor | None, h_v: torch.Tensor) -> torch.Tensor:
        """The last level's spatial fusion, F-SA if it follows that level, ``to_rgb``: ``(B, 3, T, R, R)``.

        Without F-SA there, the fused tensor ``[h_s, h_v]`` is never built: ``to_rgb``'s convolution takes
        h_s (once per video) and h_v apart (:meth:`~g3an.models.blocks.FrameConv3d.forward_concat`)."""
        last = len(self.levels) - 1
        conv, tanh = self.to_rgb
        if self.levels[last].conv_s is not None and self.fsa_level != last:
            return tanh(conv.forward_concat(h_s, h_v))
        h_v = self.levels[last].concat(h_s, h_v)
        if self.fsa_level == last:
            h_v = self.fsa(h_v)
        return self.to_rgb(h_v)


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class _ClassConditionedStack(nn.Module):
    """A ``net`` of conv / LeakyReLU pairs ending in a conv to one logit, optionally class-conditional.

    ``d_class="projection"`` adds ``<embed(y), sum of the last features over positions>`` to the logit (the
    projection discriminator of Miyato & Koyama 2018, with a spectrally normalised embedding);
    ``"concat"`` concatenates a one-hot class map after the first conv pair, as ImaGINator (the same
    authors' conditional video GAN). G3AN's own conditional discriminators were never released; the
    projection is the default because a concatenated map was measured to be ignored (docs/architecture.md).
    """

    num_classes: int = 0
    d_class: str = "projection"

    def _conditioning(self, num_classes: int, d_class: str) -> int:
        """Record the class input; returns the extra input channels of the conv after the first pair."""
        if d_class not in CLASS_INPUTS_D:
            raise ValueError(f"d_class must be one of {', '.join(CLASS_INPUTS_D)}, got {d_class!r}")
        self.num_classes, self.d_class = num_classes, d_class
        return num_classes if d_class == "concat" else 0

    def _projection(self, features: int) -> None:
        """The class embedding of a projection discriminator whose last features have ``features`` channels."""
        if self.num_classes and self.d_class == "projection":
            self.embed = spectral_norm(nn.Embedding(self.num_classes, features))

    def _run(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``(B,)`` logits."""
        if self.num_classes and y is None:
            raise ValueError(f"this discriminator is conditional on {self.num_classes} classes: pass y")
        if not self.num_classes and y is not None:
            raise ValueError("this discriminator is unconditional: do not pass class labels y")
        concat = self.num_classes and self.d_class == "concat"
        *body, last = self.net
        for i, layer in enumerate(body):
            x = layer(x)
            if i == 1 and concat:
                x = torch.cat([x, class_maps(one_hot(y.to(x.device), self.num_classes, x.dtype), x)], 1)
        logits = last(x).flatten()
        if self.num_classes and self.d_class == "projection":
            one_hot(y, self.num_classes, x.dtype)  # range check with a clear message
            pooled = x.flatten(2).sum(2)  # (B, C)
            logits = logits + (self.embed(y.to(x.device).long()) * pooled).sum(1)
        return logits


class VideoDiscriminator2p1d(_ClassConditionedStack):
    """D_V of the reference code: (2+1)D spectrally normalised convs, LeakyReLU 0.2, one raw logit per video.

    Pairs of spatial (1,4,4)/stride 2 and unpadded temporal (4,1,1) convs, a (1,4,4) valid spatial conv and a
    final temporal conv over what is left of time (kernel 4 at 64x64 and 16 frames, as the reference).

    Args:
        ch: base width (64 in the paper).
        resolution: input height and width (32, 64, 128).
        num_frames: input frames; the final temporal kernel consumes what is left of them.
        num_classes: K > 0 concatenates a one-hot class map after the first conv.
    """

    def __init__(
        self, ch: int = 64, resolution: int = 64, num_frames: int = 16, num_classes: int = 0,
        d_class: str = "projection",
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_frames, self.resolution = num_frames, resolution
        extra = self._conditioning(num_classes, d_class)
        stages = log2_int(resolution, "resolution") - 2
        layers: list[nn.Module] = []
        c_in, t = 3, num_frames
        for i in range(stages):
            c_out = ch * 2 ** min(i, 3)
            c_t_in = c_out + (extra if i == 0 else 0)
            layers += [spectral_norm(FrameConv3d(c_in, c_out, (1, 4, 4), (1, 2, 2), (0, 1, 1))), _lrelu()]
            if t - 3 < 1:
                raise ValueError(f"D_V (2+1)D needs more than {num_frames} frames at resolution {resolution}")
            layers += [spectral_norm(nn.Conv3d(c_t_in, c_out, (4, 1, 1))), _lrelu()]
            c_in, t = c_out, t - 3
        layers += [spectral_norm(FrameConv3d(c_in, c_in, (1, 4, 4))), _lrelu()]
        layers += [spectral_norm(nn.Conv3d(c_in, 1, (t, 1, 1)))]
        self.net = nn.Sequential(*layers)
        self._projection(c_in)

    def forward(self, video: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape("D_V input", video, (None, 3, self.num_frames, self.resolution, self.resolution))
        return self._run(video, y)  # (B,)


class VideoDiscriminator3d(_ClassConditionedStack):
    """D_V as the paper describes it: a 3D CNN (k4 s2 p1 convs over T, H, W), spectral norm, LeakyReLU 0.2.

    The paper gives no layer table; this one mirrors the reference D_V's widths: ``ch, 2ch, 4ch, 8ch``
    with time and space halved per stage (16 -> 1 frames over four stages), then a valid
    ``(T', 4, 4)`` conv to one logit.
    """

    def __init__(
        self, ch: int = 64, resolution: int = 64, num_frames: int = 16, num_classes: int = 0,
        d_class: str = "projection",
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_frames, self.resolution = num_frames, resolution
        extra = self._conditioning(num_classes, d_class)
        stages = log2_int(resolution, "resolution") - 2
        layers: list[nn.Module] = []
        c_in, t = 3, num_frames
        for i in range(stages):
            c_out = ch * 2 ** min(i, 3)
            st = 2 if t >= 2 else 1
            kt, pt = (4, 1) if st == 2 else (3, 1)
            layers += [spectral_norm(nn.Conv3d(c_in + (extra if i == 1 else 0), c_out, (kt, 4, 4),
                                               (st, 2, 2), (pt, 1, 1))), _lrelu()]  # fmt: skip
            c_in, t = c_out, (t + 2 * pt - kt) // st + 1
        layers += [spectral_norm(nn.Conv3d(c_in, 1, (t, 4, 4)))]
        self.net = nn.Sequential(*layers)
        self._projection(c_in)

    def forward(self, video: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape("D_V input", video, (None, 3, self.num_frames, self.resolution, self.resolution))
        return self._run(video, y)  # (B,)


class ImageDiscriminator(_ClassConditionedStack):
    """D_I of G3AN: spectrally normalised 2D convs k4 s2 p1 (``ch, 2ch, 4ch, 8ch``), LeakyReLU 0.2, a valid
    k4 conv to one raw logit per frame. Input ``(B, 3, R, R)``."""

    def __init__(self, ch: int = 64, resolution: int = 64, num_classes: int = 0, d_class: str = "projection") -> None:
        super().__init__()
        self.resolution = resolution
        extra = self._conditioning(num_classes, d_class)
        stages = log2_int(resolution, "resolution") - 2
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(stages):
            c_out = ch * 2 ** min(i, 3)
            layers += [spectral_norm(nn.Conv2d(c_in + (extra if i == 1 else 0), c_out, 4, 2, 1)), _lrelu()]
            c_in = c_out
        layers += [spectral_norm(nn.Conv2d(c_in, 1, 4, 1, 0))]
        self.net = nn.Sequential(*layers)
        self._projection(c_in)

    def forward(self, frames: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape("D_I input", frames, (None, 3, self.resolution, self.resolution))
        return self._run(frames, y)  # (B,)


def select_frames(video: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Frame ``index[b]`` of every video: ``(B, C, T, H, W)``, ``(B,)`` -> ``(B, C, H, W)``."""
    assert_shape("video", video, (None, None, None, None, None))
    assert_shape("frame index", index, (video.shape[0],))
    idx = index.to(video.device).view(-1, 1, 1, 1, 1).expand(-1, video.shape[1], 1, *video.shape[3:])
    return video.gather(2, idx).squeeze(2)


class G3ANDiscriminator(VideoDiscriminator):
    """G3AN's two-stream discriminator: D_V on whole clips and D_I on one frame per clip.

    ``forward(video, y=None, frame_index=None)`` returns ``{"video": (B,), "image": (B,)}`` raw logits;
    ``frame_index`` ``(B,)`` picks the frame D_I sees in each video (uniformly random when ``None``).
    """

    heads = ("video", "image")

    def __init__(
        self,
        *,
        ch: int = 64,
        resolution: int = 64,
        num_frames: int = 16,
        num_classes: int = 0,
        video_d: str = "2p1d",
        init: str = "reference",
        d_class: str = "projection",
    ) -> None:
        super().__init__()
        self.num_classes, self.num_frames = num_classes, num_frames
        video_cls = {"2p1d": VideoDiscriminator2p1d, "3d": VideoDiscriminator3d}[video_d]
        self.video = video_cls(ch, resolution, num_frames, num_classes, d_class)
        self.image = ImageDiscriminator(ch, resolution, num_classes, d_class)
        apply_init(self, init)  # both schemes give N(0, 0.02) to every D conv, as the reference

    def forward(
        self, video: torch.Tensor, y: torch.Tensor | None = None, frame_index: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if frame_index is None:
            frame_index = torch.randint(video.shape[2], (video.shape[0],), device=video.device)
        return {"video": self.video(video, y), "image": self.image(select_frames(video, frame_index), y)}


def _upgrade_saved(config: dict) -> dict:
    """Conditional models saved before ``d_class`` existed have concatenating discriminators."""
    if "d_class" not in config:
        config["d_class"] = "concat" if config.get("num_classes") else "projection"
    return config


def _build_generator(cfg: G3ANConfig) -> G3ANGenerator:
    return G3ANGenerator(
        dim_z_a=cfg.dim_z_a, dim_z_m=cfg.dim_z_m, ch=cfg.ch, conv_type=cfg.conv_type, fsa_level=cfg.fsa_level,
        fsa_layout=cfg.fsa_layout, use_spatial=cfg.use_spatial, use_temporal=cfg.use_temporal,
        resolution=cfg.resolution, num_frames=cfg.num_frames, num_classes=cfg.num_classes, init=cfg.init,
    )  # fmt: skip


def _build_discriminator(cfg: G3ANConfig) -> G3ANDiscriminator:
    return G3ANDiscriminator(
        ch=cfg.ch_d, resolution=cfg.resolution, num_frames=cfg.num_frames, num_classes=cfg.num_classes,
        video_d=cfg.video_d, init=cfg.init, d_class=cfg.d_class,
    )  # fmt: skip


register_model(
    ModelEntry(
        name="g3an",
        config_cls=G3ANConfig,
        build_generator=_build_generator,
        build_discriminator=_build_discriminator,
        loss="g3an",
        description="G3AN (CVPR 2020): three-stream generator with F-SA, video + image discriminators",
        upgrade_saved=_upgrade_saved,
    )
)
