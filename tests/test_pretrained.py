"""Shipped models and fine-tuning: exports that hold the discriminator, ``init=``, names as checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import g3an.pretrained as pretrained
from g3an.checkpoint import CheckpointError, load_checkpoint, load_generator, load_init_weights
from g3an.cli import main
from g3an.train import TrainConfig, fit
from tests.test_train import TINY_MODEL, TinyClips


def _cfg(**kw) -> TrainConfig:
    values = {"model": "g3an", "model_config": dict(TINY_MODEL), "batch_size": 4, "steps": 2, "workers": 0,
              "device": "cpu", "log_every": 1, "sample_every": 0, "checkpoint_every": 2, "seed": 5,
              "ema_half_life": 10.0}  # fmt: skip
    values.update(kw)
    return TrainConfig.from_dict(values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 2-step tiny run, its export with the discriminator, and a generator-only export."""
    root = tmp_path_factory.mktemp("pretrained")
    result = fit(_cfg(), root / "run", dataset=TinyClips(), progress=False)
    full, gonly = root / "full.safetensors", root / "gonly.safetensors"
    for out, extra in ((full, ["--with-discriminator"]), (gonly, [])):
        res = CliRunner().invoke(main, ["export", str(result.checkpoint), "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
    return result.checkpoint, full, gonly


def test_export_with_discriminator_holds_g_ema_d_and_samplers_ignore_the_extras(trained) -> None:
    ckpt_path, full, gonly = trained
    ckpt = load_checkpoint(ckpt_path)
    tensors = load_file(str(full))
    assert {k.split("/")[0] for k in tensors if "/" in k} == {"discriminator", "generator_raw"}
    for k, v in ckpt["discriminator"].items():
        assert torch.equal(tensors[f"discriminator/{k}"], v)
    for k, v in ckpt["generator"].items():
        assert torch.equal(tensors[f"generator_raw/{k}"], v)
    # the main weights are the EMA generator; --no-ema reading of the export gives the raw one
    _, _, g_ema, _ = load_generator(full)
    _, _, g_raw, _ = load_generator(full, ema=False)
    _, _, g_gonly, _ = load_generator(gonly)
    for (k, v), w in zip(g_ema.state_dict().items(), g_gonly.state_dict().values()):
        assert torch.equal(v, w), k
        assert torch.equal(v, ckpt["generator_ema"][k])
    assert all(torch.equal(v, ckpt["generator"][k]) for k, v in g_raw.state_dict().items())


def test_export_with_discriminator_refuses_files_without_one(trained, tmp_path: Path) -> None:
    ckpt_path, full, _ = trained
    res = CliRunner().invoke(
        main, ["export", str(full), "--out", str(tmp_path / "a.safetensors"), "--with-discriminator"]
    )
    assert res.exit_code != 0 and "needs a training checkpoint" in res.output
    no_d = tmp_path / "step-00000002.pt"
    torch.save({k: v for k, v in load_checkpoint(ckpt_path).items() if k != "discriminator"}, no_d)
    res = CliRunner().invoke(
        main, ["export", str(no_d), "--out", str(tmp_path / "b.safetensors"), "--with-discriminator"]
    )
    assert res.exit_code != 0 and "holds no discriminator" in res.output, res.output
    assert not (tmp_path / "b.safetensors").exists()


def test_fine_tuning_starts_from_the_weights_of_every_source_kind(trained, tmp_path: Path) -> None:
    ckpt_path, full, _ = trained
    ckpt = load_checkpoint(ckpt_path)
    for source in (full, ckpt_path, ckpt_path.parent.parent):
        init = load_init_weights(source, model="g3an")
        assert init["generator_ema"] is not None
        for part in ("generator", "discriminator", "generator_ema"):
            assert all(torch.equal(v, ckpt[part][k]) for k, v in init[part].items()), (source, part)
    # a run with a zero learning rate keeps the parameters it started from
    run = tmp_path / "ft"
    result = fit(_cfg(steps=1, init=str(full), optim={"lr_g": 0.0, "lr_d": 0.0}), run, dataset=TinyClips(),
                 progress=False)  # fmt: skip
    after = load_checkpoint(result.checkpoint)
    assert after["counters"]["step"] == 1
    assert json.loads((run / "config.json").read_text())["init"] == str(full)
    for part in ("generator", "discriminator"):
        for k, v in after[part].items():
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked", "._u", "._v")):  # parameters
                assert torch.equal(v, ckpt[part][k]), (part, k)
    # resuming a fine-tuned run reads its own checkpoint, not the init weights again
    resumed = fit(_cfg(steps=2, init=str(full)), run, dataset=TinyClips(), progress=False, resume=True)
    assert load_checkpoint(resumed.checkpoint)["counters"]["step"] == 2


def test_init_refuses_generator_only_exports_other_configs_and_other_models(trained, tmp_path: Path) -> None:
    _, full, gonly = trained
    with pytest.raises(CheckpointError, match="--with-discriminator"):
        fit(_cfg(init=str(gonly)), tmp_path / "a", dataset=TinyClips(), progress=False)
    with pytest.raises(CheckpointError, match="ch: 4 there, 8 here"):
        fit(_cfg(init=str(full), model_config={**TINY_MODEL, "ch": 8}), tmp_path / "b", dataset=TinyClips(),
            progress=False)  # fmt: skip
    with pytest.raises(CheckpointError, match="this run trains 'vgan'"):
        load_init_weights(full, model="vgan")
    with pytest.raises(CheckpointError, match=r"no such"):
        fit(_cfg(init=str(tmp_path / "missing.pt")), tmp_path / "c", dataset=TinyClips(), progress=False)
    with pytest.raises(ValueError, match="init must be"):
        _cfg(init="")


def test_shipped_names_work_as_checkpoints_everywhere(trained, tmp_path: Path, monkeypatch) -> None:
    _, full, _ = trained
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "g3an_synth_actions.safetensors").write_bytes(full.read_bytes())
    (assets / "g3an_synth_actions.json").write_text(json.dumps({"steps": 2, "model": "g3an"}))
    monkeypatch.setattr(pretrained, "ASSETS", assets)
    monkeypatch.chdir(tmp_path)
    assert pretrained.resolve("synth-actions") == assets / "g3an_synth_actions.safetensors"
    assert pretrained.resolve("some/file.pt") == Path("some/file.pt")
    assert pretrained.card("synth-actions")["steps"] == 2
    assert load_generator("synth-actions")[1].ch == 4
    assert load_generator(Path("synth-actions"))[1].ch == 4  # the CLI passes click's Paths
    with pytest.raises(CheckpointError, match="'synth-faces' is missing from this installation"):
        load_generator("synth-faces")
    res = CliRunner().invoke(main, ["sample", "synth-actions", "--n", "2", "--out", "s.gif"])
    assert res.exit_code == 0, res.output
    record = json.loads(Path("s.gif.latents.json").read_text())
    assert record["checkpoint"].endswith("g3an_synth_actions.safetensors")
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and "synth-actions" in res.output and "2 steps" in res.output
    init = load_init_weights("synth-actions", model="g3an")
    assert init["source"].endswith("g3an_synth_actions.safetensors")


def test_the_installed_shipped_models_sample_without_training(tmp_path: Path) -> None:
    shipped = pretrained.list_shipped()
    if not shipped:
        pytest.skip("no shipped model in src/g3an/assets/models (scripts/train_shipped_models.py makes them)")
    for m in shipped:
        name, cfg, _, info = load_generator(m["name"])
        assert name == "g3an" and m["bytes"] < 20e6
        assert len(json.loads(info["class_names"])) == cfg.num_classes > 0
        out = tmp_path / f"{m['name']}.gif"
        res = CliRunner().invoke(main, ["sample", m["name"], "--n", "2", "--out", str(out)])
        assert res.exit_code == 0 and out.stat().st_size > 0, res.output
        assert load_init_weights(m["name"], model="g3an")["generator_ema"] is not None


def _shipped_models_script():
    """``scripts/train_shipped_models.py`` as a module (it is a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts/train_shipped_models.py"
    spec = importlib.util.spec_from_file_location("train_shipped_models", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_docs_models_md_is_what_the_shipped_model_cards_say(tmp_path: Path) -> None:
    """docs/models.md is written from the cards by scripts/train_shipped_models.py: it must match them."""
    root = Path(__file__).resolve().parents[1]
    cards = [json.loads(p.read_text()) for p in sorted((root / "src/g3an/assets/models").glob("*.json"))]
    if not cards:
        pytest.skip("no shipped model card in src/g3an/assets/models")
    script = _shipped_models_script()
    script.write_docs(cards, tmp_path / "models.md")
    text = (tmp_path / "models.md").read_text()
    for c in cards:
        assert c["sha256"][:16] in text and c["trained_on"] in text
        assert f"{c['steps']} steps at batch {c['batch_size']}" in text and f"in {c.get('precision', 'fp32')}" in text
    assert (root / "docs/models.md").read_text() == text, "rerun scripts/train_shipped_models.py to rewrite docs"


def test_train_shipped_models_chains_named_fine_tuning_stages(tmp_path: Path, monkeypatch) -> None:
    """Each named stage keeps its own copy of the export before it and its own run; the commands of the
    stages before are carried into the next one's card (training itself is replaced here: the pieces it
    calls are the CLI commands tested elsewhere)."""
    import hashlib

    script = _shipped_models_script()
    assets, work = tmp_path / "assets", tmp_path / "work"
    assets.mkdir()
    monkeypatch.setattr(script, "ASSETS", assets)
    monkeypatch.setattr(script, "prepare_data", lambda dataset, work, seed: (work / "data", "g3an data synth ..."))
    trained = []
    monkeypatch.setattr(
        script, "train_or_resume", lambda run_dir, cmd, steps: trained.append((run_dir, cmd)) or run_dir
    )

    def publish(dataset, work, data, run_dir, last, cmds, eval_n, seed, note, base=None, stage_cmd=None):
        out = assets / "g3an_synth_actions.safetensors"
        out.write_bytes(run_dir.name.encode())  # a new export per stage
        card = {"steps": base["steps"] + 1, "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
                "commands": {**cmds, "export": "x", "eval": "y"}, "stage": stage_cmd}  # fmt: skip
        out.with_suffix(".json").write_text(json.dumps(card))
        return card

    monkeypatch.setattr(script, "publish", publish)
    first = assets / "g3an_synth_actions.safetensors"
    first.write_bytes(b"stage one")
    first.with_suffix(".json").write_text(json.dumps({
        "steps": 1, "sha256": hashlib.sha256(b"stage one").hexdigest(),
        "commands": {"data": "g3an data synth ...", "train": "g3an train STAGE-1", "eval": "g3an eval"}}))  # fmt: skip
    script.finetune("actions", work, 5, ["appearance_consistency=100"], 8, 0, name="identity", run_seed=0)
    card = script.finetune("actions", work, 7, ["d_time_roll=0.5"], 8, 0, name="time-roll")
    assert (work / "base-identity" / "g3an_synth_actions.safetensors").read_bytes() == b"stage one"
    assert (work / "base-time-roll" / "g3an_synth_actions.safetensors").read_bytes() == b"finetune-actions-identity"
    assert [r.name for r, _ in trained] == ["finetune-actions-identity", "finetune-actions-time-roll"]
    (_, identity), (_, time_roll) = trained
    assert identity[identity.index("--seed") + 1] == "0" and identity[-1] == "appearance_consistency=100"
    assert time_roll[time_roll.index("--seed") + 1] == "1" and time_roll[-1] == "d_time_roll=0.5"
    assert f"init={work / 'base-time-roll' / 'g3an_synth_actions.safetensors'}" in time_roll
    assert list(card["commands"]) == ["data", "train", "finetune-identity", "finetune-time-roll", "export", "eval"]
    assert card["commands"]["train"] == "g3an train STAGE-1" and card["stage"] == card["commands"]["finetune-time-roll"]
    # a base that no longer matches its card is refused rather than fine-tuned
    (work / "base-time-roll" / "g3an_synth_actions.safetensors").write_bytes(b"changed")
    with pytest.raises(SystemExit, match="does not match its card"):
        script.finetune("actions", work, 7, [], 8, 0, name="time-roll")


def test_shipped_models_identity_note_names_each_models_weight() -> None:
    """docs/models.md says which shipped models trained with ``appearance_consistency`` and at what weight
    (the last stage's), from the commands in their cards."""
    script = _shipped_models_script()
    plain = {"name": "synth-x", "commands": {"train": "g3an train --steps 5"}}
    actions = {
        "name": "synth-actions",
        "commands": {"train": "g3an train", "finetune-a": "g3an train appearance_consistency=100"},
    }
    faces = {"name": "synth-faces", "commands": {"finetune-b": "g3an train appearance_consistency=10 d_time_roll=0.5"}}
    assert "reduces it" in " ".join(script.identity_note([plain]))
    one = " ".join(script.identity_note([actions, plain]))
    assert one.startswith("`synth-actions` (weight 100) trained with") and "in its later stages" in one
    both = " ".join(script.identity_note([actions, faces]))
    assert "`synth-actions` (weight 100) and `synth-faces` (weight 10)" in both and "their later stages" in both
