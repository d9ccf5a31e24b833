"""The shipped embedded evaluators, their protocols and the disentanglement measures on stand-in generators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from g3an.data.synthetic import SynthConfig, generate
from g3an.metrics.embedded import (
    ASSET_DIR,
    EMBEDDED_DATASETS,
    appearance_agreement_under_motion,
    class_agreement_under_appearance,
    conditional_accuracy,
    evaluator_name,
    factor_index,
    load_evaluator,
    modal_agreement,
    pairwise_agreement,
    temporal_appearance_consistency,
)
from g3an.metrics.protocols import get_protocol, sha256_file
from g3an.metrics.runner import evaluate_generator, evaluate_real_vs_real, load_extractor

FRAMES = 32


@pytest.fixture(scope="module")
def actions(tmp_path_factory):
    """Fresh synth-actions videos (a seed the evaluator never saw): 6 subjects x 10 actions, 32 frames."""
    path = tmp_path_factory.mktemp("embedded") / "actions"
    return generate(SynthConfig("actions", videos=60, size=64, frames=FRAMES, seed=11), path)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Fresh synth-faces videos: 10 subjects x 6 expressions, 32 frames."""
    path = tmp_path_factory.mktemp("embedded") / "faces"
    return generate(SynthConfig("faces", videos=60, size=64, frames=FRAMES, seed=11), path)


def _videos(dataset) -> torch.Tensor:
    """All videos ``(N, 3, T, H, W)`` float in [-1, 1]."""
    return (
        torch.from_numpy(np.stack([dataset.frames(i) for i in range(len(dataset))])).permute(0, 4, 1, 2, 3) / 127.5 - 1
    )


@pytest.mark.parametrize("dataset", EMBEDDED_DATASETS)
def test_evaluator_loads_and_matches_its_manifest(dataset) -> None:
    ev = load_evaluator(dataset)
    name = evaluator_name(dataset)
    manifest = json.loads((ASSET_DIR / f"{name}.json").read_text())
    assert ev.sha256 == manifest["sha256"] == sha256_file(ASSET_DIR / f"{name}.safetensors")
    assert manifest["version"] == 1 and manifest["name"] == name
    assert sum(p.numel() for p in ev.model.parameters()) == manifest["num_parameters"] < 1_000_000
    assert set(manifest["held_out_accuracy"]) == {"class", *manifest["factor_heads"]}
    for size in (64, 32):
        out = ev.model(torch.rand(2, 3, 16, size, size) * 2 - 1)
        assert out.features.shape == (2, 128) and out.class_logits.shape == (2, len(manifest["classes"]))
        assert {k: v.shape[1] for k, v in out.factor_logits.items()} == {
            k: len(v) for k, v in manifest["factor_heads"].items()
        }


