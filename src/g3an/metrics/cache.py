"""Feature statistics cached under a hash of everything that affects them, written atomically.

A cache entry is an ``.npz`` file holding ``mu`` ``(d,)`` and ``sigma`` ``(d, d)`` in float64 (the
format of G3AN's ``evaluation/stats/uva_64.npz``, so other tools can read it), ``count`` (number of
videos) and ``meta``, a JSON string with the key, the full key specification and free metadata.
The key is the SHA-256 of the canonical JSON of a specification such as
``{"protocol": ..., "extractor_sha256": ..., "dataset_sha256": ..., "resolution": 64}``: change any
field and the entry is a different file. Files are written to a temporary name in the same
directory and renamed, so a reader never sees a half-written file, and are validated on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from g3an.checkpoint import atomic_write

__all__ = [
    "CachedStats",
    "StatsCache",
    "StatsCacheError",
    "default_stats_dir",
    "load_stats",
    "save_stats",
    "stats_key",
]

FORMAT = "g3an-stats-v1"


class StatsCacheError(RuntimeError):
    """A statistics file is missing pieces, corrupt, or belongs to another key."""


def _canonical_json(spec: Mapping[str, Any]) -> str:
    def reject(obj: Any) -> Any:
        raise TypeError(
            f"cache key specifications may only hold JSON values (str, int, float, bool, None, lists, dicts); "
            f"got {type(obj).__name__}: {obj!r}"
        )

    if not isinstance(spec, Mapping):
        raise TypeError(f"a cache key specification must be a mapping, got {type(spec).__name__}")
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=reject)


def stats_key(spec: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``spec`` (sorted keys, no whitespace, no NaN).

    Args:
        spec: everything that affects the statistics: protocol, extractor weights hash, dataset hash,
            resolution, clip sampling, library version of the feature code, ...; JSON values only.
    """
    return hashlib.sha256(f"{FORMAT}\n{_canonical_json(spec)}".encode()).hexdigest()


def default_stats_dir() -> Path:
    """``$G3AN_CACHE_DIR/stats`` if the variable is set, else ``~/.cache/g3an/stats``."""
    base = os.environ.get("G3AN_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "g3an") / "stats"


@dataclass(frozen=True)
class CachedStats:
    """Statistics read back from a cache file.

    Attributes:
        mu: mean feature, float64 ``(d,)``.
        sigma: covariance, float64 ``(d, d)``.
        count: number of videos behind the statistics; ``None`` for a plain ``mu``/``sigma`` file.
        key: the cache key, ``None`` for a plain file.
        spec: the key specification, ``{}`` for a plain file.
        metadata: free metadata stored with the entry.
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None
    key: str | None
    spec: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _validated(mu: Any, sigma: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise StatsCacheError(f"{where}: mu must be (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise StatsCacheError(f"{where}: mu or sigma contains NaN or infinite values")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if float(np.abs(sigma - sigma.T).max()) > 1e-8 * scale:
        raise StatsCacheError(f"{where}: sigma is not symmetric")
    return mu, sigma


def save_stats(
    path: str | Path,
    mu: Any,
    sigma: Any,
    count: int,
    *,
    spec: Mapping[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write statistics atomically (temporary file in the same directory, fsync, rename).

    Args:
        path: destination ``.npz`` file; parent directories are created.
        mu: mean ``(d,)``.
        sigma: covariance ``(d, d)``.
        count: number of videos behind the statistics (``>= 2``).
        spec: the key specification (stored, and hashed into the key).
        metadata: free JSON metadata (e.g. wall time, host); not part of the key.

    Returns:
        The path written.
    """
    path = Path(path)
    mu, sigma = _validated(mu, sigma, str(path))
    if int(count) < 2:
        raise StatsCacheError(f"{path}: count must be >= 2, got {count}")
    meta = {"format": FORMAT, "key": stats_key(spec), "spec": dict(spec), "metadata": dict(metadata or {})}
    meta_json = json.dumps(meta, sort_keys=True, allow_nan=False)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, count=np.asarray(int(count), dtype=np.int64), meta=np.asarray(meta_json))

    atomic_write(path, write)
    return path


def load_stats(path: str | Path, *, spec: Mapping[str, Any] | None = None, allow_plain: bool = False) -> CachedStats:
    """Read and validate a statistics file.

    Args:
        path: ``.npz`` file written by :func:`save_stats` (or, with ``allow_plain``, any npz with
            ``mu`` and ``sigma`` such as G3AN's shipped ``uva_64.npz``).
        spec: when given, the file's key must equal ``stats_key(spec)``.
        allow_plain: accept files without ``count``/``meta`` (then ``count``, ``key`` are ``None``).

    Raises:
        FileNotFoundError: no such file.
        StatsCacheError: unreadable, incomplete, inconsistent, or written for another key.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise StatsCacheError(f"{path}: not a readable npz file ({err})") from err
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise StatsCacheError(f"{path}: missing arrays {missing} (found {sorted(arrays)})")
    mu, sigma = _validated(arrays["mu"], arrays["sigma"], str(path))
    if "meta" not in arrays or "count" not in arrays:
        if allow_plain and spec is None:
            return CachedStats(mu=mu, sigma=sigma, count=None, key=None)
        raise StatsCacheError(f"{path}: no 'meta'/'count' entries, so not written by g3an's stats cache")
    try:
        meta = json.loads(str(arrays["meta"]))
        count = int(arrays["count"])
        key, stored_spec = meta["key"], meta["spec"]
    except (ValueError, KeyError, TypeError) as err:
        raise StatsCacheError(f"{path}: unreadable metadata ({err})") from err
    if meta.get("format") != FORMAT:
        raise StatsCacheError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if key != stats_key(stored_spec):
        raise StatsCacheError(f"{path}: the stored key does not match the stored specification")
    if spec is not None and key != stats_key(spec):
        raise StatsCacheError(f"{path}: written for another key specification (stored key {key[:12]}...)")
    if count < 2:
        raise StatsCacheError(f"{path}: count must be >= 2, got {count}")
    return CachedStats(mu=mu, sigma=sigma, count=count, key=key, spec=stored_spec, metadata=meta["metadata"])


class StatsCache:
    """A directory of statistics files named by their key.

    Args:
        root: directory of the cache; ``None`` means :func:`default_stats_dir`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_stats_dir()

    def path(self, spec: Mapping[str, Any]) -> Path:
        """File that holds (or would hold) the statistics for ``spec``."""
        return self.root / f"{stats_key(spec)}.npz"

    def load(self, spec: Mapping[str, Any]) -> CachedStats | None:
        """Cached statistics for ``spec``, or ``None`` on a miss; an invalid file raises :class:`StatsCacheError`."""
        path = self.path(spec)
        if not path.exists():
            return None
        return load_stats(path, spec=spec)

    def save(
        self, spec: Mapping[str, Any], mu: Any, sigma: Any, count: int, metadata: Mapping[str, Any] | None = None
    ) -> Path:
        """Store statistics for ``spec`` atomically and return the file path."""
        return save_stats(self.path(spec), mu, sigma, count, spec=spec, metadata=metadata)
