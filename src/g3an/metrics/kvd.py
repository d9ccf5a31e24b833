"""Kernel Video Distance: squared MMD with a polynomial kernel (spec metrics.md section 5).

KVD (Unterthiner et al. 2018, next to FVD) is KID (Bińkowski et al. 2018) on video features:
``MMD^2(X, Y)`` with ``k(x, y) = (gamma x^T y + coef0)^degree``, by default ``gamma = 1/d``,
``coef0 = 1``, ``degree = 3``. Two estimators are in use and both are offered here:

* :func:`kernel_mmd2` over the full sets (TATS ``polynomial_mmd``); ``unbiased=True`` is the
  U-statistic with the diagonals of ``K_XX`` and ``K_YY`` excluded, ``unbiased=False`` the
  V-statistic, which is exactly 0 for two identical sets;
* :func:`kernel_distance_subsets`, the KID-style mean over random equal-size subsets drawn without
  replacement (clean-fid ``kernel_distance``, StyleGAN-V ``compute_kid``; StyleGAN-V multiplies the
  value by 1000 when it reports it, this module never does).

All arithmetic is float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from g3an.metrics.feature_stats import as_float64_matrix

__all__ = ["KernelDistance", "kernel_distance_subsets", "kernel_mmd2", "polynomial_kernel"]


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """Kernel matrix ``(gamma x_i^T y_j + coef0)^degree`` of shape ``(N_x, N_y)``.

    Args:
        x: features ``(N_x, d)``.
        y: features ``(N_y, d)``.
        degree: polynomial degree.
        gamma: scale of the inner product; ``None`` means ``1/d``.
        coef0: additive constant.
    """
    x = as_float64_matrix(x, name="x")
    y = as_float64_matrix(y, x.shape[1], name="y")
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return (g * (x @ y.T) + coef0) ** degree


def _mmd2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, unbiased: bool) -> float:
    m, n = kxy.shape
    if unbiased:
        if m < 2 or n < 2:
            raise ValueError(f"the unbiased estimator needs at least 2 samples per set, got {m} and {n}")
        xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    else:
        xx = kxx.sum() / (m * m)
        yy = kyy.sum() / (n * n)
    return float(xx + yy - 2.0 * kxy.sum() / (m * n))


def kernel_mmd2(
    x: Any,
    y: Any,
    *,
    unbiased: bool = True,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> float:
    """Squared MMD between two feature sets over all samples, polynomial kernel.

    Args:
        x: features ``(N_x, d)`` (e.g. real videos), NumPy array or torch tensor.
        y: features ``(N_y, d)`` (e.g. generated videos).
        unbiased: U-statistic (default; can be slightly negative) or V-statistic (``>= 0``, biased).
        degree: polynomial degree of the kernel.
        gamma: inner-product scale; ``None`` means ``1/d``.
        coef0: additive constant of the kernel.

    Returns:
        ``MMD^2`` in kernel units (not scaled by 1000).
    """
    x = as_float64_matrix(x, name="x")
    y = as_float64_matrix(y, x.shape[1], name="y")
    kw = {"degree": degree, "gamma": gamma, "coef0": coef0}
    return _mmd2(polynomial_kernel(x, x, **kw), polynomial_kernel(y, y, **kw), polynomial_kernel(x, y, **kw), unbiased)


@dataclass(frozen=True)
class KernelDistance:
    """A subset-averaged kernel distance (KID / KVD) and how it was computed.

    Attributes:
        mean: mean of the unbiased ``MMD^2`` over subsets, in kernel units.
        std: population standard deviation (``ddof = 0``) of the per-subset values.
        num_subsets: number of random subsets.
        subset_size: samples drawn from each set per subset, without replacement.
        seed: seed of ``np.random.default_rng`` used to draw the subsets.
    """

    mean: float
    std: float
    num_subsets: int
    subset_size: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def kernel_distance_subsets(
    x: Any,
    y: Any,
    *,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> KernelDistance:
    """KID-style estimator: unbiased ``MMD^2`` averaged over random subsets.

    Each subset takes ``m = min(N_x, N_y, max_subset_size)`` samples from each set without
    replacement; the per-subset value is :func:`kernel_mmd2` with ``unbiased=True``.

    Args:
        x: features ``(N_x, d)``.
        y: features ``(N_y, d)``.
        num_subsets: number of subsets (100 in KID and StyleGAN-V).
        max_subset_size: largest subset size (1000 in KID and StyleGAN-V).
        seed: seed for drawing the subsets.
        degree: polynomial degree of the kernel.
        gamma: inner-product scale; ``None`` means ``1/d``.
        coef0: additive constant of the kernel.
    """
    x = as_float64_matrix(x, name="x")
    y = as_float64_matrix(y, x.shape[1], name="y")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values[i] = kernel_mmd2(xs, ys, unbiased=True, degree=degree, gamma=gamma, coef0=coef0)
    return KernelDistance(
        mean=float(values.mean()), std=float(values.std()), num_subsets=num_subsets, subset_size=m, seed=seed
    )
