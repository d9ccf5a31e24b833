"""Every registered model and every G3AN variant: shapes, finite outputs, gradients to every parameter."""

from __future__ import annotations

import itertools

import pytest
import torch

from g3an import create_discriminator, create_generator, list_models, make_config
from g3an.models import sample_labels
from g3an.models.base import channels_last as channels_last_layout
from g3an.models.blocks import FrameConv3d, FrameConvTranspose3d, LateBiasConvTranspose3d
from g3an.models.g3an import G3ANGenerator
from g3an.shapes import ShapeError

from .conftest import tiny_config


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _set_attention_gammas(model: torch.nn.Module, value: float) -> None:
    # gamma starts at 0, which makes F-SA the identity and blocks the q/k/v gradients; open it for the test.
    for name, p in model.named_parameters():
        if name.endswith("gamma"):
            p.data.fill_(value)


def _forward_backward(name: str, batch: int = 2, frames: int | None = None, **options):
    G = create_generator(name, **options)
    D = create_discriminator(name, **options)
    _set_attention_gammas(G, 0.5)
    gen = torch.Generator().manual_seed(1)
    latents = G.sample_latents(batch, frames, generator=gen)
    y = sample_labels(G.num_classes, batch, gen)
    video = G(**latents, y=y)
    logits = D(video, y=y) if video.shape[2] == G.default_frames else {}
    loss = video.square().mean() + sum(v.mean() for v in logits.values())
    loss.backward()
    return G, D, video, logits


def _assert_every_parameter_has_a_gradient(*modules: torch.nn.Module) -> None:
    """Every parameter got a nonzero gradient, except F-SA's key biases, whose gradient is 0 in exact
    arithmetic: the softmax over keys ignores a shift shared by every key (q.(k + b) = q.k + q.b), so
    rounding leaves it at 0 or near it."""
    for module in modules:
        grads = {pname: p.grad for pname, p in module.named_parameters()}
        for pname, grad in grads.items():
            assert grad is not None, pname
            if pname.endswith("k_conv.bias"):
                scale = grads[pname.replace("k_conv", "q_conv")].abs().max()
                assert grad.abs().max() <= 1e-3 * scale + 1e-12, pname
            else:
                assert grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list_models())
def test_registry_models_forward_backward(name: str) -> None:
    G, D, video, logits = _forward_backward(name, **tiny_config(name))
    assert video.shape[:3] == (2, 3, G.default_frames) and video.shape[3] == video.shape[4]
    assert torch.isfinite(video).all() and video.abs().max() <= 1
    assert set(logits) == set(D.heads)
    for head, value in logits.items():
        assert value.shape == (2,), head
        assert torch.isfinite(value).all()
    _assert_every_parameter_has_a_gradient(G, D)


VARIANTS = [
    *({"conv_type": c, "fsa_level": f} for c, f in itertools.product(["1p2d", "2p1d", "3d"], [None, 3])),
    *({"fsa_level": f} for f in (0, 1, 2, 4)),
    {"use_spatial": False},
    {"use_temporal": False},
    {"use_spatial": False, "use_temporal": False},
    {"use_spatial": False, "use_temporal": False, "fsa_level": None},
    {"num_classes": 3},
    {"num_classes": 3, "use_temporal": False},
    {"num_classes": 3, "video_d": "3d"},
    {"num_classes": 3, "d_class": "concat"},
    {"num_classes": 3, "video_d": "3d", "d_class": "concat"},
    {"video_d": "3d"},
    {"resolution": 32},
    {"resolution": 32, "video_d": "3d"},
    {"resolution": 128, "fsa_level": 2},
    {"fsa_layout": "reference"},
    {"init": "dcgan"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()))
def test_g3an_variants(variant: dict, tiny_g3an: dict) -> None:
    batch = 1 if variant.get("fsa_level") == 4 else 2  # 4096 x 4096 attention per frame: keep it small
    G, D, video, logits = _forward_backward("g3an", batch=batch, **{**tiny_g3an, **variant})
    res = variant.get("resolution", 64)
    assert video.shape == (batch, 3, 16, res, res)
    assert torch.isfinite(video).all()
    assert logits["video"].shape == (batch,) and logits["image"].shape == (batch,)
    _assert_every_parameter_has_a_gradient(G, D)


