"""The training engine: smoke run, exact resume, checkpoints, NaN guard, atomic writes, 2-process equivalence."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner
from torch.utils.data import Dataset

from g3an import create_discriminator, create_generator
from g3an.checkpoint import CheckpointError, load_checkpoint, load_generator, save_checkpoint
from g3an.cli import main
from g3an.train import TrainConfig, TrainingDiverged, fit
from g3an.train.loop import checkpoint_paths, latest_checkpoint
from g3an.train.objectives import StepContext
from g3an.train.sampler import InfiniteBatchSampler

TINY_MODEL = {"ch": 4, "ch_d": 4, "dim_z_a": 8, "dim_z_m": 4, "resolution": 32, "fsa_level": 2}


class TinyClips(Dataset):
    """Random clips keyed by (epoch, index), like the real clip loader; optional NaN poisoning."""

    classes = ("a", "b")

    def __init__(self, n: int = 6, frames: int = 16, size: int = 32, poison: bool = False) -> None:
        gen = torch.Generator().manual_seed(123)
        self.videos = torch.rand(n, 3, frames, size, size, generator=gen) * 2 - 1
        self.poison = poison

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        video = self.videos[index].roll(epoch, dims=1)  # the "clip" depends on the epoch, as real sampling does
        if self.poison:
            video = torch.full_like(video, float("nan"))
        return {"video": video, "label": torch.tensor(index % 2)}


def _cfg(**kw) -> TrainConfig:
    values = {"model": "g3an", "model_config": dict(TINY_MODEL), "batch_size": 4, "steps": 4, "workers": 0,
              "device": "cpu", "log_every": 1, "sample_every": 0, "checkpoint_every": 2, "seed": 3}  # fmt: skip
    values.update(kw)
    return TrainConfig.from_dict(values)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_smoke_run_writes_config_log_and_checkpoints(tmp_path: Path) -> None:
    result = fit(_cfg(keep_last=1), tmp_path / "run", dataset=TinyClips(), progress=False)
    assert result.step == 4 and result.videos == 16 and not result.interrupted
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["model_config"]["ch"] == 4
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for key in ("loss/D_V", "loss/D_I", "loss/G", "D_video/real", "D_image/fake", "grad_norm/D", "grad_norm/G",
                "lr/G", "lr/D_V", "lr/D_I", "time/videos_per_sec"):  # fmt: skip
        assert key in records[-1], key
    assert records[0]["loss/D_V"] == pytest.approx(2 * 0.6931, abs=0.3)  # BCE real + fake, near log 2 each at start
    assert [p.name for p in checkpoint_paths(run)] == ["step-00000004.pt"]  # keep_last=1 removed step 2
    ckpt = load_checkpoint(latest_checkpoint(run), model="g3an")
    assert ckpt["counters"] == {"step": 4, "videos": 16, "best": None}
    assert set(ckpt["optimizers"]) == {"G", "D_V", "D_I"}
    assert ckpt["train_config"]["seed"] == 3 and ckpt["package_version"]
    assert ckpt["meta"]["class_names"] == ["a", "b"]
    assert any((run / "tb").iterdir())


def test_training_changes_weights_and_respects_the_paper_optimiser(tmp_path: Path) -> None:
    result = fit(_cfg(steps=1), tmp_path / "r", dataset=TinyClips(), progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    for name in ("G", "D_V", "D_I"):
        group = ckpt["optimizers"][name]["param_groups"][0]
        assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999) and group["weight_decay"] == 0


@pytest.mark.parametrize("ema", [None, 50.0])
def test_resume_is_exact(tmp_path: Path, ema) -> None:
    full = fit(_cfg(steps=6, ema_half_life=ema), tmp_path / "full", dataset=TinyClips(), progress=False)
    fit(_cfg(steps=3, ema_half_life=ema), tmp_path / "split", dataset=TinyClips(), progress=False)
    resumed = fit(
        _cfg(steps=6, ema_half_life=ema), tmp_path / "split", resume=True, dataset=TinyClips(), progress=False
    )
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["counters"] == b["counters"]
    for key in ("generator", "discriminator") + (("generator_ema",) if ema else ()):
        assert _states_equal(a[key], b[key]), key
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert all(_states_equal(sa[i], sb[i]) for i in sa), name


def _step_grads(trainer) -> dict[str, torch.Tensor]:
    """One training step; each parameter's gradient as its optimiser stepped (``"G.<name>"``, ``"D.<name>"``).
    The trainer frees gradients right after each step, so they are copied on the way in."""
    names = {p: f"{net}.{n}" for net in ("G", "D") for n, p in getattr(trainer, net).named_parameters()}
    grads: dict[str, torch.Tensor] = {}
    for opt in trainer.optimizers.values():

        def step(*args, _opt=opt, _step=opt.step, **kwargs):
            grads.update(
                {names[p]: p.grad.clone() for g in _opt.param_groups for p in g["params"] if p.grad is not None}
            )
            return _step(*args, **kwargs)

        opt.step = step
    trainer.train_step(next(trainer.batches()))
    return grads


def test_activation_checkpointing_changes_no_gradient_and_resumes_exactly(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer

    def one_step(levels: int) -> tuple[Trainer, dict[str, torch.Tensor]]:
        trainer = Trainer(_cfg(checkpoint_levels=levels, threads=1), tmp_path / f"l{levels}", TinyClips(), False)
        return trainer, _step_grads(trainer)

    plain, plain_grads = one_step(0)
    assert any(k.startswith("G.") for k in plain_grads) and any(k.startswith("D.") for k in plain_grads)
    # 1: the last level and to_rgb; 2: also level 2 and the F-SA after it; 4: every level
    for levels in (1, 2, 4):
        ckpt, grads = one_step(levels)
        assert grads.keys() == plain_grads.keys()
        for name, g in plain_grads.items():
            torch.testing.assert_close(grads[name], g, rtol=1e-6, atol=0, msg=f"{levels} {name}")
        # spectral-norm vectors and BatchNorm statistics advance once per step, recomputation or not
        for net in ("G", "D"):
            assert _states_equal(getattr(plain, net).state_dict(), getattr(ckpt, net).state_dict()), (levels, net)
    # a run without it, resumed with it, ends where the run without it does
    full = fit(_cfg(steps=4, threads=1), tmp_path / "full", dataset=TinyClips(), progress=False)
    fit(_cfg(steps=2, threads=1), tmp_path / "split", dataset=TinyClips(), progress=False)
    resumed = fit(_cfg(steps=4, threads=1, checkpoint_levels=2), tmp_path / "split", resume=True,
                  dataset=TinyClips(), progress=False)  # fmt: skip
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("generator", "discriminator"):
        assert _states_equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="checkpoint_levels"):
        _cfg(checkpoint_levels=-1)


def test_discriminators_may_see_clips_shifted_in_time(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer
    from g3an.train.objectives import roll_time

    video = torch.randn(3, 2, 16, 4, 4)
    rolled = roll_time(video, torch.tensor([0, 1, 15]))
    assert torch.equal(rolled[0], video[0])
    assert torch.equal(rolled[1, :, :15], video[1, :, 1:]) and torch.equal(rolled[1, :, 15], video[1, :, 0])
    assert torch.equal(rolled[2, :, 0], video[2, :, 15]) and torch.equal(rolled[2, :, 1:], video[2, :, :15])
    # the step's shifts: 0 with probability 1 - p, else uniform in 1..T-1, real and fake drawn apart
    trainer = Trainer(_cfg(d_time_roll=0.5, threads=1), tmp_path / "roll", TinyClips(), False)
    ctx = StepContext(real=torch.zeros(200, 3, 16, 32, 32), labels=None, rng=torch.Generator().manual_seed(0),
                      rank=0, world=1, step=0, device=torch.device("cpu"))  # fmt: skip
    with torch.no_grad():
        trainer.objective.begin_step(ctx)
    real, fake = ctx.cache["real_shift"], ctx.cache["fake_shift"]
    assert 0.4 < (real == 0).float().mean() < 0.6 and set(real.tolist()) == set(range(16))
    assert not torch.equal(real, fake)
    # a run that turns it on after a resume trains differently from the paper's recipe, and exactly
    full = fit(_cfg(steps=4, threads=1), tmp_path / "full", dataset=TinyClips(), progress=False)
    for name in ("a", "b"):
        fit(_cfg(steps=2, threads=1), tmp_path / name, dataset=TinyClips(), progress=False)
        fit(_cfg(steps=4, threads=1, d_time_roll=0.5), tmp_path / name, resume=True, dataset=TinyClips(),
            progress=False)  # fmt: skip
    a, b = (load_checkpoint(latest_checkpoint(tmp_path / n)) for n in ("a", "b"))
    assert _states_equal(a["discriminator"], b["discriminator"])
    assert not _states_equal(a["discriminator"], load_checkpoint(full.checkpoint)["discriminator"])
    for bad in (-0.1, 1.0, "x", True):
        with pytest.raises(ValueError, match="d_time_roll"):
            _cfg(d_time_roll=bad)
    with pytest.raises(ValueError, match=r"d_time_roll.*mocogan"):
        TrainConfig.from_dict({"model": "mocogan", "d_time_roll": 0.5, "data": "x"})


def test_g3an_d_phase_in_two_terms_gives_the_gradient_and_scalars_of_the_summed_loss(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer
    from g3an.train.objectives import bce

    trainer = Trainer(_cfg(d_time_roll=0.5, threads=1), tmp_path / "terms", TinyClips(), False)
    objective, D, phase = trainer.objective, trainer.D, trainer.objective.phases[0]
    assert phase.name == "D"
    D.eval()  # no spectral-norm power iteration between the runs compared
    ctx = StepContext(real=TinyClips().videos[:4], labels=None, rng=torch.Generator().manual_seed(0), rank=0,
                      world=1, step=0, device=torch.device("cpu"))  # fmt: skip
    objective.begin_step(ctx)
    params = list(D.parameters())

    def grads() -> list[torch.Tensor]:
        out = [p.grad.clone() for p in params]
        D.zero_grad(set_to_none=True)
        return out

    # as the loop runs it: the real clips' term backpropagated before the fakes' term is computed
    terms, stats = [], {}
    for loss, logged in objective.loss(phase, ctx):
        terms.append(loss.detach())
        stats.update(logged)
        loss.backward()
    assert len(terms) == 2
    in_turn = grads()
    # the loss as one sum, both discriminator graphs held at once
    c = ctx.cache
    real = D(objective._shown(ctx.real, ctx, "real"), None, c["real_frame"])
    fake = D(objective._shown(c["fake"].detach(), ctx, "fake"), None, c["fake_frame"])
    loss_v, loss_i = (
        bce(real["video"], 1.0) + bce(fake["video"], 0.0),
        bce(real["image"], 1.0) + bce(fake["image"], 0.0),
    )
    (loss_v + loss_i).backward()
    for a, b in zip(in_turn, grads()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # the same sum, added in another order
    torch.testing.assert_close(stats["loss/D_V"], loss_v.detach())
    torch.testing.assert_close(stats["loss/D_I"], loss_i.detach())
    torch.testing.assert_close(sum(terms), (loss_v + loss_i).detach())
    torch.testing.assert_close(stats["D_video/fake"], torch.sigmoid(fake["video"]).mean().detach())


def test_appearance_consistency_pairs_fakes_by_appearance_and_penalises_their_colour_gap(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer
    from g3an.train.objectives import appearance_descriptor, appearance_gap

    # the gap: zero for equal videos and for frames in another order (same colour, same texture); a colour
    # shift of d moves the colour half of the descriptor by d (gap d^2 / 2) and not its texture half; only
    # pairs (first[k], first[k] + 1) count, each beyond the margin
    video = torch.rand(4, 3, 16, 8, 8) * 2 - 1
    one, pairs = torch.tensor([0]), torch.tensor([0, 2])
    assert appearance_gap(torch.cat([video[:1], video[:1]]), one) == 0
    assert appearance_gap(torch.stack([video[0], video[0].flip(1)]), one) < 1e-10
    shifted = torch.stack([video[0], video[0] + 0.5, video[1], video[1]])
    torch.testing.assert_close(appearance_gap(shifted, pairs), torch.tensor(0.0625))
    torch.testing.assert_close(appearance_gap(shifted, pairs, margin=0.1), torch.tensor(0.0125))
    assert appearance_gap(shifted, pairs, margin=0.2) == 0
    assert appearance_gap(video, torch.tensor([], dtype=torch.long)) == 0
    plain = torch.zeros(3, 16, 8, 8)
    bricks = plain.clone()
    bricks[..., ::2, :] = 0.5  # stripes with the plain video's mean colour in every cell
    bricks[..., 1::2, :] = -0.5
    looks = appearance_descriptor(torch.stack([plain, bricks]))
    assert torch.allclose(looks[0, :3], looks[1, :3]) and (looks[1, 3:] - looks[0, 3:]).min() > 0.4
    # the step's fakes share z_a in global pairs (rows 2i, 2i+1) and differ in z_m and class
    trainer = Trainer(
        _cfg(appearance_consistency=2.0, appearance_margin=0.0, threads=1), tmp_path / "pairs", TinyClips(), False
    )
    G = trainer.objective.G

    def ctx(rank: int, world: int, batch: int) -> StepContext:
        return StepContext(real=torch.zeros(batch, 3, 16, 32, 32), labels=None,
                           rng=torch.Generator().manual_seed(0), rank=rank, world=world, step=0,
                           device=torch.device("cpu"))  # fmt: skip

    one = ctx(0, 1, 6).latents(G, 16, pair="z_a")
    assert torch.equal(one["z_a"][0::2], one["z_a"][1::2]) and not torch.equal(one["z_a"][0], one["z_a"][2])
    assert not torch.equal(one["z_m"][0], one["z_m"][1])
    halves = [ctx(r, 2, 3).latents(G, 16, pair="z_a") for r in (0, 1)]  # the same global batch in 2 processes
    assert torch.equal(torch.cat([h["z_a"] for h in halves]), one["z_a"])
    assert ctx(0, 1, 6).local_pairs().tolist() == [0, 2, 4]
    assert ctx(0, 2, 3).local_pairs().tolist() == [0] and ctx(1, 2, 3).local_pairs().tolist() == [1]
    step = ctx(0, 1, 4)
    with torch.no_grad():
        trainer.objective.begin_step(step)
        ((loss, stats),) = trainer.objective.loss(trainer.objective.phases[1], step)  # the G phase: one term
    gap = appearance_gap(step.cache["fake"], torch.tensor([0, 2]))
    torch.testing.assert_close(stats["loss/G_appearance_gap"], gap)
    torch.testing.assert_close(loss, stats["loss/G"] + 2.0 * gap)
    # a run with the term logs it and resumes exactly; the weight 0 is the paper's step
    straight = fit(_cfg(steps=4, threads=1, appearance_consistency=2.0), tmp_path / "b", dataset=TinyClips(),
                   progress=False)  # fmt: skip
    fit(_cfg(steps=2, threads=1, appearance_consistency=2.0), tmp_path / "a", dataset=TinyClips(), progress=False)
    fit(_cfg(steps=4, threads=1, appearance_consistency=2.0), tmp_path / "a", resume=True, dataset=TinyClips(),
        progress=False)  # fmt: skip
    paper = fit(_cfg(steps=4, threads=1), tmp_path / "paper", dataset=TinyClips(), progress=False)
    a, b = load_checkpoint(latest_checkpoint(tmp_path / "a")), load_checkpoint(straight.checkpoint)
    assert _states_equal(a["generator"], b["generator"])
    assert not _states_equal(a["generator"], load_checkpoint(paper.checkpoint)["generator"])
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert all(r["loss/G_appearance_gap"] >= 0 for r in log if "loss/G" in r)
    for bad in (-1.0, float("inf"), float("nan"), "x", True):
        for name in ("appearance_consistency", "appearance_margin"):
            with pytest.raises(ValueError, match=name):
                _cfg(**{name: bad})
    with pytest.raises(ValueError, match=r"appearance_consistency.*vgan"):
        TrainConfig.from_dict({"model": "vgan", "appearance_consistency": 1.0, "data": "x"})


def test_colour_consistency_penalises_colours_that_change_with_motion_not_their_place(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer
    from g3an.train.objectives import appearance_gap, colour_histogram, pair_colour_shifts

    # the histogram: rows sum to 1, a colour on a bin centre fills that one bin, one between two centres
    # splits its weight, and gradients reach the pixels
    grey = torch.zeros(1, 3, 2, 4, 4)  # 0 is bin 2.5 of 6 in every channel: 8 bins of 1/8
    hist = colour_histogram(grey)
    assert torch.allclose(hist.sum(1), torch.ones(1)) and torch.allclose(hist[hist > 0], torch.full((8,), 0.125))
    assert colour_histogram(torch.full((1, 3, 2, 4, 4), 0.2)).max() == 1  # (0.2 + 1) * 2.5 = 3: a bin centre
    # a figure that moves shifts nothing; a figure in other clothes shifts its share of the pixels
    scene = torch.full((3, 3, 4, 16, 16), -0.6)
    scene[0, :, :, 2:6, 2:4] = 0.6
    scene[1, :, :, 9:13, 10:12] = 0.6  # the same figure elsewhere
    scene[2, :, :, 2:6, 2:4] = 0.6
    scene[2, 0, :, 2:6, 2:4] = -0.6  # its shirt in another colour
    shifts = pair_colour_shifts(scene[[0, 1, 0, 2]], torch.tensor([0, 2]))
    torch.testing.assert_close(shifts, torch.tensor([0.0, 8 / 256]))
    torch.testing.assert_close(appearance_gap(scene[[0, 1, 0, 2]], torch.tensor([0, 2]), 0.01, pair_colour_shifts),
                               torch.tensor((8 / 256 - 0.01) / 2))  # fmt: skip
    video = (torch.rand(2, 3, 4, 8, 8) * 2 - 1).requires_grad_(True)
    pair_colour_shifts(video, torch.tensor([0])).sum().backward()
    assert video.grad is not None and video.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="RGB"):
        colour_histogram(torch.zeros(1, 1, 2, 4, 4))
    # in the step: pairs as with appearance_consistency, the term logged and weighted, alone or with the other
    for both in (False, True):
        weights = {"colour_consistency": 3.0, "colour_margin": 0.0, "appearance_consistency": 2.0 if both else 0.0}
        trainer = Trainer(_cfg(threads=1, **weights), tmp_path / f"colour{both}", TinyClips(), False)
        step = StepContext(real=torch.zeros(4, 3, 16, 32, 32), labels=None, rng=torch.Generator().manual_seed(0),
                           rank=0, world=1, step=0, device=torch.device("cpu"))  # fmt: skip
        with torch.no_grad():
            trainer.objective.begin_step(step)
            ((loss, stats),) = trainer.objective.loss(trainer.objective.phases[1], step)  # the G phase: one term
        fake, first = step.cache["fake"], torch.tensor([0, 2])
        assert not torch.equal(fake[0], fake[1])  # one z_a, two motion codes
        shift = pair_colour_shifts(fake, first).mean()
        torch.testing.assert_close(stats["loss/G_colour_shift"], shift)
        expected = stats["loss/G"] + 3.0 * shift + (2.0 * stats["loss/G_appearance_gap"] if both else 0.0)
        assert ("loss/G_appearance_gap" in stats) == both
        torch.testing.assert_close(loss, expected)
    for bad in (-1.0, float("nan"), "x"):
        for name in ("colour_consistency", "colour_margin"):
            with pytest.raises(ValueError, match=name):
                _cfg(**{name: bad})
    with pytest.raises(ValueError, match=r"colour_consistency.*tgan"):
        TrainConfig.from_dict({"model": "tgan", "colour_consistency": 1.0, "data": "x"})


def test_boundary_frames_diagnostic_sees_d_v_fall_off_at_the_clip_ends() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "boundary_frames.py"
    spec = importlib.util.spec_from_file_location("boundary_frames", path)
    diag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diag)
    video = torch.zeros(2, 3, 16, 32, 32)
    video[:, :, 0, :, ::2] = 1.0  # frame 0 striped: neighbouring columns differ by 1 everywhere
    energy = diag.high_frequency(video)
    assert energy.shape == (16,) and energy[0] == pytest.approx(1.0) and (energy[1:] == 0).all()
    torch.manual_seed(0)
    D = create_discriminator("g3an", **TINY_MODEL)
    g_video, g_image = diag.frame_gradients(D, torch.randn(4, 3, 16, 32, 32), None)
    assert g_video.mean() == pytest.approx(1.0) and g_image.mean() == pytest.approx(1.0)
    # D_V's unpadded temporal convolutions see the end frames through far fewer windows than the middle ones
    assert g_video[0] < 0.5 * g_video[7] and g_video[15] < 0.5 * g_video[8]


def test_channels_last_layout_gives_the_same_step_to_rounding(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer

    def one_step(layout: bool) -> tuple[Trainer, dict[str, torch.Tensor]]:
        trainer = Trainer(_cfg(channels_last=layout, threads=1), tmp_path / f"cl{layout}", TinyClips(), False)
        return trainer, _step_grads(trainer)

    (plain, plain_grads), (cl, cl_grads) = one_step(False), one_step(True)
    weights = [p for p in cl.G.parameters() if p.ndim == 5] + [p for p in cl.D.parameters() if p.ndim == 5]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in weights)
    layouts = {
        f"{net}.{n}": p.ndim == 5 and p.shape[1] > 1
        for net in ("G", "D")
        for n, p in getattr(cl, net).named_parameters()
    }
    assert all(g.is_contiguous(memory_format=torch.channels_last_3d) for k, g in cl_grads.items() if layouts[k])
    assert cl_grads.keys() == plain_grads.keys()
    for name, g in plain_grads.items():
        torch.testing.assert_close(cl_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # (not the weights after Adam's first step: it moves each by lr * sign(grad), and the biases before
    # BatchNorm have gradients that are rounding noise around 0)
    for net in ("G", "D"):
        sa, sb = dict(getattr(plain, net).named_buffers()), dict(getattr(cl, net).named_buffers())
        for name in sa:  # spectral-norm vectors, BatchNorm statistics
            torch.testing.assert_close(sb[name], sa[name], rtol=1e-4, atol=1e-6, msg=f"{net}.{name}")
    # a checkpoint written in one layout resumes in the other
    fit(_cfg(steps=2, threads=1, channels_last=False), tmp_path / "split", dataset=TinyClips(), progress=False)
    resumed = fit(_cfg(steps=3, threads=1), tmp_path / "split", resume=True, dataset=TinyClips(), progress=False)
    assert resumed.step == 3


def test_sampler_is_the_same_global_order_for_any_world_size() -> None:
    one = InfiniteBatchSampler(7, 4, 0, 1, seed=5)
    two = [InfiniteBatchSampler(7, 2, r, 2, seed=5) for r in range(2)]
    for step in range(5):
        assert one.batch_keys(step) == two[0].batch_keys(step) + two[1].batch_keys(step)
    resumed = InfiniteBatchSampler(7, 4, 0, 1, seed=5, start_step=3)
    assert next(iter(resumed)) == one.batch_keys(3)
    keys = [k for s in range(7) for k in one.batch_keys(s)]  # 28 draws = 4 epochs of 7
    for epoch in range(4):
        assert sorted(i for e, i in keys if e == epoch) == list(range(7))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    fit(_cfg(steps=2), tmp_path / "run", dataset=TinyClips(), progress=False)
    good = latest_checkpoint(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"non-finite D loss .* at step 2.*step-00000002\.pt"):
        fit(_cfg(steps=4), tmp_path / "run", resume=True, dataset=TinyClips(poison=True), progress=False)
    assert latest_checkpoint(tmp_path / "run") == good
    load_checkpoint(good)


def test_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    fit(_cfg(steps=2), tmp_path / "run", dataset=TinyClips(), progress=False)
    good = latest_checkpoint(tmp_path / "run")
    before = good.read_bytes()

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(good, {"format": "g3an-checkpoint"})
    assert good.read_bytes() == before
    assert [p.name for p in good.parent.iterdir()] == [good.name]  # no temporary file left behind
    monkeypatch.undo()
    load_checkpoint(good)


def test_foreign_and_broken_checkpoints_are_refused(tmp_path: Path) -> None:
    result = fit(_cfg(steps=1), tmp_path / "run", dataset=TinyClips(), progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    with pytest.raises(CheckpointError, match="model 'g3an', expected 'vgan'"):
        load_checkpoint(result.checkpoint, model="vgan")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a g3an checkpoint"):
        load_checkpoint(other)
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(result.checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"trunc\.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    wrong = dict(ckpt, model_config={**ckpt["model_config"], "ch": 8})
    save_checkpoint(tmp_path / "wrong.pt", wrong)
    with pytest.raises(CheckpointError, match="generator does not fit"):
        load_generator(tmp_path / "wrong.pt")
    # resuming a run with a checkpoint of another architecture is refused
    run2 = tmp_path / "run2"
    fit(_cfg(steps=1, model_config={**TINY_MODEL, "fsa_level": None}), run2, dataset=TinyClips(), progress=False)
    with pytest.raises(CheckpointError, match="model config differs from this run's \\(fsa_level: None there, 2 here"):
        fit(_cfg(steps=2), run2, resume=True, dataset=TinyClips(), progress=False)
    # files saved before the d_class option: unconditional ones read as before, conditional ones as concat
    legacy = dict(ckpt, model_config={k: v for k, v in ckpt["model_config"].items() if k != "d_class"})
    save_checkpoint(tmp_path / "legacy.pt", legacy)
    assert load_checkpoint(tmp_path / "legacy.pt")["model_config"]["d_class"] == "projection"
    save_checkpoint(tmp_path / "legacy_c.pt", dict(legacy, model_config={**legacy["model_config"], "num_classes": 2}))
    assert load_checkpoint(tmp_path / "legacy_c.pt")["model_config"]["d_class"] == "concat"


def test_export_and_load_generator_round_trip(tmp_path: Path) -> None:
    result = fit(_cfg(steps=1, ema_half_life=10.0), tmp_path / "run", dataset=TinyClips(), progress=False)
    out = tmp_path / "g.safetensors"
    res = CliRunner().invoke(main, ["export", str(result.checkpoint), "--out", str(out)])
    assert res.exit_code == 0, res.output
    _, _, g_ckpt, _ = load_generator(result.checkpoint)
    assert torch.equal(next(load_generator(tmp_path / "run")[2].parameters()), next(g_ckpt.parameters()))
    with pytest.raises(CheckpointError, match="not a training run"):
        load_generator(tmp_path)
    name, cfg, g_exp, info = load_generator(out)
    assert name == "g3an" and cfg.ch == 4 and info["format"] == "g3an-generator"
    assert json.loads(info["class_names"]) == ["a", "b"]
    z = g_exp.sample_latents(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(g_ckpt(**z), g_exp(**z))
    res = CliRunner().invoke(main, ["export", str(result.checkpoint), "--out", str(tmp_path / "g.bin")])
    assert res.exit_code != 0 and ".safetensors" in res.output
    # reproducible bytes: safetensors writes its header from hash maps whose order changes per map
    again = tmp_path / "again.safetensors"
    for _ in range(3):
        assert CliRunner().invoke(main, ["export", str(result.checkpoint), "--out", str(again)]).exit_code == 0
        assert again.read_bytes() == out.read_bytes()


def test_cli_help_and_dry_run(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["--help"])
    assert res.exit_code == 0 and "train" in res.output and "export" in res.output
    res = runner.invoke(main, ["train", "--help"])
    assert res.exit_code == 0 and "--resume" in res.output and "--precision" in res.output
    res = runner.invoke(
        main, ["train", "--dry-run", "--data", "x", "--steps", "7", "model.ch=32", "model.fsa_level=none"]
    )
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["steps"] == 7 and cfg["model_config"]["ch"] == 32 and cfg["model_config"]["fsa_level"] is None
    res = runner.invoke(main, ["train", "--dry-run", "model.chanels=3"])
    assert res.exit_code != 0 and "chanels" in res.output
    res = runner.invoke(main, ["train", "--dry-run", "--model", "nope"])
    assert res.exit_code != 0 and "unknown model 'nope'" in res.output
    res = runner.invoke(main, ["train", "--dry-run", "precision=fp8"])
    assert res.exit_code != 0 and "precision" in res.output
    res = runner.invoke(main, ["train", "--data", "x"])
    assert res.exit_code != 0 and "--out" in res.output


def test_bf16_training_runs_and_stays_finite(tmp_path: Path) -> None:
    result = fit(_cfg(steps=2, precision="bf16"), tmp_path / "run", dataset=TinyClips(), progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for k, v in result.last_scalars.items() if k.startswith("loss/"))


def test_conditional_training_needs_matching_classes(tmp_path: Path) -> None:
    fit(
        _cfg(steps=1, model_config={**TINY_MODEL, "num_classes": 2}),
        tmp_path / "c",
        dataset=TinyClips(),
        progress=False,
    )
    with pytest.raises(ValueError, match="conditional on 3 classes but the dataset has 2"):
        fit(_cfg(steps=1, model_config={**TINY_MODEL, "num_classes": 3}), tmp_path / "d", dataset=TinyClips(),
            progress=False)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, run_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})  # fmt: skip
    torch.set_num_threads(1)
    try:
        fit(_cfg(steps=1, batch_size=4), run_dir, dataset=TinyClips(), progress=False)
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    single = fit(_cfg(steps=1, batch_size=4), tmp_path / "one", dataset=TinyClips(), progress=False)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "two")), nprocs=2, join=True)
    a, b = load_checkpoint(single.checkpoint), load_checkpoint(latest_checkpoint(tmp_path / "two"))
    assert b["world_size"] == 2
    G, D = create_generator("g3an", TINY_MODEL), create_discriminator("g3an", TINY_MODEL)
    nets = {
        "G": ("generator", "", G),
        "D_V": ("discriminator", "video.", D.video),
        "D_I": ("discriminator", "image.", D.image),
    }
    for opt, (key, prefix, net) in nets.items():
        names = [prefix + n for n, _ in net.named_parameters()]
        sa, sb = a["optimizers"][opt]["state"], b["optimizers"][opt]["state"]
        for i, name in enumerate(names):
            # after one Adam step exp_avg = (1 - beta1) grad: the gradients of the global batch agree
            grad_a, grad_b = sa[i]["exp_avg"] * 2, sb[i]["exp_avg"] * 2
            torch.testing.assert_close(grad_b, grad_a, rtol=1e-3, atol=1e-7, msg=f"gradient of {key}.{name}")
            # and so do the parameters, wherever the gradient is more than rounding noise: a conv bias that
            # feeds a BatchNorm has a zero true gradient, which Adam's first step turns into +-lr in either run
            signal = grad_a.abs() > 1e-6
            pa, pb = a[key][name], b[key][name]
            torch.testing.assert_close(pb[signal], pa[signal], rtol=1e-5, atol=1e-6, msg=f"{key}.{name}")
            assert (pb - pa).abs().max() <= 2.01e-4, f"{key}.{name}"
    for key, net in (("generator", G), ("discriminator", D)):  # BatchNorm statistics, spectral-norm vectors
        for name, _ in net.named_buffers():
            value = a[key][name]
            if value.is_floating_point():
                torch.testing.assert_close(b[key][name], value, rtol=1e-4, atol=1e-5, msg=f"{key}.{name}")
            else:
                assert torch.equal(b[key][name], value), f"{key}.{name}"


_SIGNAL_SCRIPT = """
import sys
from tests.test_train import TinyClips, _cfg
from g3an.train import fit
result = fit(_cfg(steps=10_000, checkpoint_every=10_000, workers=1), sys.argv[1], dataset=TinyClips(),
             progress=False)
