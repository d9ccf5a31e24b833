"""The protocol runner: real and generated clips -> features -> FD / IS / KVD results with full provenance.

For a metric protocol (:mod:`g3an.metrics.protocols`) the runner selects clips as the protocol says
(centre or random start, frame step; generated clips map [-1, 1] to uint8 as the protocol says),
preprocesses them, runs the extractor, accumulates float64 statistics, and returns a
:class:`~g3an.metrics.protocols.MetricResult` recording the protocol, the extractor's SHA-256, the
sample counts, the seed and the checkpoint and dataset hashes. Real statistics are cached under a hash
of everything that affects them. Extractors are injectable (:class:`Extractor`), so tests run on tiny
random networks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from g3an.metrics.cache import StatsCache
from g3an.metrics.feature_stats import FeatureStats
from g3an.metrics.frechet import frechet_distance
from g3an.metrics.inception_score import inception_score
from g3an.metrics.kvd import kernel_distance_subsets
from g3an.metrics.preprocess import center_clip_indices, float_to_uint8, preprocess_g3an_resnext, preprocess_i3d
from g3an.metrics.protocols import (
    ExtractorSpec,
    MetricProtocol,
    MetricResult,
    PreprocessSpec,
    get_protocol,
)

__all__ = [
    "Extractor",
    "evaluate_generator",
    "evaluate_real_vs_real",
    "fake_clips",
    "load_extractor",
    "protocol_for_counts",
    "real_clips",
    "select_clip",
]


@dataclass
class Extractor:
    """A feature network with its provenance.

    Attributes:
        name: must equal the protocol's extractor name.
        sha256: SHA-256 of the weights file loaded (64 hex digits).
        fn: preprocessed float batch ``(B, 3, T, H, W)`` -> ``(B, d)`` features, logits or probabilities.
    """

    name: str
    sha256: str
    fn: Callable[[torch.Tensor], torch.Tensor]


def load_extractor(
    spec: ExtractorSpec, weights: str | Path | None = None, device: str | torch.device = "cpu"
) -> Extractor:
    """Load the extractor a protocol names, from the file the user gives (or the weights store for I3D)."""
    if spec.name.startswith("resnext101"):
        from g3an.metrics.extractors.resnext import load_hara_checkpoint

        if weights is None:
            raise ValueError(f"{spec.name} needs --weights {spec.weights_file} (Hara et al.'s published checkpoint)")
        ckpt = load_hara_checkpoint(weights, num_classes=400 if spec.name.endswith("kinetics400") else 101)
        model = ckpt.model.to(device).eval()
        if spec.output == "avgpool":
            return Extractor(spec.name, ckpt.sha256, lambda x: model.features(x.to(device)))
        return Extractor(spec.name, ckpt.sha256, lambda x: torch.softmax(model(x.to(device)).logits.float(), -1))
    if spec.name.startswith("i3d"):
        from g3an.metrics.extractors.i3d import load_i3d_safetensors
        from g3an.metrics.weights import load_installed_i3d

        model, digest = load_i3d_safetensors(weights) if weights is not None else load_installed_i3d()
        model = model.to(device).eval()
        return Extractor(spec.name, digest, lambda x: model(x.to(device)))
    if spec.name.startswith("embedded_"):
        from g3an.metrics.embedded import load_embedded_extractor

        return load_embedded_extractor(spec, weights, device)
    raise ValueError(f"no loader for extractor {spec.name!r}")


def protocol_for_counts(protocol: MetricProtocol, num_fake: int | None, num_real: int | None) -> MetricProtocol:
    """The protocol with other sample counts; the count in the name follows (``fvd2048_16f`` -> ``fvd256_16f``)."""
    if num_fake is None and num_real is None:
        return protocol
    fake = num_fake or protocol.num_fake
    real = num_real if num_real is not None else protocol.num_real
    name = re.sub(r"^([a-z]+)\d+", lambda m: f"{m.group(1)}{fake}", protocol.name)
    if name == protocol.name and fake != protocol.num_fake:
        name = f"{protocol.name}_n{fake}"
    return dataclasses.replace(protocol, name=name, num_fake=fake, num_real=real)


def select_clip(num_frames: int, spec: PreprocessSpec, how: str, rng: np.random.Generator | None) -> np.ndarray | None:
    """Frame indices of one clip of ``spec.num_frames`` frames every ``spec.frame_step`` frames.

    ``center``: centred (loop-padded when the video is shorter); ``first``: from frame 0; ``random_start``:
    a uniform start, or ``None`` when the video is too short (the protocol discards it).
    """
    span = (spec.num_frames - 1) * spec.frame_step + 1
    if how == "center":
        return center_clip_indices(num_frames, span)[:: spec.frame_step]
    if how == "first":
        return np.arange(span, dtype=np.int64)[:: spec.frame_step] % num_frames
    if num_frames < span:
        return None
    start = int(rng.integers(0, num_frames - span + 1)) if rng is not None else 0
    return np.arange(start, start + span, spec.frame_step, dtype=np.int64)


def _preprocess(spec: PreprocessSpec, clips: torch.Tensor) -> torch.Tensor:
    if spec.name == "g3an_resnext":
        return preprocess_g3an_resnext(clips, num_frames=spec.num_frames, size=spec.size, mean=spec.mean)
    if spec.name == "i3d_fvd":
        return preprocess_i3d(clips, size=spec.size)
    if spec.name == "embedded":
        return clips.float() / 127.5 - 1.0
    raise ValueError(f"no preprocessing named {spec.name!r}")


def real_clips(
    dataset: Any, spec: PreprocessSpec, indices: list[int], seed: int, batch: int
) -> Iterator[tuple[torch.Tensor, int]]:
    """uint8 ``(B, 3, T, H, W)`` batches of real clips (and the number of videos skipped so far)."""
    rng = np.random.default_rng(seed)
    buf: list[torch.Tensor] = []
    skipped = 0
    for i in indices:
        frames = dataset.frames(i)  # (T, H, W, 3) uint8 memory map
        idx = select_clip(len(frames), spec, spec.real_frames, rng)
        if idx is None:
            skipped += 1
            continue
        buf.append(torch.from_numpy(np.ascontiguousarray(frames[idx])).permute(3, 0, 1, 2))  # (3, T, H, W)
        if len(buf) == batch:
            yield torch.stack(buf), skipped
            buf = []
    if buf:
        yield torch.stack(buf), skipped


def fake_clips(
    generator: Any, spec: PreprocessSpec, n: int, seed: int, batch: int, device: torch.device
) -> Iterator[torch.Tensor]:
    """uint8 ``(B, 3, T, H, W)`` batches of ``n`` generated clips, latents drawn from ``seed`` on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    span = (spec.num_frames - 1) * spec.frame_step + 1
    frames = span if generator.valid_frames(span) else generator.default_frames
    done = 0
    while done < n:
        b = min(batch, n - done)
        lat = generator.sample_latents(b, frames, generator=gen, device=device)
        y = torch.randint(generator.num_classes, (b,), generator=gen).to(device) if generator.num_classes else None
        with torch.no_grad():
            video = generator(**lat, y=y).float()
        clips = float_to_uint8(video, spec.fake_to_uint8).cpu()
        idx = torch.from_numpy(select_clip(clips.shape[2], spec, spec.fake_frames, None))
        yield clips.index_select(2, idx)
        done += b


