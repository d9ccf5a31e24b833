"""Turning uint8 videos into extractor input, exactly as the reference protocols do.

* G3AN / Hara ResNeXt-101 (spec metrics.md sections 1.3 and 1.6): 16 consecutive centre frames
  (``start = n//2 - 8``), every frame resized to 112x112 by PIL bilinear on uint8 (what torchvision's
  ``Resize`` does on PIL images; the result is rounded to uint8 by PIL), kept in 0-255, minus the
  ActivityNet mean ``[114.7748, 107.7354, 99.4750]`` (RGB), std 1.
  Videos shorter than 16 frames are loop-padded as Hara's ``LoopPadding`` and evan do: the frames
  are repeated from the first one (``0, 1, .., n-1, 0, 1, ..``) until 16 are collected. (G3AN's
  own loader would compute a negative start for them; its generated and real clips never are.)
* I3D / FVD (sections 2.1-2.3): every frame resized to 224x224 with ``F.interpolate`` bilinear,
  ``align_corners=False``, no antialiasing, on float 0-255 values, then scaled by ``x / 127.5 - 1``
  to ``[-1, 1]`` (TATS / StyleGAN-V; the TF1 reference used ``tf.image.resize_bilinear``, which
  samples differently).

Videos are ``(B, C, T, H, W)`` with ``C = 3`` RGB, uint8, as decoded from files; generator output
in ``[-1, 1]`` is converted with :func:`float_to_uint8` first, as the protocols quantise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

from g3an.metrics.protocols import ACTIVITYNET_MEAN
from g3an.shapes import assert_shape

__all__ = [
    "ACTIVITYNET_MEAN",
    "center_clip_indices",
    "float_to_uint8",
    "preprocess_g3an_resnext",
    "preprocess_i3d",
    "resize_frames_pil_bilinear",
]


def center_clip_indices(num_frames: int, clip_len: int = 16) -> np.ndarray:
    """Frame indices of the centre clip: ``start = num_frames // 2 - clip_len // 2``, then consecutive.

    Args:
        num_frames: frames in the video (``>= 1``).
        clip_len: frames in the clip.

    Returns:
        int64 array of length ``clip_len``. Shorter videos are loop-padded from their first frame.
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"num_frames and clip_len must be >= 1, got {num_frames} and {clip_len}")
    if num_frames < clip_len:
        return np.arange(clip_len, dtype=np.int64) % num_frames
    start = num_frames // 2 - clip_len // 2
    return np.arange(start, start + clip_len, dtype=np.int64)


def float_to_uint8(videos: torch.Tensor, rounding: str = "truncate") -> torch.Tensor:
    """Map generator output in ``[-1, 1]`` to uint8 pixels, clamped to 0..255.

    Args:
        videos: float tensor, any shape.
        rounding: ``truncate``: ``floor(255 * (x + 1) / 2)`` (G3AN's ``x * 255`` then uint8 cast, with
            the project's ``(x + 1) / 2`` mapping instead of its per-batch min-max); ``round``:
            ``floor(127.5 * x + 128)`` (StyleGAN-V's fake-video conversion).
    """
    if not torch.is_floating_point(videos):
        raise TypeError(f"videos must be a float tensor in [-1, 1], got {videos.dtype}")
    if rounding == "truncate":
        scaled = (videos + 1.0) / 2.0 * 255.0
    elif rounding == "round":
        scaled = videos * 127.5 + 128.0
    else:
        raise ValueError(f"rounding must be 'truncate' or 'round', got {rounding!r}")
    return scaled.clamp(0.0, 255.0).floor().to(torch.uint8)


def _as_uint8_video_batch(videos: Any) -> torch.Tensor:
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(videos)
    if not isinstance(videos, torch.Tensor) or videos.dtype != torch.uint8:
        raise TypeError(
            "videos must be a uint8 tensor or array (B, 3, T, H, W); convert generator output with float_to_uint8"
        )
    assert_shape("videos", videos, (None, 3, None, None, None))
    return videos


def resize_frames_pil_bilinear(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 RGB frames ``(T, H, W, 3)`` to ``(T, size, size, 3)`` with PIL bilinear.

    This is what torchvision ``Resize((size, size))`` does on PIL images: PIL's bilinear filter
    (antialiased when shrinking), output rounded to uint8.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR))
    return out


def preprocess_g3an_resnext(
    videos: Any,
    *,
    num_frames: int = 16,
    size: int = 112,
    mean: Sequence[float] = ACTIVITYNET_MEAN,
) -> torch.Tensor:
    """G3AN's ResNeXt-101 input: centre clip, PIL bilinear resize, 0-255 minus the mean, std 1.

    Args:
        videos: uint8 ``(B, 3, T, H, W)`` RGB tensor or array, any ``T >= 1``, ``H``, ``W``.
        num_frames: clip length (16 for the published checkpoints).
        size: output height and width in pixels (112 for the published checkpoints).
        mean: per-channel RGB mean subtracted from the 0-255 values.

    Returns:
        float32 ``(B, 3, num_frames, size, size)`` on the CPU.
    """
    videos = _as_uint8_video_batch(videos)
    idx = torch.from_numpy(center_clip_indices(videos.shape[2], num_frames))
    clips = rearrange(videos.cpu().index_select(2, idx), "b c t h w -> b t h w c").numpy()
    resized = np.stack([resize_frames_pil_bilinear(np.ascontiguousarray(clip), size) for clip in clips])
    out = torch.from_numpy(resized).float() - torch.tensor(mean, dtype=torch.float32)
    return rearrange(out, "b t h w c -> b c t h w").contiguous()


def preprocess_i3d(videos: Any, *, size: int = 224) -> torch.Tensor:
    """I3D / FVD input: bilinear resize to ``size`` (``align_corners=False``), scaled to ``[-1, 1]``.

    Args:
        videos: uint8 ``(B, 3, T, H, W)`` RGB tensor or array; the clip is used as given (clip
            selection is the protocol runner's job). Stays on its device.
        size: output height and width (224 for the Kinetics I3D).

    Returns:
        float32 ``(B, 3, T, size, size)`` with values in ``[-1, 1]``.
    """
    videos = _as_uint8_video_batch(videos)
    b = videos.shape[0]
    frames = rearrange(videos.float(), "b c t h w -> (b t) c h w")
    if frames.shape[-2:] != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return rearrange(frames / 127.5 - 1.0, "(b t) c h w -> b c t h w", b=b).contiguous()