def test_manifest_mismatch_is_refused(tmp_path) -> None:
    name = evaluator_name("actions")
    (tmp_path / f"{name}.safetensors").write_bytes((ASSET_DIR / f"{name}.safetensors").read_bytes())
    manifest = json.loads((ASSET_DIR / f"{name}.json").read_text())
    manifest["sha256"] = "0" * 64
    (tmp_path / f"{name}.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="SHA-256"):
        load_evaluator("actions", tmp_path)


@pytest.mark.parametrize("dataset", EMBEDDED_DATASETS)
def test_held_out_accuracy_on_fresh_videos(dataset, actions, faces) -> None:
    """Every head on unseen subjects of another seed is near the accuracy its manifest records."""
    data = actions if dataset == "actions" else faces
    ev = load_evaluator(dataset)
    out = ev.predict(_videos(data)[:, :, 8:24])
    labels = torch.tensor([v.label for v in data.videos])
    acc = {"class": float((out.class_logits.argmax(-1) == labels).float().mean())}
    targets = [factor_index(dataset, v.factors) for v in data.videos]
    for k, logits in out.factor_logits.items():
        acc[k] = float((logits.argmax(-1) == torch.tensor([t[k] for t in targets])).float().mean())
    assert acc["class"] > 0.6, acc
    recorded = ev.manifest["held_out_accuracy"]
    assert all(acc[k] > recorded[k] - 0.25 for k in acc), (acc, recorded)


class _VideoSource:
    """A stand-in generator returning the dataset's videos in order: as they are, shuffled in time, or noise."""

    num_classes, default_frames = 0, 16

    def __init__(self, videos: torch.Tensor, mode: str) -> None:
        self.videos, self.mode, self.i = videos, mode, 0

    def valid_frames(self, n: int) -> bool:
        return n == 16

    def sample_latents(self, batch, num_frames=None, generator=None, device=None):
        return {"z": torch.randn(batch, 1, generator=generator)}

    def __call__(self, z, y=None):
        idx = torch.arange(self.i, self.i + len(z)) % len(self.videos)
        self.i += len(z)
        v = self.videos[idx][:, :, 8:24]
        if self.mode == "shuffled":
            v = v[:, :, torch.randperm(16, generator=torch.Generator().manual_seed(self.i))]
        elif self.mode == "noise":
            v = torch.rand_like(v) * 2 - 1
        return v


def test_embedded_fid_orders_real_shuffled_noise(faces) -> None:
    """On synth-faces: real vs real (367) < real vs time-shuffled (1497) < real vs noise (~2250), 25 clips a side.

    (On synth-actions the ordering holds too, but shuffled clips come close to noise: docs/metrics.md 12.2.)
    """
    protocol = get_protocol("fid2048_embedded_faces")
    ex = load_extractor(protocol.extractor)
    floor = evaluate_real_vs_real(faces, protocol, ex, num=25, progress=False)
    test_videos = _videos(faces)[torch.tensor(faces.split("test"))]
    kw = {"num_fake": 25, "num_real": 25, "progress": False}
    shuffled = evaluate_generator(_VideoSource(test_videos, "shuffled"), faces, protocol, ex, **kw)
    noise = evaluate_generator(_VideoSource(test_videos, "noise"), faces, protocol, ex, **kw)
    assert floor.value < shuffled.value < noise.value, (floor.value, shuffled.value, noise.value)
    assert floor.metric == "fid25_embedded_faces" and shuffled.extractor_sha256 == load_evaluator("faces").sha256
    is_protocol = get_protocol("is2048_embedded_faces")
    is_res = evaluate_real_vs_real(faces, is_protocol, load_extractor(is_protocol.extractor), num=25, progress=False)
    assert 1.0 < is_res.value <= 6.0


class _Pool:
    """A stand-in G3AN drawing real videos: subject and class picked by the latents, as ``mode`` says.

    ``disentangled``: subject from z_a, class (action or expression) from z_m (or from y when conditional);
    ``entangled``: subject from z_m, class from z_a; ``switching``: as disentangled, but the subject changes
    half way through.
    """

    appearance_latent, motion_latent, default_frames = "z_a", "z_m", 16

    def __init__(self, videos: torch.Tensor, mode: str, num_classes: int = 0, ignore_y: bool = False) -> None:
        self.classes = 6  # synth-faces: video i shows subject i // 6 making expression i % 6
        self.subjects = len(videos) // self.classes
        self.videos = videos.reshape(self.subjects, self.classes, *videos.shape[1:])
        self.mode, self.num_classes, self.ignore_y = mode, num_classes, ignore_y

    def valid_frames(self, n: int) -> bool:
        return n == 16

    def sample_latents(self, batch, num_frames=None, generator=None, device=None):
        return {
            "z_a": torch.randn(batch, 12, generator=generator),
            "z_m": torch.randn(batch, 12, 2, generator=generator),
        }

    def __call__(self, z_a, z_m, y=None):
        c, s = self.classes, self.subjects
        subj, act = z_a[:, :s].argmax(1), z_m[:, :c, 0].argmax(1)
        if self.mode == "entangled":
            subj, act = z_m[:, :s, 1].argmax(1), z_a[:, s : s + c].argmax(1)
        if y is not None and not self.ignore_y:
            act = y
        v = self.videos[subj, act][:, :, 8:24].clone()  # the expression is under way by frame 8
        if self.mode == "switching":
            v[:, :, 8:] = self.videos[(subj + 1) % s, act][:, :, 16:24]
        return v


def test_agreement_helpers() -> None:
    pred = np.array([[1, 1, 1, 2], [0, 1, 2, 3]])
    assert modal_agreement(pred) == pytest.approx((0.75 + 0.25) / 2)
    assert pairwise_agreement(pred) == pytest.approx((3 / 6 + 0) / 2)


def test_disentanglement_measures_separate_good_from_bad(faces) -> None:
    evaluator = load_evaluator("faces")
    videos = _videos(faces)
    kw = {"groups": 6, "members": 4, "seed": 1}
    good, bad = _Pool(videos, "disentangled"), _Pool(videos, "entangled")
    app_good = appearance_agreement_under_motion(good, evaluator, **kw)
    app_bad = appearance_agreement_under_motion(bad, evaluator, **kw)
    assert app_good.value > 0.8 and app_good.value > app_bad.value + 0.2, (app_good.value, app_bad.value)
    cls_good = class_agreement_under_appearance(good, evaluator, **kw)
    cls_bad = class_agreement_under_appearance(bad, evaluator, **kw)
    assert cls_good.value > cls_bad.value + 0.2, (cls_good.value, cls_bad.value)
    assert cls_good.details["appearance_modal"] < app_good.value
    cond = conditional_accuracy(_Pool(videos, "disentangled", num_classes=6), evaluator, num=30)
    blind = conditional_accuracy(_Pool(videos, "disentangled", num_classes=6, ignore_y=True), evaluator, num=30)
    assert cond.value > 0.5 and cond.value > blind.value + 0.2, (cond.value, blind.value)
    steady = temporal_appearance_consistency(good, evaluator, num=12)
    switching = temporal_appearance_consistency(_Pool(videos, "switching"), evaluator, num=12)
    assert steady.value > switching.value + 0.1 and steady.details["windows_per_video"] == 4
    with pytest.raises(ValueError, match="conditional"):
        conditional_accuracy(good, evaluator, num=4)


def test_eval_cli_disentangle_and_embedded_fid(actions, tmp_path) -> None:
    from click.testing import CliRunner

    from g3an import create_generator, make_config
    from g3an.checkpoint import export_generator
    from g3an.cli import main

    cfg = make_config("g3an", ch=4, ch_d=4, dim_z_a=16, dim_z_m=4, resolution=32, fsa_level=1, num_classes=10)
    path = tmp_path / "g.safetensors"
    export_generator(path, "g3an", cfg, create_generator("g3an", cfg))
    out = tmp_path / "r.json"
    args = ["eval", str(path), "--data", str(actions.path), "--metrics", "disentangle,fid2048_embedded_actions",
            "--n", "16", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    records = {r["metric"]: r for r in json.loads(out.read_text())}
    assert set(records) == {"fid16_embedded_actions", "disentangle/appearance_agreement_under_motion",
                            "disentangle/class_agreement_under_appearance", "disentangle/conditional_accuracy",
                            "disentangle/temporal_appearance_consistency"}  # fmt: skip
    assert all(0 <= r["value"] <= 1 for k, r in records.items() if k.startswith("disentangle/"))


def test_appearance_gap_diagnostic_sees_same_subject_pairs_and_dropped_backgrounds(actions) -> None:
    """``benchmarks/appearance_gap.py``: two videos of one subject have a small gap and colour shift, two
    subjects a large one; the head comparison finds nothing missing in the real clips themselves and names
    the backgrounds a one-subject "generator" never makes."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "appearance_gap.py"
    spec = importlib.util.spec_from_file_location("appearance_gap", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    clips = _videos(actions)[:, :, :16]
    subjects = [actions.videos[i].subject for i in range(len(actions))]
    same = next(i for i in range(1, len(actions)) if subjects[i] == subjects[0])
    other = next(i for i in range(1, len(actions)) if subjects[i] != subjects[0])
    gaps, shifts = script.gaps_of_pairs(clips[[0, same, 0, other]])
    assert gaps[0] < gaps[1] and shifts[0] < 0.1 < shifts[1]
    lines = script.head_coverage("actions", clips, clips)
    assert all("tv 0.00; never generated (real >= 5%, generated < 1%): -" in line for line in lines if ": tv" in line)
    lines = script.head_coverage("actions", clips, clips[[0] * 8])
    background = actions.videos[0].factors["background"]
    dropped = next(line for line in lines if line.startswith("  background:")).split(": ")[-1].split(", ")
    assert background not in dropped and len(dropped) >= 3
    # frame-to-frame change: a frozen clip does not move, a real clip does, and more so at a larger time step
    frozen = clips[:, :, :1].expand_as(clips)
    assert (script.frame_change(frozen) == 0).all() and (script.frame_change(clips) > 0).all()
    every_other = _videos(actions)[:, :, ::2][:, :, :16]
    assert script.frame_change(every_other).mean() > script.frame_change(clips).mean()
    # the faces evaluator's heads name nothing of an actions clip: refused before any checkpoint is read
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(path), "no-such.pt", "--data", str(actions.path), "--heads", "faces"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 2 and "was not made by g3an data synth faces (its generator: synth-actions)" in run.stderr