def _features(extractor: Extractor, spec: PreprocessSpec, batches: Iterator[torch.Tensor], total: int,
              desc: str, progress: bool) -> np.ndarray:  # fmt: skip
    out = []
    with tqdm(total=total, desc=desc, unit="video", disable=not progress) as bar, torch.no_grad():
        for clips in batches:
            out.append(extractor.fn(_preprocess(spec, clips)).double().cpu().numpy())
            bar.update(len(clips))
    return np.concatenate(out) if out else np.zeros((0, 0))


def _score(protocol: MetricProtocol, real: np.ndarray | None, real_stats: Any, fake: np.ndarray, seed: int
           ) -> tuple[float, float | None, dict[str, Any]]:  # fmt: skip
    if protocol.kind == "fd":
        fs = FeatureStats.from_features(fake)
        mu_r, sigma_r = real_stats
        value = frechet_distance(mu_r, sigma_r, fs.mean, fs.cov(ddof=protocol.cov_ddof))
        return value, None, {}
    if protocol.kind == "is":
        scores = [inception_score(fake, splits=n, shuffle_seed=seed if n > 1 else None) for n in protocol.is_splits]
        details = {f"is_{s.splits}_splits": {"mean": s.mean, "std": s.std, "std_ddof": s.std_ddof} for s in scores}
        headline = scores[0]  # the protocol's first split count; a single split has no spread
        return headline.mean, headline.std if headline.splits > 1 else None, details
    kd = kernel_distance_subsets(real, fake, num_subsets=protocol.kvd_subsets,
                                 max_subset_size=protocol.kvd_subset_size, seed=seed)  # fmt: skip
    return kd.mean, kd.std, {}


def _real_indices(dataset: Any, split: str | None, n: int | None, seed: int) -> list[int]:
    indices = dataset.split(split) if split and split in dataset.splits() else list(range(len(dataset)))
    if n is not None and n < len(indices):
        rng = np.random.default_rng(seed)
        indices = sorted(rng.choice(indices, size=n, replace=False).tolist())
    return indices


