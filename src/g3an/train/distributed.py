"""One distributed code path for 1..N processes, started by ``torchrun`` (rank and world size from the env).

Gradients are all-reduced explicitly after each phase's backward (no DDP wrapper: GAN phases toggle
``requires_grad`` and backpropagate through frozen networks, which is where DDP wrappers surprise people).
BatchNorm statistics are computed over the global batch by :class:`GlobalBatchNorm`, on CPU (gloo) and
GPU (NCCL) alike, so N processes with B/N videos each train like one process with B videos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistEnv",
    "GlobalBatchNorm",
    "all_reduce_grads",
    "broadcast_module",
    "convert_batchnorm",
    "init_distributed",
    "is_distributed",
]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world`` processes, ``local_rank`` on its node, ``device``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present (one GPU per local rank), else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but no CUDA device is available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group described by torchrun's environment, or run as a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistEnv(rank=rank, world=world, local_rank=local_rank, device=dev)


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward is the sum of the upstream gradients (every process uses the sum)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all processes."""
    return _AllReduceSum.apply(tensor)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the batch of every process (any input rank >= 2).

    With one process it is exactly ``F.batch_norm``. With several, the per-channel sum and the sum of
    squared deviations are all-reduced by a differentiable sum (so gradients
    flow through the global statistics as in one process), the biased variance normalises and the
    unbiased one updates the running statistics, as PyTorch's BatchNorm does.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.ndim)]
        shape = (1, c) + (1,) * (x.ndim - 2)
        xf = x.float()
        count = torch.tensor([xf.numel() // c], dtype=torch.float32, device=x.device)
        total = all_reduce_sum(torch.cat([xf.sum(dims), count]))
        n = total[c]
        mean = total[:c] / n
        centred = xf - mean.view(shape)
        var = all_reduce_sum(centred.square().sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm{1,2,3}d`` by :class:`GlobalBatchNorm`, keeping parameters and buffers.

    The state-dict keys are unchanged, so checkpoints move freely between 1 and N processes.
    """
    for name, child in module.named_children():
        is_bn = isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
        if is_bn and not isinstance(child, GlobalBatchNorm):
            c = child
            new = GlobalBatchNorm(c.num_features, c.eps, c.momentum, c.affine, c.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(child.running_mean.device if child.running_mean is not None else child.weight.device)
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module


@torch.no_grad()
def all_reduce_grads(params: list[nn.Parameter]) -> None:
    """Average the gradients of ``params`` over all processes (one flat all-reduce)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters and buffers of rank ``src`` to every process."""
    if not is_distributed():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_scalars(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean of logged scalars over processes (one all-reduce)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))
