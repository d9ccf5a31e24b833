"""The baselines VGAN, TGAN and MoCoGAN: spec layer tables, latents, SVC, instance noise, training and resume.

Registry-wide shape / gradient / finite-output checks run in test_models.py through TINY_CONFIGS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from g3an import create_discriminator, create_generator, make_config
from g3an.checkpoint import load_checkpoint, load_generator
from g3an.cli import main
from g3an.models.mocogan import instance_noise
from g3an.models.tgan import BatchNormNoBeta, singular_value_clip
from g3an.train import TrainConfig, fit
from g3an.train.baseline_objectives import frozen_bn_stats
from g3an.train.loop import checkpoint_paths
from g3an.train.sampler import derive_seed

from .conftest import tiny_config
from .test_train import TinyClips


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv(c_in: int, c_out: int, kernel: int, bias: bool = True) -> int:
    """Parameters of a (transposed) convolution or linear layer with ``kernel`` weights per channel pair."""
    return c_in * c_out * kernel + (c_out if bias else 0)


# -- parameter counts at the default configurations, from the spec's layer tables --------------------------


def test_vgan_parameter_counts_follow_the_spec_table() -> None:
    G, D = create_generator("vgan"), create_discriminator("vgan")
    bn = 2  # gamma and beta per channel
    background = (_conv(100, 512, 4 * 4) + bn * 512 + _conv(512, 256, 16) + bn * 256 + _conv(256, 128, 16)
                  + bn * 128 + _conv(128, 64, 16) + bn * 64 + _conv(64, 3, 16))  # fmt: skip
    foreground = (_conv(100, 512, 1 * 4 * 4) + bn * 512 + _conv(512, 256, 64) + bn * 256 + _conv(256, 128, 64)
                  + bn * 128 + _conv(128, 64, 64) + bn * 64)  # fmt: skip
    heads = _conv(64, 3, 64) + _conv(64, 1, 64)
    assert (_count(G.background), _count(G.foreground)) == (background, foreground) == (3_577_667, 11_832_128)
    assert _count(G) == background + foreground + heads == 15_426_183
    disc = (_conv(3, 64, 64) + _conv(64, 128, 64) + bn * 128 + _conv(128, 256, 64) + bn * 256
            + _conv(256, 512, 64) + bn * 512 + _conv(512, 2, 1 * 4 * 4))  # fmt: skip
    assert _count(D) == disc == 11_041_474
    # the official 32-frame model: temporal kernel 2 in the first foreground layer and the last D layer
    G32, D32 = create_generator("vgan", num_frames=32), create_discriminator("vgan", num_frames=32)
    assert _count(G32) - _count(G) == 100 * 512 * 16
    assert _count(D32) - _count(D) == 512 * 2 * 16


def test_tgan_parameter_counts_follow_the_spec_table() -> None:
    G, D = create_generator("tgan"), create_discriminator("tgan")
    g0 = (
        _conv(100, 512, 1)
        + 512
        + _conv(512, 256, 4)
        + 256
        + _conv(256, 128, 4)
        + 128
        + _conv(128, 128, 4)
        + 128
        + _conv(128, 100, 4)
    )  # fmt: skip  (BatchNorm without beta: one gamma per channel)
    g1 = (2 * (_conv(100, 4096, 1, bias=False) + 2 * 4096) + _conv(512, 256, 16, False) + 2 * 256
          + _conv(256, 128, 16, False) + 2 * 128 + _conv(128, 64, 16, False) + 2 * 64 + _conv(64, 32, 16, False)
          + 2 * 32 + _conv(32, 3, 9))  # fmt: skip
    assert (_count(G.temporal), _count(G.image)) == (g0, g1) == (825_444, 3_622_691)
    assert _count(G) == 4_448_135
    disc = (_conv(3, 64, 64) + _conv(64, 128, 64) + 128 + _conv(128, 256, 64) + 256 + _conv(256, 512, 64) + 512
            + _conv(512, 1, 16))  # fmt: skip
    assert _count(D) == disc == 11_032_385


def test_mocogan_parameter_counts_follow_the_spec_table() -> None:
    G, D = create_generator("mocogan"), create_discriminator("mocogan")
    gru = 3 * (10 * 10 + 10 * 10 + 10 + 10)  # GRUCell(10 -> 10): input and hidden weights and biases, 3 gates
    image = (_conv(60, 512, 16, False) + 2 * 512 + _conv(512, 256, 16, False) + 2 * 256 + _conv(256, 128, 16, False)
             + 2 * 128 + _conv(128, 64, 16, False) + 2 * 64 + _conv(64, 3, 16, False))  # fmt: skip
    assert (_count(G.recurrent), _count(G.image)) == (gru, image) == (660, 3_249_024)
    d_i = (
        _conv(3, 64, 16, False)
        + _conv(64, 128, 16, False)
        + 2 * 128
        + _conv(128, 256, 16, False)
        + 2 * 256
        + (_conv(256, 1, 16, False))
    )
    d_v = (_conv(3, 64, 64, False) + _conv(64, 128, 64, False) + 2 * 128 + _conv(128, 256, 64, False) + 2 * 256
           + _conv(256, 512, 64, False) + 2 * 512 + _conv(512, 1, 64, False))  # fmt: skip
    assert (_count(D.image), _count(D.video)) == (d_i, d_v) == (663_296, 11_056_896)
    # six categories (the MUG recipe): a one-hot in every frame code and six more D_V outputs
    G6, D6 = create_generator("mocogan", num_classes=6), create_discriminator("mocogan", num_classes=6)
    assert _count(G6) - _count(G) == 6 * 512 * 16
    assert _count(D6.video) - _count(D.video) == 6 * 512 * 64
    assert _count(create_discriminator("mocogan", image_d="full").image) == (
        _conv(3, 64, 16, False) + _conv(64, 128, 16, False) + 2 * 128 + _conv(128, 256, 16, False) + 2 * 256
        + _conv(256, 512, 16, False) + 2 * 512 + _conv(512, 1, 16, False)
    )  # fmt: skip


# -- intermediate shapes at the default configurations ---------------------------------------------------


def _output_shapes(modules: list[nn.Module]) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    for m in modules:
        m.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape)))
    return shapes


def test_vgan_intermediate_shapes_and_composition() -> None:
    G, D = create_generator("vgan").eval(), create_discriminator("vgan").eval()
    fg = _output_shapes([m for m in G.foreground if isinstance(m, nn.ReLU)])
    bg = _output_shapes([m for m in G.background if isinstance(m, (nn.ReLU, nn.Tanh))])
    d = _output_shapes([m for m in D.net if isinstance(m, nn.LeakyReLU)])
    with torch.no_grad():
        parts = G(torch.randn(1, 100), return_parts=True)
        D(parts["video"])
    assert fg == [(1, 512, 1, 4, 4), (1, 256, 2, 8, 8), (1, 128, 4, 16, 16), (1, 64, 8, 32, 32)]
    assert bg == [(1, 512, 4, 4), (1, 256, 8, 8), (1, 128, 16, 16), (1, 64, 32, 32), (1, 3, 64, 64)]
    assert d == [(1, 64, 8, 32, 32), (1, 128, 4, 16, 16), (1, 256, 2, 8, 8), (1, 512, 1, 4, 4)]
    f, m, b = parts["foreground"], parts["mask"], parts["background"]
    assert f.shape == (1, 3, 16, 64, 64) and m.shape == (1, 1, 16, 64, 64) and b.shape == (1, 3, 64, 64)
    assert m.min() >= 0 and m.max() <= 1
    torch.testing.assert_close(parts["video"], m * f + (1 - m) * b[:, :, None])


def test_tgan_intermediate_shapes() -> None:
    G, D = create_generator("tgan").eval(), create_discriminator("tgan").eval()
    g0 = _output_shapes([m for m in G.temporal.net if isinstance(m, (nn.ReLU, nn.Tanh))])
    g1 = _output_shapes([G.image.fc_slow, *(m for m in G.image.net if isinstance(m, nn.ReLU))])
    d = _output_shapes([m for m in D.net if isinstance(m, nn.LeakyReLU)])
    with torch.no_grad():
        video = G(**G.sample_latents(2))
        D(video)
    assert g0 == [(2, 512, 1), (2, 256, 2), (2, 128, 4), (2, 128, 8), (2, 100, 16)]
    # batch and time folded: 2 videos x 16 frames
    assert g1 == [(32, 4096), (32, 256, 8, 8), (32, 128, 16, 16), (32, 64, 32, 32), (32, 32, 64, 64)]
    assert d == [(2, 64, 8, 32, 32), (2, 128, 4, 16, 16), (2, 256, 2, 8, 8), (2, 512, 1, 4, 4)]
    assert video.shape == (2, 3, 16, 64, 64)


def test_mocogan_intermediate_shapes() -> None:
    G, D = create_generator("mocogan").eval(), create_discriminator("mocogan").eval()
    g = _output_shapes([m for m in G.image if isinstance(m, (nn.ReLU, nn.Tanh))])
    d_v = _output_shapes([*D.video.stages])
    d_i = _output_shapes([*D.image.stages])
    lat = G.sample_latents(2)
    assert {k: tuple(v.shape) for k, v in lat.items()} == {"z_content": (2, 50), "z_motion": (2, 10, 17)}
    with torch.no_grad():
        video = G(**lat)
        D(video)
    assert g == [(32, 512, 4, 4), (32, 256, 8, 8), (32, 128, 16, 16), (32, 64, 32, 32), (32, 3, 64, 64)]
    # the time axis shrinks 16 -> 13 -> 10 -> 7 -> 4 -> 1
    assert d_v == [(2, 64, 13, 32, 32), (2, 128, 10, 16, 16), (2, 256, 7, 8, 8), (2, 512, 4, 4, 4), (2, 1, 1, 1, 1)]
    assert d_i == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 1, 4, 4)]
    with torch.no_grad():
        assert D.image_logits(video[:, :, 0]).shape == (2, 16)  # 4 x 4 patch logits


# -- latents and generators ------------------------------------------------------------------------------


def test_mocogan_makes_any_length_and_its_motion_is_causal() -> None:
    G = create_generator("mocogan", **tiny_config("mocogan")).eval()
    assert G.valid_frames(1) and G.valid_frames(40) and not G.valid_frames(0)
    lat = G.sample_latents(2, 24, generator=torch.Generator().manual_seed(0))
    assert lat["z_motion"].shape == (2, 4, 25)
    with torch.no_grad():
        long = G(**lat)
        short = G(lat["z_content"], lat["z_motion"][:, :, :8])  # h0 and the first 7 GRU inputs
    assert long.shape == (2, 3, 24, 32, 32) and short.shape == (2, 3, 7, 32, 32)
    torch.testing.assert_close(short, long[:, :, :7])  # frame t depends on eps_1..eps_t only
    with pytest.raises(ValueError, match="one frame or more"):
        G.latent_shapes(0)


def test_mocogan_content_and_motion_are_separate_codes() -> None:
    G = create_generator("mocogan", **tiny_config("mocogan"), num_classes=3).eval()
    assert (G.appearance_latent, G.motion_latent) == ("z_content", "z_motion")
    z_c, z_m = torch.randn(1, 8).expand(2, -1), torch.randn(2, 4, 17)
    with torch.no_grad():
        video = G(z_c, z_m, y=torch.tensor([1, 1]))
        other_class = G(z_c, z_m, y=torch.tensor([2, 2]))
    assert (video[0] - video[1]).abs().max() > 1e-4  # same content, other motion
    assert (video - other_class).abs().max() > 1e-4
    with pytest.raises(ValueError, match="conditional on 3 classes"):
        G(z_c, z_m)


def _calibrate_batchnorm(G: nn.Module, batch: int = 16) -> nn.Module:
    """Running statistics = the statistics of one batch, so an untrained generator's eval output is not ~0."""
    for m in G.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # cumulative average: one pass sets the running statistics
    with torch.no_grad():
        G.train()(**G.sample_latents(batch, generator=torch.Generator().manual_seed(9)))
    return G.eval()


