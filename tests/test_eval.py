"""The metric runner and `g3an eval`: clip selection, provenance, caching, the real < shuffled < noise ordering."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from g3an.data.format import DatasetWriter, open_dataset
from g3an.metrics.cache import StatsCache
from g3an.metrics.protocols import ExtractorSpec, MetricProtocol, PreprocessSpec, get_protocol
from g3an.metrics.runner import (
    Extractor,
    evaluate_generator,
    evaluate_real_vs_real,
    protocol_for_counts,
    select_clip,
)

SPEC = PreprocessSpec(name="embedded", num_frames=8, frame_step=1, real_frames="random_start", fake_frames="first",
                      size=16, resize="torch_bilinear", value_scale="-1..1", mean=None, std=None,
                      fake_to_uint8="round")  # fmt: skip
TINY = ExtractorSpec(name="tiny_random", architecture="random 3D conv features (tests)", weights_file="none",
                     output="avgpool", feature_dim=6)  # fmt: skip
FD = MetricProtocol(name="fd64_tiny", kind="fd", extractor=TINY, preprocessing=SPEC, num_fake=64, num_real=None)


def _tiny_extractor(calls: list | None = None) -> Extractor:
    """Appearance and motion energy: per-channel mean and mean |frame difference| (6-d), seen through a
    fixed random mixing so the features are not axis-aligned."""
    mix = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(7)))[0]

    def fn(x: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append(len(x))
        feats = torch.cat([x.mean((2, 3, 4)), (x[:, :, 1:] - x[:, :, :-1]).abs().mean((2, 3, 4))], 1)
        return feats @ mix

    return Extractor("tiny_random", "0" * 64, fn)


def _moving_bars(n: int, frames: int = 20, size: int = 16, seed: int = 0) -> np.ndarray:
    """Videos of a bright bar moving smoothly across a dark background (a video with real motion)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, frames, size, size, 3), dtype=np.uint8)
    for i in range(n):
        color, speed, start = rng.integers(120, 255, 3), rng.uniform(0.5, 1.5), rng.uniform(0, size)
        for t in range(frames):
            x = int(start + speed * t) % size
            out[i, t, :, max(0, x - 1) : x + 2] = color
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "bars"
    with DatasetWriter(path, 16, 16, 8.0, "moving bars (tests)") as writer:
        for i, video in enumerate(_moving_bars(48)):
            writer.add_video(video, split="train" if i < 40 else "test")
        writer.add_video(_moving_bars(1, frames=5)[0], split="train")  # too short for a random 8-frame clip
    return open_dataset(path)


class _VideoSource:
    """A stand-in generator that returns dataset videos, optionally shuffled in time, or noise."""

    num_classes, default_frames = 0, 8

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.videos = torch.from_numpy(_moving_bars(64, frames=8, seed=1)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
        self.i = 0

    def valid_frames(self, n: int) -> bool:
        return n == 8

    def sample_latents(self, batch, num_frames=None, generator=None, device=None):
        z = torch.randn(batch, 1, generator=generator)
        return {"z": z}

    def __call__(self, z, y=None):
        b = len(z)
        v = self.videos[self.i : self.i + b]
        self.i += b
        if self.mode == "shuffled":
            v = v[:, :, torch.randperm(8, generator=torch.Generator().manual_seed(self.i))]
        elif self.mode == "noise":
            v = torch.rand_like(v) * 2 - 1
        return v


def test_select_clip_rules() -> None:
    assert select_clip(30, SPEC, "center", None).tolist() == list(range(11, 19))
    assert select_clip(5, SPEC, "center", None).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]  # loop-padded
    assert select_clip(5, SPEC, "random_start", np.random.default_rng(0)) is None  # discarded
    starts = {int(select_clip(12, SPEC, "random_start", np.random.default_rng(s))[0]) for s in range(50)}
    assert starts == set(range(5))


def test_protocol_names_follow_the_sample_count() -> None:
    assert protocol_for_counts(get_protocol("fvd2048_16f"), 256, 256).name == "fvd256_16f"
    assert protocol_for_counts(get_protocol("fid5000_resnext101_g3an"), 100, None).name == "fid100_resnext101_g3an"
    p = get_protocol("kvd2048_16f")
    assert protocol_for_counts(p, None, None) is p