@pytest.mark.parametrize("t_z,frames", [(1, 16), (2, 20), (3, 24), (9, 48)])
def test_longer_videos_from_longer_motion_code(t_z: int, frames: int, tiny_g3an: dict) -> None:
    G = create_generator("g3an", **{k: v for k, v in tiny_g3an.items() if k != "ch_d"}).eval()
    assert G.latent_shapes(frames)["z_m"] == (4, t_z)
    with torch.no_grad():
        video = G(torch.randn(2, 16), torch.randn(2, 4, t_z))
    assert video.shape == (2, 3, frames, 64, 64)
    with pytest.raises(ValueError, match="16 \\+ 4k"):
        G.latent_shapes(18)


def test_stream_ablations_remove_what_they_say(tiny_g3an: dict) -> None:
    base = create_generator("g3an", **tiny_g3an)
    no_s = create_generator("g3an", **tiny_g3an, use_spatial=False)
    no_t = create_generator("g3an", **tiny_g3an, use_temporal=False)
    assert all(level.conv_s is None for level in no_s.levels) and all(level.conv_t is not None for level in no_s.levels)
    assert all(level.conv_t is None for level in no_t.levels) and all(level.conv_s is not None for level in no_t.levels)
    # without G_S the fused video tensor is not widened, so G_V's inputs after level 0 halve
    assert no_s.levels[1].conv_v[0].in_channels * 2 == base.levels[1].conv_v[0].in_channels
    # without G_T, z_m reaches the video only through G_V: two videos of one z_a with two z_m still differ
    # (train mode: at initialisation the untrained BatchNorm running statistics shrink every signal)
    with torch.no_grad():
        video = no_t(torch.randn(1, 16).expand(2, -1), torch.randn(2, 4))
    assert (video[0] - video[1]).abs().max() > 1e-2


def test_conditional_class_changes_the_video(tiny_g3an: dict) -> None:
    G = create_generator("g3an", **tiny_g3an, num_classes=4).eval()
    assert G.levels[0].conv_t[0].in_channels == 4 + 4  # z_m (4) + one-hot (4) at G_T's input
    z_a, z_m = torch.randn(1, 16).expand(4, -1), torch.randn(1, 4).expand(4, -1)
    with torch.no_grad():
        video = G(z_a, z_m, y=torch.arange(4))
    assert (video[0] - video[1]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="conditional"):
        G(z_a, z_m)
    with pytest.raises(ValueError, match="\\[0, 3\\]"):
        G(z_a, z_m, y=torch.tensor([0, 1, 2, 7]))


@pytest.mark.parametrize("video_d", ["2p1d", "3d"])
def test_projection_discriminator_is_the_logit_plus_the_class_inner_product(video_d: str) -> None:
    D = create_discriminator("g3an", ch_d=4, resolution=32, num_classes=3, video_d=video_d).eval()
    video = torch.randn(2, 3, 16, 32, 32)
    for stack, x in ((D.video, video), (D.image, video[:, :, 0])):
        assert stack.d_class == "projection" and stack.embed.weight.shape[0] == 3
        with torch.no_grad():
            h = stack.net[:-1](x)
            plain = stack.net[-1](h).flatten()
            for k in range(3):
                y = torch.full((2,), k)
                want = plain + (stack.embed(y) * h.flatten(2).sum(2)).sum(1)
                torch.testing.assert_close(stack(x, y), want)
            zeros, ones = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
            assert (stack(x, zeros) - stack(x, ones)).abs().max() > 0
        with pytest.raises(ValueError, match="\\[0, 2\\]"):
            stack(x, torch.tensor([0, 3]))
    concat = create_discriminator("g3an", ch_d=4, resolution=32, num_classes=3, d_class="concat")
    assert not hasattr(concat.video, "embed") and concat.image.net[2].in_channels == 4 + 3
    with pytest.raises(ValueError, match="d_class must be one of projection, concat"):
        make_config("g3an", num_classes=3, d_class="film")


