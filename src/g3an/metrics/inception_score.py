"""Inception Score from class probabilities or logits, in float64 log space (spec metrics.md section 4).

``IS = exp(E_x KL(p(y|x) || p(y)))`` where ``p(y)`` is the mean of ``p(y|x)`` over the samples of the
same split (the classifier's own marginal, not a label prior). With ``splits = 1`` this is evan's
video IS (the one G3AN credits); with ``splits = 10`` it is the OpenAI / StyleGAN-V convention,
reported as the mean and the standard deviation over splits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

__all__ = ["InceptionScore", "inception_score"]


@dataclass(frozen=True)
class InceptionScore:
    """An Inception Score and how it was computed.

    Attributes:
        mean: mean of the per-split scores (the IS itself when ``splits == 1``); between 1 and the
            number of classes ``K``.
        std: standard deviation of the per-split scores (``0.0`` when ``splits == 1``).
        std_ddof: the ``ddof`` of that standard deviation: ``0`` is the population std of
            ``np.std`` (OpenAI, TGAN-v2, StyleGAN-V), ``1`` the unbiased one of ``torch.std``
            (torchmetrics).
        splits: number of splits.
        num_samples: number of samples over all splits.
        split_scores: the score of each split, in split order.
        shuffle_seed: seed of the permutation applied before splitting, ``None`` when not shuffled.
    """

    mean: float
    std: float
    std_ddof: int
    splits: int
    num_samples: int
    split_scores: tuple[float, ...]
    shuffle_seed: int | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = asdict(self)
        out["split_scores"] = list(self.split_scores)
        return out


def _log_probabilities(predictions: Any, from_logits: bool) -> np.ndarray:
    if hasattr(predictions, "detach"):  # torch.Tensor
        predictions = predictions.detach().cpu().double().numpy()
    x = np.asarray(predictions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"predictions must have shape (N, K) with K >= 2 classes, got {x.shape}")
    if from_logits:
        if not np.isfinite(x).all():
            raise ValueError("logits contain NaN or infinite values")
        return x - logsumexp(x, axis=1, keepdims=True)
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError("probabilities must be finite and non-negative")
    sums = x.sum(axis=1)
    if np.abs(sums - 1.0).max() > 1e-3:
        raise ValueError(
            f"probability rows must sum to 1 (found sums in [{sums.min():.6g}, {sums.max():.6g}]); "
            "pass from_logits=True for logits"
        )
    with np.errstate(divide="ignore"):
        return np.log(x / sums[:, None])


def _split_score(log_p: np.ndarray) -> float:
    n = log_p.shape[0]
    log_marginal = logsumexp(log_p, axis=0) - np.log(n)  # log p(y), (K,)
    p = np.exp(log_p)
    # 0 * log 0 = 0: classes with p(y|x) = 0 add nothing to the KL divergence.
    positive = p > 0.0
    log_ratio = np.subtract(log_p, log_marginal, out=np.zeros_like(p), where=positive)
    terms = np.where(positive, p * log_ratio, 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def inception_score(
    predictions: Any,
    *,
    from_logits: bool = False,
    splits: int = 10,
    shuffle_seed: int | None = None,
    std_ddof: int = 0,
) -> InceptionScore:
    """Inception Score of ``N`` samples classified into ``K`` classes.

    Args:
        predictions: ``(N, K)`` class probabilities (rows summing to 1; exact zeros allowed) or, with
            ``from_logits=True``, unnormalised logits. NumPy array or torch tensor.
        from_logits: interpret ``predictions`` as logits and apply a float64 log-softmax.
        splits: number of contiguous splits (``np.array_split``: sizes differ by at most one, all
            samples are used); each split uses its own marginal ``p(y)``.
        shuffle_seed: if not ``None``, permute the samples with ``np.random.default_rng(seed)`` before
            splitting (StyleGAN-V shuffles with a fixed seed); ``None`` keeps the given order.
        std_ddof: ``ddof`` of the standard deviation over splits (0: ``np.std``; 1: unbiased).

    Returns:
        An :class:`InceptionScore` with mean, std and per-split scores.
    """
    log_p = _log_probabilities(predictions, from_logits)
    n = log_p.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, N = {n}], got {splits}")
    if std_ddof not in (0, 1):
        raise ValueError(f"std_ddof must be 0 or 1, got {std_ddof}")
    if shuffle_seed is not None:
        log_p = log_p[np.random.default_rng(shuffle_seed).permutation(n)]
    scores = np.array([_split_score(part) for part in np.array_split(log_p, splits)])
    std = float(scores.std(ddof=std_ddof)) if splits > std_ddof else 0.0
    return InceptionScore(
        mean=float(scores.mean()),
        std=std,
        std_ddof=std_ddof,
        splits=splits,
        num_samples=n,
        split_scores=tuple(float(s) for s in scores),
        shuffle_seed=shuffle_seed,
    )
