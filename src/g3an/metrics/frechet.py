"""The one Fréchet distance of the project, shared by FID and FVD (spec metrics.md sections 3.3-3.4).

``FD = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})``. The trace of the square root is taken
through the symmetric matrix ``S1^{1/2} S2 S1^{1/2}``, which is similar to ``S1 S2``: an ``eigh`` of
``S1`` (negative round-off eigenvalues clipped to 0) gives ``S1^{1/2}``, then ``eigvalsh`` of the
symmetrised product gives eigenvalues whose clipped square roots are summed (route (c) of the spec).
No complex numbers, no ``eps * I`` retry, no ``scipy.linalg.sqrtm`` (whose ``disp`` argument SciPy
1.16 deprecated and 1.18 removes); singular covariances (``N <= d``) are handled but warned about.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from g3an.metrics.feature_stats import FeatureStats

__all__ = [
    "FrechetDistanceError",
    "RankDeficientWarning",
    "frechet_distance",
    "frechet_distance_from_stats",
    "trace_sqrt_product",
    "trace_sqrt_product_eig",
]

# A covariance whose most negative eigenvalue is below -_PSD_TOLERANCE * (largest |eigenvalue|) is
# rejected: round-off in float64 stays many orders of magnitude below this.
_PSD_TOLERANCE = 1e-6


class RankDeficientWarning(UserWarning):
    """A covariance was estimated from ``N <= d`` samples, so it is singular and FD is biased."""


class FrechetDistanceError(ArithmeticError):
    """The inputs are not valid statistics or the distance came out clearly negative."""


def _as_mean(mu: Any, name: str) -> np.ndarray:
    m = np.asarray(mu, dtype=np.float64)
    if m.ndim != 1:
        raise FrechetDistanceError(f"{name} must be a vector (d,), got shape {m.shape}")
    if not np.isfinite(m).all():
        raise FrechetDistanceError(f"{name} contains NaN or infinite values")
    return m


def _as_cov(sigma: Any, dim: int | None, name: str) -> np.ndarray:
    s = np.asarray(sigma, dtype=np.float64)
    if dim is None and s.ndim == 2:
        dim = s.shape[0]
    if s.shape != (dim, dim):
        raise FrechetDistanceError(f"{name} must be a square matrix (d, d) with d = {dim}, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise FrechetDistanceError(f"{name} contains NaN or infinite values")
    scale = max(float(np.abs(s).max()), np.finfo(np.float64).tiny)
    if float(np.abs(s - s.T).max()) > 1e-6 * scale:
        raise FrechetDistanceError(f"{name} is not symmetric (max |S - S^T| = {np.abs(s - s.T).max():.3g})")
    return 0.5 * (s + s.T)


def _check_psd(eigvals: np.ndarray, name: str) -> None:
    scale = float(np.abs(eigvals).max()) if eigvals.size else 0.0
    if eigvals.size and float(eigvals.min()) < -_PSD_TOLERANCE * scale:
        raise FrechetDistanceError(
            f"{name} is not positive semi-definite (smallest eigenvalue {eigvals.min():.6g}, largest {scale:.6g})"
        )


def trace_sqrt_product(sigma1: Any, sigma2: Any) -> float:
    """``Tr((S1 S2)^{1/2})`` by two symmetric eigendecompositions (float64).

    Args:
        sigma1: covariance ``(d, d)``, symmetric positive semi-definite.
        sigma2: covariance ``(d, d)``, symmetric positive semi-definite.

    Returns:
        The sum of the square roots of the (clipped, non-negative) eigenvalues of
        ``S1^{1/2} S2 S1^{1/2}``.
    """
    s1 = _as_cov(sigma1, None, "sigma1")
    return _trace_sqrt_product(s1, _as_cov(sigma2, s1.shape[0], "sigma2"))


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """Route (c) on validated, exactly symmetric float64 covariances."""
    w, v = np.linalg.eigh(s1)
    _check_psd(w, "sigma1")
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    product = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh(0.5 * (product + product.T))
    _check_psd(eig, "sigma1^(1/2) sigma2 sigma1^(1/2) (so sigma2)")
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def trace_sqrt_product_eig(sigma1: Any, sigma2: Any) -> float:
    """``Tr((S1 S2)^{1/2})`` from the general eigenvalues of ``S1 S2`` (route (b), a cross-check only).

    The eigenvalues are complex in floating point; the real parts of their principal square roots are
    summed, as torchmetrics does. Slower and less careful than :func:`trace_sqrt_product`.
    """
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    eig = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    return float(np.sqrt(eig).real.sum())


def frechet_distance(
    mu1: Any,
    sigma1: Any,
    mu2: Any,
    sigma2: Any,
    *,
    num_samples1: int | None = None,
    num_samples2: int | None = None,
    negative_tolerance: float = 1e-6,
) -> float:
    """Fréchet distance between two Gaussians given by their means and covariances, in float64.

    Args:
        mu1: mean ``(d,)`` of the first feature set.
        sigma1: covariance ``(d, d)`` of the first feature set.
        mu2: mean ``(d,)`` of the second feature set.
        sigma2: covariance ``(d, d)`` of the second feature set.
        num_samples1: number of features behind ``sigma1``; when given and ``<= d`` a
            :class:`RankDeficientWarning` is issued. ``None`` skips the check.
        num_samples2: the same for ``sigma2``.
        negative_tolerance: a result in ``[-tol, 0)`` with ``tol = negative_tolerance * (Tr S1 + Tr S2)``
            is round-off and returns ``0.0``; anything more negative raises.

    Returns:
        The distance, in squared feature units, ``>= 0``.

    Raises:
        FrechetDistanceError: shapes, non-finite values, non-PSD covariances, or a clearly negative result.
    """
    m1 = _as_mean(mu1, "mu1")
    m2 = _as_mean(mu2, "mu2")
    if m1.shape != m2.shape:
        raise FrechetDistanceError(f"mu1 and mu2 differ in shape: {m1.shape} vs {m2.shape}")
    dim = m1.size
    s1 = _as_cov(sigma1, dim, "sigma1")
    s2 = _as_cov(sigma2, dim, "sigma2")
    for label, n in (("first", num_samples1), ("second", num_samples2)):
        if n is not None and n <= dim:
            warnings.warn(
                f"the {label} covariance comes from N = {n} <= d = {dim} samples: it is singular and the "
                "Fréchet distance is biased; use more samples than feature dimensions",
                RankDeficientWarning,
                stacklevel=2,
            )
    diff = m1 - m2
    traces = float(np.trace(s1) + np.trace(s2))
    value = float(diff @ diff) + traces - 2.0 * _trace_sqrt_product(s1, s2)
    if value < 0.0:
        tol = negative_tolerance * max(traces, np.finfo(np.float64).tiny)
        if value < -tol:
            raise FrechetDistanceError(
                f"Fréchet distance is {value:.6g}, below the round-off tolerance -{tol:.3g}: the statistics "
                "are inconsistent"
            )
        value = 0.0
    return value


def frechet_distance_from_stats(stats1: FeatureStats, stats2: FeatureStats, *, ddof: int = 1) -> float:
    """Fréchet distance between two :class:`FeatureStats` (the sample counts feed the ``N <= d`` warning).

    Args:
        stats1: first accumulator.
        stats2: second accumulator.
        ddof: covariance normalisation, ``1`` for ``1/(N-1)`` (default) or ``0`` for ``1/N``.
    """
    return frechet_distance(
        stats1.mean,
        stats1.cov(ddof),
        stats2.mean,
        stats2.cov(ddof),
        num_samples1=stats1.count,
        num_samples2=stats2.count,
    )