print("STOPPED", result.step, result.signal_name, flush=True)
sys.exit(143 if result.interrupted else 0)
"""


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    """SIGTERM to the whole process group, data worker included, as a scheduler sends it."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_SCRIPT, str(run)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    step = int(out.split()[1])
    assert "SIGTERM" in out and step >= 2
    ckpt = latest_checkpoint(run)
    assert ckpt is not None and ckpt.name == f"step-{step:08d}.pt"
    assert load_checkpoint(ckpt)["counters"]["step"] == step
    result = fit(_cfg(steps=step + 1), run, resume=True, dataset=TinyClips(), progress=False)
    assert result.step == step + 1


def test_evaluation_during_training_keeps_the_best_checkpoint(tmp_path: Path) -> None:
    values = iter([5.0, 3.0, 4.0])
    seen = []

    def evaluator(generator) -> dict:
        seen.append(generator.training)
        return {"fvd16_16f": next(values)}

    cfg = _cfg(steps=3, eval_every=1, eval_metric="fvd16_16f", checkpoint_every=10)
    fit(cfg, tmp_path / "run", dataset=TinyClips(), progress=False, evaluator=evaluator)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["best_metric"] == {"fvd16_16f": 3.0} and best["counters"]["step"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["metric/fvd16_16f"] for r in records if "metric/fvd16_16f" in r] == [5.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="eval_metric"):
        TrainConfig.from_dict({"eval_every": 5})


