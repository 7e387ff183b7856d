"""Timing several systems fairly: every repetition runs one step of each, in a rotating order,
so load from other processes falls on all of them alike; and the matmul they are compared with."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import torch

from benchmarks.peers.workload import MATMUL_SIZE
from benchmarks.speed import timed


def interleaved(
    tasks: dict[str, Callable[[], object]],
    rounds: int,
    device: torch.device,
    max_rounds: dict[str, int] | None = None,
) -> dict[str, list[float]]:
    """Wall-clock seconds of every task, ``rounds`` times, the order rotating each round; a task
    in ``max_rounds`` takes part in its first rounds only."""
    names, max_rounds = list(tasks), max_rounds or {}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            if index < max_rounds.get(name, rounds):
                seconds[name].append(timed(tasks[name], device))
        progress(
            f"round {index + 1}/{rounds}: "
            + ", ".join(
                f"{name} {times[-1]:.2f} s" for name, times in seconds.items() if len(times) > index
            )
        )
    return seconds


def progress(message: str) -> None:
    print(f"[benchmarks.peers] {message}", file=sys.stderr, flush=True)


def matmul_task(
    device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 3
) -> Callable[[], None]:
    """``repeats`` products of two ``MATMUL_SIZE``-square matrices of ``dtype``."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator).to(device, dtype)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator).to(device, dtype)

    def run() -> None:
        for _ in range(repeats):
            torch.mm(a, b)

    run.repeats = repeats  # type: ignore[attr-defined]
    return run


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
