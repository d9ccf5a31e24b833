"""Numerics of the metrics: feature statistics, Fréchet distance, IS, KVD, protocol records, stats cache."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from g3an.metrics.cache import StatsCache, StatsCacheError, load_stats, save_stats, stats_key
from g3an.metrics.feature_stats import FeatureStats
from g3an.metrics.frechet import (
    FrechetDistanceError,
    RankDeficientWarning,
    frechet_distance,
    frechet_distance_from_stats,
    trace_sqrt_product,
    trace_sqrt_product_eig,
)
from g3an.metrics.inception_score import inception_score
from g3an.metrics.kvd import kernel_distance_subsets, kernel_mmd2, polynomial_kernel
from g3an.metrics.protocols import (
    ExtractorSpec,
    MetricProtocol,
    MetricResult,
    get_protocol,
    list_protocols,
    register_protocol,
)


def random_features(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """``n`` draws of one correlated Gaussian per ``d`` (the mixing depends on ``d`` only), shifted by ``shift``."""
    mixing = np.random.default_rng(d).normal(size=(d, d)) / math.sqrt(d)
    return np.random.default_rng(seed).normal(size=(n, d)) @ mixing + shift


def random_spd(d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d) + 0.1 * np.eye(d)


def scipy_reference_fd(mu1, s1, mu2, s2) -> float:
    """pytorch-fid's formula with scipy's sqrtm (no deprecated ``disp``), in float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular products make sqrtm warn; its value is still the reference
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


# ------------------------------------------------------------------------------------------------
# FeatureStats


@pytest.mark.parametrize("ddof", [0, 1])
def test_feature_stats_matches_numpy(ddof):
    x = random_features(300, 24, seed=0, shift=3.0)
    stats = FeatureStats()
    for chunk in np.array_split(x, [1, 7, 100, 101, 250]):  # uneven batches, one of size 0
        stats.update(chunk)
    assert stats.count == 300 and stats.dim == 24
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(stats.cov(ddof), np.cov(x, rowvar=False, ddof=ddof), rtol=1e-12, atol=1e-13)
    assert np.array_equal(stats.cov(ddof), stats.cov(ddof).T)


def test_feature_stats_batch_order_and_merge():
    x = random_features(200, 16, seed=1)
    perm = np.random.default_rng(2).permutation(200)
    a, b = FeatureStats(), FeatureStats()
    for chunk in np.array_split(x, 9):
        a.update(chunk)
    for chunk in np.array_split(x[perm], 4):
        b.update(chunk)
    np.testing.assert_allclose(a.cov(), b.cov(), rtol=1e-12, atol=1e-14)
    parts = [FeatureStats.from_features(c) for c in np.array_split(x, 3)]  # e.g. one per rank
    merged = FeatureStats.merged(parts)
    assert merged.count == 200
    np.testing.assert_allclose(merged.mean, x.mean(0), atol=1e-14)
    np.testing.assert_allclose(merged.cov(), np.cov(x, rowvar=False), rtol=1e-12, atol=1e-14)
    round_trip = FeatureStats.from_arrays(merged.to_arrays())
    assert round_trip.count == 200 and np.array_equal(round_trip.cov(), merged.cov())
    assert FeatureStats(16).merge(a).count == 200  # merging with an empty accumulator


def test_feature_stats_large_offset_is_stable():
    """The centred (Chan) update keeps full accuracy where E[xx^T] - mu mu^T would cancel."""
    x = random_features(500, 8, seed=3) + 1e7
    stats = FeatureStats()
    for chunk in np.array_split(x, 10):
        stats.update(chunk)
    np.testing.assert_allclose(stats.cov(), np.cov(x, rowvar=False), rtol=1e-7, atol=1e-7)


