"""Multi-process training with torch.distributed, as `torchrun` starts it (one process per GPU or CPU slot).

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous; `setup()` joins the process group (NCCL on
GPUs, gloo on CPUs) and says which device this process uses. Without torchrun (WORLD_SIZE unset or 1) it is a
plain single process and nothing here does anything.

Every process draws the same shuffle and augmentation (same seeded generator) for the *global* batch and
trains on its slice; DistributedDataParallel averages the gradients. Batch normalisation statistics are
computed over the global batch too (`DistributedBatchNorm2d`; torch's SyncBatchNorm refuses CPU tensors),
so N processes follow the same trajectory as one process with the same global batch, up to float rounding.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> DistributedContext:
    """Join the process group torchrun describes in the environment (idempotent); single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown(ctx: DistributedContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


class _SumOverProcesses(torch.autograd.Function):
    """y = Σ over processes of x; its gradient is likewise the sum of every process's output gradient."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class DistributedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batch of every process (sum-reduced, with gradients).

    Parameters and buffers are those of nn.BatchNorm2d, so weights files do not change. Outside training, or
    in a single process, it is exactly nn.BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        # two passes (mean, then squared deviations) as nn.BatchNorm2d does: E[x²] − E[x]² loses float32 digits
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        sums = _SumOverProcesses.apply(torch.cat([x.sum((0, 2, 3)), count]))
        n = sums[-1]
        mean = (sums[:c] / n).view(1, c, 1, 1)
        centred = x - mean
        var = _SumOverProcesses.apply((centred * centred).sum((0, 2, 3))) / n
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach().view(c), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        normalised = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        return normalised * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)


def use_global_batchnorm(model: nn.Module) -> nn.Module:
    """Switch every BatchNorm2d of `model` to DistributedBatchNorm2d in place (same parameters and buffers)."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = DistributedBatchNorm2d
    return model


def local_slice(batch_size: int, ctx: DistributedContext) -> slice:
    """This process's part of a global batch of `batch_size` (which the world size divides)."""
    per = batch_size // ctx.world_size
    return slice(ctx.rank * per, (ctx.rank + 1) * per)


def mean_over_processes(value: float, ctx: DistributedContext) -> float:
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / ctx.world_size)


def parameter_digest(model: nn.Module) -> str:
    """A short hash of every parameter and buffer: equal on all processes while they stay in step."""
    h = hashlib.sha1()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def gather_strings(value: str, ctx: DistributedContext) -> list[str]:
    if not ctx.enabled:
        return [value]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(ctx: DistributedContext) -> None:
    if ctx.enabled:
        dist.barrier()
