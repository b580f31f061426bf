"""Training across processes (torchrun) and stopping on signals.

rank/init/shutdown of the process group, a stop flag all processes agree on, and a gather of
embeddings across processes that keeps the gradient, so that batch-wide objectives (NT-Xent,
similarity distillation) see the whole batch whatever the process count.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import torch
import torch.distributed as dist


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless torch.distributed is initialised.

    Returns
    -------
    rank : int
        This process's rank in the process group (0 for the process that writes files).
    world : int
        How many processes train together.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> str | None:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPUs); return the device.

    Returns
    -------
    str or None
        This process's device ("cuda:LOCAL_RANK", or "cpu" with gloo); None when not launched by
        torchrun (WORLD_SIZE unset or 1), and then no process group is joined.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return "cpu"


def shutdown_distributed() -> None:
    """Leave the process group together: wait for every process (rank 0 may still be writing),
    then close it, so that no process exits while another still talks to it (gloo aborts then)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half.

    A context manager: entering installs the handlers (where it can: not outside the main thread),
    leaving restores the previous ones.

    Attributes
    ----------
    signal : int or None
        The number of the last signal received inside the block; None while none has been.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def any_process(local: bool, world: int, device: torch.device) -> bool:
    """Whether `local` holds in any process, so that all processes act on it together.

    Every process of the group must call it at the same point (a collective all-reduce).

    Parameters
    ----------
    local : bool
        This process's answer.
    world : int
        How many processes train together (`distributed_rank`); 1 returns `local` without
        communicating.
    device : torch.device
        The device of the flag tensor (the process's training device: nccl needs a CUDA tensor).

    Returns
    -------
    bool
        True when `local` is True in at least one process.
    """
    if world == 1:
        return local
    flag = torch.tensor([1.0 if local else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics). DistributedDataParallel
    copies them from rank 0 only at the start of each forward pass, so after the last step each
    process holds its own; without this a teacher would differ from rank 0's saved copy.

    Parameters
    ----------
    module : torch.nn.Module
        The model whose buffers are overwritten in place; every process must call this (a
        collective broadcast of an initialised process group).
    """
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


def stop_requested(local: bool, world: int, device: torch.device) -> bool:
    """Whether any process got a stop signal (all processes must leave the loop together).

    Parameters
    ----------
    local : bool
        Whether this process got one (`StopRequest.signal` is set).
    world : int
        How many processes train together.
    device : torch.device
        The process's training device (`any_process`).

    Returns
    -------
    bool
        True when any process got a stop signal.
    """
    return any_process(local, world, device)


class _GatherRows(torch.autograd.Function):
    """All processes' rows, in rank order; the backward pass sums every process's gradient of
    the gathered tensor and hands each process the rows it contributed."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        sizes = torch.tensor([rows.shape[0]], device=rows.device)
        all_sizes = [torch.zeros_like(sizes) for _ in range(world)]
        dist.all_gather(all_sizes, sizes)
        counts = [int(size.item()) for size in all_sizes]
        padded = rows.new_zeros((max(counts), *rows.shape[1:]))
        padded[: rows.shape[0]] = rows
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        ctx.counts, ctx.rank = counts, dist.get_rank()
        return torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = sum(ctx.counts[: ctx.rank])
        return grad[start : start + ctx.counts[ctx.rank]]


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Every process's `rows` concatenated in rank order, differentiable; `rows` itself when not
    distributed. Each process then computes the whole batch's loss: DistributedDataParallel's
    averaging of the summed gradients gives exactly the single-process gradient.

    Parameters
    ----------
    rows : Tensor of shape (B, ...)
        This process's rows (e.g. its share of a batch's embeddings); processes may hold different
        numbers of rows, but the same trailing shape.

    Returns
    -------
    Tensor of shape (sum of B over processes, ...)
        All processes' rows in rank order; the backward pass hands each process the summed
        gradient of its own rows.
    """
    if distributed_rank()[1] == 1:
        return rows
    return _GatherRows.apply(rows)