def test_feature_stats_accepts_tensors_and_validates():
    x = torch.randn(10, 4, requires_grad=True)
    stats = FeatureStats.from_features(x)
    np.testing.assert_allclose(stats.mean, x.detach().double().mean(0).numpy(), atol=1e-15)
    with pytest.raises(ValueError, match="d = 4"):
        stats.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="shape"):
        stats.update(np.zeros(4))
    with pytest.raises(ValueError, match="more than 1"):
        FeatureStats.from_features(np.zeros((1, 4))).cov()
    with pytest.raises(ValueError, match="no features"):
        _ = FeatureStats(3).mean


# ------------------------------------------------------------------------------------------------
# Fréchet distance


def test_frechet_1d_closed_form():
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2, abs=1e-12)


def test_frechet_commuting_covariances_closed_form_and_rotation():
    d = 128
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.1, 5.0, d), rng.uniform(0.1, 5.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(exact, rel=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # a common rotation keeps the distance
    rotated = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(exact, rel=1e-10)


def test_frechet_equal_covariances_is_mean_distance():
    d = 256
    mu1, mu2 = np.ones(d), np.zeros(d)
    assert frechet_distance(mu1, np.eye(d), mu2, np.eye(d)) == pytest.approx(float(d), abs=1e-9)


def test_frechet_symmetry_self_distance_and_feature_invariances():
    d = 32
    x, y = random_features(400, d, seed=5), random_features(400, d, seed=6, shift=0.3)
    sx, sy = FeatureStats.from_features(x), FeatureStats.from_features(y)
    fd = frechet_distance_from_stats(sx, sy)
    assert fd > 0
    assert frechet_distance_from_stats(sy, sx) == pytest.approx(fd, rel=1e-10)
    assert frechet_distance_from_stats(sx, sx) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    t = rng.normal(size=d) * 10
    moved = frechet_distance_from_stats(FeatureStats.from_features(x @ q + t), FeatureStats.from_features(y @ q + t))
    assert moved == pytest.approx(fd, rel=1e-9)


@pytest.mark.parametrize("d", [16, 64, 128])
def test_frechet_agrees_with_scipy_sqrtm(d):
    mu1, mu2 = np.random.default_rng(d).normal(size=(2, d))
    s1, s2 = random_spd(d, seed=d + 1), random_spd(d, seed=d + 2)
    ref = scipy_reference_fd(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-10)
    assert trace_sqrt_product(s1, s2) == pytest.approx(trace_sqrt_product_eig(s1, s2), rel=1e-10)


def test_frechet_rank_deficient_warns_and_matches_reference():
    d = 128
    x, y = random_features(60, d, seed=8), random_features(80, d, seed=9, shift=0.2)
    sx, sy = FeatureStats.from_features(x), FeatureStats.from_features(y)
    with pytest.warns(RankDeficientWarning) as caught:
        fd = frechet_distance_from_stats(sx, sy)
    assert ["N = 60 <= d = 128" in str(w.message) for w in caught] == [True, False]
    assert math.isfinite(fd) and fd >= 0
    assert fd == pytest.approx(scipy_reference_fd(sx.mean, sx.cov(), sy.mean, sy.cov()), rel=1e-6)
    with pytest.warns(RankDeficientWarning):
        assert frechet_distance_from_stats(sx, sx) >= 0.0  # tiny negative round-off is clamped to 0


def test_frechet_rejects_bad_statistics():
    d = 8
    mu, s = np.zeros(d), np.eye(d)
    with pytest.raises(FrechetDistanceError, match="differ in shape"):
        frechet_distance(mu, s, np.zeros(d + 1), np.eye(d + 1))
    with pytest.raises(FrechetDistanceError, match="square"):
        frechet_distance(mu, np.eye(d + 1), mu, s)
    with pytest.raises(FrechetDistanceError, match="symmetric"):
        frechet_distance(mu, s + np.triu(np.ones((d, d)), 1), mu, s)
    with pytest.raises(FrechetDistanceError, match="positive semi-definite"):
        frechet_distance(mu, -s, mu, s)
    with pytest.raises(FrechetDistanceError, match="positive semi-definite"):
        frechet_distance(mu, s, mu, np.diag([-1.0] + [1.0] * (d - 1)))
    with pytest.raises(FrechetDistanceError, match="NaN"):
        frechet_distance(np.full(d, np.nan), s, mu, s)


def test_frechet_raises_no_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(np.zeros(4), random_spd(4, 0), np.ones(4), random_spd(4, 1))


# ------------------------------------------------------------------------------------------------
# Inception Score


def test_is_bounds_uniform_constant_and_confident():
    k = 5
    assert inception_score(np.full((50, k), 1 / k), splits=1).mean == pytest.approx(1.0, abs=1e-12)
    constant = np.tile(np.array([0.5, 0.2, 0.1, 0.1, 0.1]), (40, 1))
    assert inception_score(constant, splits=4).mean == pytest.approx(1.0, abs=1e-12)
    same_class = np.eye(k)[np.zeros(30, dtype=int)]
    assert inception_score(same_class, splits=1).mean == pytest.approx(1.0, abs=1e-12)
    spread = np.eye(k)[np.arange(10 * 3 * k) % k]  # every split of 3k samples holds each class 3 times
    result = inception_score(spread, splits=10)
    assert result.mean == pytest.approx(k, rel=1e-12) and result.std == pytest.approx(0.0, abs=1e-12)
    assert result.splits == 10 and result.num_samples == 150 and len(result.split_scores) == 10


def test_is_from_logits_matches_probabilities_and_confident_logits_give_k():
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(64, 7)) * 3
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    a = inception_score(logits, from_logits=True, splits=4)
    b = inception_score(probs, splits=4)
    np.testing.assert_allclose(a.split_scores, b.split_scores, rtol=1e-12)
    confident = 1000.0 * (np.eye(7)[np.arange(70) % 7] - 0.5)  # softmax underflows to exact one-hots
    assert inception_score(torch.tensor(confident), from_logits=True, splits=1).mean == pytest.approx(7, rel=1e-12)


def test_is_tiny_closed_form_order_invariance_and_std():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    marginal = np.array([0.75, 0.25])
    kl = [math.log(1 / 0.75), 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)]
    assert inception_score(p, splits=1).mean == pytest.approx(math.exp(np.mean(kl)), rel=1e-14)
    assert marginal.sum() == 1.0
    rng = np.random.default_rng(11)
    q = rng.dirichlet(np.full(10, 0.3), size=100)
    one = inception_score(q, splits=1).mean
    assert 1.0 <= one <= 10.0
    assert inception_score(q[rng.permutation(100)], splits=1).mean == pytest.approx(one, rel=1e-12)
    ten = inception_score(q, splits=10)
    assert ten.std == pytest.approx(np.std(ten.split_scores), rel=1e-12) and ten.std_ddof == 0
    assert inception_score(q, splits=10, std_ddof=1).std == pytest.approx(np.std(ten.split_scores, ddof=1))
    shuffled = inception_score(q, splits=10, shuffle_seed=42)
    assert shuffled == inception_score(q, splits=10, shuffle_seed=42) and shuffled.shuffle_seed == 42
    assert json.loads(json.dumps(ten.to_dict()))["splits"] == 10


