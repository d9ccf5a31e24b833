"""The embedded evaluators of synth-actions and synth-faces, their metric protocols and the disentanglement measures.

Each embedded dataset (spec/synthetic.md) has a reference evaluator: a small 3D CNN trained by
``scripts/train_embedded_evaluator.py`` on that dataset's labels, with a class head and one head per
categorical appearance factor. Its weights ship with the package (``g3an/assets/evaluators``) beside a
JSON manifest (name, version, SHA-256, held-out accuracies, training config) that
:func:`load_evaluator` checks.

The evaluator provides

* the embedded FID / IS / KVD protocols (``fid2048_embedded_actions``, ``is2048_embedded_actions``,
  ``kvd2048_embedded_actions`` and the ``faces`` ones): features are the 128-d pooled embedding,
  probabilities the class softmax;
* the disentanglement measures (docs/metrics.md section 12), each a function of a generator and an
  evaluator:

  - :func:`appearance_agreement_under_motion`: fix the appearance code, draw ``M`` motion codes; how often
    the appearance heads give the same answer on the ``M`` videos (high is good);
  - :func:`class_agreement_under_appearance`: fix the motion code, draw ``M`` appearance codes; how often
    the class head (the action or expression, i.e. the motion) gives the same answer (high is good), and
    how often the appearance heads do (low means z_a really changes the subject);
  - :func:`conditional_accuracy`: the class head against the requested class of a conditional model;
  - :func:`temporal_appearance_consistency`: the appearance heads on short windows of one video, agreement
    across time (high is good).

These numbers are the project's own yardstick and never comparable with numbers of the paper.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from g3an.metrics.preprocess import float_to_uint8
from g3an.metrics.protocols import ExtractorSpec, MetricProtocol, PreprocessSpec, register_protocol, sha256_file

__all__ = [
    "ASSET_DIR",
    "EMBEDDED_DATASETS",
    "EVALUATOR_VERSION",
    "FACTOR_HEADS",
    "DisentanglementResult",
    "EmbeddedEvaluator",
    "EvaluatorOutput",
    "LoadedEvaluator",
    "appearance_agreement_under_motion",
    "class_agreement_under_appearance",
    "conditional_accuracy",
    "disentanglement_report",
    "evaluator_name",
    "factor_index",
    "factor_values",
    "load_embedded_extractor",
    "load_evaluator",
    "modal_agreement",
    "pairwise_agreement",
    "temporal_appearance_consistency",
]

#: Version of the evaluator architecture and training recipe; bumped when retraining changes the weights.
EVALUATOR_VERSION = 1
#: Where the shipped weights and manifests live.
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "evaluators"
EMBEDDED_DATASETS = ("actions", "faces")
#: The categorical appearance factors with a head, per dataset (values from the dataset's ``APPEARANCE_FACTORS``).
FACTOR_HEADS: dict[str, tuple[str, ...]] = {
    "actions": ("skin", "hair_color", "hair_style", "shirt", "trousers", "background"),
    "faces": ("skin", "hair_color", "hair_style", "glasses", "moustache", "clothes", "background"),
}
INPUT_SIZE = 64  # pixels: clips of other sizes are resized (bilinear) to it
CLIP_FRAMES = 16  # frames per clip of the protocols and of training
FEATURE_DIM = 128


def evaluator_name(dataset: str) -> str:
    """Extractor name of a dataset's evaluator, e.g. ``embedded_synth_actions``."""
    if dataset not in EMBEDDED_DATASETS:
        raise ValueError(f"no embedded evaluator for {dataset!r}; choose from {EMBEDDED_DATASETS}")
    return f"embedded_synth_{dataset}"


def factor_values(dataset: str) -> dict[str, list[Any]]:
    """The values of each head's factor, in head-output order."""
    from g3an.data.synthetic import DATASETS

    factors = DATASETS[dataset].APPEARANCE_FACTORS
    return {name: list(factors[name]) for name in FACTOR_HEADS[dataset]}


def factor_index(dataset: str, factors: dict[str, Any]) -> dict[str, int]:
    """Head targets of one video: the index of each headed factor's value in :func:`factor_values`."""
    return {name: values.index(factors[name]) for name, values in factor_values(dataset).items()}


