"""3D ResNeXt-101 of Hara et al. (CVPR 2018), the feature extractor of G3AN's video FID and evan's IS.

Written from the architecture description in spec metrics.md section 1.1 with the module names of the
published checkpoints (``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1,2,3}`` / ``bn{1,2,3}``,
``layer{1..4}.0.downsample.{0,1}``, ``fc``) so ``resnext-101-kinetics.pth`` and
``resnext-101-kinetics-ucf101_split1.pth`` load by name. Input: ``(B, 3, 16, 112, 112)`` preprocessed
by :func:`g3an.metrics.preprocess.preprocess_g3an_resnext`; features: the 2048-d output of the final
average pool; logits: ``fc`` of those features (400 Kinetics or 101 UCF-101 classes).
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from g3an.metrics.protocols import sha256_file
from g3an.shapes import assert_shape

__all__ = [
    "HaraCheckpoint",
    "HaraCheckpointError",
    "ResNeXt3D",
    "ResNeXtBottleneck",
    "ResNeXtOutput",
    "load_hara_checkpoint",
    "resnext101",
]

EXPECTED_ARCH = "resnext-101"


class ResNeXtBottleneck(nn.Module):
    """ResNeXt bottleneck (expansion 2): 1x1x1, grouped 3x3x3 carrying the stride, 1x1x1, residual.

    Args:
        in_channels: input channels.
        planes: stage width; the block outputs ``2 * planes`` channels and its grouped convolution
            has ``cardinality * planes // 32`` channels.
        cardinality: number of groups of the 3x3x3 convolution.
        stride: spatio-temporal stride of the 3x3x3 convolution (and of the projection shortcut).
        downsample: projection shortcut (conv 1x1x1 + BN) or ``None`` for the identity.
    """

    expansion = 2

    def __init__(
        self, in_channels: int, planes: int, cardinality: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        mid = cardinality * (planes // 32)
        self.conv1 = nn.Conv3d(in_channels, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


@dataclass(frozen=True)
class ResNeXtOutput:
    """Outputs of one forward pass.

    Attributes:
        features: ``(B, 2048)`` output of the final average pool (the FID feature).
        logits: ``(B, num_classes)`` output of ``fc`` (softmax gives the IS probabilities).
    """

    features: torch.Tensor
    logits: torch.Tensor


class ResNeXt3D(nn.Module):
    """Hara et al.'s 3D ResNeXt with shortcut type B (CVPR 2018 code's ``resnext.py``, re-implemented).

    Args:
        layers: bottleneck blocks per stage; ``(3, 4, 23, 3)`` is ResNeXt-101.
        cardinality: groups of every 3x3x3 convolution (32 in the published models).
        num_classes: classifier outputs: 400 (Kinetics) or 101 (UCF-101 fine-tuned).
        sample_size: frame height/width in pixels the fixed average pool is sized for (112).
        sample_duration: clip length in frames the fixed average pool is sized for (16).
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 23, 3),
        cardinality: int = 32,
        num_classes: int = 400,
        sample_size: int = 112,
        sample_duration: int = 16,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self._in_channels = 64
        self.layer1 = self._make_stage(128, layers[0], cardinality, stride=1)
        self.layer2 = self._make_stage(256, layers[1], cardinality, stride=2)
        self.layer3 = self._make_stage(512, layers[2], cardinality, stride=2)
        self.layer4 = self._make_stage(1024, layers[3], cardinality, stride=2)
        self.pool_size = (math.ceil(sample_duration / 16), math.ceil(sample_size / 32), math.ceil(sample_size / 32))
        self.avgpool = nn.AvgPool3d(self.pool_size, stride=1)
        self.feature_dim = 1024 * ResNeXtBottleneck.expansion
        self.fc = nn.Linear(self.feature_dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_stage(self, planes: int, blocks: int, cardinality: int, stride: int) -> nn.Sequential:
        out_channels = planes * ResNeXtBottleneck.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv3d(self._in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )
        stage = [ResNeXtBottleneck(self._in_channels, planes, cardinality, stride, downsample)]
        self._in_channels = out_channels
        stage += [ResNeXtBottleneck(out_channels, planes, cardinality) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """2048-d features of preprocessed clips ``(B, 3, T, H, W)`` -> ``(B, 2048)``.

        The fixed ``AvgPool3d(pool_size, stride 1)`` of the reference is applied when the ``layer4``
        map is at least ``pool_size`` (exactly the reference's function for 16x112x112 input); any
        map that is then not 1x1x1 is averaged to 1x1x1, as G3AN's ``fid.py`` does. Smaller inputs
        (used by the tests) are averaged directly.
        """
        assert_shape("clips", x, (None, 3, None, None, None))
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if all(s >= k for s, k in zip(x.shape[2:], self.pool_size)):
            x = self.avgpool(x)
        if x.shape[2:] != (1, 1, 1):
            x = F.adaptive_avg_pool3d(x, 1)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> ResNeXtOutput:
        """Features and logits of preprocessed clips ``(B, 3, T, H, W)``."""
        feats = self.features(x)
        return ResNeXtOutput(features=feats, logits=self.fc(feats))


def resnext101(num_classes: int = 400, sample_size: int = 112, sample_duration: int = 16) -> ResNeXt3D:
    """ResNeXt-101 (cardinality 32, blocks 3-4-23-3) with 48,340,816 parameters for 400 classes."""
    return ResNeXt3D((3, 4, 23, 3), 32, num_classes, sample_size, sample_duration)


# ---------------------------------------------------------------------------------------------------
# Loading the published checkpoints.


class HaraCheckpointError(ValueError):
    """A file is not a usable Hara ResNeXt-101 checkpoint; the message says why and what to do."""


@dataclass
class HaraCheckpoint:
    """A loaded ResNeXt-101 and where it came from.

    Attributes:
        model: the network in eval mode on the CPU.
        sha256: SHA-256 of the weights file (record it with every result).
        num_classes: classes of the ``fc`` head (400 or 101).
        arch: the ``arch`` entry of the file, ``None`` for a bare state dict.
        epoch: the ``epoch`` entry of the file, ``None`` when absent.
        path: the file read.
    """

    model: ResNeXt3D
    sha256: str
    num_classes: int
    arch: str | None
    epoch: int | None
    path: Path


def _torch_load(path: Path) -> Any:
    with open(path, "rb") as f:
        head = f.read(2)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        raise HaraCheckpointError(
            f"{path}: not a PyTorch checkpoint (it starts with {head!r}: neither a zip archive nor a pickle)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        reason = f"unsupported global {found.group(1)}" if found else str(err).splitlines()[-1][:200]
        raise HaraCheckpointError(
            f"{path}: torch.load(weights_only=True) refused the file ({reason}): either it holds Python objects "
            "besides tensors and plain containers, so it is not a published Hara checkpoint, or it is truncated "
            "or corrupt (compare its SHA-256 with the published file's)"
        ) from err
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError) as err:
        raise HaraCheckpointError(
            f"{path}: a truncated or corrupt PyTorch file (download it again and compare its SHA-256): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from err


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None, int | None]:
    arch, epoch = None, None
    if isinstance(obj, Mapping) and "state_dict" in obj:
        arch = obj.get("arch")
        epoch = obj.get("epoch")
        if arch is not None and arch != EXPECTED_ARCH:
            raise HaraCheckpointError(
                f"{path}: arch is {arch!r}, not {EXPECTED_ARCH!r}: this loader only builds Hara's ResNeXt-101 "
                "(use resnext-101-kinetics.pth or resnext-101-kinetics-ucf101_split1.pth)"
            )
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise HaraCheckpointError(
            f"{path}: not a checkpoint: expected a dict with 'state_dict' or a state dict of tensors, "
            f"got {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise HaraCheckpointError(f"{path}: not a state dict: entries {bad[:3]} are not named tensors")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return state, arch, epoch if isinstance(epoch, int) else None


def _check_keys(state: Mapping[str, torch.Tensor], model: ResNeXt3D, path: Path) -> None:
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    found = {k for k in state if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - found)
    unexpected = sorted(found - set(expected))
    if missing and not any(".downsample." in k for k in state):
        raise HaraCheckpointError(
            f"{path}: no 'downsample' projection weights: this looks like a shortcut type A model "
            "(ResNet-18/34); ResNeXt-101 checkpoints use shortcut type B"
        )
    if missing or unexpected:
        raise HaraCheckpointError(
            f"{path}: parameter names do not match Hara's ResNeXt-101: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    wrong = [(k, tuple(state[k].shape), tuple(s)) for k, s in expected.items() if state[k].shape != s]
    if wrong:
        name, got, want = wrong[0]
        raise HaraCheckpointError(
            f"{path}: {len(wrong)} tensors have the wrong shape, e.g. {name}: {got} in the file, {want} in "
            "ResNeXt-101 (cardinality 32, shortcut B); is this another depth or a ResNet?"
        )


def load_hara_checkpoint(path: str | Path, num_classes: int | None = None) -> HaraCheckpoint:
    """Load ``resnext-101-kinetics.pth`` / ``resnext-101-kinetics-ucf101_split1.pth`` (or a bare state dict).

    Accepts the official ``{'epoch', 'arch', 'state_dict', 'optimizer'}`` dict with ``module.``-prefixed
    keys (saved from ``nn.DataParallel``) or a bare state dict with or without the prefix. Uses
    ``torch.load(map_location='cpu', weights_only=True)``, checks ``arch == 'resnext-101'`` when present,
    ignores the absent ``num_batches_tracked`` buffers of the PyTorch 0.3 files and validates every
    name and shape before loading. Nothing is downloaded.

    Args:
        path: the weights file.
        num_classes: expected head size (400 or 101); ``None`` takes it from ``fc.weight``.

    Returns:
        A :class:`HaraCheckpoint` with the model in eval mode and the file's SHA-256.

    Raises:
        FileNotFoundError: no such file.
        HaraCheckpointError: not a checkpoint, truncated, wrong arch, shortcut type, class count or shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; Hara's ResNeXt-101 weights are not downloadable here: get "
            "resnext-101-kinetics.pth (or resnext-101-kinetics-ucf101_split1.pth) from the authors' release and "
            "pass its path"
        )
    state, arch, epoch = _extract_state_dict(_torch_load(path), path)
    fc = state.get("fc.weight")
    if fc is None or fc.ndim != 2:
        raise HaraCheckpointError(f"{path}: no 2-D 'fc.weight' tensor: not a ResNeXt-101 classifier checkpoint")
    file_classes = int(fc.shape[0])
    if num_classes is not None and num_classes != file_classes:
        raise HaraCheckpointError(
            f"{path}: the file has a {file_classes}-class head (fc.weight {tuple(fc.shape)}), but {num_classes} "
            "classes were requested (400 = Kinetics resnext-101-kinetics.pth, 101 = UCF-101 "
            "resnext-101-kinetics-ucf101_split1.pth)"
        )
    with torch.device("meta"):  # no allocation and no random init: every tensor comes from the file
        model = resnext101(num_classes=file_classes)
    _check_keys(state, model, path)
    full = dict(state)
    for name in model.state_dict():
        if name.endswith("num_batches_tracked") and name not in full:
            full[name] = torch.zeros((), dtype=torch.long)
    model.load_state_dict(full, strict=True, assign=True)
    model.eval()
    return HaraCheckpoint(
        model=model, sha256=sha256_file(path), num_classes=file_classes, arch=arch, epoch=epoch, path=path
    )
