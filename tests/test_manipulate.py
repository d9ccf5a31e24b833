"""Latent manipulation modes: which code each cell gets, shapes, labels, determinism, ``g3an manipulate``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from g3an.manipulate import MODES, lerp, manipulate, plan_dim, plan_grid, slerp
from g3an.sample import LatentPlan, SamplingError, latents_path_for, load_for_sampling, load_latents, render
from tests.test_sample import (
    CLASS_NAMES,
    ToyGenerator,
    _one_thread,  # noqa: F401  (autouse: one intra-op thread here too)
    make_ckpt,
    run,
)


def cells(plan: LatentPlan) -> dict[tuple[int, int], dict[str, torch.Tensor]]:
    """Each cell's latents (and label under key ``y``)."""
    out = {}
    for b in plan.batches:
        for i, cell in enumerate(b.cells):
            out[cell] = {k: v[i] for k, v in b.latents.items()}
            if b.labels is not None:
                out[cell]["y"] = b.labels[i]
    return out


def test_slerp_and_lerp() -> None:
    a, b = torch.randn(4, 10), torch.randn(4, 10)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    assert torch.allclose(lerp(a, b, 0.5), (a + b) / 2)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=1), (a.norm(dim=1) + b.norm(dim=1)) / 2, atol=1e-5)
    cos = torch.nn.functional.cosine_similarity
    assert torch.allclose(cos(mid, a), cos(mid, b), atol=1e-5)  # halfway along the great circle
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a, atol=1e-6)  # parallel codes: linear
    m = torch.randn(3, 4, 2)  # z_m-shaped codes are flattened
    assert slerp(m, torch.randn(3, 4, 2), 0.3).shape == (3, 4, 2)


def test_grid_rows_are_appearances_columns_motions() -> None:
    gen = ToyGenerator()
    out = manipulate(gen, "grid", rows=2, cols=3, seed=4)
    assert out.videos.shape == (2, 3, 3, 16, 16, 16)
    assert out.row_labels == ["z_a #0", "z_a #1"] and out.col_labels == ["z_m #0", "z_m #1", "z_m #2"]
    c = cells(out.plan)
    for r in range(2):
        for k in range(3):
            assert torch.equal(c[(r, k)]["z_a"], c[(r, 0)]["z_a"]) and torch.equal(c[(r, k)]["z_m"], c[(0, k)]["z_m"])
    assert not torch.equal(c[(0, 0)]["z_a"], c[(1, 0)]["z_a"]) and not torch.equal(c[(0, 0)]["z_m"], c[(0, 1)]["z_m"])
    # pixels: the toy's background colour is its appearance, so a row shares one colour
    corner = out.videos[:, :, :, 0, -1, -1]  # (R, C, 3)
    assert torch.allclose(corner[0, 0], torch.tanh(c[(0, 0)]["z_a"]))


def test_modes_share_codes_of_one_seed() -> None:
    gen = ToyGenerator()
    grid = cells(plan_grid(gen, rows=3, cols=3, seed=1))
    vm = cells(MODES["vary-motion"](gen, n=3, seed=1))
    va = cells(MODES["vary-appearance"](gen, n=3, seed=1))
    add = cells(MODES["add"](gen, seed=1))
    for j in range(3):
        assert torch.equal(vm[(0, j)]["z_m"], grid[(0, j)]["z_m"]) and torch.equal(
            vm[(0, j)]["z_a"], grid[(0, 0)]["z_a"]
        )
        assert torch.equal(va[(j, 0)]["z_a"], grid[(j, 0)]["z_a"]) and torch.equal(
            va[(j, 0)]["z_m"], grid[(0, 0)]["z_m"]
        )
    for i in (0, 1):  # the diagonal of `add` holds the originals
        assert all(torch.equal(add[(i, i)][k], grid[(i, i)][k]) for k in ("z_a", "z_m"))
    for j in (0, 1):
        assert torch.equal(add[(2, j)]["z_a"], grid[(0, 0)]["z_a"] + grid[(1, 1)]["z_a"])
        assert torch.equal(add[(2, j)]["z_m"], grid[(j, j)]["z_m"])
    renorm = cells(MODES["add"](gen, seed=1, renorm=True))
    assert torch.allclose(renorm[(2, 0)]["z_a"], add[(2, 0)]["z_a"] / math.sqrt(2))


@pytest.mark.parametrize("code", ["appearance", "motion"])
def test_dim_sweeps_one_dimension(code: str) -> None:
    gen = ToyGenerator()
    plan = plan_dim(gen, code=code, dim=1, steps=5, rows=2, seed=0)
    assert (plan.rows, plan.cols) == (2, 5) and plan.col_labels == ["-3.00", "-1.50", "+0.00", "+1.50", "+3.00"]
    c = cells(plan)
    swept, other = ("z_a", "z_m") if code == "appearance" else ("z_m", "z_a")
    for r in range(2):
        for k, v in enumerate([-3.0, -1.5, 0.0, 1.5, 3.0]):
            assert torch.all(c[(r, k)][swept][1] == v)  # z_m: at every latent time step
            rest = torch.ones_like(c[(r, k)][swept], dtype=torch.bool)
            rest[1] = False
            assert torch.equal(c[(r, k)][swept][rest], c[(r, 0)][swept][rest])
            assert torch.equal(c[(r, k)][other], c[(r, 0)][other])
    assert not torch.equal(c[(0, 0)][other], c[(1, 0)][other])
    same = cells(plan_dim(gen, code=code, dim=0, values=[0.5, 1.0], rows=3, same_other=True))
    assert all(torch.equal(same[(r, 0)][other], same[(0, 0)][other]) for r in range(3))
    assert not torch.equal(same[(0, 0)][swept], same[(1, 0)][swept])