def test_is_validates_input():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.ones((4, 3)), splits=1)
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(np.array([[1.5, -0.5], [0.5, 0.5]]), splits=1)
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.full((4, 2), 0.5), splits=5)


# ------------------------------------------------------------------------------------------------
# KVD


def brute_force_mmd2(x: np.ndarray, y: np.ndarray, unbiased: bool) -> float:
    def k(a, b):
        return (a @ b / x.shape[1] + 1.0) ** 3

    m, n = len(x), len(y)
    pairs_xx = [k(x[i], x[j]) for i in range(m) for j in range(m) if not (unbiased and i == j)]
    pairs_yy = [k(y[i], y[j]) for i in range(n) for j in range(n) if not (unbiased and i == j)]
    cross = [k(x[i], y[j]) for i in range(m) for j in range(n)]
    return float(np.mean(pairs_xx) + np.mean(pairs_yy) - 2 * np.mean(cross))


def test_kvd_tiny_closed_form():
    x, y = random_features(5, 3, seed=12), random_features(4, 3, seed=13, shift=0.5)
    for unbiased in (True, False):
        assert kernel_mmd2(x, y, unbiased=unbiased) == pytest.approx(brute_force_mmd2(x, y, unbiased), rel=1e-12)
    np.testing.assert_allclose(polynomial_kernel(x, y), (x @ y.T / 3 + 1) ** 3, rtol=1e-13, atol=1e-15)


