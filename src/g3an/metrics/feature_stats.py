"""Streaming float64 mean and covariance of feature vectors (spec metrics.md section 3.4, step 1).

One accumulator serves FID, FVD and the cached real-data statistics. It keeps the count, the mean and
the centred scatter matrix ``sum_i (x_i - mean)(x_i - mean)^T`` and combines batches with the pairwise
update of Chan, Golub and LeVeque (1979), which avoids the cancellation of the ``E[xx^T] - mu mu^T``
formula and lets the accumulators of several processes be merged exactly (multi-process gather).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["FeatureStats", "as_float64_matrix"]


def as_float64_matrix(features: Any, dim: int | None = None, name: str = "features") -> np.ndarray:
    """Return ``features`` as a C-contiguous float64 ``(N, d)`` array.

    Args:
        features: a NumPy array, a torch tensor (any device, gradients are detached) or anything
            ``np.asarray`` accepts, of shape ``(N, d)``.
        dim: expected feature dimension ``d``; ``None`` accepts any.
        name: name used in error messages.

    Raises:
        ValueError: wrong number of dimensions, wrong ``d`` or non-finite values.
    """
    if hasattr(features, "detach"):  # torch.Tensor, without importing torch here
        features = features.detach().cpu().double().numpy()
    x = np.ascontiguousarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, d), got {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have d = {dim} features, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


class FeatureStats:
    """Running count, mean and covariance of ``d``-dimensional features, in float64.

    Feed batches with :meth:`update`; read :attr:`mean` and :meth:`cov`. Two accumulators filled on
    different processes (or different shards) combine with :meth:`merge`; the result equals the
    statistics of the concatenated features up to float64 rounding, whatever the batch order.

    Args:
        dim: feature dimension ``d``; ``None`` takes it from the first batch.
    """

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self._dim = dim
        self._count = 0
        self._mean: np.ndarray | None = None
        self._scatter: np.ndarray | None = None

    # construction -------------------------------------------------------------------------------

    @classmethod
    def from_features(cls, features: Any) -> FeatureStats:
        """Statistics of a whole ``(N, d)`` array (or tensor) at once."""
        x = as_float64_matrix(features)
        stats = cls(x.shape[1])
        stats.update(x)
        return stats

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> FeatureStats:
        """Rebuild an accumulator from :meth:`to_arrays` output (e.g. after a gather)."""
        count = int(np.asarray(arrays["count"]))
        mean = np.asarray(arrays["mean"], dtype=np.float64)
        scatter = np.asarray(arrays["scatter"], dtype=np.float64)
        if mean.ndim != 1 or scatter.shape != (mean.size, mean.size) or count < 0:
            raise ValueError(f"inconsistent arrays: count {count}, mean {mean.shape}, scatter {scatter.shape}")
        stats = cls(mean.size)
        if count > 0:
            stats._count, stats._mean, stats._scatter = count, mean.copy(), scatter.copy()
        return stats

    @classmethod
    def merged(cls, parts: Iterable[FeatureStats]) -> FeatureStats:
        """Merge any number of accumulators (for example one per rank) into a new one."""
        total = cls()
        for part in parts:
            total = total.merge(part)
        return total

    # accumulation -------------------------------------------------------------------------------

    def update(self, features: Any) -> None:
        """Add a batch of features of shape ``(N, d)``; ``N = 0`` is allowed and changes nothing."""
        x = as_float64_matrix(features, self._dim)
        if self._dim is None:
            self._dim = x.shape[1]
        if x.shape[0] == 0:
            return
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        self._combine(x.shape[0], batch_mean, centred.T @ centred)

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Return a new accumulator holding the features of ``self`` and ``other``."""
        if self._dim is not None and other._dim is not None and self._dim != other._dim:
            raise ValueError(f"cannot merge statistics of dimension {self._dim} and {other._dim}")
        out = FeatureStats(self._dim if self._dim is not None else other._dim)
        for part in (self, other):
            if part._count > 0:
                out._combine(part._count, part._mean, part._scatter)
        return out

    def _combine(self, count: int, mean: np.ndarray, scatter: np.ndarray) -> None:
        if self._count == 0:
            self._count, self._mean, self._scatter = count, mean.copy(), scatter.copy()
            return
        total = self._count + count
        delta = mean - self._mean
        self._scatter = self._scatter + scatter + np.outer(delta, delta) * (self._count * count / total)
        self._mean = self._mean + delta * (count / total)
        self._count = total

    # read-out -----------------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        """Feature dimension ``d`` (``None`` before the first batch when not given)."""
        return self._dim

    @property
    def count(self) -> int:
        """Number of feature vectors seen."""
        return self._count

    @property
    def mean(self) -> np.ndarray:
        """Mean feature, float64 ``(d,)`` (a copy)."""
        if self._count == 0:
            raise ValueError("no features have been added")
        return self._mean.copy()

    def cov(self, ddof: int = 1) -> np.ndarray:
        """Covariance matrix, float64 ``(d, d)``, exactly symmetric.

        Args:
            ddof: ``1`` divides the scatter by ``N - 1`` (``np.cov``, pytorch-fid, G3AN: the default);
                ``0`` divides by ``N`` (StyleGAN-V's ``E[xx^T] - mu mu^T``).
        """
        if ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 (1/N) or 1 (1/(N-1)), got {ddof}")
        if self._count - ddof <= 0:
            raise ValueError(f"a covariance with ddof={ddof} needs more than {ddof} features, got {self._count}")
        scatter = 0.5 * (self._scatter + self._scatter.T)
        return scatter / (self._count - ddof)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The exact state as arrays ``count`` (int64 scalar), ``mean`` ``(d,)``, ``scatter`` ``(d, d)``."""
        if self._dim is None:
            raise ValueError("an accumulator without a dimension has no array form")
        if self._count == 0:
            mean, scatter = np.zeros(self._dim), np.zeros((self._dim, self._dim))
        else:
            mean, scatter = self._mean.copy(), self._scatter.copy()
        return {"count": np.asarray(self._count, dtype=np.int64), "mean": mean, "scatter": scatter}

    def __repr__(self) -> str:
        return f"FeatureStats(dim={self._dim}, count={self._count})"