def _real_features_or_stats(
    protocol: MetricProtocol, dataset: Any, extractor: Extractor, seed: int, batch: int, progress: bool,
    cache: StatsCache | None, split: str | None,
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray], int]:  # fmt: skip
    indices = _real_indices(dataset, split, protocol.num_real, seed)
    key = {"dataset": dataset.content_hash, "split": split, "indices_seed": seed, "num_real": protocol.num_real,
           "preprocessing": protocol.to_dict()["preprocessing"], "extractor": extractor.name,
           "extractor_sha256": extractor.sha256, "cov_ddof": protocol.cov_ddof}  # fmt: skip
    if protocol.kind == "fd" and cache is not None:
        hit = cache.load(key)
        if hit is not None:
            return None, (hit.mu, hit.sigma), int(hit.count)
    skipped = [0]

    def batches() -> Iterator[torch.Tensor]:
        for clips, skipped[0] in real_clips(dataset, protocol.preprocessing, indices, seed, batch):
            yield clips

    feats = _features(extractor, protocol.preprocessing, batches(), len(indices), "real", progress)
    if len(feats) < 2:
        raise ValueError(f"only {len(feats)} real clips are long enough for {protocol.name} ({skipped[0]} skipped)")
    fs = FeatureStats.from_features(feats)
    stats = (fs.mean, fs.cov(ddof=protocol.cov_ddof))
    if protocol.kind == "fd" and cache is not None:
        cache.save(key, stats[0], stats[1], len(feats), metadata={"skipped_short": skipped[0]})
    return feats, stats, len(feats)


def evaluate_generator(
    generator: Any,
    dataset: Any,
    metric: str | MetricProtocol,
    extractor: Extractor,
    *,
    num_fake: int | None = None,
    num_real: int | None = None,
    seed: int = 0,
    batch: int = 16,
    device: str | torch.device = "cpu",
    checkpoint_sha256: str | None = None,
    cache: StatsCache | None = None,
    progress: bool = True,
) -> MetricResult:
    """One metric of a generator against a prepared dataset.

    Args:
        generator: a registered generator in eval mode.
        dataset: an opened prepared dataset (:func:`g3an.data.format.open_dataset`).
        metric: protocol name or protocol.
        extractor: the protocol's extractor (its name must match).
        num_fake, num_real: override the protocol's counts (the metric name then carries the new count).
        seed: seeds latents, real clip starts and subset draws.
        batch: videos per forward.
        device: where the generator runs.
        checkpoint_sha256: recorded in the result.
        cache: real-statistics cache (``None``: no caching).
        progress: tqdm progress bars.
    """
    protocol = get_protocol(metric) if isinstance(metric, str) else metric
    protocol = protocol_for_counts(protocol, num_fake, num_real)
    if extractor.name != protocol.extractor.name:
        raise ValueError(f"{protocol.name} uses extractor {protocol.extractor.name}, not {extractor.name}")
    real, real_stats, n_real = (None, None, 0)
    if protocol.kind != "is":
        real, real_stats, n_real = _real_features_or_stats(protocol, dataset, extractor, seed, batch, progress,
                                                           cache, protocol.real_split)  # fmt: skip
    dev = torch.device(device)
    fake = _features(extractor, protocol.preprocessing, fake_clips(generator, protocol.preprocessing,
                     protocol.num_fake, seed, batch, dev), protocol.num_fake, "generated", progress)  # fmt: skip
    if protocol.kind == "kvd" and real is None:
        raise ValueError("KVD needs real features; disable the statistics cache for it")
    value, std, details = _score(protocol, real, real_stats, fake, seed)
    return MetricResult(metric=protocol.name, value=float(value), protocol=protocol.to_dict(),
                        extractor_sha256=extractor.sha256, num_fake=len(fake), num_real=n_real, seed=seed,
                        checkpoint_sha256=checkpoint_sha256, dataset_sha256=dataset.content_hash, std=std,
                        details=details)  # fmt: skip


def evaluate_real_vs_real(
    dataset: Any, metric: str | MetricProtocol, extractor: Extractor, *, seed: int = 0, batch: int = 16,
    num: int | None = None, progress: bool = True,
) -> MetricResult:  # fmt: skip
    """The floor of a dataset: the metric between two disjoint random halves of its videos.

    Each half plays one side (the second half stands where generated videos would); IS is computed on
    the first half alone.
    """
    protocol = get_protocol(metric) if isinstance(metric, str) else metric
    indices = _real_indices(dataset, None, None, seed)
    rng = np.random.default_rng(seed)
    rng.shuffle(indices)
    half = len(indices) // 2
    if num is not None:
        half = min(half, num)
    a, b = sorted(indices[:half]), sorted(indices[half : 2 * half])
    protocol = protocol_for_counts(protocol, half, half)
    spec = protocol.preprocessing

    def feats(idx: list[int], desc: str) -> np.ndarray:
        return _features(extractor, spec, (c for c, _ in real_clips(dataset, spec, idx, seed, batch)), len(idx),
                         desc, progress)  # fmt: skip

    fa = feats(a, "real A")
    fb = feats(b, "real B") if protocol.kind != "is" else fa
    stats = FeatureStats.from_features(fa)
    value, std, details = _score(protocol, fa, (stats.mean, stats.cov(ddof=protocol.cov_ddof)), fb, seed)
    details["real_vs_real"] = True
    return MetricResult(metric=protocol.name, value=float(value), protocol=protocol.to_dict(),
                        extractor_sha256=extractor.sha256, num_fake=len(fb), num_real=len(fa), seed=seed,
                        checkpoint_sha256=None, dataset_sha256=dataset.content_hash, std=std,
                        details=details)  # fmt: skip