def test_cli_trains_on_the_embedded_dataset_with_samples_and_resume(tmp_path: Path) -> None:
    from g3an.media import read_video

    data, run = tmp_path / "synth-actions", tmp_path / "run"
    synth = ["data", "synth", "actions", "--out", str(data), "--videos", "10", "--size", "32", "--frames", "24",
             "--workers", "1", "--quiet"]  # fmt: skip
    res = CliRunner().invoke(main, synth)
    assert res.exit_code == 0, res.output
    # a conditional G3AN on the ten actions: real clips carry their labels, fakes get drawn ones
    model = [f"model.{k}={json.dumps(v)}" for k, v in {**TINY_MODEL, "num_classes": 10}.items()]
    common = ["--batch-size", "2", "--workers", "1", "--device", "cpu", "--no-progress", "sample_every=2", "split=none"]
    res = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(run), "--steps", "2", *common, *model])
    assert res.exit_code == 0, res.output
    grid = read_video(run / "samples" / "step-00000002.gif")
    assert grid.ndim == 4 and grid.shape[0] == 16 and grid.shape[3] == 3  # 16 frames of a labelled 4 x 4 grid
    res = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(run), "--steps", "3", *common])
    assert res.exit_code != 0 and "--resume" in res.output
    res = CliRunner().invoke(main, ["train", "--resume", str(run), "--steps", "3", "--no-progress"])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(latest_checkpoint(run))
    assert ckpt["counters"]["step"] == 3
    assert ckpt["meta"]["class_names"][:3] == ["bend", "jack", "jump"] and len(ckpt["meta"]["class_names"]) == 10