@dataclass
class EvaluatorOutput:
    """What the evaluator says about a batch of clips.

    Attributes:
        features: ``(B, 128)`` pooled embedding (the FID / KVD features).
        class_logits: ``(B, num_classes)``.
        factor_logits: factor name -> ``(B, num_values)`` logits of its head.
    """

    features: torch.Tensor
    class_logits: torch.Tensor
    factor_logits: dict[str, torch.Tensor]


def _block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class EmbeddedEvaluator(nn.Module):
    """A small 3D CNN with a class head and one head per appearance factor.

    Four Conv3d(3x3x3)-BN-ReLU blocks (16, 32, 64, 128 channels; strides (1,2,2), 2, 2, (1,2,2)) take a
    64x64 clip to ``(128, T/4, 4, 4)``; global average and max pooling (concatenated, 256-d; the max keeps
    small parts such as a shirt from drowning in the background) and a linear layer with ReLU give the
    128-d feature, on which each head is one linear layer. About 0.33 M parameters.

    Args:
        num_classes: classes of the class head.
        factor_sizes: factor name -> number of values, one head each.
    """

    def __init__(self, num_classes: int, factor_sizes: dict[str, int]) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.factor_sizes = dict(factor_sizes)
        self.body = nn.Sequential(
            _block(3, 16, (1, 2, 2)), _block(16, 32, (2, 2, 2)), _block(32, 64, (2, 2, 2)),
            _block(64, FEATURE_DIM, (1, 2, 2)),
        )  # fmt: skip
        self.project = nn.Sequential(nn.Linear(2 * FEATURE_DIM, FEATURE_DIM), nn.ReLU(inplace=True))
        self.class_head = nn.Linear(FEATURE_DIM, num_classes)
        self.factor_heads = nn.ModuleDict({k: nn.Linear(FEATURE_DIM, n) for k, n in self.factor_sizes.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` clips in ``[-1, 1]`` (any size, resized to 64x64) -> ``(B, 128)`` features."""
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"clips must be (B, 3, T, H, W), got {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            frames = F.interpolate(frames, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            x = frames.reshape(b, t, c, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4)
        h = self.body(x.float()).flatten(2)
        return self.project(torch.cat([h.mean(-1), h.amax(-1)], 1))

    def forward(self, x: torch.Tensor) -> EvaluatorOutput:
        """All outputs for ``(B, 3, T, H, W)`` clips in ``[-1, 1]``."""
        f = self.features(x)
        return EvaluatorOutput(f, self.class_head(f), {k: head(f) for k, head in self.factor_heads.items()})


@dataclass
class LoadedEvaluator:
    """A shipped evaluator with its manifest.

    Attributes:
        dataset: ``actions`` or ``faces``.
        model: the network in eval mode.
        manifest: the JSON manifest (name, version, sha256, held_out_accuracy, training, ...).
        sha256: SHA-256 of the weights file loaded.
    """

    dataset: str
    model: EmbeddedEvaluator
    manifest: dict[str, Any]
    sha256: str

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, batch: int = 32) -> EvaluatorOutput:
        """Outputs for float ``(N, 3, T, H, W)`` clips in ``[-1, 1]``, in batches, on the model's device."""
        dev = next(self.model.parameters()).device
        outs = [self.model(clips[i : i + batch].to(dev)) for i in range(0, len(clips), batch)]
        return EvaluatorOutput(
            torch.cat([o.features for o in outs]).cpu(),
            torch.cat([o.class_logits for o in outs]).cpu(),
            {k: torch.cat([o.factor_logits[k] for o in outs]).cpu() for k in self.model.factor_sizes},
        )


def _asset_paths(dataset: str, directory: str | Path | None) -> tuple[Path, Path]:
    base = Path(directory) if directory is not None else ASSET_DIR
    name = evaluator_name(dataset)
    return base / f"{name}.safetensors", base / f"{name}.json"


def load_evaluator(dataset: str, directory: str | Path | None = None, device: str | torch.device = "cpu",
                   weights: str | Path | None = None) -> LoadedEvaluator:  # fmt: skip
    """Load a dataset's evaluator and check it against its manifest.

    Args:
        dataset: ``actions`` or ``faces``.
        directory: where ``<name>.safetensors`` and ``<name>.json`` are (default: the package's assets).
        device: where the model runs.
        weights: a weights file to use instead of ``<name>.safetensors`` (its manifest is still read from
            ``directory``, and its SHA-256 must match it).

    Raises:
        FileNotFoundError: the weights or manifest are missing.
        ValueError: the manifest names another evaluator or version, or the weights' SHA-256 differs.
    """
    default_weights, manifest_path = _asset_paths(dataset, directory)
    path = Path(weights) if weights is not None else default_weights
    if not path.is_file() or not manifest_path.is_file():
        raise FileNotFoundError(f"embedded evaluator {evaluator_name(dataset)} is not installed: need {path} and "
                                f"{manifest_path} (train it with scripts/train_embedded_evaluator.py)")  # fmt: skip
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("name") != evaluator_name(dataset) or manifest.get("version") != EVALUATOR_VERSION:
        raise ValueError(f"{manifest_path} describes {manifest.get('name')} v{manifest.get('version')}, "
                         f"not {evaluator_name(dataset)} v{EVALUATOR_VERSION}")  # fmt: skip
    digest = sha256_file(path)
    if digest != manifest.get("sha256"):
        raise ValueError(f"{path} has SHA-256 {digest}, the manifest says {manifest.get('sha256')}")
    model = EmbeddedEvaluator(len(manifest["classes"]), {k: len(v) for k, v in manifest["factor_heads"].items()})
    model.load_state_dict(load_file(str(path)))
    return LoadedEvaluator(dataset, model.to(device).eval(), manifest, digest)


@lru_cache(maxsize=4)
def _cached_evaluator(dataset: str) -> LoadedEvaluator:
    return load_evaluator(dataset)


def _dataset_of(extractor_name: str) -> str:
    for ds in EMBEDDED_DATASETS:
        if extractor_name == evaluator_name(ds):
            return ds
    raise ValueError(f"no embedded evaluator named {extractor_name!r}")


def load_embedded_extractor(spec: ExtractorSpec, weights: str | Path | None = None,
                            device: str | torch.device = "cpu") -> Any:  # fmt: skip
    """The :class:`~g3an.metrics.runner.Extractor` of an embedded protocol: features or class probabilities."""
    from g3an.metrics.runner import Extractor

    dataset = _dataset_of(spec.name)
    ev = load_evaluator(dataset, device=device, weights=weights) if weights is not None else _cached_evaluator(dataset)
    ev.model.to(device)
    fn: Callable[[torch.Tensor], torch.Tensor]
    if spec.output == "avgpool":
        fn = lambda x: ev.model.features(x.to(device))  # noqa: E731
    else:
        fn = lambda x: torch.softmax(ev.model(x.to(device)).class_logits.float(), -1)  # noqa: E731
    return Extractor(spec.name, ev.sha256, fn)


# ---------------------------------------------------------------------------------------------------
# Protocols.

EMBEDDED_PREPROCESS = PreprocessSpec(
    name="embedded",
    num_frames=CLIP_FRAMES,
    frame_step=1,
    real_frames="random_start",
    fake_frames="first",
    size=INPUT_SIZE,
    resize="torch_bilinear",
    value_scale="-1..1",
    mean=None,
    std=None,
    fake_to_uint8="round",
)


def _register(dataset: str) -> None:
    from g3an.data.synthetic import DATASETS

    name = evaluator_name(dataset)
    arch = "embedded 3D CNN (g3an.metrics.embedded.EmbeddedEvaluator), 4 Conv3d-BN-ReLU blocks"
    feats = ExtractorSpec(name, arch, f"{name}.safetensors", "avgpool", FEATURE_DIM)
    probs = ExtractorSpec(name, arch, f"{name}.safetensors", "probabilities", len(DATASETS[dataset].CLASSES))
    common = (f"synth-{dataset}'s embedded evaluator (shipped with the package): 16 consecutive frames with a "
              "random start from every real training video (shorter ones discarded) against generated frames "
              "0..15, scaled to [-1, 1] and resized to 64x64 bilinear inside the network. The project's own "
              "yardstick, never comparable with the paper's numbers.")  # fmt: skip
    register_protocol(
        MetricProtocol(
            name=f"fid2048_embedded_{dataset}",
            kind="fd",
            extractor=feats,
            preprocessing=EMBEDDED_PREPROCESS,
            num_fake=2048,
            num_real=None,
            cov_ddof=1,
            description="Fréchet distance of the 128-d pooled features; " + common,
        )
    )
    register_protocol(
        MetricProtocol(
            name=f"is2048_embedded_{dataset}",
            kind="is",
            extractor=probs,
            preprocessing=EMBEDDED_PREPROCESS,
            num_fake=2048,
            num_real=None,
            is_splits=(1, 10),
            description="Inception Score of the class-head softmax; " + common,
        )
    )
    register_protocol(MetricProtocol(name=f"kvd2048_embedded_{dataset}", kind="kvd", extractor=feats,
                                     preprocessing=EMBEDDED_PREPROCESS, num_fake=2048, num_real=2048,
                                     kvd_subsets=100, kvd_subset_size=1000,
                                     description="Kernel distance (cubic polynomial kernel, 100 subsets of up "
                                     "to 1000) of the 128-d pooled features; " + common))  # fmt: skip


for _ds in EMBEDDED_DATASETS:
    _register(_ds)


# ---------------------------------------------------------------------------------------------------
# Disentanglement measures.


@dataclass
class DisentanglementResult:
    """One disentanglement measure.

    Attributes:
        name: ``appearance_agreement_under_motion``, ``class_agreement_under_appearance``,
            ``conditional_accuracy`` or ``temporal_appearance_consistency``.
        value: the headline number, a fraction in ``[0, 1]``.
        details: the other numbers (per head, pairwise variants, counts, seed).
    """

    name: str
    value: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "details": self.details}


def modal_agreement(pred: np.ndarray) -> float:
    """Mean over rows of the share of a row's entries equal to its most frequent value; ``pred`` is ``(G, M)``."""
    return float(np.mean([np.bincount(row).max() / len(row) for row in pred]))


def pairwise_agreement(pred: np.ndarray) -> float:
    """Mean over rows of the share of unordered pairs ``j < k`` of a row with ``pred[j] == pred[k]``."""
    m = pred.shape[1]
    same = (pred[:, :, None] == pred[:, None, :]).sum(axis=(1, 2)) - m
    return float(np.mean(same / (m * (m - 1))))


def _frames(generator: Any, frames: int | None) -> int:
    if frames is not None:
        return frames
    return CLIP_FRAMES if generator.valid_frames(CLIP_FRAMES) else generator.default_frames


def _render(generator: Any, latents: dict[str, torch.Tensor], y: torch.Tensor | None, batch: int,
            device: torch.device) -> torch.Tensor:  # fmt: skip
    """Generated videos as the protocols see them: ``(N, 3, T, H, W)`` float in [-1, 1], quantised to uint8 levels."""
    n = len(next(iter(latents.values())))
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            lat = {k: v[i : i + batch].to(device) for k, v in latents.items()}
            yy = y[i : i + batch].to(device) if y is not None else None
            video = generator(**lat, y=yy).float()
            out.append(float_to_uint8(video, "round").cpu().float() / 127.5 - 1.0)
    return torch.cat(out)


def _grouped_latents(generator: Any, which: str, groups: int, members: int, frames: int,
                     gen: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:  # fmt: skip
    """Latents of ``groups`` groups of ``members`` videos sharing the code named ``which`` (and the class)."""
    lat = generator.sample_latents(groups * members, frames, generator=gen, device="cpu")
    if which not in lat:
        raise ValueError(f"the generator has no latent code {which!r} (it has {sorted(lat)})")
    shared = lat[which].reshape(groups, members, *lat[which].shape[1:])[:, :1]
    lat[which] = shared.expand(-1, members, *([-1] * (shared.ndim - 2))).reshape(lat[which].shape).contiguous()
    y = None
    if generator.num_classes:
        y = torch.randint(generator.num_classes, (groups,), generator=gen).repeat_interleave(members)
    return lat, y


def _clip(videos: torch.Tensor) -> torch.Tensor:
    return videos[:, :, :CLIP_FRAMES]


def _argmax(logits: torch.Tensor, groups: int, members: int) -> np.ndarray:
    return logits.argmax(-1).numpy().reshape(groups, members)


def _agreements(out: EvaluatorOutput, groups: int, members: int) -> dict[str, Any]:
    heads = {"class": out.class_logits, **out.factor_logits}
    per = {k: {"modal": modal_agreement(_argmax(v, groups, members)),
               "pairwise": pairwise_agreement(_argmax(v, groups, members))} for k, v in heads.items()}  # fmt: skip
    app = [per[k] for k in out.factor_logits]
    return {
        "per_head": per,
        "appearance_modal": float(np.mean([a["modal"] for a in app])),
        "appearance_pairwise": float(np.mean([a["pairwise"] for a in app])),
        "class_modal": per["class"]["modal"],
        "class_pairwise": per["class"]["pairwise"],
    }


def _grouped_agreements(generator: Any, evaluator: LoadedEvaluator, shared: str, groups: int, members: int,
                        frames: int | None, seed: int, batch: int,
                        device: str | torch.device) -> dict[str, Any]:  # fmt: skip
    """Agreements of every head within groups of videos that share the latent code named ``shared``."""
    frames = _frames(generator, frames)
    gen = torch.Generator().manual_seed(seed)
    lat, y = _grouped_latents(generator, shared, groups, members, frames, gen)
    out = evaluator.predict(_clip(_render(generator, lat, y, batch, torch.device(device))))
    return {**_agreements(out, groups, members), "groups": groups, "members": members, "frames": frames,
            "seed": seed, "evaluator_sha256": evaluator.sha256}  # fmt: skip


def appearance_agreement_under_motion(generator: Any, evaluator: LoadedEvaluator, *, groups: int = 64,
                                      members: int = 8, frames: int | None = None, seed: int = 0, batch: int = 16,
                                      device: str | torch.device = "cpu") -> DisentanglementResult:  # fmt: skip
    """Appearance agreement when only the motion code changes.

    ``groups`` appearance codes (and, for a conditional model, one class each) are drawn; each is
    combined with ``members`` independent motion codes. For every appearance head the argmax over the
    ``members`` videos of a group is compared with the group's most frequent answer; the value is the
    share of agreeing videos, averaged over groups and heads (1: motion never changes the subject).
    ``details`` also gives the mean pairwise agreement and the class-head agreement (for an
    unconditional model, a low class agreement means z_m does change the action).
    """
    details = _grouped_agreements(generator, evaluator, generator.appearance_latent, groups, members, frames, seed,
                                  batch, device)  # fmt: skip
    return DisentanglementResult("appearance_agreement_under_motion", details["appearance_modal"], details)


def class_agreement_under_appearance(generator: Any, evaluator: LoadedEvaluator, *, groups: int = 64,
                                     members: int = 8, frames: int | None = None, seed: int = 0, batch: int = 16,
                                     device: str | torch.device = "cpu") -> DisentanglementResult:  # fmt: skip
    """Class (motion) agreement when only the appearance code changes.

    ``groups`` motion codes (and, for a conditional model, one class each) are drawn; each is combined
    with ``members`` independent appearance codes. The value is the share of the ``members`` videos whose
    class-head argmax equals the group's most frequent one, averaged over groups (1: the subject never
    changes the action or expression). ``details["appearance_modal"]``, the same share for the appearance
    heads, should be low: z_a must change the subject.
    """
    details = _grouped_agreements(generator, evaluator, generator.motion_latent, groups, members, frames, seed,
                                  batch, device)  # fmt: skip
    return DisentanglementResult("class_agreement_under_appearance", details["class_modal"], details)


def conditional_accuracy(generator: Any, evaluator: LoadedEvaluator, *, num: int = 512, frames: int | None = None,
                         seed: int = 0, batch: int = 16,
                         device: str | torch.device = "cpu") -> DisentanglementResult:  # fmt: skip
    """Share of videos of a conditional model whose class-head argmax is the requested class.

    Classes are requested in turn (``i % num_classes``, balanced), latents drawn from ``seed``. Chance
    level is ``1 / num_classes``. ``details["per_class"]`` gives the accuracy of each class.
    """
    if not generator.num_classes:
        raise ValueError("conditional accuracy needs a conditional generator (num_classes > 0)")
    if generator.num_classes != evaluator.model.num_classes:
        raise ValueError(f"the generator has {generator.num_classes} classes, the evaluator "
                         f"{evaluator.model.num_classes}")  # fmt: skip
    frames = _frames(generator, frames)
    gen = torch.Generator().manual_seed(seed)
    lat = generator.sample_latents(num, frames, generator=gen, device="cpu")
    y = torch.arange(num) % generator.num_classes
    out = evaluator.predict(_clip(_render(generator, lat, y, batch, torch.device(device))))
    hit = (out.class_logits.argmax(-1) == y).numpy()
    per_class = {evaluator.manifest["classes"][c]: float(hit[y.numpy() == c].mean())
                 for c in range(generator.num_classes) if (y == c).any()}  # fmt: skip
    details = {"per_class": per_class, "num": num, "frames": frames, "seed": seed, "chance": 1 / generator.num_classes,
               "evaluator_sha256": evaluator.sha256}  # fmt: skip
    return DisentanglementResult("conditional_accuracy", float(hit.mean()), details)


def temporal_appearance_consistency(generator: Any, evaluator: LoadedEvaluator, *, num: int = 128,
                                    window: int = 4, frames: int | None = None, seed: int = 0, batch: int = 16,
                                    device: str | torch.device = "cpu") -> DisentanglementResult:  # fmt: skip
    """Frame-to-frame appearance consistency within one video.

    Each of ``num`` generated videos is cut into consecutive non-overlapping windows of ``window`` frames
    (a trailing partial window is dropped); every appearance head classifies every window. The value is
    the share of windows whose answer equals the video's most frequent one, averaged over videos and
    heads (1: the subject never changes within a video). ``details["adjacent"]`` is the share of
    neighbouring windows that agree.
    """
    frames = _frames(generator, frames)
    if frames < 2 * window:
        raise ValueError(f"videos of {frames} frames hold fewer than two windows of {window}")
    gen = torch.Generator().manual_seed(seed)
    lat = generator.sample_latents(num, frames, generator=gen, device="cpu")
    y = torch.randint(generator.num_classes, (num,), generator=gen) if generator.num_classes else None
    videos = _render(generator, lat, y, batch, torch.device(device))
    return _window_consistency(videos, evaluator, window, {"num": num, "frames": frames, "seed": seed})


def _window_consistency(videos: torch.Tensor, evaluator: LoadedEvaluator, window: int,
                        extra: dict[str, Any]) -> DisentanglementResult:  # fmt: skip
    n, c, t = videos.shape[:3]
    k = t // window
    wins = videos[:, :, : k * window].reshape(n, c, k, window, *videos.shape[3:]).permute(0, 2, 1, 3, 4, 5)
    out = evaluator.predict(wins.reshape(n * k, c, window, *videos.shape[3:]))
    per, adjacent = {}, {}
    for name, logits in out.factor_logits.items():
        pred = _argmax(logits, n, k)
        per[name] = modal_agreement(pred)
        adjacent[name] = float((pred[:, 1:] == pred[:, :-1]).mean())
    details = {"per_head": per, "adjacent": float(np.mean(list(adjacent.values()))), "adjacent_per_head": adjacent,
               "window": window, "windows_per_video": k, "evaluator_sha256": evaluator.sha256, **extra}  # fmt: skip
    return DisentanglementResult("temporal_appearance_consistency", float(np.mean(list(per.values()))), details)


def disentanglement_report(
    generator: Any, evaluator: LoadedEvaluator, *, scale: int = 1, seed: int = 0, batch: int = 16,
    device: str | torch.device = "cpu",
) -> list[DisentanglementResult]:  # fmt: skip
    """Every measure that applies to the generator (appearance / motion codes, conditioning), default sizes.

    ``scale`` divides the default sample counts (e.g. 4 for a quick look).
    """
    out = []
    kw = {"seed": seed, "batch": batch, "device": device}
    if generator.appearance_latent and generator.motion_latent:
        out.append(appearance_agreement_under_motion(generator, evaluator, groups=max(2, 64 // scale), **kw))
        out.append(class_agreement_under_appearance(generator, evaluator, groups=max(2, 64 // scale), **kw))
    if generator.num_classes:
        out.append(conditional_accuracy(generator, evaluator, num=max(2, 512 // scale), **kw))
    out.append(temporal_appearance_consistency(generator, evaluator, num=max(2, 128 // scale), **kw))
    return out
