"""Clip loader: random fixed-length clips of a prepared dataset as ``(3, T, H, W)`` tensors in ``[-1, 1]``.

G3AN (``dataset.py::UVA`` of the authors' code, spec/g3an.md section 4.2) draws a temporal step per clip
and a uniform start, and maps pixels to ``[-1, 1]``; the paper uses steps 1..4. This loader does the
same from the memory-mapped frames of :mod:`g3an.data.format`, with the choices made explicit:

* step: drawn uniformly from ``steps``; if the video is too short for it, the largest step of ``steps``
  that fits is used. A clip with step ``s`` spans ``(T - 1) * s + 1`` frames.
* start: uniform over every start at which the clip fits.
* flip: with ``flip=True`` half of the clips are mirrored left-right, every frame alike.
* size: when the stored frames differ from ``size``, the clip is resized (bilinear, antialiased, on the
  uint8 frames) so it covers ``size`` with its aspect kept and centre-cropped, as the paper does for Weizmann.
* pixels: ``x / 127.5 - 1``, the inverse of ``(x + 1) / 2 * 255`` used when writing media.

The random choices of an item are a pure function of ``(seed, epoch, index)``: the same with any
number of DataLoader workers, any sampler, and any number of processes.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from g3an.data.format import PreparedDataset, open_dataset

__all__ = ["ClipDataset", "ClipSpec"]

_PERSON = b"g3an-clip"  # keeps these draws apart from any other hash of (seed, epoch, index)


@dataclass(frozen=True)
class ClipSpec:
    """Where one clip comes from.

    Attributes:
        video: index of the video in the prepared dataset.
        start: first frame.
        step: temporal stride (frames).
        flip: mirrored left-right.
    """

    video: int
    start: int
    step: int
    flip: bool

    def frame_indices(self, num_frames: int) -> np.ndarray:
        """Frame numbers of the clip within its video."""
        return self.start + self.step * np.arange(num_frames)


class ClipDataset(Dataset):
    """Random clips of a prepared dataset.

    Indexing with an integer ``i`` uses the epoch set by :meth:`set_epoch`; indexing with a pair
    ``(epoch, i)`` (as the training loop's sampler does) names the epoch explicitly, which also works
    with persistent DataLoader workers.

    Args:
        dataset_or_path: a :class:`~g3an.data.format.PreparedDataset` or its directory.
        num_frames: frames per clip ``T``.
        steps: temporal strides to draw from (the paper: 1, 2, 3, 4).
        size: output frame size: an int (square), ``(height, width)``, or ``None`` for the stored size.
        flip: mirror half of the clips left-right.
        split: only videos of this split (``None``: all).
        seed: seed of the clip sampling.

    Attributes:
        indices: prepared-dataset index of each item.
        skipped: videos of the split left out because they are shorter than a clip at the smallest step.
        classes: class names of the dataset.
    """

    def __init__(self, dataset_or_path: PreparedDataset | str | os.PathLike, num_frames: int = 16,
                 steps: Sequence[int] = (1, 2, 3, 4), size: int | tuple[int, int] | None = None, flip: bool = False,
                 split: str | None = None, seed: int = 0) -> None:  # fmt: skip
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        steps = tuple(sorted({int(s) for s in steps}))
        if not steps or steps[0] < 1:
            raise ValueError(f"steps must be positive integers, got {steps}")
        data = dataset_or_path if isinstance(dataset_or_path, PreparedDataset) else open_dataset(dataset_or_path)
        if size is None:
            out_size = (data.height, data.width)
        elif isinstance(size, int):
            out_size = (size, size)
        else:
            out_size = (int(size[0]), int(size[1]))
        if min(out_size) < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.data, self.num_frames, self.steps, self.size, self.flip = data, int(num_frames), steps, out_size, flip
        self.split, self.seed, self.epoch = split, int(seed), 0
        candidates = np.asarray(data.split(split), dtype=np.int64)
        lengths = data.num_frames[candidates]
        usable = lengths >= (self.num_frames - 1) * steps[0] + 1
        self.indices = candidates[usable]
        self.skipped = int((~usable).sum())
        self.classes = data.classes
        if self.skipped:
            warnings.warn(
                f"{data.path}: {self.skipped} of {len(candidates)} videos{_of(split)} are shorter than a "
                f"{self.num_frames}-frame clip at step {steps[0]} and are skipped",
                stacklevel=2,
            )
        if len(self.indices) == 0:
            raise ValueError(f"{data.path}: no video{_of(split)} has enough frames for a {self.num_frames}-frame clip")
        self._lengths = data.num_frames[self.indices]
        self._offsets = data.offsets[self.indices]
        self._labels = data.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        """Class index of each item (``-1``: unlabeled)."""
        return self._labels

    def set_epoch(self, epoch: int) -> None:
        """Epoch used by integer indexing (call it each epoch, like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def clip_spec(self, epoch: int, i: int) -> ClipSpec:
        """The clip of item ``i`` at ``epoch``: a pure function of ``(seed, epoch, i)``."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} clips")
        # Three 64-bit draws from a keyed hash: uniform up to a bias below 2**-40 for any realistic range.
        digest = hashlib.blake2b(f"{self.seed}:{int(epoch)}:{int(i)}".encode(), digest_size=24, person=_PERSON).digest()
        r_step, r_start, r_flip = (int.from_bytes(digest[k : k + 8], "little") for k in (0, 8, 16))
        n = int(self._lengths[i])
        step = self.steps[r_step % len(self.steps)]
        if (self.num_frames - 1) * step + 1 > n:
            step = max(s for s in self.steps if (self.num_frames - 1) * s + 1 <= n)
        start = r_start % (n - (self.num_frames - 1) * step)
        flip = bool(r_flip & 1) if self.flip else False
        return ClipSpec(video=int(self.indices[i]), start=start, step=step, flip=flip)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))
        spec = self.clip_spec(epoch, i)
        frames = self.data.array[self._offsets[i] + spec.frame_indices(self.num_frames)]  # (T, H, W, 3) uint8 copy
        video = torch.from_numpy(frames).permute(3, 0, 1, 2)  # (3, T, H, W) view
        if video.shape[-2:] != self.size:
            video = _resize_center_crop(video, self.size)
        video = video.contiguous()
        if spec.flip:
            video = video.flip(-1)
        video = video.float().div_(127.5).sub_(1.0)
        return {
            "video": video,
            "label": torch.tensor(int(self._labels[i]), dtype=torch.int64),
            "index": torch.tensor(spec.video, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return (f"ClipDataset({str(self.data.path)!r}, clips={len(self)}, num_frames={self.num_frames}, "
                f"steps={self.steps}, size={self.size}, flip={self.flip}, split={self.split!r}, "
                f"skipped={self.skipped})")  # fmt: skip


def _of(split: str | None) -> str:
    return f" of split {split!r}" if split is not None else ""


def _resize_center_crop(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``(3, T, H, W)`` resized so it covers ``size`` with its aspect kept, then centre-cropped to ``size``.

    Resizing is bilinear with antialiasing, on uint8 channels-last frames (PyTorch's fast path, rounded to
    uint8 like any resized image).
    """
    _, _, h, w = video.shape
    th, tw = size
    scale = max(th / h, tw / w)
    rh, rw = max(th, round(h * scale)), max(tw, round(w * scale))
    frames = video.transpose(0, 1).contiguous(memory_format=torch.channels_last)  # (T, 3, H, W)
    if (rh, rw) != (h, w):
        frames = F.interpolate(frames, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (rh - th) // 2, (rw - tw) // 2
    return frames[:, :, top : top + th, left : left + tw].transpose(0, 1)  # (3, T, th, tw)
