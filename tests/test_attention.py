"""F-SA: identity at gamma = 0, agreement with a direct per-location computation, the reference layout."""

from __future__ import annotations

import pytest
import torch

from g3an.models.attention import FSA, AxisSelfAttention


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


@pytest.mark.parametrize("axis", ["time", "space"])
def test_inference_kernel_matches_the_training_kernel(axis: str) -> None:
    att = AxisSelfAttention(64, axis).eval()
    att.gamma.data.fill_(1.0)
    x = torch.randn(2, 64, 6, 5, 7)
    with torch.no_grad():
        fused = att(x)  # heads sharing q and k through the fused kernel
    with torch.enable_grad():
        math = att(x)  # the math kernel
    torch.testing.assert_close(fused, math.detach(), rtol=1e-5, atol=1e-5)


def test_chunked_training_attention_gives_the_same_gradients(monkeypatch) -> None:
    from g3an.models import attention

    att = AxisSelfAttention(16, "space").eval()  # eval: no power iteration between the two runs; grad still on
    att.gamma.data.fill_(0.7)
    x = torch.randn(3, 16, 5, 4, 4, requires_grad=True)  # 15 sequences of length 16

    def grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        att.zero_grad()
        x.grad = None
        out = att(x)
        out.square().sum().backward()
        return out.detach(), [x.grad.clone()] + [p.grad.clone() for p in att.parameters()]

    direct_out, direct = grads()
    monkeypatch.setattr(attention, "CHUNK_SCORES", 4 * 16 * 16)  # chunks of 4 sequences
    chunked_out, chunked = grads()
    torch.testing.assert_close(chunked_out, direct_out)
    for a, b in zip(chunked, direct):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
