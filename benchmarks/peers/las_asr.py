"""las-asr itself, through ``build_model``, and its pre-issue-#6 baseline."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from asr.masking import pad_mask
from asr.models import build_model
from asr.models import listener as listener_module
from asr.search import beam_search, greedy_search
from asr.text import SPECIAL_TOKENS
from benchmarks.peers.system import System, linear_flops, location_attention_flops, lstm_flops
from benchmarks.peers.workload import Batch, Workload


class LasAsr(System):
    """las-asr itself, through ``build_model``."""

    name = "las-asr"

    def __init__(self, workload: Workload, device: torch.device) -> None:
        super().__init__(workload, device)
        w = workload
        config = {
            "listener": {
                "hidden_size": w.hidden_size,
                "num_layers": 1,
                "num_pyramid_layers": w.listener_layers - 1,
                "dropout": 0.0,
            },
            "speller": {
                "embedding_size": w.hidden_size,
                "hidden_size": w.hidden_size,
                "num_layers": 1,
                "dropout": 0.0,
            },
            "attention": {
                "type": "location",
                "attention_size": w.hidden_size,
                "location_channels": w.location_channels,
                "location_kernel_size": w.location_kernel_size,
            },
            "ctc_weight": 0.0,
            "label_smoothing": 0.0,
            "sampling_probability": 0.0,
        }
        vocab_size = len(SPECIAL_TOKENS) + w.symbols
        self.model = build_model(config, vocab_size=vocab_size, input_size=w.features).to(device)

    def loss(self, batch: Batch) -> Tensor:
        targets = (batch.symbols + len(SPECIAL_TOKENS)).masked_fill(
            pad_mask(batch.target_lens, batch.symbols.size(1)), 0
        )
        return self.model(batch.features, batch.lens, targets, batch.target_lens).loss

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        # floor(T' · ratio) == steps exactly: the +0.5 keeps float rounding off the boundary.
        ratio = (self.workload.steps + 0.5) / self.workload.reduced(features.size(1))
        limits = {"min_length_ratio": ratio, "max_length_ratio": ratio}
        if beam_size is None:
            hypotheses = greedy_search(self.model, features, lens, **limits)
        else:
            results = beam_search(self.model, features, lens, beam_size=beam_size, **limits)
            hypotheses = [nbest[0] for nbest in results]
        return [len(hypothesis.tokens) for hypothesis in hypotheses]

    def step_flops(self, frames: int) -> int:
        w = self.workload
        hidden, values = w.hidden_size, 2 * w.hidden_size
        return (
            lstm_flops(hidden + values, hidden, 1)  # input: [embedding; previous context]
            + location_attention_flops(w, frames, values)
            + linear_flops(hidden + values, hidden, 1)  # output MLP
            + linear_flops(hidden, len(SPECIAL_TOKENS) + w.symbols, 1)
        )


@contextlib.contextmanager
def _onednn_always():
    """The listener without its small-batch inference kernel switch (``run_lstm``)."""
    saved = listener_module.NATIVE_INFERENCE_MAX_BATCH
    listener_module.NATIVE_INFERENCE_MAX_BATCH = 0
    try:
        yield
    finally:
        listener_module.NATIVE_INFERENCE_MAX_BATCH = saved


class LasAsrBaseline(LasAsr):
    """las-asr with the listener as before issue #6: no time segments, always oneDNN."""

    name = "las-asr-baseline"

    def __init__(self, workload: Workload, device: torch.device) -> None:
        super().__init__(workload, device)
        self.model.listener.max_time_segments = 1

    def loss(self, batch: Batch) -> Tensor:
        with _onednn_always():
            return super().loss(batch)

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        with _onednn_always():
            return super().search(features, lens, beam_size)