def test_dim_out_of_range_and_missing_code() -> None:
    with pytest.raises(SamplingError, match=r"dimension 3 out of range: z_a has dimensions 0\.\.2") as err:
        plan_dim(ToyGenerator(), code="appearance", dim=3)
    assert err.value.param == "--dim"
    with pytest.raises(SamplingError, match=r"needs a separate motion code.*motion code: None"):
        plan_grid(ToyGenerator(motion=False))
    with pytest.raises(SamplingError, match="unknown mode"):
        manipulate(ToyGenerator(), "rotate")


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate(method: str) -> None:
    gen = ToyGenerator()
    plan = MODES["interpolate"](gen, code="motion", steps=5, method=method, rows=2, seed=3)
    assert plan.col_labels == ["t=0.00", "t=0.25", "t=0.50", "t=0.75", "t=1.00"]
    c = cells(plan)
    grid = cells(plan_grid(gen, rows=2, cols=4, seed=3))
    for r in range(2):
        assert torch.equal(c[(r, 0)]["z_m"], grid[(0, r)]["z_m"])  # starts at motion r
        assert torch.allclose(c[(r, 4)]["z_m"], grid[(0, 2 + r)]["z_m"], atol=1e-6)  # ends at motion rows + r
        assert all(torch.equal(c[(r, k)]["z_a"], grid[(r, 0)]["z_a"]) for k in range(5))
    if method == "lerp":
        assert torch.allclose(c[(0, 2)]["z_m"], (c[(0, 0)]["z_m"] + c[(0, 4)]["z_m"]) / 2, atol=1e-6)
    with pytest.raises(SamplingError, match="method must be") as err:
        MODES["interpolate"](gen, method="cubic")
    assert err.value.param == "--method"


def test_classes_layouts() -> None:
    gen = ToyGenerator(num_classes=3)
    plan = MODES["classes"](gen, rows=2, seed=0, class_names=CLASS_NAMES)
    assert (plan.rows, plan.cols) == (2, 3) and plan.col_labels == CLASS_NAMES
    c = cells(plan)
    for r in range(2):
        for k in range(3):
            assert int(c[(r, k)]["y"]) == k and torch.equal(c[(r, k)]["z_a"], c[(r, 0)]["z_a"])
            assert torch.equal(c[(r, k)]["z_m"], c[(0, 0)]["z_m"])
    within = MODES["classes"](gen, rows=2, cols=3, label=1, seed=0, class_names=CLASS_NAMES)
    assert within.title.endswith("anger") and within.col_labels == ["z_m #0", "z_m #1", "z_m #2"]
    assert all(int(v["y"]) == 1 for v in cells(within).values())
    assert render(gen, within).shape == (2, 3, 3, 16, 16, 16)
    with pytest.raises(SamplingError, match="needs a conditional generator"):
        MODES["classes"](ToyGenerator())
    # other modes of a conditional model: one class for the whole grid
    labels = {int(v["y"]) for v in cells(plan_grid(gen, rows=2, cols=2, seed=5)).values()}
    assert len(labels) == 1


def test_length_shares_the_first_motion_steps() -> None:
    gen = ToyGenerator()
    out = manipulate(gen, "length", lengths=[16, 24, 20], rows=2, seed=0)
    assert out.videos.shape == (2, 3, 3, 24, 16, 16)
    assert out.col_labels == ["16 frames", "24 frames", "20 frames"]
    c = cells(out.plan)
    assert [c[(0, j)]["z_m"].shape[-1] for j in range(3)] == [1, 3, 2]
    assert torch.equal(c[(1, 1)]["z_m"][:, :2], c[(1, 2)]["z_m"]) and torch.equal(c[(1, 0)]["z_a"], c[(1, 1)]["z_a"])
    assert torch.equal(out.videos[0, 0, :, 15:], out.videos[0, 0, :, 15:16].expand(-1, 9, -1, -1))  # held
    fresh = cells(MODES["length"](gen, lengths=[16, 24], rows=1, fresh_motion=True, seed=0))
    assert not torch.equal(fresh[(0, 1)]["z_m"][:, :1], fresh[(0, 0)]["z_m"])
    assert torch.equal(fresh[(0, 1)]["z_a"], c[(0, 1)]["z_a"])
    with pytest.raises(SamplingError, match="18-frame") as err:
        manipulate(gen, "length", lengths=[16, 18])
    assert err.value.param == "--lengths"


