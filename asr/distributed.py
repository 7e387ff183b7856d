"""Data-parallel training across processes: the process group, its device, and its collectives.

``torchrun --nproc_per_node=N -m asr.train ...`` (or ``asr train trainer.devices=N``, which
launches exactly that) starts N copies of the training; torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) says which one each is and
where they meet. NCCL joins CUDA processes, gloo CPU ones. Each process trains on its shard of
every epoch's batches (asr.data.batching), DistributedDataParallel averages the gradients, and
rank 0 alone logs, plots and writes files. Without torchrun's variables (or with
``WORLD_SIZE=1``) nothing here starts a process group, and every collective below returns its
input: a single process runs the plain loop.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asr.errors import UserError

log = logging.getLogger("asr.train")


@dataclass(frozen=True)
class Context:
    """Which process this is among ``world_size`` (rank 0 writes), and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def start(device: torch.device) -> Context:
    """Join the process group torchrun's variables describe; a plain Context without them.

    ``device`` is the configured one (asr.devices.select_device); on CUDA each process takes the
    GPU of its local rank.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device=device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible; start "
                f"at most that many processes a node (--nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=30),  # rank 0's dev pass and saves take a while
            **({"device_id": device} if device.type == "cuda" else {}),
        )
    if rank != 0:  # one log for the run: rank 0's
        logging.getLogger("asr").setLevel(logging.WARNING)
    return Context(rank, world_size, local_rank, device)


def stop(context: Context) -> None:
    """Leave the process group (after every rank's last collective)."""
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flags: list[bool], context: Context) -> list[bool]:
    """Each flag, True where it is True on any rank (so all ranks take the same branch)."""
    if not context.is_distributed:
        return list(flags)
    values = torch.tensor([float(f) for f in flags], device=_collective_device(context))
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


def gather(value, context: Context) -> list:
    """Every rank's ``value`` (picklable), in rank order; ``[value]`` in a single process."""
    if not context.is_distributed:
        return [value]
    values: list = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


def barrier(context: Context) -> None:
    if context.is_distributed:
        dist.barrier()


def _collective_device(context: Context) -> torch.device:
    return context.device if context.device.type == "cuda" else torch.device("cpu")


def torchrun_command(devices: int, arguments: list[str]) -> list[str]:
    """The command ``asr train trainer.devices=N`` runs: torchrun on this machine, N processes.

    ``--standalone`` picks a free port on localhost for the rendezvous; several machines are
    joined with torchrun's own ``--nnodes``/``--rdzv_endpoint`` (recipes/librispeech/README.md).
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={devices}",
        "-m",
        "asr.train",
        *arguments,
    ]