def test_each_model_family_trains_with_its_recipe_unless_told_otherwise() -> None:
    recipes = {"g3an": (16, (1, 2, 3, 4)), "vgan": (64, (1,)), "tgan": (32, (1,)), "mocogan": (32, (2,))}
    for model, (batch, steps) in recipes.items():
        cfg = TrainConfig.from_dict({"model": model})
        assert (cfg.batch_size, cfg.time_steps) == (batch, steps), model
    cfg = TrainConfig.from_dict({"model": "tgan", "batch_size": 8, "time_steps": [1, 2]})
    assert (cfg.batch_size, cfg.time_steps) == (8, (1, 2))


@pytest.mark.skipif(not shutil.which("g++"), reason="torch.compile on the CPU needs a C++ compiler (g++)")
def test_compiled_networks_train_like_eager_ones(tmp_path: Path) -> None:
    from g3an.train.loop import Trainer

    def one_step(compiled: bool) -> tuple[Trainer, dict[str, torch.Tensor]]:
        trainer = Trainer(_cfg(compile=compiled, threads=1, sample_every=1), tmp_path / f"c{compiled}", TinyClips(),
                          False)  # fmt: skip
        return trainer, _step_grads(trainer)

    (eager, eager_grads), (compiled, compiled_grads) = one_step(False), one_step(True)
    for net in ("G", "D"):  # compiled in place: checkpoints keep their keys
        assert (
            dict(getattr(eager, net).named_parameters()).keys()
            == dict(getattr(compiled, net).named_parameters()).keys()
        )
    assert eager_grads.keys() == compiled_grads.keys()
    for name, g in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
    compiled.step = 1
    compiled.write_samples()  # runs eagerly, without recompiling for another batch size
    assert (tmp_path / "cTrue" / "samples" / "step-00000001.gif").is_file()


