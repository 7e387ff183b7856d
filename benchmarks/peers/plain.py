"""The same LAS written the plain PyTorch way, decoded by ``asr.search``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.models.listener import ListenerOutput
from asr.models.speller import AttentionMemory, SpellerState
from asr.text import SPECIAL_TOKENS, Vocabulary
from benchmarks.peers.las_asr import LasAsr
from benchmarks.peers.system import System
from benchmarks.peers.workload import Batch, Workload


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