def test_tgan_latents_z_fast_override_and_motion_swap() -> None:
    G = _calibrate_batchnorm(create_generator("tgan", **tiny_config("tgan")))
    assert (G.appearance_latent, G.motion_latent) == ("z_slow", "z_motion")
    lat = G.sample_latents(3, generator=torch.Generator().manual_seed(1))
    assert lat["z_slow"].min() >= -1 and lat["z_slow"].max() <= 1  # U(-1, 1), not N(0, I)
    assert torch.equal(lat["z_slow"], lat["z_motion"])  # TGAN's one z0 feeds both G0 and G1
    with torch.no_grad():
        video = G(**lat)
        z_fast = G.temporal(lat["z_slow"])
        assert z_fast.shape == (3, 8, 16)
        torch.testing.assert_close(G(lat["z_slow"]), video)
        torch.testing.assert_close(G(lat["z_slow"], z_fast=z_fast), video)
        # keep video 0's z_slow, take video 1's motion: the same as overriding z_fast with G0(z_slow of 1)
        swapped = G(lat["z_slow"][:1], z_motion=lat["z_slow"][1:2])
        torch.testing.assert_close(swapped, G(lat["z_slow"][:1], z_fast=z_fast[1:2]))
        assert (swapped - video[:1]).abs().max() > 1e-4
        # G1 renders any number of frames from an explicit z_fast
        assert G(lat["z_slow"], z_fast=torch.rand(3, 8, 5) * 2 - 1).shape == (3, 3, 5, 32, 32)
    with pytest.raises(ValueError, match="exactly 16 frames"):
        G.sample_latents(2, 20)