def test_kvd_identical_and_independent_sets():
    x = random_features(200, 16, seed=14)
    assert kernel_mmd2(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    k = polynomial_kernel(x, x)
    off_diagonal = (k.sum() - np.trace(k)) / (200 * 199)
    expected = -2 * (np.diag(k).mean() - off_diagonal) / 200  # the U-statistic of a set with itself
    assert kernel_mmd2(x, x) == pytest.approx(expected, rel=1e-10)
    same = kernel_mmd2(random_features(400, 16, seed=15), random_features(400, 16, seed=15 + 1000))
    # two independent draws of one distribution: the unbiased estimate is ~0, far below a shifted set
    shifted = kernel_mmd2(random_features(400, 16, seed=15), random_features(400, 16, seed=16, shift=0.5))
    assert abs(same) < 0.05 * shifted


def test_kvd_subsets_estimator():
    x, y = random_features(60, 8, seed=17), random_features(50, 8, seed=18, shift=0.3)
    full_subset = kernel_distance_subsets(x[:50], y, num_subsets=1, max_subset_size=1000, seed=0)
    assert full_subset.subset_size == 50
    assert full_subset.mean == pytest.approx(kernel_mmd2(x[:50], y), rel=1e-12)  # a permutation of the sets
    result = kernel_distance_subsets(x, y, num_subsets=20, max_subset_size=30, seed=3)
    assert result.subset_size == 30 and result.num_subsets == 20 and result.std > 0
    assert result == kernel_distance_subsets(x, y, num_subsets=20, max_subset_size=30, seed=3)


# ------------------------------------------------------------------------------------------------
# Protocols and results


def test_builtin_protocols():
    names = list_protocols()
    for name in ("fid5000_resnext101_g3an", "is_resnext101_ucf101", "fvd2048_16f", "kvd2048_16f"):
        assert name in names
    fid = get_protocol("fid5000_resnext101_g3an")
    assert fid.extractor.weights_file == "resnext-101-kinetics.pth" and fid.extractor.feature_dim == 2048
    assert fid.preprocessing.size == 112 and fid.preprocessing.mean == (114.7748, 107.7354, 99.4750)
    assert fid.num_fake == 5000 and fid.num_real is None and fid.cov_ddof == 1
    fvd = get_protocol("fvd2048_16f")
    assert fvd.extractor.output == "logits" and fvd.preprocessing.size == 224 and fvd.cov_ddof == 0
    assert get_protocol("is_resnext101_ucf101").is_splits == (1, 10)
    with pytest.raises(KeyError, match="fvd2048_16f"):
        get_protocol("fid50k")
    with pytest.raises(ValueError, match="already registered"):
        register_protocol(fid)
    with pytest.raises(ValueError, match="lower-case"):
        MetricProtocol("FID", "fd", fid.extractor, fid.preprocessing, 10, 10)
    with pytest.raises(ValueError, match="output"):
        ExtractorSpec("x", "y", "z", "pooled", 3)


def test_metric_result_round_trip(tmp_path):
    protocol = get_protocol("fvd2048_16f")
    result = MetricResult(
        metric="fvd2048_16f",
        value=123.25,
        protocol=protocol.to_dict(),
        extractor_sha256="a" * 64,
        num_fake=2048,
        num_real=2048,
        seed=0,
        checkpoint_sha256="b" * 64,
        dataset_sha256=None,
        details={"wall_seconds": 12.5},
    )
    assert result.extractor == "i3d_kinetics400" and result.library_version and result.created
    assert MetricResult.from_json(result.to_json()) == result
    assert json.loads(result.to_json())["extractor"] == "i3d_kinetics400"
    result.append_jsonl(tmp_path / "metrics.jsonl")
    result.append_jsonl(tmp_path / "metrics.jsonl")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and MetricResult.from_json(lines[1]) == result
    with pytest.raises(ValueError, match="64 lower-case hex"):
        MetricResult("fvd2048_16f", 1.0, protocol.to_dict(), "xyz", 2, 2, None, None, None)
    with pytest.raises(ValueError, match="does not match"):
        MetricResult("kvd2048_16f", 1.0, protocol.to_dict(), "a" * 64, 2, 2, None, None, None)
    with pytest.raises(ValueError, match="finite"):
        MetricResult("fvd2048_16f", math.nan, protocol.to_dict(), "a" * 64, 2, 2, None, None, None)


# ------------------------------------------------------------------------------------------------
# Statistics cache


SPEC = {"protocol": "fid5000_resnext101_g3an", "extractor_sha256": "c" * 64, "dataset": "uva", "resolution": 64}


def test_stats_key_is_canonical_and_sensitive():
    assert stats_key(SPEC) == stats_key(dict(reversed(list(SPEC.items()))))
    assert stats_key(SPEC) != stats_key({**SPEC, "resolution": 128})
    assert stats_key({**SPEC, "frames": [1, 2]}) == stats_key({**SPEC, "frames": (1, 2)})
    with pytest.raises(TypeError, match="JSON values"):
        stats_key({"path": object()})
    with pytest.raises(ValueError):
        stats_key({"x": float("nan")})


def test_stats_cache_round_trip_and_validation(tmp_path):
    cache = StatsCache(tmp_path / "stats")
    assert cache.load(SPEC) is None
    x = random_features(50, 6, seed=19)
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    path = cache.save(SPEC, mu, sigma, 50, metadata={"host": "test"})
    assert path.name == f"{stats_key(SPEC)}.npz" and [p.name for p in path.parent.iterdir()] == [path.name]
    loaded = cache.load(SPEC)
    assert np.array_equal(loaded.mu, mu) and np.array_equal(loaded.sigma, sigma) and loaded.count == 50
    assert loaded.spec == SPEC and loaded.metadata == {"host": "test"} and loaded.key == stats_key(SPEC)
    with np.load(path, allow_pickle=False) as data:  # G3AN's mu/sigma layout, readable by other tools
        assert set(data.files) == {"mu", "sigma", "count", "meta"}
    with pytest.raises(StatsCacheError, match="another key"):
        load_stats(path, spec={**SPEC, "resolution": 128})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    with pytest.raises(StatsCacheError, match="not a readable npz"):
        cache.load(SPEC)
    with pytest.raises(StatsCacheError, match="symmetric"):
        save_stats(tmp_path / "bad.npz", mu, sigma + np.triu(np.ones((6, 6)), 1), 50, spec=SPEC)


def test_stats_cache_plain_files_and_failed_writes(tmp_path, monkeypatch):
    plain = tmp_path / "uva_64.npz"
    np.savez(plain, mu=np.zeros(3), sigma=np.eye(3))
    assert load_stats(plain, allow_plain=True).count is None
    with pytest.raises(StatsCacheError, match="not written by g3an"):
        load_stats(plain)
    np.savez(tmp_path / "nomu.npz", sigma=np.eye(3))
    with pytest.raises(StatsCacheError, match="missing arrays"):
        load_stats(tmp_path / "nomu.npz", allow_plain=True)
    target = tmp_path / "entry.npz"
    save_stats(target, np.zeros(3), np.eye(3), 10, spec=SPEC)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        save_stats(target, np.ones(3), np.eye(3), 10, spec=SPEC)
    assert target.read_bytes() == before  # the old entry survives, no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.npz", "nomu.npz", "uva_64.npz"]
