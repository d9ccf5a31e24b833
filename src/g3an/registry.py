"""One registry of video GAN models (timm-style): a name maps to a typed config and two builders.

The CLI, the tests and the checkpoints refer to models by name only, so adding a baseline is one
module that calls :func:`register_model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = [
    "ModelEntry",
    "create_discriminator",
    "create_generator",
    "get_entry",
    "list_models",
    "make_config",
    "register_model",
    "saved_config",
]


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model family.

    Attributes:
        name: registry name (``g3an``, ``vgan``, ...).
        config_cls: dataclass holding every architectural option; validated in ``__post_init__``.
        build_generator: ``config -> nn.Module``.
        build_discriminator: ``config -> nn.Module`` returning named logits.
        loss: name of the loss family the training loop uses for this model.
        description: one line for ``g3an models``.
        upgrade_saved: ``config dict -> config dict``; gives a config read from a checkpoint or export the
            values its file was made with for options added after it was saved (:func:`saved_config`).
    """

    name: str
    config_cls: type
    build_generator: Callable[[Any], nn.Module]
    build_discriminator: Callable[[Any], nn.Module]
    loss: str
    description: str = ""
    upgrade_saved: Callable[[dict[str, Any]], dict[str, Any]] | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add a model family to the registry; a name can be registered once."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    if not dataclasses.is_dataclass(entry.config_cls):
        raise TypeError(f"config_cls of {entry.name!r} must be a dataclass")
    _REGISTRY[entry.name] = entry
    return entry


def _ensure_loaded() -> None:
    # Importing the models package runs every registration.
    from g3an import models  # noqa: F401


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a clear error lists the known names."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def make_config(name: str, config: Mapping[str, Any] | Any | None = None, **overrides: Any) -> Any:
    """Build the typed config of model ``name`` from a mapping (or config) plus keyword overrides.

    Unknown keys raise ``ValueError`` naming the key and the valid ones.
    """
    entry = get_entry(name)
    cls = entry.config_cls
    if config is None:
        values: dict[str, Any] = {}
    elif isinstance(config, cls):
        values = dataclasses.asdict(config)
    elif isinstance(config, Mapping):
        values = dict(config)
    else:
        raise TypeError(f"config for {name!r} must be a mapping or {cls.__name__}, got {type(config).__name__}")
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: {', '.join(sorted(known))}"
        )
    return cls(**values)


def saved_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A model config read from a saved file, with the values of options the file predates filled in."""
    upgrade = get_entry(name).upgrade_saved
    return upgrade(dict(config)) if upgrade else dict(config)


def create_generator(name: str, config: Mapping[str, Any] | Any | None = None, **overrides: Any) -> nn.Module:
    """Build the generator of model ``name`` (see :func:`make_config` for the options)."""
    cfg = make_config(name, config, **overrides)
    return get_entry(name).build_generator(cfg)


def create_discriminator(name: str, config: Mapping[str, Any] | Any | None = None, **overrides: Any) -> nn.Module:
    """Build the discriminator module (all heads, named logits) of model ``name``."""
    cfg = make_config(name, config, **overrides)
    return get_entry(name).build_discriminator(cfg)