def test_options_are_validated_with_clear_messages() -> None:
    cases = [
        ("vgan", {"num_classes": 3}, "num_classes must be 0: vgan"),
        ("tgan", {"num_classes": 2}, "num_classes must be 0: tgan"),
        ("vgan", {"resolution": 128}, "resolution must be one of"),
        ("tgan", {"resolution": 48}, "resolution must be one of"),
        ("mocogan", {"resolution": 128}, "resolution must be one of"),
        ("vgan", {"num_frames": 20}, "multiple of 16"),
        ("tgan", {"num_frames": 32}, "num_frames must be 16"),
        ("mocogan", {"num_frames": 12}, "at least 16"),
        ("mocogan", {"head_on_fakes": True}, "head_on_fakes needs"),
        ("mocogan", {"image_d": "big"}, "image_d"),
        ("mocogan", {"noise_sigma": -1}, "noise_sigma"),
        ("tgan", {"svc_every": -5}, "svc_every"),
        ("vgan", {"mask_l1": -0.1}, "mask_l1"),
        ("vgan", {"ch": 0}, "ch must be a positive integer"),
    ]
    for name, bad, match in cases:
        with pytest.raises(ValueError, match=match):
            make_config(name, **bad)
    assert make_config("mocogan", resolution=32, num_frames=13).num_frames == 13  # D_V needs 13 frames at 32x32


