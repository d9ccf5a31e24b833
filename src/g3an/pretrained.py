"""Shipped models: small G3AN generators (with their discriminators) trained on the embedded datasets.

They ship inside the package (``g3an/assets/models/``), so ``g3an sample synth-actions ...`` works right
after installation, and ``g3an train ... init=synth-actions`` fine-tunes one. Each ``NAME.safetensors``
is a generator export (:func:`g3an.checkpoint.export_generator`) that also holds the discriminator and
the raw (non-EMA) generator; ``NAME.json`` beside it is the model card: the training command, data,
steps, time, machine and metrics. ``scripts/train_shipped_models.py`` makes both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["ASSETS", "SHIPPED", "card", "is_shipped", "list_shipped", "resolve", "shipped_path"]

ASSETS = Path(__file__).resolve().parent / "assets" / "models"

# shipped name -> (file stem, embedded dataset it was trained on)
SHIPPED: dict[str, tuple[str, str]] = {
    "synth-actions": ("g3an_synth_actions", "actions"),
    "synth-faces": ("g3an_synth_faces", "faces"),
}


def is_shipped(name: str | Path) -> bool:
    """True when ``name`` is a shipped model's name (and not an existing path of that name)."""
    return str(name) in SHIPPED and not Path(name).exists()


def shipped_path(name: str, directory: str | Path | None = None) -> Path:
    """The ``.safetensors`` file of the shipped model ``name``; a clear error when it is not installed."""
    if name not in SHIPPED:
        raise KeyError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED)}")
    path = Path(directory or ASSETS) / f"{SHIPPED[name][0]}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"shipped model {name!r} is missing from this installation ({path})")
    return path


def resolve(name_or_path: str | Path) -> Path:
    """A shipped model's file for a shipped name (``synth-actions``, ``synth-faces``), else the path itself."""
    if is_shipped(name_or_path):
        return shipped_path(str(name_or_path))  # a str or a Path (click gives Paths)
    return Path(name_or_path)


def card(name: str, directory: str | Path | None = None) -> dict[str, Any]:
    """The model card (``NAME.json``) of a shipped model."""
    path = shipped_path(name, directory).with_suffix(".json")
    return json.loads(path.read_text())


def list_shipped(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """Every shipped model present in this installation, with its card (``{}`` when the card is missing)."""
    out = []
    for name, (stem, dataset) in SHIPPED.items():
        path = Path(directory or ASSETS) / f"{stem}.safetensors"
        if path.is_file():
            meta = path.with_suffix(".json")
            info = json.loads(meta.read_text()) if meta.is_file() else {}
            out.append({"name": name, "dataset": dataset, "path": str(path), "bytes": path.stat().st_size, **info})
    return out
