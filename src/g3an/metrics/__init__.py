"""Video metrics: feature statistics, the Fréchet distance (FID / FVD), Inception Score, KVD, protocols.

Every formula lives once (spec style rule 8): :func:`frechet_distance` serves FID and FVD, and a metric
name such as ``fvd2048_16f`` names its whole protocol (:mod:`g3an.metrics.protocols`). Extractors are in
:mod:`g3an.metrics.extractors`, the offline weights store in :mod:`g3an.metrics.weights`.
"""

from g3an.metrics import embedded  # noqa: F401  (registers the embedded protocols)
from g3an.metrics.cache import CachedStats, StatsCache, StatsCacheError, load_stats, save_stats, stats_key
from g3an.metrics.feature_stats import FeatureStats
from g3an.metrics.frechet import (
    FrechetDistanceError,
    RankDeficientWarning,
    frechet_distance,
    frechet_distance_from_stats,
)
from g3an.metrics.inception_score import InceptionScore, inception_score
from g3an.metrics.kvd import KernelDistance, kernel_distance_subsets, kernel_mmd2
from g3an.metrics.protocols import (
    ExtractorSpec,
    MetricProtocol,
    MetricResult,
    PreprocessSpec,
    get_protocol,
    list_protocols,
    register_protocol,
)

__all__ = [
    "CachedStats",
    "ExtractorSpec",
    "FeatureStats",
    "FrechetDistanceError",
    "InceptionScore",
    "KernelDistance",
    "MetricProtocol",
    "MetricResult",
    "PreprocessSpec",
    "RankDeficientWarning",
    "StatsCache",
    "StatsCacheError",
    "frechet_distance",
    "frechet_distance_from_stats",
    "get_protocol",
    "inception_score",
    "kernel_distance_subsets",
    "kernel_mmd2",
    "list_protocols",
    "load_stats",
    "register_protocol",
    "save_stats",
    "stats_key",
]
