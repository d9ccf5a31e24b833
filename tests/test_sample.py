"""Sampling, latents files and ``g3an sample``: determinism, exact regeneration, readable media, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from g3an import create_generator, make_config
from g3an.checkpoint import make_checkpoint, save_checkpoint
from g3an.cli import main
from g3an.models.base import VideoGenerator
from g3an.sample import (
    LatentBatch,
    LatentPlan,
    LatentsFileError,
    SamplingError,
    class_names_of,
    draw_latents,
    latents_path_for,
    load_latents,
    output_paths,
    plan_samples,
    render,
    resolve_class,
    sample,
    save_latents,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny convolutions run ~100x slower with 2 threads on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def media():
    """The media module (written in parallel; the file tests skip until it exists)."""
    return pytest.importorskip("g3an.media")


#: a G3AN small and fast enough for sampling tests (F-SA on a 8x8 level, 32x32 output)
FAST = {"ch": 4, "ch_d": 4, "dim_z_a": 16, "dim_z_m": 4, "resolution": 32, "fsa_level": 1}
CLASS_NAMES = ["happiness", "anger", "surprise"]


class ToyGenerator(VideoGenerator):
    """A weightless stand-in whose videos show their codes: background colour = tanh(z_a), a dark 4x4 square
    moving with z_m (start from step 0, speed from the mean), the class as the square's brightness."""

    appearance_latent = "z_a"
    motion_latent = "z_m"

    def __init__(self, num_classes: int = 0, resolution: int = 16, motion: bool = True) -> None:
        super().__init__()
        self.num_classes, self.resolution = num_classes, resolution
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, so .device works
        if not motion:
            self.motion_latent = None

    def latent_shapes(self, num_frames: int | None = None) -> dict[str, tuple[int, ...]]:
        frames = num_frames or self.default_frames
        return {"z_a": (3,), "z_m": (2, (frames - 16) // 4 + 1)}

    def valid_frames(self, num_frames: int) -> bool:
        return num_frames >= 16 and (num_frames - 16) % 4 == 0

    def forward(self, z_a: torch.Tensor, z_m: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.check_labels(y, z_a.shape[0])
        b, r, t = z_a.shape[0], self.resolution, 16 + 4 * (z_m.shape[2] - 1)
        video = torch.tanh(z_a)[:, :, None, None, None].expand(b, 3, t, r, r).clone()
        span = r - 4
        for i in range(b):
            x0 = float(torch.sigmoid(z_m[i, 0, 0])) * span
            y0 = int(float(torch.sigmoid(z_m[i, 1, 0])) * span)
            speed = float(z_m[i, 0].mean())
            shade = -1.0 if y is None else -1.0 + 2.0 * float(y[i]) / max(1, self.num_classes - 1)
            for k in range(t):
                x = int(x0 + k * speed) % span
                video[i, :, k, y0 : y0 + 4, x : x + 4] = shade
        return video + 0.0 * self.anchor


def make_ckpt(path: Path, num_classes: int = 0, names: list[str] | None = None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = make_config("g3an", **FAST, num_classes=num_classes)
    gen = create_generator("g3an", cfg)
    meta = {"class_names": names} if names is not None else {}
    save_checkpoint(path, make_checkpoint("g3an", cfg, gen, meta=meta))
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ckpt(tmp_path_factory.mktemp("ckpt") / "g.pt")


@pytest.fixture(scope="module")
def cond_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ckpt(tmp_path_factory.mktemp("ckpt") / "c.pt", num_classes=3, names=CLASS_NAMES)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


# -- latents and plans ------------------------------------------------------------------------------
def test_draw_latents_prefix_and_seed() -> None:
    gen = ToyGenerator()
    a = draw_latents(gen, 5, 16, seed=3, stream="appearance")
    b = draw_latents(gen, 2, 16, seed=3, stream="appearance")
    c = draw_latents(gen, 2, 16, seed=4, stream="appearance")
    assert torch.equal(a["z_a"][:2], b["z_a"]) and torch.equal(a["z_m"][:2], b["z_m"])
    assert not torch.equal(b["z_a"], c["z_a"])
    assert not torch.equal(b["z_a"], draw_latents(gen, 2, 16, seed=3, stream="motion")["z_a"])


def test_plan_samples_is_deterministic_and_sized() -> None:
    gen = ToyGenerator()
    p1, p2 = plan_samples(gen, 5, seed=7), plan_samples(gen, 5, seed=7)
    assert (p1.rows, p1.cols) == (2, 3) and len(p1.batches[0].cells) == 5
    assert torch.equal(p1.batches[0].latents["z_m"], p2.batches[0].latents["z_m"])
    v1, v2 = render(gen, p1), render(gen, p2)
    assert v1.shape == (2, 3, 3, 16, 16, 16) and torch.equal(v1, v2)
    assert torch.equal(v1[1, 2], torch.ones_like(v1[1, 2]))  # the empty sixth cell is white
    assert not torch.equal(v1, render(gen, plan_samples(gen, 5, seed=8)))
    longer = plan_samples(gen, 2, seed=7, frames=24)
    assert render(gen, longer).shape[3] == 24 and longer.batches[0].latents["z_m"].shape == (2, 2, 3)


def test_plan_samples_classes() -> None:
    gen = ToyGenerator(num_classes=3)
    labels = plan_samples(gen, 12, seed=0).batches[0].labels
    assert labels is not None and labels.shape == (12,) and set(labels.tolist()) <= {0, 1, 2}
    assert torch.equal(plan_samples(gen, 40, seed=0).batches[0].labels[:12], labels)  # i-th video independent of n
    fixed = plan_samples(gen, 4, seed=0, label=2).batches[0].labels
    assert fixed.tolist() == [2, 2, 2, 2]
    with pytest.raises(SamplingError, match="unconditional"):
        plan_samples(ToyGenerator(), 2, label=1)


def test_frames_and_n_errors() -> None:
    with pytest.raises(SamplingError, match="18-frame") as err:
        plan_samples(ToyGenerator(), 2, frames=18)
    assert err.value.param == "--frames"
    with pytest.raises(SamplingError, match="n must be"):
        plan_samples(ToyGenerator(), 0)


def test_resolve_class() -> None:
    assert resolve_class(None, 3, CLASS_NAMES) is None
    assert resolve_class("anger", 3, CLASS_NAMES) == 1
    assert resolve_class("2", 3, CLASS_NAMES) == 2 and resolve_class(0, 3, None) == 0
    with pytest.raises(SamplingError, match="unknown class 'joy'; known classes: happiness, anger, surprise"):
        resolve_class("joy", 3, CLASS_NAMES)
    with pytest.raises(SamplingError, match=r"indices 0\.\.2"):
        resolve_class("joy", 3, None)
    with pytest.raises(SamplingError, match="out of range"):
        resolve_class("3", 3, None)
    with pytest.raises(SamplingError, match="unconditional") as err:
        resolve_class("anger", 0, None)
    assert err.value.param == "--class"


def test_class_names_of() -> None:
    assert class_names_of({"meta": {"class_names": CLASS_NAMES}}, 3) == CLASS_NAMES
    assert class_names_of({"meta": {"class_names": []}}, 3) is None  # no dataset names recorded
    assert class_names_of({"meta": {"class_names": CLASS_NAMES}}, 2) is None
    assert class_names_of({"class_names": json.dumps(CLASS_NAMES)}, 3) == CLASS_NAMES  # safetensors metadata


def test_latents_file_round_trip_inline_and_side_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = ToyGenerator(num_classes=3)
    plan = plan_samples(gen, 4, seed=1, frames=20, batch_size=3)
    path = save_latents(tmp_path / "a.json", plan, class_names=CLASS_NAMES)
    back, record = load_latents(path)
    assert record["batch_size"] == 3 and record["batches"][0]["class_names"][0] in CLASS_NAMES
    assert torch.equal(render(gen, back), render(gen, plan))
    for name, value in plan.batches[0].latents.items():
        assert torch.equal(back.batches[0].latents[name], value)
    monkeypatch.setattr("g3an.sample.MAX_INLINE_FLOATS", 10)
    path = save_latents(tmp_path / "b.json", plan)
    assert (tmp_path / "b.safetensors").is_file() and "data" not in path.read_text()
    back, _ = load_latents(path)
    assert torch.equal(back.batches[0].latents["z_m"], plan.batches[0].latents["z_m"])
    (tmp_path / "b.safetensors").unlink()
    with pytest.raises(LatentsFileError, match="side file"):
        load_latents(path)


def test_bad_latents_files(tmp_path: Path) -> None:
    with pytest.raises(LatentsFileError, match="no such latents file"):
        load_latents(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LatentsFileError, match="not a JSON"):
        load_latents(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"format": "g3an-latents", "format_version": 1, "batches": [{}]}')
    with pytest.raises(LatentsFileError, match="malformed"):
        load_latents(tmp_path / "y.json")


def test_plan_validation() -> None:
    batch = LatentBatch(16, [(0, 0), (0, 0)], {"z_a": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="more than one batch"):
        LatentPlan("x", 1, 1, [batch])
    with pytest.raises(ValueError, match="outside"):
        LatentPlan("x", 1, 1, [LatentBatch(16, [(0, 1)], {"z_a": torch.zeros(1, 3)})])
    with pytest.raises(ValueError, match="rows for"):
        LatentBatch(16, [(0, 0)], {"z_a": torch.zeros(2, 3)})


def test_output_paths(tmp_path: Path) -> None:
    assert output_paths(tmp_path / "a.gif", 3) is None
    assert [p.name for p in output_paths(str(tmp_path / "{i:02d}.mp4"), 2)] == ["00.mp4", "01.mp4"]
    for bad, message in [("a.avi", "unsupported extension '.avi'"), ("{j}.mp4", "may only use"),
                         ("same{i!s:.0}.mp4", "same file name"), ("noext", "unsupported extension")]:  # fmt: skip
        with pytest.raises(SamplingError, match=message) as err:
            output_paths(str(tmp_path / bad), 2)
        assert err.value.param == "--out"
    assert latents_path_for("d/clip.mp4") == Path("d/clip.mp4.latents.json")


# -- files and the command ------------------------------------------------------------------------
def test_sample_grid_mp4_regenerates_identical_pixels(media, ckpt: Path, tmp_path: Path, mp4_inputs: list) -> None:
    out = tmp_path / "grid.mp4"
    code, text = run("sample", ckpt, "--n", 3, "--seed", 5, "--batch-size", 2, "--out", out)
    assert code == 0, text
    frames = media.read_video(out)
    assert frames.shape[0] == 16 and frames.dtype == np.uint8
    record = json.loads(latents_path_for(out).read_text())
    assert record["model"] == "g3an" and record["seed"] == 5 and record["batch_size"] == 2
    assert record["checkpoint_sha256"] and record["mode"] == "sample" and record["media"] == "grid.mp4"
    assert record["threads"] == 1
    again = tmp_path / "again.mp4"
    torch.set_num_threads(2)  # regeneration renders with the recorded thread count, then restores this one
    code, text = run("sample", ckpt, "--latents", latents_path_for(out), "--out", again)
    assert code == 0, text
    assert torch.get_num_threads() == 2
    assert len(mp4_inputs) == 2 and np.array_equal(mp4_inputs[0], mp4_inputs[1])  # what the encoder got
    assert np.abs(media.read_video(again).astype(int) - frames.astype(int)).max() <= 8  # libx264's rounding


def test_sample_png_pixels_are_x_plus_1_over_2(media, ckpt: Path, tmp_path: Path) -> None:
    from g3an.sample import load_for_sampling

    out = sample(ckpt, tmp_path / "one.png", n=1, seed=2)[0]
    strip = media.read_video(out)[0]  # (H, T*W, 3), lossless
    loaded = load_for_sampling(ckpt)
    plan, _ = load_latents(latents_path_for(out))
    video = render(loaded.generator, plan)[0, 0]  # (3, T, H, W)
    expected = np.concatenate(list(media.to_uint8(video)), axis=1)
    assert strip.shape == expected.shape and np.array_equal(strip, expected)
    # (x + 1) / 2, never min-max: an untrained model's output spans much less than the full range
    assert strip.max() < 255 or strip.min() > 0


def test_sample_separate_files_each_regenerates(media, ckpt: Path, tmp_path: Path) -> None:
    paths = sample(ckpt, str(tmp_path / "s" / "{i:03d}.gif"), n=3, seed=1)
    assert [p.name for p in paths] == ["000.gif", "001.gif", "002.gif"]
    first = media.read_video(paths[1])
    assert first.shape == (16, 32, 32, 3)
    again = sample(ckpt, tmp_path / "again.png", latents=latents_path_for(paths[1]))[0]
    strip = media.read_video(again)[0]
    assert strip.shape == (32, 16 * 32, 3)
    plan, record = load_latents(latents_path_for(paths[1]))
    assert record["params"]["index"] == 1 and plan.batch_size == 1
    grid_plan = plan_samples(load_grid_gen(ckpt), 3, seed=1)
    assert torch.equal(plan.batches[0].latents["z_a"][0], grid_plan.batches[0].latents["z_a"][1])


def load_grid_gen(path: Path) -> VideoGenerator:
    from g3an.sample import load_for_sampling

    return load_for_sampling(path).generator


def test_sample_conditional_class_by_name(media, cond_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.gif"
    code, text = run("sample", cond_ckpt, "--n", 2, "--class", "surprise", "--frames", 20, "--out", out)
    assert code == 0, text
    record = json.loads(latents_path_for(out).read_text())
    assert record["batches"][0]["labels"] == [2, 2] and record["batches"][0]["class_names"] == ["surprise"] * 2
    assert record["batches"][0]["frames"] == 20 and media.read_video(out).shape[0] == 20


def test_sample_cli_errors(media, ckpt: Path, cond_ckpt: Path, tmp_path: Path) -> None:
    code, text = run("sample", cond_ckpt, "--class", "joy", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--class" in text and "unknown class 'joy'" in text and "happiness" in text
    code, text = run("sample", ckpt, "--class", "0", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--class" in text and "unconditional" in text
    code, text = run("sample", ckpt, "--out", tmp_path / "a.avi")
    assert code == 2 and "--out" in text and "unsupported extension '.avi'" in text
    code, text = run("sample", ckpt, "--frames", 18, "--out", tmp_path / "a.mp4")
    assert code == 2 and "--frames" in text and "16 + 4k" in text
    code, text = run("sample", ckpt, "--device", "nodevice", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--device" in text
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    code, text = run("sample", bad, "--out", tmp_path / "a.mp4")
    assert code == 1 and "not a readable checkpoint" in text
    assert not list(tmp_path.glob("a.*"))


def test_regenerate_refuses_another_checkpoint(media, ckpt: Path, tmp_path: Path) -> None:
    out = sample(ckpt, tmp_path / "x.png", n=1)[0]
    other = make_ckpt(tmp_path / "other.pt", seed=1)
    code, text = run("sample", other, "--latents", latents_path_for(out), "--out", tmp_path / "y.png")
    assert code == 2 and "--latents" in text and "sha256" in text
    code, text = run(
        "sample", other, "--latents", latents_path_for(out), "--any-checkpoint", "--out", tmp_path / "y.png"
    )
    assert code == 0, text
    cond = make_ckpt(tmp_path / "cond.pt", num_classes=3)
    code, text = run(
        "sample", cond, "--latents", latents_path_for(out), "--any-checkpoint", "--out", tmp_path / "z.png"
    )
    assert code == 2 and "class labels" in text


def test_sample_from_exported_generator_with_class_names(media, tmp_path: Path) -> None:
    from g3an.checkpoint import export_generator

    cfg = make_config("g3an", **FAST, num_classes=3)
    path = tmp_path / "g.safetensors"
    export_generator(path, "g3an", cfg, create_generator("g3an", cfg), class_names=json.dumps(CLASS_NAMES))
    out = tmp_path / "e.png"
    code, text = run("sample", path, "--n", 2, "--class", "anger", "--out", out)
    assert code == 0, text
    record = json.loads(latents_path_for(out).read_text())
    assert record["class_names"] == CLASS_NAMES and record["batches"][0]["labels"] == [1, 1]
    again = tmp_path / "again.png"
    assert run("sample", path, "--latents", latents_path_for(out), "--out", again)[0] == 0
    assert np.array_equal(media.read_video(again), media.read_video(out))


def test_sample_from_a_run_directory(media, ckpt: Path, tmp_path: Path) -> None:
    import shutil

    steps = tmp_path / "run" / "checkpoints"
    steps.mkdir(parents=True)
    shutil.copy(ckpt, steps / "step-00000002.pt")
    make_ckpt(steps / "step-00000001.pt", seed=3)
    out = tmp_path / "r.gif"
    code, text = run("sample", tmp_path / "run", "--n", 1, "--out", out)
    assert code == 0, text
    assert json.loads(latents_path_for(out).read_text())["checkpoint"].endswith("step-00000002.pt")
    code, text = run("sample", tmp_path, "--n", 1, "--out", out)
    assert code == 1 and "not a training run" in text


def test_sample_bf16_is_recorded_and_regenerates_identical_pixels(media, ckpt: Path, tmp_path: Path) -> None:
    full = sample(ckpt, tmp_path / "fp32.png", n=2, seed=3)[0]
    half = sample(ckpt, tmp_path / "bf16.png", n=2, seed=3, precision="bf16", batch_size=1)[0]  # two passes
    plan, record = load_latents(latents_path_for(half))
    assert record["precision"] == "bf16" and plan.precision == "bf16"
    assert load_latents(latents_path_for(full))[0].precision == "fp32"
    a, b = media.read_video(full).astype(int), media.read_video(half).astype(int)  # lossless PNG strips
    assert a.shape == b.shape and 0 < np.abs(a - b).max() <= 16  # autocast was on; bf16 rounding only
    again = sample(ckpt, tmp_path / "again.png", latents=latents_path_for(half))[0]
    assert np.array_equal(media.read_video(again), media.read_video(half))  # the file's precision, not fp32's
    out = tmp_path / "g.png"
    code, text = run("manipulate", ckpt, "grid", "--rows", 1, "--cols", 2, "--precision", "bf16", "--out", out)
    assert code == 0, text
    assert json.loads(latents_path_for(out).read_text())["precision"] == "bf16"


def test_sample_precision_errors(media, ckpt: Path, tmp_path: Path) -> None:
    code, text = run("sample", ckpt, "--precision", "fp8", "--out", tmp_path / "a.png")
    assert code == 2 and "--precision" in text
    code, text = run("sample", ckpt, "--precision", "fp16", "--out", tmp_path / "a.png")
    assert code == 2 and "--precision" in text and "CUDA" in text
    with pytest.raises(SamplingError, match="unknown precision") as err:
        sample(ckpt, tmp_path / "a.png", precision="int8")
    assert err.value.param == "--precision"
    batch = LatentBatch(16, [(0, 0)], {"z_a": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="precision must be one of"):
        LatentPlan("x", 1, 1, [batch], precision="int8")
    assert not list(tmp_path.glob("a.*"))
