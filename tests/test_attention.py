"""F-SA: identity at gamma = 0, agreement with a direct per-location computation, the reference layout."""

from __future__ import annotations

import pytest
import torch

from g3an.models import attention
from g3an.models.attention import (
    FSA,
    AxisSelfAttention,
    attend_chunked,
    attend_formula,
    attend_fused,
    attention_kernel,
)


def _direct(att: AxisSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Attention written out with explicit loops over locations / frames (slow, obviously right)."""
    q, k, v = att.q_conv(x), att.k_conv(x), att.v_conv(x)
    out = torch.zeros_like(x)
    b, c, t, h, w = x.shape
    if att.axis == "time":
        for bi in range(b):
            for i in range(h):
                for j in range(w):
                    scores = q[bi, :, :, i, j].T @ k[bi, :, :, i, j]  # (T, T)
                    out[bi, :, :, i, j] = (torch.softmax(scores, -1) @ v[bi, :, :, i, j].T).T
    else:
        for bi in range(b):
            for ti in range(t):
                qq = q[bi, :, ti].reshape(q.shape[1], -1)
                kk = k[bi, :, ti].reshape(k.shape[1], -1)
                vv = v[bi, :, ti].reshape(c, -1)
                out[bi, :, ti] = (torch.softmax(qq.T @ kk, -1) @ vv.T).T.reshape(c, h, w)
    return x + att.gamma * out


@pytest.mark.parametrize("axis", ["time", "space"])
def test_attention_matches_direct_computation(axis: str) -> None:
    att = AxisSelfAttention(16, axis).eval()
    att.gamma.data.fill_(0.8)
    x = torch.randn(2, 16, 5, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(att(x), _direct(att, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["correct", "reference"])
def test_fsa_is_identity_at_gamma_zero(layout: str) -> None:
    fsa = FSA(16, layout).eval()
    x = torch.randn(2, 16, 4, 3, 3)
    with torch.no_grad():
        assert torch.equal(fsa(x), x)


def test_reference_layout_scrambles_axes_as_the_reference() -> None:
    # The reference reinterprets a (b, h, w, t, c) buffer as (b, h, w, c, t): reproduce by hand for TSA.
    att = AxisSelfAttention(8, "time", layout="reference").eval()
    att.gamma.data.fill_(1.0)
    correct = AxisSelfAttention(8, "time", layout="correct").eval()
    correct.load_state_dict(att.state_dict())
    x = torch.randn(1, 8, 4, 2, 3)
    with torch.no_grad():
        attended = correct(x) - x  # (b, c, t, h, w), laid out correctly
        buffer = attended.permute(0, 3, 4, 2, 1).contiguous()  # (b, h, w, t, c) as the reference's bmm output
        expected = x + buffer.view(1, 2, 3, 8, 4).permute(0, 3, 4, 1, 2)
        torch.testing.assert_close(att(x), expected)
        assert not torch.allclose(att(x), correct(x))


# chunked: every sequence; fused: sequences no longer than the 16 channels by the formula, longer ones fused
KERNEL_CASES = [("time", (2, 16, 5, 4, 3)), ("space", (2, 16, 5, 4, 3)), ("time", (1, 16, 20, 2, 3)),
                ("space", (2, 16, 3, 4, 6))]  # fmt: skip


@pytest.mark.parametrize("kernel", ["fused", "chunked"])
@pytest.mark.parametrize(("axis", "shape"), KERNEL_CASES)
def test_gradients_match_direct_computation(axis: str, shape: tuple[int, ...], kernel: str, monkeypatch) -> None:
    monkeypatch.setenv("G3AN_ATTENTION", kernel)
    monkeypatch.setattr(attention, "_CHUNK_SCORES", 24 * 24)  # chunks of one sequence at 24 positions
    calls = []
    for name in ("attend_formula", "attend_fused", "attend_chunked"):
        fn = getattr(attention, name)
        monkeypatch.setattr(attention, name, lambda *a, _fn=fn, _name=name: calls.append(_name) or _fn(*a))
    att = AxisSelfAttention(16, axis).eval()  # eval: no power iteration between the two runs; grad still on
    att.gamma.data.fill_(0.7)
    x = torch.randn(*shape, requires_grad=True)

    def grads(fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
        att.zero_grad()
        x.grad = None
        out = fn(x)
        out.square().sum().backward()
        return out.detach(), [x.grad.clone()] + [p.grad.clone() for p in att.parameters()]

    out, ours = grads(att)
    length = shape[2] if axis == "time" else shape[3] * shape[4]
    assert calls == ["attend_chunked" if kernel == "chunked" else "attend_formula" if length <= 16 else "attend_fused"]
    direct_out, direct = grads(lambda inp: _direct(att, inp))
    torch.testing.assert_close(out, direct_out, rtol=1e-5, atol=1e-5)
    for a, b in zip(ours, direct):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", ["time", "space"])
def test_channels_last_input_gives_the_same_output_in_its_layout(axis: str) -> None:
    att = AxisSelfAttention(16, axis).eval()
    att.gamma.data.fill_(1.0)
    x = torch.randn(2, 16, 5, 4, 3)
    x_cl = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        out, out_cl = att(x), att(x_cl)
    torch.testing.assert_close(out_cl, out, rtol=1e-6, atol=1e-6)
    assert out.is_contiguous() and out_cl.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("chunk_scores", [1 << 21, 2 * 40 * 40, 40 * 40])  # 3 sequences: 1 chunk, 2 + 1, 1 + 1 + 1
def test_the_formula_and_the_attention_kernels_agree(chunk_scores: int, monkeypatch) -> None:
    monkeypatch.setattr(attention, "_CHUNK_SCORES", chunk_scores)
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(3, 40, 4, generator=gen, requires_grad=True) for _ in range(2))
    v = torch.randn(3, 40, 32, generator=gen, requires_grad=True)
    grad = torch.randn(3, 40, 32, generator=gen)
    results = []
    for fn in (attend_formula, attend_fused, attend_chunked):
        out = fn(q, k, v)
        results.append([out, *torch.autograd.grad(out, (q, k, v), grad)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_kernel_scales_by_gamma_inside_and_gives_gammas_gradient(dtype: torch.dtype, monkeypatch) -> None:
    monkeypatch.setattr(attention, "_CHUNK_SCORES", 2 * 24 * 24)  # 3 sequences: chunks of 2 + 1
    gen = torch.Generator().manual_seed(2)
    inputs = [torch.randn(3, 24, 4, generator=gen), torch.randn(3, 24, 4, generator=gen),
              torch.randn(3, 24, 16, generator=gen), torch.tensor([0.7])]  # fmt: skip
    grad = torch.randn(3, 24, 16, generator=gen)

    def run(fn, dtype: torch.dtype) -> list[torch.Tensor]:
        q, k, v = (x.detach().to(dtype).requires_grad_() for x in inputs[:3])
        gamma = inputs[3].detach().clone().requires_grad_()  # a float32 parameter
        out = fn(q, k, v, gamma)
        return [out.detach(), *torch.autograd.grad(out, (q, k, v, gamma), grad.to(dtype))]

    exact = run(lambda q, k, v, gamma: attend_formula(q, k, v) * gamma, torch.float64)
    ours = run(attend_chunked, dtype)
    assert ours[4].dtype == torch.float32  # gamma's own dtype
    tol = 1e-6 if dtype == torch.float32 else 2e-2
    for name, a, b in zip(("out", "dq", "dk", "dv", "dgamma"), ours, exact):
        err = float((a.double() - b).norm() / b.norm())
        assert err < tol, f"{name}: relative error {err:.2e}"
    # gamma = 0 (F-SA's start): the output is zero, gamma's gradient is not
    q, k, v = (x.detach().clone().requires_grad_() for x in inputs[:3])
    gamma = torch.zeros(1, requires_grad=True)
    out = attend_chunked(q, k, v, gamma)
    assert not out.any()
    out.backward(grad)
    torch.testing.assert_close(gamma.grad, (attend_formula(q, k, v) * grad).sum().reshape(1).detach())
    assert not v.grad.any() and not q.grad.any()


def test_chunked_kernel_in_bf16_is_as_close_to_float64_as_the_fused_kernel() -> None:
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(4, 64, 8, generator=gen) * 2, torch.randn(4, 64, 8, generator=gen) * 2,
              torch.randn(4, 64, 64, generator=gen)]  # fmt: skip
    grad = torch.randn(4, 64, 64, generator=gen)

    def run(fn, dtype: torch.dtype) -> list[torch.Tensor]:
        q, k, v = (x.to(dtype).requires_grad_() for x in inputs)
        out = fn(q, k, v)
        return [out.detach(), *torch.autograd.grad(out, (q, k, v), grad.to(dtype))]

    ref = run(attend_formula, torch.float64)
    for fused, chunked, exact in zip(run(attend_fused, torch.bfloat16), run(attend_chunked, torch.bfloat16), ref):
        assert chunked.dtype == torch.bfloat16
        err = [float((x.double() - exact).norm() / exact.norm()) for x in (fused, chunked)]
        assert err[1] < max(1.5 * err[0], 1e-2), f"chunked {err[1]:.4f} against fused {err[0]:.4f}"


def test_attention_kernel_choice(monkeypatch) -> None:
    monkeypatch.setenv("G3AN_ATTENTION", "chunked")
    assert attention_kernel(torch.device("cpu")) == "chunked"
    monkeypatch.setenv("G3AN_ATTENTION", "fused")
    assert attention_kernel(torch.device("cpu")) == "fused"
    monkeypatch.setenv("G3AN_ATTENTION", "auto")
    assert attention_kernel(torch.device("cuda")) == "fused"  # no GPU needed: only the device type is read
    assert attention_kernel(torch.device("cpu")) == "chunked"
    monkeypatch.setenv("G3AN_ATTENTION", "flash")
    with pytest.raises(ValueError, match="G3AN_ATTENTION"):
        attention_kernel(torch.device("cpu"))


@pytest.mark.parametrize("axis", ["time", "space"])
def test_bf16_input_under_autocast_gives_bf16_output_in_its_layout(axis: str) -> None:
    att = AxisSelfAttention(16, axis).eval()
    att.gamma.data.fill_(0.5)
    x = torch.randn(2, 16, 5, 4, 3).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        ref = att(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = att(x.bfloat16())
    assert low.dtype == torch.bfloat16  # as the convolutions around it: no float32 copy of the activations
    assert low.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(low.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("channels", [64, 32])  # 8 x 8 positions: the formula at 64 channels, fused at 32
def test_bf16_autocast_attention_is_close_to_float32(channels: int) -> None:
    att = AxisSelfAttention(channels, "space").eval()
    att.gamma.data.fill_(1.0)
    x = torch.randn(2, channels, 2, 8, 8)
    with torch.no_grad():
        ref = att(x) - x
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = att(x) - x
    assert low.dtype == torch.float32  # the residual is added in x's precision
    err = (low - ref).abs().max() / ref.abs().max()
    assert err < 0.03, f"bf16 attention differs from float32 by {err:.3f} of its range"