# -- singular value clipping and instance noise ----------------------------------------------------------


def test_svc_bounds_every_singular_value_of_every_conv_and_every_batchnorm_gain() -> None:
    D = create_discriminator("tgan", ch_d=4)  # 64x64: the spec's four Conv3d layers and the final conv
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in D.modules():
            if isinstance(m, nn.Conv3d):
                m.weight.mul_(5)  # singular values well above 1
            if isinstance(m, BatchNormNoBeta):
                m.bn.running_var.copy_(torch.rand(m.bn.running_var.shape, generator=gen) * 4 + 0.01)
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 3)  # too large, too small, negative
    convs = [m for m in D.modules() if isinstance(m, nn.Conv3d)]
    norms = [m for m in D.modules() if isinstance(m, BatchNormNoBeta)]
    assert len(convs) == 5 and len(norms) == 3
    before = [torch.linalg.svdvals(m.weight.reshape(m.weight.shape[0], -1).double()) for m in convs]
    assert all(s.max() > 1.5 for s in before)
    singular_value_clip(D)
    for m, s_before in zip(convs, before):
        s = torch.linalg.svdvals(m.weight.reshape(m.weight.shape[0], -1).double())
        assert s.max() <= 1 + 1e-5
        torch.testing.assert_close(s, s_before.clamp(max=1), rtol=1e-5, atol=1e-5)  # only the large ones change
    for m in norms:
        s = m.bn.running_var.sqrt()
        assert (m.weight <= s * (1 + 1e-6)).all() and (m.weight >= 0.01 * s * (1 - 1e-6)).all()