def test_manipulation_is_deterministic() -> None:
    gen = ToyGenerator(num_classes=3)
    for mode in MODES:
        a, b = manipulate(gen, mode, seed=2), manipulate(gen, mode, seed=2)
        assert torch.equal(a.videos, b.videos), mode
        assert a.videos.shape[:2] == (a.plan.rows, a.plan.cols) and len(a.row_labels) == a.plan.rows
        assert len(a.col_labels) == a.plan.cols
    assert not torch.equal(manipulate(gen, "grid", seed=2).videos, manipulate(gen, "grid", seed=3).videos)


# -- the command ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    return make_ckpt(root / "u.pt"), make_ckpt(root / "c.pt", num_classes=3, names=CLASS_NAMES)


CASES = [
    ("vary-motion", ["--n", "3"], (1, 3), 16),
    ("vary-appearance", ["--n", "2"], (2, 1), 16),
    ("grid", ["--rows", "2", "--cols", "3", "--frames", "20"], (2, 3), 20),
    ("dim", ["--code", "motion", "--dim", "3", "--steps", "3", "--rows", "2"], (2, 3), 16),
    ("add", [], (3, 2), 16),
    ("interpolate", ["--steps", "4", "--rows", "1", "--method", "lerp"], (1, 4), 16),
    ("classes", ["--rows", "2"], (2, 3), 16),
    ("length", ["--lengths", "16,24", "--rows", "1"], (1, 2), 24),
]


@pytest.mark.parametrize(("mode", "args", "layout", "frames"), CASES, ids=[c[0] for c in CASES])
def test_manipulate_cli_every_mode(
    ckpts, tmp_path: Path, mp4_inputs: list, mode: str, args: list[str], layout, frames: int
) -> None:
    media = pytest.importorskip("g3an.media")
    ckpt = ckpts[1] if mode == "classes" else ckpts[0]
    ext = ".gif" if mode in ("add", "classes") else ".mp4"
    out = tmp_path / f"{mode}{ext}"
    code, text = run("manipulate", ckpt, mode, *args, "--seed", "1", "--out", out)
    assert code == 0, text
    video = media.read_video(out)
    assert video.shape[0] == frames and video.shape[1] > layout[0] * 32 and video.shape[2] > layout[1] * 32
    record = json.loads(latents_path_for(out).read_text())
    assert record["mode"] == mode and (record["rows"], record["cols"]) == layout and record["seed"] == 1
    if mode == "classes":
        assert record["col_labels"] == CLASS_NAMES
    # the latents file regenerates the same pixels
    loaded = load_for_sampling(ckpt)
    plan, _ = load_latents(latents_path_for(out))
    again = tmp_path / f"again{ext}"
    code, text = run("sample", ckpt, "--latents", latents_path_for(out), "--out", again)
    assert code == 0, text
    if ext == ".mp4":
        # the same pixels reach the encoder, and the files agree to within libx264's rounding
        assert len(mp4_inputs) == 2 and np.array_equal(mp4_inputs[0], mp4_inputs[1])
        assert np.abs(media.read_video(again).astype(int) - video.astype(int)).max() <= 8
    else:
        assert np.array_equal(media.read_video(again), video)
    assert render(loaded.generator, plan).shape[:2] == layout


def test_manipulate_cli_png_grid(ckpts, tmp_path: Path) -> None:
    media = pytest.importorskip("g3an.media")
    out = tmp_path / "grid.png"
    code, text = run("manipulate", ckpts[0], "grid", "--rows", "2", "--cols", "2", "--out", out)
    assert code == 0, text
    sheet = media.read_video(out)
    assert sheet.shape[0] == 1 and sheet.shape[1] >= 4 * 32 and sheet.shape[2] >= 16 * 32  # a filmstrip per cell


def test_manipulate_cli_errors(ckpts, tmp_path: Path) -> None:
    pytest.importorskip("g3an.media")
    u, c = ckpts
    code, text = run("manipulate", u, "dim", "--dim", "16", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--dim" in text and "out of range" in text and "0..15" in text
    code, text = run("manipulate", c, "classes", "--class", "joy", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--class" in text and "unknown class 'joy'" in text
    code, text = run("manipulate", u, "classes", "--out", tmp_path / "a.mp4")
    assert code == 1 and "conditional" in text
    code, text = run("manipulate", u, "grid", "--out", tmp_path / "a.webm")
    assert code == 2 and "--out" in text and "unsupported extension '.webm'" in text
    code, text = run("manipulate", u, "length", "--lengths", "16,17", "--out", tmp_path / "a.mp4")
    assert code == 2 and "--lengths" in text
    code, text = run("manipulate", tmp_path / "none.pt", "grid", "--out", tmp_path / "a.mp4")
    assert code == 1 and "none.pt: no such checkpoint file" in text
    code, text = run("manipulate", "CKPT", "dim", "--help")
    assert code == 0 and "--dim K" in text and "--same-other" in text
    code, text = run("manipulate", u, "spin", "--out", tmp_path / "a.mp4")
    assert code == 2 and "No such command 'spin'" in text
    assert not list(tmp_path.glob("a.*"))
