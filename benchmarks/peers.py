"""las-asr against a plain PyTorch LAS, SpeechBrain and ESPnet1, side by side on one workload.

Issue #6's workload, every system built to the closest configuration its own API allows:

- **training**: a batch of ``--batch-size`` 16 utterances of random 80-dim features, lengths
  uniform in 400..1200 frames (seed 0), ``frames // 10`` targets each from a 30-symbol
  vocabulary; a listener of 4 bidirectional LSTM layers of 320 units per direction with 8x time
  reduction (the first layer at the frame rate, each later one after a 2x reduction), a speller of
  one 320-unit LSTM layer fed the previous context, location-aware attention of width 320 with 10
  channels and kernel 101 (the issue says 100; las-asr's 'same' convolution needs an odd width,
  and ESPnet and SpeechBrain take the half-width, 50, so all three use 101), token embedding 320,
  Adam; no dropout, CTC, label smoothing or scheduled sampling anywhere. Seconds per
  forward + backward + ``Adam.step`` (median and min-max of ``--train-steps``, after
  ``--warmup`` untimed steps), and seconds of audio (frames x 10 ms) per wall-clock second.
- **decoding**: ``--decode-utterances`` 4 utterances of ``--decode-frames`` 800 frames, batched,
  each system's own greedy and beam search (beam ``--beam-size`` 10), with end-of-sentence held
  back so that every search spells ``--steps`` 100 characters and then ends: 101 speller steps
  (ESPnet: 100, see below; the random models would otherwise stop at once). Real-time factor =
  wall-clock seconds (encoder included) / seconds of audio.
- **interleaved**: every timed repetition runs one step of every system, and a large float32
  matmul, in a rotating order, so load from other processes falls on all of them alike; the
  table's ratios come from one run.
- **peak memory**: measured on each system's untimed warm-up run alone, as the rise of the
  process's peak resident set size (CPU) or of ``torch.cuda.max_memory_allocated`` (CUDA).

The systems (a peer that is not installed is skipped and listed as such):

- ``las-asr``: ``asr.models.build_model`` (1 BLSTM + 3 pyramidal BLSTM layers, each pyramid
  layer reading frame pairs, 1280 wide), trained through ``LAS.forward``, decoded with
  ``asr.search``.
- ``pytorch``: the same shapes written the plain way (``PlainLAS`` below): padded bidirectional
  ``nn.LSTM`` s (not exact under padding: the backward direction reads the padding first),
  location features as ``Conv1d`` + ``Linear``, an ``LSTMCell`` speller; decoded by
  ``asr.search`` (it offers the speller interface the searches use).
- ``speechbrain`` (``pip install -e '.[bench]'`` or ``pip install speechbrain``): four
  unpacked bidirectional ``speechbrain.nnet.RNN.LSTM`` layers with the same frame-pair
  concatenation between them, ``AttentionalRNNDecoder(rnn_type="lstm", attn_type="location")``,
  a linear output layer, ``nll_loss``; ``S2SRNNGreedySearcher`` / ``S2SRNNBeamSearcher``.
  SpeechBrain's decoder projects the context to the attention width and does not backpropagate
  through the previous alignment.
- ``espnet`` (``pip install --no-deps espnet`` and then ``pip install configargparse torch_complex
  editdistance``; a plain ``pip install espnet`` replaces torch):
  ``espnet.nets.pytorch_backend.e2e_asr.E2E`` with ``etype=blstmp`` (packed BLSTMs, every other
  frame kept after layers 1-3, each layer's output projected to 320), ``atype=location``,
  ``mtlalpha=0``; decoded with its batched beam search ``recognize_batch`` (beam 1 as greedy).
  ESPnet drops hypotheses longer than the encoder output (T' = 100 frames), so it runs 100
  speller steps, one fewer than the others. ``--espnet-train-steps`` 2 timed training steps only:
  its packed LSTMs' backward pass takes about a minute a step on CPU (pytorch/pytorch#149194).
- ``las-asr-baseline`` (opt-in, ``--systems``): las-asr with the listener as it was before
  issue #6's changes, one LSTM call over the padded batch and always oneDNN, for a before/after
  in the same run.

**FLOPs** are counted analytically, on each utterance's real frames and tokens (padding is not
useful work), counting a multiply-add as 2 FLOPs, for the matrix products only:

- LSTM, per direction and time step: ``2 · 4H · (I + H)`` (four gates, input and recurrent
  weights), input width I, hidden width H;
- linear layer, per row: ``2 · I · O``;
- location attention, per speller step over T' encoder frames: query ``2 · H · A``, location
  filters ``2 · T' · K · C``, their projection ``2 · T' · C · A``, energies ``2 · T' · A``,
  context ``2 · T' · D`` (plus ``2 · D · A`` for SpeechBrain's context projection); the keys
  ``2 · T' · D · A`` once per utterance;
- training = 3 x forward (the backward pass computes the gradients of inputs and of weights, each
  a product of the forward's size). Element-wise work, softmax, the loss and Adam are not counted
  (O(activations) and O(parameters), under 1% here).

Achieved GFLOP/s is this count over the step's wall-clock time, and "% of matmul" divides it by
the rate of a 2048 x 2048 x 2048 float32 matmul timed in the same run with the same threads.
``benchmarks/README.md`` has measured tables; ``python benchmarks/peers.py --help`` the options.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import warnings
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.models import build_model
from asr.models import listener as listener_module
from asr.models.listener import ListenerOutput
from asr.models.speller import AttentionMemory, SpellerState
from asr.search import beam_search, greedy_search
from asr.text import SPECIAL_TOKENS, Vocabulary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import PeakMemory, cpu_name, summary, timed  # noqa: E402

FRAME_SECONDS = 0.01
SYSTEMS = ("las-asr", "pytorch", "speechbrain", "espnet")
INSTALL = {
    "speechbrain": "pip install speechbrain",
    "espnet": "pip install --no-deps espnet; pip install configargparse torch_complex editdistance",
}
MATMUL_SIZE = 2048


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


# ---------------------------------------------------------------------------------------------
# FLOP counting (module docstring)


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


# ---------------------------------------------------------------------------------------------
# The systems. Each builds its model and offers a training loss and two searches that return the
# number of tokens of every best hypothesis (to check that they ran the forced number of steps).


class System:
    name: str
    model: nn.Module

    def __init__(self, workload: Workload, device: torch.device) -> None:
        self.workload = workload
        self.device = device

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


class PlainLAS(nn.Module):
    """The same LAS written the plain PyTorch way, for the "what PyTorch gives you" row.

    Padded ``nn.LSTM(bidirectional=True)`` layers with frame pairs concatenated between them, a
    Conv1d + Linear location term, an ``LSTMCell`` speller fed [embedding; previous context] and
    an MLP on [state; context]. It offers ``encode`` / ``memory`` / ``initial_state`` / ``step``
    like ``asr.models.LAS`` and its speller, so ``asr.search`` can decode with it.
    """

    def __init__(self, workload: Workload, vocab_size: int) -> None:
        super().__init__()
        hidden = workload.hidden_size
        self.vocab_size = vocab_size
        self.lstms = nn.ModuleList(
            nn.LSTM(
                workload.features if layer == 0 else 4 * hidden,
                hidden,
                batch_first=True,
                bidirectional=True,
            )
            for layer in range(workload.listener_layers)
        )
        kernel = workload.location_kernel_size
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.cell = nn.LSTMCell(3 * hidden, hidden)
        self.query_projection = nn.Linear(hidden, hidden, bias=False)
        self.key_projection = nn.Linear(2 * hidden, hidden)
        self.location_conv = nn.Conv1d(
            1, workload.location_channels, kernel, padding=kernel // 2, bias=False
        )
        self.location_projection = nn.Linear(workload.location_channels, hidden, bias=False)
        self.energy = nn.Linear(hidden, 1, bias=False)
        self.output = nn.Sequential(
            nn.Linear(3 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, vocab_size)
        )

    @property
    def speller(self) -> PlainLAS:
        return self  # asr.search calls model.speller.step

    def encode(self, features: Tensor, lens: Tensor) -> ListenerOutput:
        x = features
        for layer, lstm in enumerate(self.lstms):
            if layer > 0:
                if x.size(1) % 2:
                    x = nn.functional.pad(x, (0, 0, 0, 1))
                x = x.reshape(x.size(0), x.size(1) // 2, 2 * x.size(2))
                lens = (lens + 1) // 2
            x, _ = lstm(x)
        return ListenerOutput(x, lens, ())

    def memory(self, encoded: Tensor, encoded_lens: Tensor) -> AttentionMemory:
        padding = pad_mask(encoded_lens.to(encoded.device), encoded.size(1))
        return AttentionMemory(encoded, self.key_projection(encoded), padding)

    def initial_state(self, memory: AttentionMemory) -> SpellerState:
        batch, frames, width = memory.values.shape
        zeros = memory.values.new_zeros(batch, 1, self.cell.hidden_size)
        alignment = memory.values.new_zeros(batch, frames)
        alignment[:, 0] = 1.0
        return SpellerState(zeros, zeros, memory.values.new_zeros(batch, width), alignment)

    def step(
        self, tokens: Tensor, state: SpellerState, memory: AttentionMemory
    ) -> tuple[Tensor, SpellerState]:
        x = torch.cat([self.embedding(tokens), state.context], dim=-1)
        hidden, cell = self.cell(x, (state.hidden[:, 0], state.cell[:, 0]))
        location = self.location_conv(state.alignment[:, None, :]).transpose(1, 2)  # (B, T', C)
        energies = self.energy(
            torch.tanh(
                self.query_projection(hidden)[:, None, :]
                + memory.keys
                + self.location_projection(location)
            )
        ).squeeze(-1)
        alignment = torch.softmax(energies.masked_fill(memory.pad_mask, float("-inf")), dim=-1)
        context = torch.bmm(alignment[:, None, :], memory.values).squeeze(1)
        logits = self.output(torch.cat([hidden, context], dim=-1))
        return logits, SpellerState(hidden[:, None], cell[:, None], context, alignment)

    def forward(self, features: Tensor, lens: Tensor, targets: Tensor, target_lens: Tensor):
        """Mean cross-entropy per output token; targets (B, U) ids, without ``<sos>``/``<eos>``."""
        listened = self.encode(features, lens)
        memory = self.memory(listened.encoded, listened.encoded_lens)
        sos = targets.new_full((targets.size(0), 1), Vocabulary.sos_id)
        tokens_in = torch.cat([sos, targets], dim=1)
        tokens_out = torch.cat([targets, targets.new_zeros(targets.size(0), 1)], dim=1)
        tokens_out = tokens_out.scatter(1, target_lens[:, None], Vocabulary.eos_id)
        tokens_out = tokens_out.masked_fill(pad_mask(target_lens + 1, tokens_out.size(1)), -100)
        state, all_logits = self.initial_state(memory), []
        for step in range(tokens_in.size(1)):
            logits, state = self.step(tokens_in[:, step], state, memory)
            all_logits.append(logits)
        logits = torch.stack(all_logits, dim=2)  # (B, V, U + 1)
        return nn.functional.cross_entropy(logits, tokens_out, ignore_index=-100)


class PlainPyTorch(LasAsr):
    name = "pytorch"

    def __init__(self, workload: Workload, device: torch.device) -> None:
        System.__init__(self, workload, device)
        vocab_size = len(SPECIAL_TOKENS) + workload.symbols
        self.model = PlainLAS(workload, vocab_size).to(device)

    def loss(self, batch: Batch) -> Tensor:
        targets = batch.symbols + len(SPECIAL_TOKENS)
        return self.model(batch.features, batch.lens, targets, batch.target_lens)


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


class _NoReporter:
    def report(self, *args, **kwargs) -> None:
        pass


class ESPnet(System):
    """ESPnet1's RNN ``E2E`` with ``blstmp`` and location attention (module docstring)."""

    name = "espnet"

    def __init__(self, workload: Workload, device: torch.device) -> None:
        super().__init__(workload, device)
        logging.getLogger().setLevel(logging.ERROR)  # ESPnet logs every decoding step's limits
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Chainer is not installed"
            from espnet.nets.pytorch_backend.e2e_asr import E2E

        w, hidden = workload, workload.hidden_size
        self.vocab = 2 + w.symbols  # 0 blank, the symbols, then <sos>/<eos> = vocab - 1
        self.char_list = ["<blank>", *(f"s{i}" for i in range(w.symbols)), "<eos>"]  # logged
        reduction = "_".join(["1"] + ["2"] * (w.listener_layers - 1) + ["1"])
        args = Namespace(
            etype="blstmp",
            elayers=w.listener_layers,
            eunits=hidden,
            eprojs=hidden,
            subsample=reduction,
            dtype="lstm",
            dlayers=1,
            dunits=hidden,
            atype="location",
            adim=hidden,
            aconv_chans=w.location_channels,
            aconv_filts=w.location_kernel_size // 2,  # ESPnet's width is 2k + 1
            mtlalpha=0.0,
            ctc_type="builtin",
            lsm_weight=0.0,
            lsm_type="",
            dropout_rate=0.0,
            dropout_rate_decoder=0.0,
            sampling_probability=0.0,
            report_cer=False,
            report_wer=False,
            outdir=None,
            sym_space="<space>",
            sym_blank="<blank>",
            train_json=None,
            verbose=0,
        )
        self.model = E2E(w.features, self.vocab, args).to(device)
        # E2E.forward reports its losses to a chainer Reporter, a stub that raises without chainer.
        self.model.reporter = _NoReporter()

    def prepare(self, batch: Batch) -> Batch:
        # Packed sequences need decreasing lengths; ESPnet's loader sorts its batches.
        order = batch.lens.argsort(descending=True, stable=True)
        return Batch(*(tensor[order] for tensor in vars(batch).values()))

    def loss(self, batch: Batch) -> Tensor:
        warnings.filterwarnings("ignore", "Converting a tensor with requires_grad=True")
        targets = (batch.symbols + 1).masked_fill(
            pad_mask(batch.target_lens, batch.symbols.size(1)), -1
        )
        return self.model(batch.features, batch.lens, targets)

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        reduced = self.workload.reduced(features.size(1))
        recog_args = Namespace(
            beam_size=beam_size or 1,
            penalty=0.0,
            ctc_weight=0.0,
            # maxlen = int(ratio · T') = steps speller steps: ESPnet drops a hypothesis that
            # ends with more tokens than encoder frames (T' = steps here), so it runs one step
            # fewer than the others. minlen = steps - 1 lets hypotheses end only in the last
            # step, with steps - 1 or steps tokens (ESPnet cannot force <eos> there).
            maxlenratio=(self.workload.steps + 0.5) / reduced,
            minlenratio=(self.workload.steps - 0.5) / reduced,
            lm_weight=0.0,
            nbest=1,
        )
        utterances = [
            utterance[: int(length)].cpu().numpy()
            for utterance, length in zip(features, lens, strict=True)
        ]
        with torch.no_grad():
            results = self.model.recognize_batch(utterances, recog_args, self.char_list)
        return [len(nbest[0]["yseq"]) - 2 for nbest in results]  # without <sos> and <eos>

    def forced_tokens(self, beam: bool) -> set[int]:
        return {self.workload.steps - 1, self.workload.steps}

    def encoder_flops(self, frames: int) -> tuple[int, int]:
        w = self.workload
        hidden, total = w.hidden_size, 0
        for layer in range(w.listener_layers):
            width = w.features if layer == 0 else hidden
            total += 2 * lstm_flops(width, hidden, frames)
            if layer < w.listener_layers - 1:
                frames = (frames + 1) // 2  # every other frame kept
            total += linear_flops(2 * hidden, hidden, frames)  # the projection
        return total, frames

    def keys_flops(self, frames: int) -> int:
        return linear_flops(self.workload.hidden_size, self.workload.hidden_size, frames)

    def step_flops(self, frames: int) -> int:
        hidden = self.workload.hidden_size
        return (
            lstm_flops(hidden + hidden, hidden, 1)  # [embedding; previous context]
            + location_attention_flops(self.workload, frames, hidden)
            + linear_flops(hidden, self.vocab, 1)
        )