def test_frozen_bn_stats_normalise_with_the_batch_but_keep_running_statistics() -> None:
    D = create_discriminator("tgan", **{k: v for k, v in tiny_config("tgan").items() if k in ("ch_d", "resolution")})
    video = torch.randn(3, 3, 16, 32, 32)
    state = {k: v.clone() for k, v in D.state_dict().items()}
    with torch.no_grad(), frozen_bn_stats(D):
        frozen = D(video)["video"]
    assert all(torch.equal(state[k], v) for k, v in D.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(D(video)["video"], frozen)  # the same batch statistics were used
    assert not torch.equal(state["net.3.bn.running_mean"], D.state_dict()["net.3.bn.running_mean"])


def test_instance_noise_is_seeded_per_video_and_off_in_eval() -> None:
    D = create_discriminator("mocogan", **tiny_config("mocogan"))
    video = torch.rand(4, 3, 16, 32, 32) * 2 - 1
    seeds = torch.tensor([11, 12, 13, 14])
    with torch.no_grad():
        a, b = D.video_logits(video, seeds), D.video_logits(video, seeds)
        c = D.video_logits(video, seeds + 1)
        torch.testing.assert_close(a, b)
        assert (a - c).abs().max() > 1e-6
        D.eval()
        first = torch.zeros(4, dtype=torch.long)
        assert torch.equal(D.video_logits(video, seeds), D.video_logits(video))
        assert torch.equal(D(video, frame_index=first)["image"], D(video, frame_index=first)["image"])
    quiet = create_discriminator("mocogan", **tiny_config("mocogan"), noise_sigma=0.0)
    with torch.no_grad():
        assert torch.equal(quiet.video_logits(video), quiet.video_logits(video))  # train mode, no noise
    # a video's noise depends on its seed only, not on the rest of the batch (any process split agrees)
    x = torch.zeros(4, 2, 3)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3, 4)]
    full = instance_noise(x, 0.1, gens)
    half = instance_noise(x[2:], 0.1, [torch.Generator().manual_seed(s) for s in (3, 4)])
    torch.testing.assert_close(full[2:], half)
    assert 0.05 < full.std() < 0.2


# -- training through the one loop -----------------------------------------------------------------------


def _cfg(model: str, **kw) -> TrainConfig:
    values = {"model": model, "model_config": tiny_config(model), "batch_size": 2, "steps": 2, "workers": 0,
              "device": "cpu", "log_every": 1, "sample_every": 0, "checkpoint_every": 100, "seed": 7}  # fmt: skip
    values.update(kw)
    return TrainConfig.from_dict(values)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vgan_trains_with_its_objective(tmp_path: Path) -> None:
    result = fit(_cfg("vgan"), tmp_path / "run", dataset=TinyClips(), progress=False)
    last = _log(tmp_path / "run")[-1]
    for key in ("loss/D", "loss/G", "loss/G_adv", "loss/mask_l1", "D/real", "D/fake", "lr/G", "lr/D"):
        assert key in last, key
    assert last["loss/G"] == pytest.approx(last["loss/G_adv"] + 0.1 * last["loss/mask_l1"], rel=1e-5)
    ckpt = load_checkpoint(result.checkpoint, model="vgan")
    for name in ("G", "D"):
        group = ckpt["optimizers"][name]["param_groups"][0]
        assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999) and group["weight_decay"] == 0
    torch.manual_seed(derive_seed(7, "init"))  # the run's initialisation
    initial = create_generator("vgan", **tiny_config("vgan")).state_dict()
    changed = {k for k, v in ckpt["generator"].items() if not torch.equal(initial[k], v)}
    assert {"mask_head.0.weight", "video_head.0.weight", "background.0.weight"} <= changed