@pytest.mark.parametrize("model", ["g3an", "mocogan"])
def test_standing_statistics_recompute_batchnorm_from_samples_and_change_nothing_else(model: str) -> None:
    from torch import nn

    from g3an.train.ema import standing_statistics

    config = TINY_MODEL if model == "g3an" else {"resolution": 32, "ch": 8, "num_classes": 2}
    G = create_generator(model, config)
    G.train()
    with torch.no_grad():  # trained-looking running statistics and spectral-norm vectors
        for _ in range(2):
            G(**G.sample_latents(3), y=torch.tensor([0, 1, 1]) if G.num_classes else None)
    G.eval()
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms
    seen: dict[nn.Module, list[torch.Tensor]] = {m: [] for m in norms}
    hooks = [m.register_forward_pre_hook(lambda m, inp: seen[m].append(inp[0].detach().float())) for m in norms]
    others = {k: v.clone() for k, v in G.state_dict().items() if "running_" not in k and "num_batches" not in k}
    assert standing_statistics(G, videos=7, batch=4, seed=5) == len(norms)  # two batches of 4
    for h in hooks:
        h.remove()
    for m in norms:
        assert len(seen[m]) == 2 and m.momentum == 0.1 and not m.training
        dims = [d for d in range(seen[m][0].dim()) if d != 1]
        mean = torch.stack([x.mean(dims) for x in seen[m]]).mean(0)
        var = torch.stack([x.var(dims, unbiased=True) for x in seen[m]]).mean(0)
        torch.testing.assert_close(m.running_mean, mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(m.running_var, var, rtol=1e-4, atol=1e-5)
    assert not any(m.training for m in G.modules())
    assert _states_equal(others, {k: v for k, v in G.state_dict().items() if k in others})  # weights, u, v
    again = create_generator(model, config)
    again.load_state_dict(G.state_dict())
    standing_statistics(again.eval(), videos=7, batch=4, seed=5)
    assert _states_equal(again.state_dict(), G.state_dict())  # a function of the seed
    codes = []  # with pairs, as batches under appearance_consistency: rows 2i and 2i + 1 share the appearance
    G.register_forward_pre_hook(lambda m, a, kw: codes.append(kw[G.appearance_latent]), with_kwargs=True)
    standing_statistics(G, videos=4, batch=4, seed=5, pair=G.appearance_latent)
    assert torch.equal(codes[0][0], codes[0][1]) and torch.equal(codes[0][2], codes[0][3])
    assert not torch.equal(codes[0][0], codes[0][2])


def test_checkpoints_hold_the_ema_generators_own_batchnorm_statistics(tmp_path: Path) -> None:
    from g3an.train.ema import standing_statistics

    runs = {n: fit(_cfg(steps=2, ema_half_life=10.0, ema_bn_videos=n), tmp_path / str(n), dataset=TinyClips(),
                   progress=False) for n in (0, 8)}  # fmt: skip
    plain, standing = (load_checkpoint(runs[n].checkpoint) for n in (0, 8))
    for key in ("generator", "discriminator"):  # training itself is the same
        assert _states_equal(plain[key], standing[key]), key
    stats = [k for k in plain["generator_ema"] if k.endswith(("running_mean", "running_var"))]
    assert stats
    for k in plain["generator_ema"]:
        if k not in stats and not k.endswith("num_batches_tracked"):
            assert torch.equal(plain["generator_ema"][k], standing["generator_ema"][k]), k
    # 0: the trained generator's statistics, as before; 8: recomputed from the EMA generator's samples
    assert all(torch.equal(plain["generator_ema"][k], plain["generator"][k]) for k in stats)
    G = create_generator("g3an", TINY_MODEL)
    G.load_state_dict(plain["generator_ema"])
    standing_statistics(G.eval(), videos=8, batch=4, seed=3)
    for k in stats:  # (the trainer's channels-last layout rounds differently)
        torch.testing.assert_close(G.state_dict()[k], standing["generator_ema"][k], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(standing["generator_ema"][k], plain["generator"][k]), k
    # a run whose batches pair fakes by appearance recomputes them from such pairs
    paired = fit(_cfg(steps=2, ema_half_life=10.0, ema_bn_videos=8, appearance_consistency=1.0), tmp_path / "pairs",
                 dataset=TinyClips(), progress=False)  # fmt: skip
    ema = load_checkpoint(paired.checkpoint)["generator_ema"]
    G.load_state_dict(ema)
    standing_statistics(G.eval(), videos=8, batch=4, seed=3, pair="z_a")
    for k in stats:
        torch.testing.assert_close(G.state_dict()[k], ema[k], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="ema_bn_videos"):
        _cfg(ema_bn_videos=-1)
