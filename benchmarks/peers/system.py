"""What every benchmarked system offers (a training loss, two searches, its FLOP counts), and the
analytic FLOP counts of its parts (the package docstring says what is counted)."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from benchmarks.peers.workload import Batch, Workload


def lstm_flops(input_size: int, hidden_size: int, steps: int) -> int:
    """One LSTM direction over ``steps`` time steps."""
    return 2 * 4 * hidden_size * (input_size + hidden_size) * steps


def linear_flops(input_size: int, output_size: int, rows: int) -> int:
    return 2 * input_size * output_size * rows


def location_attention_flops(
    workload: Workload, frames: int, value_size: int, context_projection: int = 0
) -> int:
    """One speller step of location-aware attention over ``frames`` encoder frames."""
    attention, channels = workload.hidden_size, workload.location_channels
    return (
        linear_flops(workload.hidden_size, attention, 1)  # W s
        + 2 * frames * workload.location_kernel_size * channels  # F * α
        + linear_flops(channels, attention, frames)  # U f
        + linear_flops(attention, 1, frames)  # wᵀ tanh(…)
        + 2 * frames * value_size  # Σ α h
        + linear_flops(value_size, context_projection, 1)
    )


class System:
    """A benchmarked system: it builds its model and offers a training loss and two searches that
    return the number of tokens of every best hypothesis (to check that they ran the forced number
    of steps)."""

    name: str
    model: nn.Module

    def __init__(self, workload: Workload, device: torch.device) -> None:
        self.workload = workload
        self.device = device

    def autocast(self, precision: str) -> contextlib.AbstractContextManager:
        """The context the forward passes of ``precision`` run in: bfloat16 autocast for bf16
        (float32 weights, as las-asr's ``trainer.precision=bf16``), nothing for fp32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def prepare(self, batch: Batch) -> Batch:
        """The training batch as this system's data loader would hand it over (untimed)."""
        return batch

    def loss(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        """Token counts of the best hypotheses; ``beam_size`` None is greedy search."""
        raise NotImplementedError

    def forced_tokens(self, beam: bool) -> set[int]:
        """Token counts of a search that ran ``steps`` + 1 speller steps (the last <eos>)."""
        return {self.workload.steps}

    def forward_flops(self, lens: list[int], target_lens: list[int]) -> int:
        """Forward FLOPs of a training batch, utterance by utterance (module docstring)."""
        total = 0
        for frames, characters in zip(lens, target_lens, strict=True):
            encoder, reduced = self.encoder_flops(frames)
            steps = characters + 1  # the characters, then <eos>
            total += encoder + self.keys_flops(reduced) + steps * self.step_flops(reduced)
        return total

    def encoder_flops(self, frames: int) -> tuple[int, int]:
        """FLOPs of the default encoder, 1 BLSTM + (L-1) pyramidal BLSTM layers, and T'."""
        w = self.workload
        hidden, total = w.hidden_size, 0
        for layer in range(w.listener_layers):
            if layer > 0:
                frames = (frames + 1) // 2
            width = w.features if layer == 0 else 4 * hidden  # pairs of 2H-wide frames
            total += 2 * lstm_flops(width, hidden, frames)
        return total, frames

    def keys_flops(self, frames: int) -> int:
        """The attention keys of ``frames`` encoder frames, 2H wide by default."""
        return linear_flops(2 * self.workload.hidden_size, self.workload.hidden_size, frames)

    def step_flops(self, frames: int) -> int:
        """One speller step for one utterance of ``frames`` encoder frames."""
        raise NotImplementedError