def test_projection_discriminator_learns_which_class_a_clip_shows() -> None:
    # Three classes of clips told apart by colour; D_I learns, from (clip, right label) = 1 and
    # (clip, wrong label) = 0, to give the highest logit to the right label of clips it never saw.
    torch.manual_seed(0)
    D = create_discriminator("g3an", ch_d=4, resolution=32, num_classes=3)
    colours = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])

    def frames(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(3, (n,))
        return (colours[y][:, :, None, None] * 0.5 + 0.5 * torch.randn(n, 3, 32, 32)).clamp(-1, 1), y

    opt = torch.optim.Adam(D.image.parameters(), 2e-3, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    for _ in range(60):
        x, y = frames(24)
        right, wrong = D.image(x, y), D.image(x, (y + torch.randint(1, 3, y.shape)) % 3)
        loss = bce(right, torch.ones_like(right)) + bce(wrong, torch.zeros_like(wrong))
        opt.zero_grad()
        loss.backward()
        opt.step()
    D.eval()
    x, y = frames(60)
    with torch.no_grad():
        scores = torch.stack([D.image(x, torch.full_like(y, k)) for k in range(3)], 1)
    assert (scores.argmax(1) == y).float().mean() > 0.9


def test_paper_parameter_counts_equal_the_reference() -> None:
    G = create_generator("g3an")
    assert _count(G) == 23_090_437
    assert _count(create_generator("g3an", fsa_level=None)) == 22_925_955
    assert _count(create_generator("g3an", conv_type="2p1d")) == 27_219_205
    assert _count(create_generator("g3an", conv_type="3d")) == 65_975_237
    D = create_discriminator("g3an")
    assert _count(D.video) == 8_347_009
    assert _count(D.image) == 2_764_737
    per_level = [(_count(lv.conv_s), _count(lv.conv_t), _count(lv.conv_v)) for lv in G.levels]
    assert per_level == [
        (1_050_112, 22_016, 4_480_000),
        (4_195_840, 1_050_112, 6_294_528),
        (2_097_920, 525_056, 2_098_688),
        (524_672, 33_152, 328_448),
        (131_264, 8_384, 82_304),
    ]
    assert sum(s for s, _, _ in per_level) == 7_999_808
    assert sum(t for _, t, _ in per_level) == 1_638_720
    assert sum(v for _, _, v in per_level) == 13_283_968
    assert _count(G.to_rgb) == 3_459
    assert _count(G.fsa) == 164_482 and _count(G.fsa.tsa) == 82_241


def test_paper_intermediate_shapes() -> None:
    G = create_generator("g3an").eval()
    shapes = []
    for level in G.levels[:-1]:  # (h_s, fused h_v, h_t) out of each level
        level.register_forward_hook(lambda m, i, o: shapes.append([tuple(t.shape) for t in o]))
    last = G.levels[-1]  # its fused tensor is never built (to_rgb takes h_s and h_v apart): its streams
    streams = []
    for conv in (last.conv_v, last.conv_t, last.conv_s):  # the order streams() runs them
        conv.register_forward_hook(lambda m, i, o: streams.append(tuple(o.shape)))
    with torch.no_grad():
        G(torch.randn(1, 128), torch.randn(1, 10))
    assert shapes == [
        [(1, 512, 1, 4, 4), (1, 1024, 4, 4, 4), (1, 512, 4, 1, 1)],
        [(1, 512, 1, 8, 8), (1, 1024, 8, 8, 8), (1, 512, 8, 1, 1)],
        [(1, 256, 1, 16, 16), (1, 512, 16, 16, 16), (1, 256, 16, 1, 1)],
        [(1, 128, 1, 32, 32), (1, 256, 16, 32, 32), (1, 128, 16, 1, 1)],
    ]
    assert streams == [(1, 64, 16, 64, 64), (1, 64, 16, 1, 1), (1, 64, 1, 64, 64)]
    assert G.to_rgb[0].in_channels == 128  # the fused (1, 128, 16, 64, 64) of the spec


def test_init_schemes() -> None:
    ref = create_generator("g3an", init="reference")
    dcgan = create_generator("g3an", init="dcgan")
    w_ref = ref.levels[1].conv_t[0].parametrizations.weight.original
    w_dc = dcgan.levels[1].conv_t[0].parametrizations.weight.original
    # the reference's init loop misses transposed convs: PyTorch's default init, std 0.0128 for this layer
    assert 0.011 < w_ref.std().item() < 0.0145
    assert 0.0195 < w_dc.std().item() < 0.0205
    assert 0.0195 < ref.fsa.tsa.v_conv.parametrizations.weight.original.std().item() < 0.0205
    bn = ref.levels[1].conv_s[1]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0


def test_bad_latents_and_options_get_clear_errors(tiny_g3an: dict) -> None:
    G = create_generator("g3an", **tiny_g3an)
    with pytest.raises(ShapeError, match="z_a must have shape"):
        G(torch.randn(2, 15), torch.randn(2, 4))
    with pytest.raises(ShapeError, match="z_m must have shape"):
        G(torch.randn(2, 16), torch.randn(3, 4))
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(2, 16), torch.randn(2, 4), y=torch.tensor([0, 1]))
    D = create_discriminator("g3an", **tiny_g3an)
    with pytest.raises(ShapeError, match="D_V input"):
        D(torch.randn(2, 3, 12, 64, 64))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_generator("nope")
    with pytest.raises(ValueError, match="unknown option\\(s\\) chanels"):
        make_config("g3an", chanels=3)
    for bad, match in [
        ({"conv_type": "4d"}, "conv_type"),
        ({"fsa_level": 5}, "fsa_level"),
        ({"resolution": 48}, "resolution"),
        ({"num_frames": 18}, "num_frames"),
        ({"fsa_layout": "mine"}, "fsa_layout"),
        ({"ch": 0}, "ch"),
        ({"video_d": "2d"}, "video_d"),
        ({"init": "xavier"}, "init"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_config("g3an", **bad)


def test_generator_latents_are_device_independent_and_seeded(tiny_g3an: dict) -> None:
    G = create_generator("g3an", **tiny_g3an)
    a = G.sample_latents(3, generator=torch.Generator().manual_seed(5))
    b = G.sample_latents(3, generator=torch.Generator().manual_seed(5))
    assert a.keys() == b.keys() == {"z_a", "z_m"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert isinstance(G, G3ANGenerator) and G.appearance_latent == "z_a" and G.motion_latent == "z_m"


_FRAME_ARGS = (6, 4, (1, 4, 4), (1, 2, 2), (0, 1, 1))


@pytest.mark.parametrize(
    ("ours", "theirs", "args"),
    [
        (FrameConv3d, torch.nn.Conv3d, _FRAME_ARGS),
        (FrameConvTranspose3d, torch.nn.ConvTranspose3d, _FRAME_ARGS),
        (LateBiasConvTranspose3d, torch.nn.ConvTranspose3d, (6, 4, (4, 1, 1), (2, 1, 1), (1, 0, 0))),
    ],
)
@pytest.mark.parametrize(("frames", "channels_last"), [(1, False), (3, False), (3, True)])
def test_our_convs_equal_pytorchs(ours: type, theirs: type, args: tuple, frames: int, channels_last: bool) -> None:
    """FrameConv3d / FrameConvTranspose3d (a (1, k, k) kernel run as 2-D over frames) and
    LateBiasConvTranspose3d (the bias added after the convolution) give PyTorch's layer's output and
    gradients from the same parameters; the frame layers keep the input's layout."""
    torch.manual_seed(0)
    layer, plain = ours(*args).double(), theirs(*args).double()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 6, frames, 8, 8, dtype=torch.float64)
    if channels_last:
        layer, plain, x = channels_last_layout(layer), channels_last_layout(plain), channels_last_layout(x)
    outs = []
    for m in (layer, plain):
        xr = x.clone().requires_grad_()
        y = m(xr)
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y))
        outs.append((y, xr.grad, m.weight.grad, m.bias.grad))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if ours is not LateBiasConvTranspose3d:
        layout = torch.channels_last_3d if channels_last else torch.contiguous_format
        assert outs[0][0].is_contiguous(memory_format=layout)


@pytest.mark.parametrize("channels_last", [False, True])
def test_frame_conv_of_a_concatenation_without_building_it(channels_last: bool) -> None:
    """FrameConv3d.forward_concat(front, back) equals the layer on [front over every frame, back], in value
    and in every gradient (front's summed over the frames, as expand's backward does)."""
    torch.manual_seed(0)
    conv = FrameConv3d(5, 3, (1, 3, 3), 1, (0, 1, 1)).double()
    front = torch.randn(2, 2, 1, 6, 6, dtype=torch.float64)
    back = torch.randn(2, 3, 4, 6, 6, dtype=torch.float64)
    if channels_last:
        conv, front, back = (channels_last_layout(m) for m in (conv, front, back))
    outs = []
    for split in (True, False):
        conv.zero_grad()
        f, b = front.clone().requires_grad_(), back.clone().requires_grad_()
        y = conv.forward_concat(f, b) if split else conv(torch.cat([f.expand(-1, -1, 4, -1, -1), b], 1))
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y))
        outs.append((y, f.grad, b.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="input channels"):
        conv.forward_concat(front, back[:, :2])
    with pytest.raises(ValueError, match="front"):
        conv.forward_concat(back, front)


@pytest.mark.parametrize(("fsa_level", "use_spatial"), [(None, True), (2, True), (4, True), (None, False)])
def test_g3an_output_is_its_levels_fsa_and_to_rgb_in_turn(
    fsa_level: int | None, use_spatial: bool, tiny_g3an: dict
) -> None:
    """The generator's forward (which never builds the last level's fused tensor unless F-SA follows that
    level) gives the plain composition: every G3 level with its fusion, F-SA, then to_rgb on the fused
    tensor."""
    G = create_generator("g3an", **{**tiny_g3an, "fsa_level": fsa_level, "use_spatial": use_spatial}).double().eval()
    torch.manual_seed(1)
    for p in G.parameters():  # F-SA's gamma starts at 0; make every piece count
        p.data.normal_(0, 0.3)
    lat = {k: v.double() for k, v in G.sample_latents(2, generator=torch.Generator().manual_seed(2)).items()}
    h_s = lat["z_a"][:, :, None, None, None]
    h_t = lat["z_m"][:, :, :, None, None]
    h_v = torch.cat([h_s.expand(-1, -1, h_t.shape[2], -1, -1), h_t], 1)
    with torch.no_grad():
        for i, level in enumerate(G.levels):
            h_s, h_v, h_t = level(h_s, h_v, h_t)
            if i == fsa_level:
                h_v = G.fsa(h_v)
        torch.testing.assert_close(G(**lat), G.to_rgb(h_v), rtol=1e-10, atol=1e-12)


def test_frame_convs_refuse_temporal_kernels() -> None:
    with pytest.raises(ValueError, match="one-frame kernel"):
        FrameConv3d(4, 4, (3, 4, 4))
    with pytest.raises(ValueError, match="one-frame kernel"):
        FrameConvTranspose3d(4, 4, (1, 4, 4), (2, 2, 2))
    with pytest.raises(ValueError, match="zeros"):
        FrameConv3d(4, 4, (1, 3, 3), padding=(0, 1, 1), padding_mode="reflect")


def test_bf16_weight_gradient_of_the_last_spatial_stream_matches_float32() -> None:
    """The shape that broke bf16 training of the paper configuration: G3AN's last-level spatial stream
    (128 -> 64 channels on a 1 x 32 x 32 input, batch 8). On a one-thread AMX CPU, torch 2.13's
    ``ConvTranspose3d`` returned NaN in an eighth of this weight gradient; the frame-wise layer must
    match float32 to bf16 rounding on every machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        layer = channels_last_layout(FrameConvTranspose3d(128, 64, (1, 4, 4), (1, 2, 2), (0, 1, 1)))
        x = channels_last_layout(torch.randn(8, 128, 1, 32, 32)).bfloat16().float()
        grads = []
        for precision in ("bf16", "fp32"):
            layer.zero_grad()
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                y = layer(x)
            y.float().backward(
                torch.ones_like(y, dtype=torch.float32).bernoulli_(0.5, generator=torch.Generator().manual_seed(1))
            )
            grads.append(layer.weight.grad.clone())
    finally:
        torch.set_num_threads(threads)
    low, ref = grads
    assert torch.isfinite(low).all()
    assert (low - ref).abs().max() <= 2e-2 * ref.abs().max()
