"""Multi-process training under ``torchrun``, on PyTorch's own engine (torch.distributed + DDP).

When ``WORLD_SIZE`` > 1 every process runs the same command: the process group is joined
(gloo on CPU, nccl on CUDA), each global batch is split between the ranks, models are wrapped
in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged), embeddings are
gathered *with gradients* so each rank's contrastive loss sees the whole global batch as
negatives, and work over all items (embedding for the diffusion condition, generating the
bank of positives) is done shard-wise and gathered. Only rank 0 writes outputs. With one
process every function here is the identity, so single-process results do not change.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from ._errors import InputError

logger = logging.getLogger("diffaug_bio")

_NO_BUFFER_SYNC = (
    "forward_sync_buffers"
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
    else "broadcast_buffers"
)
"""DDP's switch that stops buffers being broadcast from rank 0 before every forward pass (a
collective each); torch 2.13 renamed it (the new one still syncs them once, at wrapping)."""


def requested() -> bool:
    """True when launched by torchrun (or any launcher) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group once; return this rank's device (``cuda:LOCAL_RANK`` on GPUs)."""
    if not requested():
        return device
    if device.type == "mps":  # gloo moves CPU tensors only, nccl CUDA ones
        raise InputError(
            "torchrun trains on CUDA GPUs (nccl) or CPUs (gloo), not on Apple MPS: "
            "pass --device cpu, or run without torchrun to use MPS"
        )
    if device.type == "cuda":
        # a launcher may show each process only its own GPU(s), numbered from 0
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        logger.info("rank %d of %d joined the process group (%s)", rank(), world_size(),
                    dist.get_backend())  # fmt: skip
    return device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank; before the process group exists (a command that trains nothing,
    run under torchrun), the launcher's ``RANK``."""
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0, the one process that logs results and writes files."""
    return rank() == 0


def wrap(module: nn.Module) -> nn.Module:
    """``module`` in DistributedDataParallel when several processes train, else itself."""
    if world_size() == 1:
        return module
    if dist.get_backend() == "nccl":
        # BatchNorm over the global batch: per-GPU statistics would let a positive pair (both
        # views on one GPU) be told apart from negatives gathered from the others by their
        # normalisation, and would leave each GPU with its own running statistics. SyncBatchNorm
        # works on GPUs only, so under gloo (CPU) the statistics stay per process.
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return nn.parallel.DistributedDataParallel(module, **{_NO_BUFFER_SYNC: False})


def shard(index: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch (every rank holds the same ``index``)."""
    if world_size() == 1:
        return index
    return index[rank() :: world_size()]


def global_batches(
    n: int, batch_size: int, generator: torch.Generator, merge_ragged: bool = False
) -> list[torch.Tensor]:
    """One epoch's batches of item numbers, the same on every rank (``generator`` is kept in
    step across ranks); each rank then takes its :func:`shard`. With several ranks, the
    epoch drops ``n mod W`` random items and batch sizes are multiples of W, so shards are
    equal (DistributedSampler's ``drop_last``). ``merge_ragged`` joins a short last batch to
    the one before it (BatchNorm never sees a batch of one)."""
    world = world_size()
    order = torch.randperm(n, generator=generator)[: n - n % world]
    size = min(batch_size, len(order))
    size -= size % world
    chunks = list(order.split(size))
    if merge_ragged and len(chunks) > 1 and len(chunks[-1]) < size:
        ragged = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], ragged])
    return chunks


def _communication_device() -> torch.device:
    """nccl moves CUDA tensors only; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _GatherWithGradient(torch.autograd.Function):
    """All ranks' parts concatenated; backward sums every rank's gradient for this rank's
    part (each rank's loss depends on every part) and returns it. The same as
    ``torch.distributed.nn.functional.all_gather``, which torch 2.13 deprecates."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        gradient = gradient.contiguous()
        dist.all_reduce(gradient)
        return gradient.chunk(world_size())[rank()]


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' equal-sized ``tensor`` concatenated in rank order; when it needs a
    gradient, the gradient flows back to each rank's own part (:class:`_GatherWithGradient`).
    The identity with one process."""
    if world_size() == 1:
        return tensor
    if tensor.requires_grad:
        return _GatherWithGradient.apply(tensor)
    moved = tensor.to(_communication_device())
    parts = [torch.empty_like(moved) for _ in range(world_size())]
    dist.all_gather(parts, moved)
    return torch.cat(parts).to(tensor.device)


def gather_together(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`gather` of several tensors with the same first dimension in one collective
    (each collective costs a round trip; a contrastive step needs four gathers). They travel
    as float64, which holds float32 values and item numbers below 2**53 exactly."""
    if world_size() == 1:
        return tensors
    widths = [t[0].numel() for t in tensors]
    device = tensors[0].device  # item numbers come from the CPU, embeddings from the GPU
    packed = torch.cat([t.reshape(len(t), -1).to(device, torch.float64) for t in tensors], 1)
    gathered = gather(packed)
    parts = gathered.split(widths, dim=1)
    return tuple(part.reshape(-1, *t.shape[1:]).to(t.dtype) for part, t in zip(parts, tensors))


def interleave(parts: list[torch.Tensor], n: int) -> torch.Tensor:
    """Undo :func:`shard` over all items: rank r's part holds items r, r + W, r + 2W, …"""
    out = torch.empty((n, *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, part in enumerate(parts):
        out[r :: len(parts)] = part[: len(range(r, n, len(parts)))]
    return out


@torch.no_grad()
def map_items(function: Callable[..., torch.Tensor], *items: torch.Tensor) -> torch.Tensor:
    """``function(*items)`` computed shard-wise (rank r takes items r, r + W, …) and gathered,
    so every rank gets the whole result in item order at 1/W of the cost each."""
    if world_size() == 1:
        return function(*items)
    n = len(items[0])
    local = function(*(item[rank() :: world_size()] for item in items))
    longest = -(-n // world_size())
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype)
    padded[: len(local)] = local.cpu()
    return interleave(list(gather(padded).chunk(world_size())), n)


def rank_generator(generator: torch.Generator) -> torch.Generator:
    """A generator for this rank's random draws (views, noise), so ranks do not repeat each
    other; ``generator`` itself — which all ranks keep in step for shared choices like the
    batch order — when there is one process."""
    if world_size() == 1:
        return generator
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    return torch.Generator().manual_seed(seed + 7919 * rank())
