"""SpeechBrain's LSTMs and attentional RNN decoder on the workload (optional: ``pip install
speechbrain``); its modules are imported when the system is built.

bf16 is SpeechBrain's own mixed precision: ``Brain``'s run options ``precision`` (training) and
``eval_precision`` (evaluation and inference), each ``fp32``, ``fp16`` or ``bf16``
(``speechbrain.utils.run_opts.RunOptions``), build ``TorchAutocast(device_type=...,
dtype=AMPConfig.from_name(precision).dtype)`` (``speechbrain/utils/autocast.py``: a
``torch.autocast`` with that dtype, no-op for fp32) in ``Brain.__init__``
(``speechbrain/core.py``), and ``fit_batch`` / ``evaluate_batch`` run ``compute_forward`` and
``compute_objectives`` in it; the backward pass and the optimizer step run outside. The benchmark
builds SpeechBrain's modules without a ``Brain``, so ``SpeechBrain.autocast`` enters that same
context around the same calls (version 1.1.2 checked).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from benchmarks.peers.system import System, linear_flops, location_attention_flops, lstm_flops
from benchmarks.peers.workload import Batch, Workload


class _SuppressToken(nn.Module):
    """A linear layer whose logit for ``token`` is -inf: SpeechBrain's greedy search has no
    minimum length, and the random model would end at once."""

    def __init__(self, linear: nn.Module, token: int) -> None:
        super().__init__()
        self.linear, self.token = linear, token
        self.w = linear.w  # what SpeechBrain's searchers read the vocabulary size from

    def forward(self, x: Tensor) -> Tensor:
        logits = self.linear(x)
        return logits.index_fill(-1, torch.tensor([self.token], device=x.device), float("-inf"))


class SpeechBrain(System):
    """SpeechBrain's LSTM and attentional decoder (module docstring)."""

    name = "speechbrain"
    BOS, EOS = 0, 1  # then the 30 symbols

    def __init__(self, workload: Workload, device: torch.device) -> None:
        super().__init__(workload, device)
        from speechbrain.decoders.seq2seq import S2SRNNBeamSearcher, S2SRNNGreedySearcher
        from speechbrain.nnet.embedding import Embedding
        from speechbrain.nnet.linear import Linear
        from speechbrain.nnet.RNN import LSTM, AttentionalRNNDecoder

        w, hidden = workload, workload.hidden_size
        self.vocab = 2 + w.symbols
        self.model = nn.ModuleDict(
            {
                "encoder": nn.ModuleList(
                    LSTM(
                        hidden_size=hidden,
                        input_size=w.features if layer == 0 else 4 * hidden,
                        bidirectional=True,
                    )
                    for layer in range(w.listener_layers)
                ),
                "embedding": Embedding(self.vocab, hidden),
                "decoder": AttentionalRNNDecoder(
                    rnn_type="lstm",
                    attn_type="location",
                    hidden_size=hidden,
                    attn_dim=hidden,
                    num_layers=1,
                    enc_dim=2 * hidden,
                    input_size=hidden,
                    channels=w.location_channels,
                    kernel_size=w.location_kernel_size // 2,  # SpeechBrain's width is 2k + 1
                    dropout=0.0,
                ),
                "output": Linear(self.vocab, input_size=hidden),
            }
        ).to(device)
        # Both searches run steps + 1 speller steps, as las-asr's (the characters and <eos>):
        # greedy spells steps + 1 tokens, beam search steps and then <eos>.
        ratio = (w.steps + 1.5) / w.reduced(w.decode_frames)
        modules = {"embedding": self.model["embedding"], "decoder": self.model["decoder"]}
        self.greedy = S2SRNNGreedySearcher(
            linear=_SuppressToken(self.model["output"], self.EOS),
            bos_index=self.BOS,
            eos_index=self.EOS,
            min_decode_ratio=0.0,
            max_decode_ratio=ratio,
            **modules,
        )
        self.beam = S2SRNNBeamSearcher(
            linear=self.model["output"],
            bos_index=self.BOS,
            eos_index=self.EOS,
            min_decode_ratio=ratio,  # <eos> is suppressed before the minimum
            max_decode_ratio=ratio,
            beam_size=w.beam_size,
            **modules,
        )

    def autocast(self, precision: str) -> contextlib.AbstractContextManager:
        """The context ``Brain`` runs its forward passes in for ``precision`` (module docstring)."""
        from speechbrain.utils.autocast import AMPConfig, TorchAutocast

        return TorchAutocast(
            device_type=self.device.type, dtype=AMPConfig.from_name(precision).dtype
        )

    def encode(self, features: Tensor) -> Tensor:
        x = features
        for layer, lstm in enumerate(self.model["encoder"]):
            if layer > 0:
                if x.size(1) % 2:
                    x = nn.functional.pad(x, (0, 0, 0, 1))
                x = x.reshape(x.size(0), x.size(1) // 2, 2 * x.size(2))
            x, _ = lstm(x)  # no lengths: dense, not packed
        return x

    def loss(self, batch: Batch) -> Tensor:
        from speechbrain.nnet.losses import nll_loss

        encoded = self.encode(batch.features)
        size, frames = batch.lens.size(0), encoded.size(1)
        encoder_lens = batch.lens
        for _ in range(self.workload.listener_layers - 1):
            encoder_lens = (encoder_lens + 1) // 2
        symbols = batch.symbols + 2
        tokens_in = torch.cat([symbols.new_full((size, 1), self.BOS), symbols], dim=1)
        tokens_out = torch.cat([symbols, symbols.new_zeros(size, 1)], dim=1)
        tokens_out = tokens_out.scatter(1, batch.target_lens[:, None], self.EOS)
        decoded, _ = self.model["decoder"](
            self.model["embedding"](tokens_in), encoded, encoder_lens / frames
        )
        log_probs = self.model["output"](decoded).log_softmax(dim=-1)
        return nll_loss(log_probs, tokens_out, length=(batch.target_lens + 1) / tokens_out.size(1))

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        if beam_size is not None and beam_size != self.beam.beam_size:
            raise ValueError("SpeechBrain's beam searcher was built for another beam size")
        with torch.no_grad():
            encoded = self.encode(features)
            relative_lens = lens / features.size(1)
            searcher = self.greedy if beam_size is None else self.beam
            hypotheses = searcher(encoded, relative_lens)[0]
        return [len(tokens) for tokens in hypotheses]

    def forced_tokens(self, beam: bool) -> set[int]:
        return {self.workload.steps} if beam else {self.workload.steps + 1}

    def step_flops(self, frames: int) -> int:
        w = self.workload
        hidden, values = w.hidden_size, 2 * w.hidden_size
        return (
            lstm_flops(hidden + hidden, hidden, 1)  # [embedding; projected context]
            + location_attention_flops(w, frames, values, context_projection=hidden)
            + linear_flops(hidden + hidden, hidden, 1)  # proj([context; state])
            + linear_flops(hidden, self.vocab, 1)
        )