SYSTEM_CLASSES: dict[str, type[System]] = {
    "las-asr": LasAsr,
    "las-asr-baseline": LasAsrBaseline,
    "pytorch": PlainPyTorch,
    "speechbrain": SpeechBrain,
    "espnet": ESPnet,
}
PEER_MODULES = {"speechbrain": "speechbrain", "espnet": "espnet"}


def installed(name: str) -> bool:
    module = PEER_MODULES.get(name)
    return module is None or importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------------------------------------
# Timing


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
    print(f"[peers.py] {message}", file=sys.stderr, flush=True)


def matmul_task(device: torch.device, repeats: int = 3) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator).to(device)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator).to(device)

    def run() -> None:
        for _ in range(repeats):
            torch.mm(a, b)

    run.repeats = repeats  # type: ignore[attr-defined]
    return run


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Workload()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--phases", default="train,greedy,beam", help="comma-separated subset")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps")
    parser.add_argument(
        "--espnet-train-steps",
        type=int,
        default=2,
        help="timed training steps of ESPnet, whose packed LSTMs take about a minute a step",
    )
    parser.add_argument("--decode-repeats", type=int, default=5, help="timed runs per search")
    for field, value in vars(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    unknown = set(args.systems.split(",")) - set(SYSTEM_CLASSES)
    if unknown:
        valid = ", ".join(SYSTEM_CLASSES)
        parser.error(f"--systems: unknown {', '.join(sorted(unknown))}; valid: {valid}")
    unknown = set(args.phases.split(",")) - {"train", "greedy", "beam"}
    if unknown:
        parser.error(f"--phases: unknown phase(s) {', '.join(sorted(unknown))}")
    if min(args.train_steps, args.espnet_train_steps, args.decode_repeats) < 1 or args.warmup < 0:
        parser.error("the numbers of timed steps and repeats must be positive, --warmup >= 0")
    if args.location_kernel_size % 2 == 0:
        parser.error("--location-kernel-size must be odd (las-asr's 'same' convolution)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    workload = Workload(**{field: getattr(args, field) for field in vars(Workload())})
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    phases = args.phases.split(",")
    results: dict = {
        "setup": {
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            "load_before": load_average(),
            "workload": vars(workload),
            "warmup": args.warmup,
            "train_steps": args.train_steps,
            "decode_repeats": args.decode_repeats,
        },
        "skipped": {},
        "systems": {},
    }
    memory = PeakMemory(device)
    results["setup"]["memory_kind"] = memory.kind
    systems: dict[str, System] = {}
    for name in args.systems.split(","):
        if not installed(name):
            results["skipped"][name] = f"not installed (`{INSTALL[name]}`)"
            continue
        torch.manual_seed(workload.seed)
        systems[name] = SYSTEM_CLASSES[name](workload, device)
        results["systems"][name] = {
            "parameters": sum(p.numel() for p in systems[name].model.parameters())
        }

    matmul = matmul_task(device)
    if "train" in phases:
        batch = training_batch(workload)
        audio_seconds = float(batch.lens.sum()) * FRAME_SECONDS
        lens, target_lens = batch.lens.tolist(), batch.target_lens.tolist()
        batch = batch.to(device)
        steps = {}
        for name, system in systems.items():
            system.model.train()
            optimizer = torch.optim.Adam(system.model.parameters(), lr=1e-4)
            prepared = system.prepare(batch)

            def step(system=system, optimizer=optimizer, batch=prepared) -> None:
                optimizer.zero_grad(set_to_none=True)
                system.loss(batch).backward()
                optimizer.step()

            memory.start()
            for _ in range(max(args.warmup, 1)):  # Adam's state exists after one step
                progress(f"{name} training warm-up: {timed(step, device):.2f} s")
            results["systems"][name]["train_memory"] = memory.stop()
            steps[name] = step
        seconds = interleaved(
            {"matmul": matmul, **steps},
            max(args.train_steps, args.espnet_train_steps),
            device,
            {name: args.train_steps for name in steps} | {"espnet": args.espnet_train_steps},
        )
        results["matmul_gflops"] = summary(
            [2 * MATMUL_SIZE**3 * matmul.repeats / s / 1e9 for s in seconds.pop("matmul")]
        )
        for name, system in systems.items():
            flops = 3 * system.forward_flops(lens, target_lens)
            step_seconds = seconds[name]
            results["systems"][name]["train"] = {
                "audio_seconds": audio_seconds,
                "step_seconds": summary(step_seconds),
                "audio_seconds_per_second": summary([audio_seconds / s for s in step_seconds]),
                "steps": len(step_seconds),
                "gflop_per_step": flops / 1e9,
                "gflops": summary([flops / s / 1e9 for s in step_seconds]),
            }

    searches = [phase for phase in ("greedy", "beam") if phase in phases]
    if searches:
        generator = torch.Generator().manual_seed(workload.seed + 1)
        shape = (workload.decode_utterances, workload.decode_frames, workload.features)
        features = torch.randn(shape, generator=generator).to(device)
        lens = torch.full((workload.decode_utterances,), workload.decode_frames, device=device)
        audio_seconds = workload.decode_utterances * workload.decode_frames * FRAME_SECONDS
        tasks = {}
        for name, system in systems.items():
            system.model.eval()
            for search in searches:
                beam_size = workload.beam_size if search == "beam" else None

                def run(system=system, beam_size=beam_size) -> list[int]:
                    return system.search(features, lens, beam_size)

                memory.start()
                tokens = run()  # warm-up, memory, and a check of the forced length
                results["systems"][name][f"{search}_memory"] = memory.stop()
                progress(f"{name} {search} warm-up done")
                expected = system.forced_tokens(beam_size is not None)
                if not set(tokens) <= expected:
                    raise RuntimeError(f"{name} {search}: {tokens} tokens, expected {expected}")
                tasks[f"{name} {search}"] = run
        if "train" not in phases:
            tasks["matmul"] = matmul
        seconds = interleaved(tasks, args.decode_repeats, device)
        if "train" not in phases:
            results["matmul_gflops"] = summary(
                [2 * MATMUL_SIZE**3 * matmul.repeats / s / 1e9 for s in seconds.pop("matmul")]
            )
        for task, task_seconds in seconds.items():
            name, search = task.split(" ")
            results["systems"][name][search] = {
                "audio_seconds": audio_seconds,
                "seconds": summary(task_seconds),
                "real_time_factor": summary([s / audio_seconds for s in task_seconds]),
            }
    results["setup"]["load_after"] = load_average()
    print(markdown_tables(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


# ---------------------------------------------------------------------------------------------
# Report


def _memory(entry: dict | None) -> str:
    if entry is None:
        return "—"
    if entry["rise_mib"] is None:
        return f"{entry['peak_mib']:,.0f} MiB (lifetime peak)"
    return f"+{entry['rise_mib']:,.0f} MiB"


def _ratio(name: str, numerator: float | None, denominator: float | None) -> str:
    if name == "las-asr" or not numerator or not denominator:
        return "—"
    return f"{numerator / denominator:.2f}×"


def markdown_tables(results: dict) -> str:
    setup, systems = results["setup"], results["systems"]
    lines = [
        f"{setup['device_name']}, {setup['threads']} threads (OMP_WAIT_POLICY "
        f"{setup['omp_wait_policy']}), torch {setup['torch']}; load average "
        f"{setup['load_before']} before, {setup['load_after']} after."
    ]
    if "matmul_gflops" in results:
        rate = results["matmul_gflops"]
        lines[0] += (
            f" float32 matmul ({MATMUL_SIZE}³) in the same run: {rate['median']:.0f} GFLOP/s "
            f"({rate['min']:.0f}–{rate['max']:.0f})."
        )
    reference = systems.get("las-asr", {})
    if any("train" in entry for entry in systems.values()):
        matmul = results["matmul_gflops"]["median"]
        lines += [
            "",
            "| training | s / step (min–max) | n | audio s / s | las-asr faster by | "
            "GFLOP / step | GFLOP/s | % of matmul | memory |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        ours = reference.get("train", {}).get("audio_seconds_per_second", {}).get("median")
        for name, entry in systems.items():
            if "train" not in entry:
                continue
            train = entry["train"]
            step, rate = train["step_seconds"], train["audio_seconds_per_second"]["median"]
            gflops = train["gflops"]["median"]
            lines.append(
                f"| {name} | {step['median']:.2f} ({step['min']:.2f}–{step['max']:.2f}) | "
                f"{train['steps']} | {rate:.1f} | {_ratio(name, ours, rate)} | "
                f"{train['gflop_per_step']:.3g} | {gflops:.3g} | {100 * gflops / matmul:.0f}% | "
                f"{_memory(entry.get('train_memory'))} |"
            )
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} | | | | | | | |")
    searches = [s for s in ("greedy", "beam") if any(s in e for e in systems.values())]
    if searches:
        beam = setup["workload"]["beam_size"]
        labels = {"greedy": "greedy", "beam": f"beam {beam}"}
        header = "| decoding |"
        for search in searches:
            header += f" {labels[search]} RTF (min–max) | las-asr faster by | memory |"
        lines += ["", header, "|---" * (1 + 3 * len(searches)) + "|"]
        for name, entry in systems.items():
            row = f"| {name} |"
            for search in searches:
                if search not in entry:
                    row += " — | — | — |"
                    continue
                rtf = entry[search]["real_time_factor"]
                ours = reference.get(search, {}).get("real_time_factor", {}).get("median")
                row += (
                    f" {rtf['median']:.4f} ({rtf['min']:.4f}–{rtf['max']:.4f}) | "
                    f"{_ratio(name, rtf['median'], ours)} | "
                    f"{_memory(entry.get(f'{search}_memory'))} |"
                )
            lines.append(row)
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} |" + " |" * (3 * len(searches) - 1))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
