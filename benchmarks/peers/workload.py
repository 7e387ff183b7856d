"""The workload every system runs: issue #6's sizes, and the seeded training batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from asr.masking import pad_mask

FRAME_SECONDS = 0.01
MATMUL_SIZE = 2048  # the matmul that GFLOP/s are compared with, in each number format
# The number formats (``--precisions``): bf16 runs the forward passes under bfloat16 autocast,
# with float32 weights, as las-asr's ``trainer.precision=bf16``; the matmul multiplies bfloat16.
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Workload:
    """Issue #6's workload; the sizes are options so tests can run it small."""

    features: int = 80
    batch_size: int = 16
    min_frames: int = 400
    max_frames: int = 1200
    symbols: int = 30
    hidden_size: int = 320  # listener per direction, speller, embedding, attention
    listener_layers: int = 4  # the first at the frame rate, each later one after 2x reduction
    location_channels: int = 10
    location_kernel_size: int = 101
    decode_utterances: int = 4
    decode_frames: int = 800
    steps: int = 100
    beam_size: int = 10
    seed: int = 0

    def reduced(self, frames: int) -> int:
        """Encoder frames T' of ``frames`` input frames: ceil-halved after layers 1..L-1."""
        for _ in range(self.listener_layers - 1):
            frames = (frames + 1) // 2
        return frames


@dataclass
class Batch:
    """features (B, T, F), lens (B,), symbols (B, U) in 0..29 (0 on padding), target_lens (B,)."""

    features: Tensor
    lens: Tensor
    symbols: Tensor
    target_lens: Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(tensor.to(device) for tensor in vars(self).values()))


def training_batch(workload: Workload) -> Batch:
    generator = torch.Generator().manual_seed(workload.seed)
    size = workload.batch_size
    lens = torch.randint(workload.min_frames, workload.max_frames + 1, (size,), generator=generator)
    features = torch.randn(size, int(lens.max()), workload.features, generator=generator)
    target_lens = (lens // 10).clamp(min=1)
    symbols = torch.randint(workload.symbols, (size, int(target_lens.max())), generator=generator)
    symbols = symbols.masked_fill(pad_mask(target_lens, symbols.size(1)), 0)
    return Batch(features, lens, symbols, target_lens)