def test_ordering_real_shuffled_noise_and_provenance(dataset, tmp_path) -> None:
    ex = _tiny_extractor()
    floor = evaluate_real_vs_real(dataset, FD, ex, progress=False)
    shuffled = evaluate_generator(_VideoSource("shuffled"), dataset, FD, ex, progress=False)
    real = evaluate_generator(_VideoSource("real"), dataset, FD, ex, progress=False)
    noise = evaluate_generator(_VideoSource("noise"), dataset, FD, ex, progress=False)
    assert real.value < shuffled.value < noise.value
    assert floor.value < shuffled.value
    assert real.num_real == 40  # every train video long enough; the short one is discarded
    assert real.dataset_sha256 == dataset.content_hash and real.extractor_sha256 == "0" * 64
    assert real.protocol["preprocessing"]["real_frames"] == "random_start" and real.seed == 0
    assert json.loads(real.to_json())["metric"] == "fd64_tiny"


def test_real_statistics_are_cached(dataset, tmp_path) -> None:
    calls: list = []
    ex = _tiny_extractor(calls)
    cache = StatsCache(tmp_path / "cache")
    first = evaluate_generator(_VideoSource("real"), dataset, FD, ex, cache=cache, progress=False)
    n_first = sum(calls)
    calls.clear()
    second = evaluate_generator(_VideoSource("real"), dataset, FD, ex, cache=cache, progress=False)
    assert sum(calls) == 64  # only the generated videos were extracted again
    assert n_first == 64 + 40
    assert second.value == pytest.approx(first.value, rel=1e-12)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_inception_score_and_kvd_protocols(dataset) -> None:
    probs_spec = ExtractorSpec(name="tiny_random", architecture="t", weights_file="none", output="probabilities",
                               feature_dim=6)  # fmt: skip
    is_proto = MetricProtocol(name="is64_tiny", kind="is", extractor=probs_spec, preprocessing=SPEC, num_fake=64,
                              num_real=None, is_splits=(1, 4))  # fmt: skip
    base = _tiny_extractor()
    ex = Extractor("tiny_random", "0" * 64, lambda x: torch.softmax(base.fn(x) * 50, -1))
    res = evaluate_generator(_VideoSource("real"), dataset, is_proto, ex, progress=False)
    assert 1.0 <= res.value <= 6.0 and set(res.details) == {"is_1_splits", "is_4_splits"}
    kvd = MetricProtocol(name="kvd32_tiny", kind="kvd", extractor=TINY, preprocessing=SPEC, num_fake=32, num_real=32,
                         kvd_subsets=5, kvd_subset_size=16)  # fmt: skip
    near = evaluate_generator(_VideoSource("real"), dataset, kvd, _tiny_extractor(), progress=False)
    far = evaluate_generator(_VideoSource("noise"), dataset, kvd, _tiny_extractor(), progress=False)
    assert near.value < far.value and near.std is not None


def test_eval_cli_errors(dataset, tmp_path) -> None:
    from g3an.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["eval", "--data", str(dataset.path)])
    assert res.exit_code != 0 and "--real-vs-real" in res.output
    res = runner.invoke(main, ["eval", "--data", str(dataset.path), "--real-vs-real", "--metrics", "fud"])
    assert res.exit_code != 0 and "unknown metric 'fud'" in res.output
    res = runner.invoke(main, ["eval", "--data", str(dataset.path), "--real-vs-real", "--metrics", "fid"])
    assert res.exit_code != 0 and "--weights resnext-101-kinetics.pth" in res.output
    res = runner.invoke(main, ["eval", "--data", str(tmp_path), "--real-vs-real"])
    assert res.exit_code != 0 and str(tmp_path) in res.output


def test_eval_cli_scores_a_run_directory(dataset, tmp_path, monkeypatch) -> None:
    from g3an import create_generator, make_config
    from g3an.checkpoint import make_checkpoint, save_checkpoint
    from g3an.cli import eval as eval_cli
    from g3an.cli import main
    from g3an.metrics import runner
    from g3an.metrics.protocols import _PROTOCOLS

    cfg = make_config("g3an", ch=4, ch_d=4, dim_z_a=8, dim_z_m=4, resolution=32, fsa_level=2)
    ckpt = tmp_path / "run" / "checkpoints" / "step-00000001.pt"
    save_checkpoint(ckpt, make_checkpoint("g3an", cfg, create_generator("g3an", cfg)))
    monkeypatch.setattr(runner, "load_extractor", lambda spec, weights, device: _tiny_extractor())
    monkeypatch.setitem(eval_cli.SHORT_NAMES, "tiny", FD.name)
    monkeypatch.setitem(_PROTOCOLS, FD.name, FD)
    out = tmp_path / "results.json"
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "run"), "--data", str(dataset.path), "--metrics", "tiny",
                                    "--n", "8", "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    (result,) = json.loads(out.read_text())
    assert result["metric"] == "fd8_tiny" and result["num_fake"] == 8 and len(result["checkpoint_sha256"]) == 64
