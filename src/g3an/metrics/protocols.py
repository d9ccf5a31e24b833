"""Metric protocols by name, and the record every metric result is stored as (style rule 8).

A metric name carries its protocol (``fid5000_resnext101_g3an``, ``fvd2048_16f``, ...): the
extractor and its output layer, how many real and generated videos, which frames, how frames are
resized and normalised and how the covariance is normalised. :class:`MetricResult` stores the
value together with a snapshot of that protocol, the SHA-256 of the extractor weights, the sample
counts, the seed and the hashes of the generator checkpoint and of the dataset, as one JSON object.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "ExtractorSpec",
    "MetricProtocol",
    "MetricResult",
    "PreprocessSpec",
    "get_protocol",
    "list_protocols",
    "register_protocol",
    "sha256_file",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
METRIC_KINDS = ("fd", "is", "kvd")


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks of ``chunk_bytes`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ExtractorSpec:
    """The network that turns a preprocessed clip into a feature vector.

    Attributes:
        name: identifier used in results and in cache keys, e.g. ``resnext101_kinetics400``.
        architecture: the network definition, with the paper it comes from.
        weights_file: file name of the published weights the user supplies (or the weights store
            provides); its SHA-256 is recorded with every result.
        output: which output is used: ``avgpool`` (features before the classifier), ``logits``
            or ``probabilities`` (softmax of the classifier).
        feature_dim: length of the output vector.
    """

    name: str
    architecture: str
    weights_file: str
    output: str
    feature_dim: int

    def __post_init__(self) -> None:
        if self.output not in ("avgpool", "logits", "probabilities"):
            raise ValueError(f"unknown extractor output {self.output!r}")
        if self.feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {self.feature_dim}")


@dataclass(frozen=True)
class PreprocessSpec:
    """How decoded uint8 videos become extractor input.

    Attributes:
        name: identifier of the preprocessing function in :mod:`g3an.metrics.preprocess`.
        num_frames: frames per clip fed to the extractor.
        frame_step: temporal stride between the clip's frames (1 = consecutive).
        real_frames: how the clip is chosen in a real video: ``center`` (start ``n//2 - num_frames//2``,
            loop-padded when shorter), ``random_start`` (uniform start, shorter videos discarded).
        fake_frames: the same for generated videos: ``center`` or ``first`` (frames 0, 1, ...).
        size: output frame height and width in pixels.
        resize: resampling method: ``pil_bilinear_uint8`` (PIL bilinear on uint8 frames, output
            rounded to uint8) or ``torch_bilinear`` (``F.interpolate`` bilinear,
            ``align_corners=False``, no antialiasing, float).
        value_scale: pixel range fed to the network: ``0-255`` or ``-1..1``.
        mean: per-channel RGB mean subtracted after scaling, ``None`` for none.
        std: per-channel RGB divisor, ``None`` for none.
        fake_to_uint8: how generator output in ``[-1, 1]`` becomes uint8: ``truncate``
            (``floor(255 (x+1)/2)``) or ``round`` (``floor(127.5 x + 128)``, StyleGAN-V), clamped.
    """

    name: str
    num_frames: int
    frame_step: int
    real_frames: str
    fake_frames: str
    size: int
    resize: str
    value_scale: str
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    fake_to_uint8: str

    def __post_init__(self) -> None:
        if self.real_frames not in ("center", "random_start") or self.fake_frames not in ("center", "first"):
            raise ValueError(f"unknown frame selection {self.real_frames!r} / {self.fake_frames!r}")
        if self.resize not in ("pil_bilinear_uint8", "torch_bilinear"):
            raise ValueError(f"unknown resize method {self.resize!r}")
        if self.fake_to_uint8 not in ("truncate", "round"):
            raise ValueError(f"unknown uint8 conversion {self.fake_to_uint8!r}")
        if self.num_frames < 1 or self.frame_step < 1 or self.size < 1:
            raise ValueError("num_frames, frame_step and size must be >= 1")


@dataclass(frozen=True)
class MetricProtocol:
    """Everything that makes a metric value comparable to another one with the same name.

    Attributes:
        name: the metric name, lower-case ``[a-z0-9_]``, e.g. ``fvd2048_16f``.
        kind: ``fd`` (Fréchet distance), ``is`` (Inception Score) or ``kvd`` (kernel distance).
        extractor: the feature extractor.
        preprocessing: how clips are selected and normalised.
        num_fake: generated videos per evaluation.
        num_real: real videos; ``None`` means every video of ``real_split``.
        real_split: which part of the dataset the real statistics come from.
        cov_ddof: covariance normalisation of ``fd`` metrics: ``1`` for ``1/(N-1)``, ``0`` for ``1/N``.
        is_splits: split counts reported by ``is`` metrics; the first one is the headline value.
        kvd_subsets: number of random subsets of ``kvd`` metrics.
        kvd_subset_size: largest subset size of ``kvd`` metrics.
        description: one paragraph: where the protocol comes from and what it deliberately differs in.
    """

    name: str
    kind: str
    extractor: ExtractorSpec
    preprocessing: PreprocessSpec
    num_fake: int
    num_real: int | None
    real_split: str = "train"
    cov_ddof: int = 1
    is_splits: tuple[int, ...] = ()
    kvd_subsets: int = 0
    kvd_subset_size: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"metric names are lower-case [a-z0-9_], got {self.name!r}")
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"kind must be one of {METRIC_KINDS}, got {self.kind!r}")
        if self.num_fake < 2 or (self.num_real is not None and self.num_real < 2):
            raise ValueError("sample counts must be >= 2")
        if self.kind == "fd" and self.cov_ddof not in (0, 1):
            raise ValueError(f"cov_ddof must be 0 or 1, got {self.cov_ddof}")
        if self.kind == "is" and (not self.is_splits or min(self.is_splits) < 1):
            raise ValueError("an 'is' protocol needs is_splits, e.g. (1, 10)")
        if self.kind == "kvd" and (self.kvd_subsets < 1 or self.kvd_subset_size < 2):
            raise ValueError("a 'kvd' protocol needs kvd_subsets >= 1 and kvd_subset_size >= 2")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


_PROTOCOLS: dict[str, MetricProtocol] = {}


def register_protocol(protocol: MetricProtocol) -> MetricProtocol:
    """Add a protocol; a name can be registered once, so a name always means one protocol."""
    if protocol.name in _PROTOCOLS:
        raise ValueError(f"metric protocol {protocol.name!r} is already registered")
    _PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> MetricProtocol:
    """Look a protocol up by metric name; the error lists the known names."""
    try:
        return _PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(_PROTOCOLS))}") from None


def list_protocols() -> list[str]:
    """Sorted names of the registered metric protocols."""
    return sorted(_PROTOCOLS)


@dataclass
class MetricResult:
    """One metric value with everything needed to reproduce and compare it; serialises to JSON.

    Attributes:
        metric: the protocol name (``protocol["name"]``).
        value: the headline number (FD, IS of the first split count, or MMD^2 in kernel units).
        protocol: snapshot of :meth:`MetricProtocol.to_dict` at evaluation time.
        extractor_sha256: SHA-256 of the extractor weights file actually loaded.
        num_fake: generated videos actually used.
        num_real: real videos actually used (also when the protocol says "all").
        seed: seed of the generator sampling / subset drawing, ``None`` if none was used.
        checkpoint_sha256: SHA-256 of the generator checkpoint, ``None`` for real-vs-real runs.
        dataset_sha256: hash identifying the real data (or its cached statistics).
        std: spread of the value (std over IS splits or KVD subsets), ``None`` when not defined.
        details: further numbers, e.g. ``{"is_10_splits": {"mean": ..., "std": ...}}``.
        library_version: version of g3an that computed it.
        created: UTC time stamp, ISO 8601.
    """

    metric: str
    value: float
    protocol: dict[str, Any]
    extractor_sha256: str
    num_fake: int
    num_real: int
    seed: int | None
    checkpoint_sha256: str | None
    dataset_sha256: str | None
    std: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    library_version: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        if self.protocol.get("name") != self.metric:
            raise ValueError(f"metric {self.metric!r} does not match the protocol {self.protocol.get('name')!r}")
        for label in ("extractor_sha256", "checkpoint_sha256", "dataset_sha256"):
            digest = getattr(self, label)
            if digest is not None and not _HEX64.match(digest):
                raise ValueError(f"{label} must be 64 lower-case hex digits, got {digest!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"value must be finite, got {self.value}")
        if not self.library_version:
            from g3an import __version__

            self.library_version = __version__
        if not self.created:
            self.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    @property
    def extractor(self) -> str:
        """Name of the extractor, from the protocol snapshot."""
        return self.protocol["extractor"]["name"]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; ``extractor`` is included for readability."""
        out = asdict(self)
        out["extractor"] = self.extractor
        return out

    def to_json(self, indent: int | None = None) -> str:
        """JSON text (``allow_nan=False``: a result never holds NaN)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricResult:
        """Inverse of :meth:`to_dict`; unknown keys are an error, ``extractor`` is checked."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known - {"extractor"}
        if extra:
            raise ValueError(f"unknown fields in a metric result: {sorted(extra)}")
        result = cls(**{k: v for k, v in data.items() if k in known})
        if "extractor" in data and data["extractor"] != result.extractor:
            raise ValueError(f"extractor {data['extractor']!r} does not match the protocol's {result.extractor!r}")
        return result

    @classmethod
    def from_json(cls, text: str) -> MetricResult:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def append_jsonl(self, path: str | Path) -> None:
        """Append this result as one line of a JSON-lines file."""
        with open(path, "a", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")


# ---------------------------------------------------------------------------------------------------
# Built-in protocols (spec metrics.md sections 1.6, 1.7, 2.2 and 5).

ACTIVITYNET_MEAN = (114.7748, 107.7354, 99.4750)

RESNEXT101_KINETICS = ExtractorSpec(
    name="resnext101_kinetics400",
    architecture="3D ResNeXt-101 (Hara et al., CVPR 2018), cardinality 32, shortcut B, 400 classes",
    weights_file="resnext-101-kinetics.pth",
    output="avgpool",
    feature_dim=2048,
)
RESNEXT101_UCF101 = ExtractorSpec(
    name="resnext101_ucf101",
    architecture="3D ResNeXt-101 (Hara et al., CVPR 2018) fine-tuned on UCF-101 split 1, 101 classes",
    weights_file="resnext-101-kinetics-ucf101_split1.pth",
    output="probabilities",
    feature_dim=101,
)
I3D_KINETICS = ExtractorSpec(
    name="i3d_kinetics400",
    architecture="Inception-v1 I3D (Carreira and Zisserman, CVPR 2017), TF-Hub deepmind/i3d-kinetics-400/1",
    weights_file="i3d-kinetics-400.safetensors",
    output="logits",
    feature_dim=400,
)

G3AN_RESNEXT_PREPROCESS = PreprocessSpec(
    name="g3an_resnext",
    num_frames=16,
    frame_step=1,
    real_frames="center",
    fake_frames="center",
    size=112,
    resize="pil_bilinear_uint8",
    value_scale="0-255",
    mean=ACTIVITYNET_MEAN,
    std=(1.0, 1.0, 1.0),
    fake_to_uint8="truncate",
)


def _i3d_preprocess(num_frames: int, frame_step: int) -> PreprocessSpec:
    return PreprocessSpec(
        name="i3d_fvd",
        num_frames=num_frames,
        frame_step=frame_step,
        real_frames="random_start",
        fake_frames="first",
        size=224,
        resize="torch_bilinear",
        value_scale="-1..1",
        mean=None,
        std=None,
        fake_to_uint8="round",
    )


register_protocol(
    MetricProtocol(
        name="fid5000_resnext101_g3an",
        kind="fd",
        extractor=RESNEXT101_KINETICS,
        preprocessing=G3AN_RESNEXT_PREPROCESS,
        num_fake=5000,
        num_real=None,
        cov_ddof=1,
        description=(
            "G3AN's released video FID (evaluation/fid.py, Feb 2021): 5000 generated videos against every "
            "real training video, 16 centre frames resized to 112x112, Kinetics ResNeXt-101 2048-d avgpool "
            "features, covariance 1/(N-1). Differences: generated frames are mapped to uint8 with (x+1)/2 "
            "instead of a per-batch min-max, and are not round-tripped through lossy mp4 by default."
        ),
    )
)
register_protocol(
    MetricProtocol(
        name="is_resnext101_ucf101",
        kind="is",
        extractor=RESNEXT101_UCF101,
        preprocessing=G3AN_RESNEXT_PREPROCESS,
        num_fake=5000,
        num_real=None,
        is_splits=(1, 10),
        description=(
            "Video IS as in evan (credited by G3AN): softmax of the UCF-101 fine-tuned ResNeXt-101 over 5000 "
            "generated videos, one split (headline value); the 10-split mean and population std are reported "
            "too. Frames stay RGB (evan reverses them to BGR, which the Hara models were not trained on)."
        ),
    )
)


def _register_fvd(name: str, num_frames: int, frame_step: int, description: str) -> None:
    register_protocol(
        MetricProtocol(
            name=name,
            kind="fd",
            extractor=I3D_KINETICS,
            preprocessing=_i3d_preprocess(num_frames, frame_step),
            num_fake=2048,
            num_real=2048,
            cov_ddof=0,
            description=description,
        )
    )


_register_fvd(
    "fvd2048_16f",
    16,
    1,
    "StyleGAN-V's FVD: 2048 real clips of 16 consecutive frames with a random start (shorter videos "
    "discarded) against 2048 generated clips (frames 0..15), I3D Kinetics-400 time-averaged logits, frames "
    "resized to 224 (bilinear, align_corners=False) and scaled to [-1, 1], covariance 1/N.",
)
_register_fvd(
    "fvd2048_128f",
    128,
    1,
    "As fvd2048_16f with 128 consecutive frames per clip (StyleGAN-V).",
)
_register_fvd(
    "fvd2048_128f_subsample8f",
    16,
    8,
    "As fvd2048_16f with 16 frames taken every 8th frame of a 128-frame window (StyleGAN-V).",
)
register_protocol(
    MetricProtocol(
        name="kvd2048_16f",
        kind="kvd",
        extractor=I3D_KINETICS,
        preprocessing=_i3d_preprocess(16, 1),
        num_fake=2048,
        num_real=2048,
        kvd_subsets=100,
        kvd_subset_size=1000,
        description=(
            "Kernel video distance on the features of fvd2048_16f: unbiased MMD^2 with the cubic polynomial "
            "kernel (x.y/d + 1)^3, averaged over 100 random subsets of 1000 clips per side. Reported in kernel "
            "units (StyleGAN-V multiplies by 1000)."
        ),
    )
)
