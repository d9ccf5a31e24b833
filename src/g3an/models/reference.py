"""Import of state dicts saved by the reference G3AN code (wyhsirius/g3an-project ``train.py``).

The reference saves ``nn.DataParallel`` state dicts (keys prefixed ``module.``) of models whose layers
use the hook-based ``torch.nn.utils.spectral_norm`` (``weight_orig``, ``weight_u``, ``weight_v``). This
module maps them onto :class:`~g3an.models.g3an.G3ANGenerator` and :class:`G3ANDiscriminator`
(parametrisation-based spectral norm, ``levels.{n}`` instead of ``block{n+1}``), infers the
configuration from the tensor shapes, and checks every key and shape with errors that name them.
The imported generator uses the ``reference`` F-SA layout, as the weights were trained with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from g3an.models.g3an import G3ANConfig, G3ANDiscriminator, G3ANGenerator, _build_discriminator, _build_generator

__all__ = [
    "ReferenceImportError",
    "convert_reference_state_dict",
    "import_reference",
    "infer_reference_config",
    "load_reference_file",
]


class ReferenceImportError(ValueError):
    """A file or state dict is not what the reference G3AN code saves."""


def _strip_module(sd: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            raise ReferenceImportError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


_SN = {"weight_orig": "parametrizations.weight.original", "weight_u": "parametrizations.weight.0._u",
       "weight_v": "parametrizations.weight.0._v"}  # fmt: skip


def _rename(key: str, prefix: str) -> str:
    key = re.sub(r"^block(\d+)\.", lambda m: f"levels.{int(m.group(1)) - 1}.", key)
    head, _, leaf = key.rpartition(".")
    if leaf in _SN:
        key = f"{head}.{_SN[leaf]}"
    return prefix + key


def infer_reference_config(generator_sd: Mapping[str, Any]) -> G3ANConfig:
    """The :class:`G3ANConfig` of a reference generator state dict, read from its tensor shapes."""
    sd = _strip_module(generator_sd)
    try:
        w_s0 = sd["block1.conv_s.0.weight_orig"]  # (dim_z_a, 8ch, 1, 4, 4)
        w_t0 = sd["block1.conv_t.0.weight_orig"]  # (dim_z_m, 8ch, 4, 1, 1)
        w_v0 = sd["block1.conv_v.0.weight_orig"]
    except KeyError as err:
        raise ReferenceImportError(f"not a reference G3AN generator state dict: missing {err.args[0]!r}") from None
    n_blocks = len({k.split(".")[0] for k in sd if k.startswith("block")})
    resolution = 2 ** (n_blocks + 1)
    last = sd.get(f"block{n_blocks}.conv_s.1.weight")
    if last is None:
        raise ReferenceImportError(f"not a reference G3AN generator state dict: no block{n_blocks}.conv_s.1.weight")
    kernel = tuple(w_v0.shape[2:])
    conv_type = {(4, 1, 1): "1p2d", (1, 4, 4): "2p1d", (4, 4, 4): "3d"}.get(kernel)
    if conv_type is None:
        raise ReferenceImportError(f"block1.conv_v.0 has kernel {kernel}, which matches no G3AN conv type")
    fsa_level = 3 if any(k.startswith("fsa.") for k in sd) else None
    return G3ANConfig(
        dim_z_a=int(w_s0.shape[0]), dim_z_m=int(w_t0.shape[0]), ch=int(last.shape[0]), ch_d=int(last.shape[0]),
        conv_type=conv_type, fsa_level=fsa_level, fsa_layout="reference", resolution=resolution,
    )  # fmt: skip


def convert_reference_state_dict(sd: Mapping[str, Any], target: torch.nn.Module, prefix: str = "") -> dict:
    """Map a reference state dict onto ``target``'s key names and check keys and shapes.

    Args:
        sd: reference state dict (``module.`` prefix optional).
        target: the project module the result will be loaded into (used for key and shape checks).
        prefix: prefix of ``target``'s keys that the reference keys lack (``video.`` for D_V, ...).

    Returns:
        A state dict ``target.load_state_dict(..., strict=True)`` accepts.
    """
    converted = {_rename(k, prefix): v for k, v in _strip_module(sd).items()}
    expected = target.state_dict()
    if prefix:
        expected = {k: v for k, v in expected.items() if k.startswith(prefix)}
    # BatchNorm ``num_batches_tracked`` was added after old checkpoints were written; tolerate its absence.
    missing = sorted(k for k in set(expected) - set(converted) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {', '.join(missing[:4])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {', '.join(unexpected[:4])}")
        raise ReferenceImportError("state dict does not match the G3AN architecture: " + "; ".join(parts))
    for key, value in converted.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ReferenceImportError(
                f"{key}: shape {tuple(value.shape)} in the file, {tuple(expected[key].shape)} in the model"
            )
    return converted


def import_reference(
    generator_sd: Mapping[str, Any],
    video_d_sd: Mapping[str, Any] | None = None,
    image_d_sd: Mapping[str, Any] | None = None,
) -> tuple[G3ANConfig, G3ANGenerator, G3ANDiscriminator | None]:
    """Build project models holding the weights of reference state dicts.

    Args:
        generator_sd: the reference generator state dict (``G_<epoch>.pth`` or the released ``g3an.pth``).
        video_d_sd: optional reference D_V state dict (``VD_<epoch>.pth``).
        image_d_sd: optional reference D_I state dict (``ID_<epoch>.pth``); needs ``video_d_sd`` too.

    Returns:
        ``(config, generator, discriminator_or_None)``; the generator uses the ``reference`` F-SA layout.
    """
    cfg = infer_reference_config(generator_sd)
    generator = _build_generator(cfg)
    generator.load_state_dict(convert_reference_state_dict(generator_sd, generator), strict=False)
    discriminator = None
    if video_d_sd is not None or image_d_sd is not None:
        if video_d_sd is None or image_d_sd is None:
            raise ReferenceImportError("import D_V and D_I together (both state dicts are needed)")
        cfg.ch_d = int(_strip_module(video_d_sd).get("net.0.bias", torch.empty(cfg.ch)).shape[0])
        discriminator = _build_discriminator(cfg)
        merged = convert_reference_state_dict(video_d_sd, discriminator, "video.")
        merged.update(convert_reference_state_dict(image_d_sd, discriminator, "image."))
        discriminator.load_state_dict(merged, strict=False)
    return cfg, generator, discriminator


def load_reference_file(path: str | Path) -> dict[str, dict]:
    """Read a reference file: a generator state dict, or a dict with ``G`` and optionally ``D_V`` / ``D_I``.

    Loaded with ``weights_only=True``; errors name the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceImportError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle with code, not a torch file at all
        raise ReferenceImportError(f"{path}: cannot be read as a PyTorch weights file ({err})") from None
    if not isinstance(obj, Mapping):
        raise ReferenceImportError(f"{path}: expected a state dict, found a {type(obj).__name__}")
    if "G" in obj and isinstance(obj["G"], Mapping):
        return {k: obj[k] for k in ("G", "D_V", "D_I") if isinstance(obj.get(k), Mapping)}
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return {"G": obj["state_dict"]}
    return {"G": obj}