def test_tgan_trains_clips_every_fifth_critic_update_and_exports(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = fit(_cfg("tgan", steps=5, checkpoint_every=4), run, dataset=TinyClips(), progress=False)
    last = _log(run)[-1]
    assert {"loss/G", "loss/D", "wasserstein", "D/real", "D/fake"} <= set(last)
    assert last["loss/D"] == pytest.approx(-last["wasserstein"])
    ckpt4, ckpt5 = (load_checkpoint(p) for p in checkpoint_paths(run))
    for name in ("G", "D"):
        group = ckpt5["optimizers"][name]["param_groups"][0]
        assert (group["lr"], group["alpha"], group["eps"]) == (5e-5, 0.99, 1e-8)

    def largest_singular_values(state: dict) -> list[float]:
        return [float(torch.linalg.svdvals(w.reshape(w.shape[0], -1).double()).max())
                for k, w in state.items() if k.endswith("weight") and w.ndim == 5]  # fmt: skip

    assert max(largest_singular_values(ckpt4["discriminator"])) > 1.05  # LeCun init: above 1 until the 5th step
    assert max(largest_singular_values(ckpt5["discriminator"])) <= 1 + 1e-5
    _, _, G, _ = load_generator(result.checkpoint)
    z = G.sample_latents(2, generator=torch.Generator().manual_seed(0))
    assert G.eval()(**z).shape == (2, 3, 16, 32, 32)
    with pytest.raises(ValueError, match="RMSprop"):
        fit(_cfg("tgan", optim={"betas": [0.5, 0.9]}), tmp_path / "bad", dataset=TinyClips(), progress=False)


def test_mocogan_trains_unconditional_and_with_categories(tmp_path: Path) -> None:
    fit(_cfg("mocogan", steps=1), tmp_path / "u", dataset=TinyClips(), progress=False)
    last = _log(tmp_path / "u")[-1]
    for key in ("loss/D_I", "loss/D_V", "loss/G", "loss/G_image", "loss/G_video", "D_image/real", "D_video/fake",
                "lr/D_I", "lr/D_V", "grad_norm/D_I", "grad_norm/D_V", "grad_norm/G"):  # fmt: skip
        assert key in last, key
    assert "loss/G_category" not in last
    model = {**tiny_config("mocogan"), "num_classes": 2, "head_on_fakes": True}
    result = fit(_cfg("mocogan", steps=1, model_config=model), tmp_path / "c", dataset=TinyClips(), progress=False)
    last = _log(tmp_path / "c")[-1]
    for key in ("loss/D_V_category", "loss/D_V_category_fake", "loss/G_category"):
        assert key in last, key
    assert last["loss/G"] == pytest.approx(last["loss/G_image"] + last["loss/G_video"] + last["loss/G_category"])
    ckpt = load_checkpoint(result.checkpoint)
    for name in ("G", "D_I", "D_V"):
        group = ckpt["optimizers"][name]["param_groups"][0]
        assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999) and group["weight_decay"] == 1e-5


@pytest.mark.parametrize(
    "model,options",
    [("tgan", {"svc_every": 1}), ("mocogan", {"num_classes": 2})],
    ids=["tgan-svc", "mocogan-noise-categories"],
)
def test_resume_is_bit_identical(tmp_path: Path, model: str, options: dict) -> None:
    cfg = {"model_config": {**tiny_config(model), **options}}
    full = fit(_cfg(model, steps=2, **cfg), tmp_path / "full", dataset=TinyClips(), progress=False)
    fit(_cfg(model, steps=1, **cfg), tmp_path / "split", dataset=TinyClips(), progress=False)
    resumed = fit(_cfg(model, steps=2, **cfg), tmp_path / "split", resume=True, dataset=TinyClips(), progress=False)
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["counters"] == b["counters"]
    for key in ("generator", "discriminator"):
        assert _states_equal(a[key], b[key]), key
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert all(_states_equal(sa[i], sb[i]) for i in sa), name


def test_cli_dry_run_resolves_and_overrides_baseline_configs() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--dry-run", "--model", "vgan", "model.ch=32", "model.mask_l1=0.05"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["model"] == "vgan" and cfg["model_config"] == {
        "dim_z": 100, "ch": 32, "ch_d": 64, "resolution": 64, "num_frames": 16, "num_classes": 0, "mask_l1": 0.05
    }  # fmt: skip
    res = runner.invoke(main, ["train", "--dry-run", "--model", "mocogan", "model.num_classes=6", "num_frames=24"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["model_config"]["num_frames"] == 24
    res = runner.invoke(main, ["train", "--dry-run", "--model", "tgan", "model.num_classes=3"])
    assert res.exit_code != 0 and "tgan is unconditional" in res.output
    res = runner.invoke(main, ["train", "--dry-run", "--model", "tgan", "num_frames=32"])
    assert res.exit_code != 0 and "num_frames must be 16" in res.output
