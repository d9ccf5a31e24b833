"""Check: every convolution of a model computed in bf16 against float32, at the shapes a training step uses.

Runs one training step of the model (bf16 autocast, the trainer's layout) to record each convolution's
input, weight and bias; then, for each layer, runs the layer itself in bf16 (its own forward, under
autocast) and in float32 on the same bf16-rounded values, with the same random output gradient, and
prints the largest error of the output, the weight gradient and the input gradient relative to the largest
float32 value, and the count of non-finite entries. bf16 rounding gives errors of a few 1e-3; a layer
is flagged when an error exceeds 5e-2 or an entry is not finite. Exits with status 1 if a layer is.

oneDNN's kernels differ by CPU (AMX or not) and by thread count, so run it on the machine and with the
threads that train:

    python benchmarks/check_bf16_convs.py                                  # G3AN, paper configuration
    python benchmarks/check_bf16_convs.py --threads 1
    python benchmarks/check_bf16_convs.py --model g3an --model-config '{"ch": 16}' --batch 8
    python benchmarks/check_bf16_convs.py --model mocogan
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from unittest import mock

import torch
from torch import nn
from torch.nn.utils import parametrize

from bench_train import bench_trainer  # benchmarks/ is the script's directory
from g3an import machine
from g3an.models.blocks import FrameConv3d
from g3an.train.loop import Trainer, autocast_context

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
TOLERANCE = 5e-2


def record_layers(trainer: Trainer) -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``{name: (layer, input, weight, bias)}`` of each convolution's first call in a training step."""
    seen: dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
    handles = []
    for net, tag in ((trainer.G, "G"), (trainer.D, "D")):
        for name, m in net.named_modules():
            if isinstance(m, CONVS):

                def hook(m: nn.Module, args: tuple, key: str = f"{tag}.{name}") -> None:
                    if key not in seen and torch.is_grad_enabled():
                        bias = None if m.bias is None else m.bias.detach().clone()
                        seen[key] = (m, args[0].detach().clone(), m.weight.detach().clone(), bias)

                handles.append(m.register_forward_pre_hook(hook))
    # G3AN's to_rgb takes the fused tensor's two parts apart (FrameConv3d.forward_concat); for this step it
    # takes the fused tensor itself, so the layer is recorded at its full input
    with mock.patch.object(FrameConv3d, "forward_concat", _through_concatenation):
        trainer.train_step(next(trainer.batches()))
    for h in handles:
        h.remove()
    return seen


def _through_concatenation(layer: FrameConv3d, front: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    return layer(torch.cat([front.expand(-1, -1, back.shape[2], -1, -1), back], 1))


def plain_copy(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A float32 layer of ``layer``'s class and geometry, without spectral norm, holding ``weight`` and ``bias``."""
    cls = type(layer).__bases__[0] if parametrize.is_parametrized(layer) else type(layer)
    kw = {key: getattr(layer, key) for key in ("stride", "padding", "dilation", "groups", "padding_mode")}
    if layer.transposed:
        kw["output_padding"] = layer.output_padding
    m = cls(layer.in_channels, layer.out_channels, layer.kernel_size, bias=bias is not None, **kw)
    with torch.no_grad():
        m.weight = nn.Parameter(weight.float())
        if bias is not None:
            m.bias = nn.Parameter(bias.float())
    return m


def errors(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> dict[str, list]:
    """``{"out" | "wgrad" | "xgrad": [non-finite entries, largest error / largest float32 value]}``."""
    xb = x.to(torch.bfloat16)
    weight = weight.to(torch.bfloat16)
    bias = None if bias is None else bias.to(torch.bfloat16)
    results = {}
    for precision in ("bf16", "fp32"):
        m = plain_copy(layer, weight, bias)
        xr = (xb if precision == "bf16" else xb.float()).clone().requires_grad_()
        with autocast_context(precision, torch.device("cpu")):
            y = m(xr)
        if precision == "bf16":
            grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(0)).to(y.dtype)
        y.backward(grad.to(y.dtype))
        results[precision] = (y.detach().float(), m.weight.grad.float(), xr.grad.float())
    out = {}
    for key, low, ref in zip(("out", "wgrad", "xgrad"), results["bf16"], results["fp32"], strict=True):
        finite = torch.isfinite(low)
        err = (low - ref).abs()[finite].max() if finite.any() else torch.tensor(float("nan"))
        out[key] = [int((~finite).sum()), round(float(err / ref.abs().max().clamp_min(1e-30)), 5)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="g3an")
    p.add_argument("--model-config", default="{}", help="JSON model options (default: the registry's)")
    p.add_argument("--batch", type=int, default=None, help="videos per step (default: the model's recipe)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    trainer = bench_trainer("/tmp/g3an-check-bf16", {
        "model": args.model, "model_config": json.loads(args.model_config), "precision": "bf16",
        **({"batch_size": args.batch} if args.batch else {})})  # fmt: skip
    flagged = 0
    for name, (layer, x, weight, bias) in record_layers(trainer).items():
        err = errors(layer, x, weight, bias)
        bad = any(n or not e <= TOLERANCE for n, e in err.values())
        flagged += bad
        print(json.dumps({"layer": name, "type": type(layer).__name__, "input": list(x.shape), **err,
                          "flagged": bad}), flush=True)  # fmt: skip
    cfg = trainer.cfg
    print(json.dumps({"model": args.model, "config": cfg.model_config, "batch": cfg.batch_size,
                      "threads": args.threads, "machine": machine.describe(), "flagged_layers": flagged}))  # fmt: skip
    sys.exit(1 if flagged else 0)


if __name__ == "__main__":
    main()
