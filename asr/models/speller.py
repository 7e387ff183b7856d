"""The speller: an attention LSTM decoder emitting one character per step (LAS, Chan et al. 2016,
§3.2, eq. 6-8).

One ``step`` serves teacher-forced training, greedy and beam search: it is ``advance`` (the
recurrence) followed by ``logits`` (the output distribution); ``forward`` loops over ``advance``
and applies ``logits`` once to all steps, which gives the same values.
Everything that changes between steps lives in an explicit ``SpellerState`` whose fields are all
batch-first, so a search reorders it with ``index_select(0, ...)`` on every field alike; what is
constant per utterance lives in ``AttentionMemory``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.models.attention import head_average


class AttentionMemory(NamedTuple):
    """The encoder side of attention, constant per utterance.

    values: (B, T', D) encoder outputs h.
    keys: (B, T', A) projected once by the attention's ``project_keys``.
    pad_mask: (B, T') True on padded frames.
    """

    values: Tensor
    keys: Tensor
    pad_mask: Tensor


class SpellerState(NamedTuple):
    """The speller's recurrent state after a step; every field is batch-first.

    hidden: (B, L, H) LSTM hidden states s, bottom layer first.
    cell: (B, L, H) LSTM cell states.
    context: (B, D) attention context c of the last step.
    alignment: (B, T') attention weights α of the last step; (B, heads, T') with several heads.
    """

    hidden: Tensor
    cell: Tensor
    context: Tensor
    alignment: Tensor


class _StepRecord:
    """α_t and ∂L/∂c_t of every teacher-forced step, for ``_ValuesGradient``."""

    def __init__(self) -> None:
        self.alignments: list[Tensor] = []  # (B, T') per step, detached
        self.context_grads: dict[int, Tensor] = {}  # step -> (B, D), set during backward

    def context_hook(self, step: int) -> Callable[[Tensor | None], None]:
        """A tensor hook for step ``step``'s context that records its gradient."""

        def hook(grad: Tensor | None) -> None:
            if grad is not None:
                self.context_grads[step] = grad

        return hook


class _ValuesGradient(torch.autograd.Function):
    """Identity on the attention keys whose backward also returns the values' gradient.

    Teacher forcing reads the values h through ``c_t = α_t h`` at every step. Left to autograd,
    every step's backward builds a (B, T', D) outer product α_tᵀ ∂L/∂c_t and adds it to the
    values' gradient, a quarter of the speller's training time. Instead the steps read detached
    values, hooks record each ∂L/∂c_t, and this node returns Σ_t α_tᵀ ∂L/∂c_t as one batched
    matmul. Every step depends on the keys, so autograd runs this node after all of them.
    """

    @staticmethod
    def forward(ctx, keys: Tensor, values: Tensor, record: _StepRecord) -> Tensor:
        ctx.record, ctx.values_dtype = record, values.dtype
        return keys.view_as(keys)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_keys: Tensor) -> tuple[Tensor, Tensor | None, None]:
        alignments, recorded = ctx.record.alignments, ctx.record.context_grads
        if not recorded:  # no context reached what is differentiated
            return grad_keys, None, None
        zeros = torch.zeros_like(next(iter(recorded.values())))
        context_grads = [recorded.get(step, zeros) for step in range(len(alignments))]
        recorded.clear()
        dtype = torch.promote_types(ctx.values_dtype, zeros.dtype)
        alignments = torch.stack(alignments, dim=2).to(dtype)  # (B, T', U)
        grad_values = alignments @ torch.stack(context_grads, dim=1).to(dtype)  # (B, T', D)
        return grad_keys, grad_values.to(ctx.values_dtype), None


class _NewBackwardPass(torch.autograd.Function):
    """Identity on the speller's outputs that forgets recorded ∂L/∂c_t when a backward pass
    starts: every gradient reaches the steps through these outputs, so this runs first, and a
    second pass over the same graph (``retain_graph``) cannot reuse the first one's values.
    The outputs are copies, not views, so callers may still modify them in place."""

    @staticmethod
    def forward(ctx, logits: Tensor, alignments: Tensor, record: _StepRecord):
        ctx.record = record
        ctx.set_materialize_grads(False)
        return logits.clone(), alignments.clone()

    @staticmethod
    def backward(ctx, grad_logits: Tensor | None, grad_alignments: Tensor | None):
        ctx.record.context_grads.clear()
        return grad_logits, grad_alignments, None


class Speller(nn.Module):
    """Attention-based character decoder.

    Each step (LAS eq. 6-8, with the input-feeding of the previous context)::

        s_t = LSTM([emb(y_{t-1}); c_{t-1}], s_{t-1})      stacked LSTM cells, eq. 7
        c_t, α_t = attention(s_t (top layer), h, α_{t-1})  eq. 6
        logits_t = MLP([s_t; c_t])                          eq. 8

    Args:
        vocab_size: V, number of output tokens (including the special ones).
        encoder_size: D, width of the listener outputs.
        attention: a stateless attention module (see ``asr.models.attention``) whose query size
            is ``hidden_size`` and key size ``encoder_size``.
        embedding_size: width of the token embedding.
        hidden_size: H, width of every LSTM layer.
        num_layers: L, stacked LSTM cells.
        dropout: dropout between LSTM layers and before the output MLP.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_size: int,
        attention: nn.Module,
        embedding_size: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(vocab_size, encoder_size, embedding_size, hidden_size, num_layers) < 1:
            raise ValueError(
                "speller vocab_size, encoder_size, embedding_size, hidden_size and num_layers "
                "must be positive"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"speller dropout must be in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.encoder_size = encoder_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.cells = nn.ModuleList(
            nn.LSTMCell(embedding_size + encoder_size if layer == 0 else hidden_size, hidden_size)
            for layer in range(num_layers)
        )
        self.attention = attention
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Sequential(  # CharacterDistribution, an MLP (LAS eq. 8)
            nn.Linear(hidden_size + encoder_size, hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, vocab_size),
        )

    def memory(self, encoded: Tensor, encoded_lens: Tensor) -> AttentionMemory:
        """Attention memory of encoder outputs (B, T', D) with lengths (B,); projects keys once."""
        padding = pad_mask(encoded_lens.to(encoded.device), encoded.size(1))
        return AttentionMemory(encoded, self.attention.project_keys(encoded), padding)

    def initial_state(self, memory: AttentionMemory) -> SpellerState:
        """Zero LSTM states and context, and the attention's initial alignment."""
        values = memory.values
        batch = values.size(0)
        zeros = values.new_zeros(batch, self.num_layers, self.hidden_size)
        return SpellerState(
            hidden=zeros,
            cell=zeros,
            context=values.new_zeros(batch, self.encoder_size),
            alignment=self.attention.initial_alignment(memory.pad_mask),
        )

    def step(
        self,
        tokens: Tensor,
        state: SpellerState,
        memory: AttentionMemory,
        attention_window: tuple[int, int] | None = None,
    ) -> tuple[Tensor, SpellerState]:
        """One decoding step: ``advance``, then ``logits`` of the new state.

        Args:
            tokens: (B,) previous tokens y_{t-1} (``<sos>`` at the first step).
            state: the state after the previous step.
            memory: the utterances' attention memory.
            attention_window: (left, right) listener frames around the previous alignment's
                median that attention may read (a decoding-time window, passed to the attention
                call), or None.

        Returns:
            logits (B, V) for y_t, and the new state.
        """
        state = self.advance(tokens, state, memory, attention_window)
        return self.logits(state.hidden[:, -1], state.context), state

    def advance(
        self,
        tokens: Tensor,
        state: SpellerState,
        memory: AttentionMemory,
        attention_window: tuple[int, int] | None = None,
    ) -> SpellerState:
        """The recurrence of a step (eq. 6-7): LSTM cells, then attention; arguments as ``step``."""
        x = torch.cat([self.embedding(tokens), state.context], dim=-1)  # (B, E + D)
        hidden, cell = [], []
        for layer, lstm_cell in enumerate(self.cells):
            if layer > 0:
                x = self.dropout(x)
            h, c = lstm_cell(x, (state.hidden[:, layer], state.cell[:, layer]))  # (B, H) each
            hidden.append(h)
            cell.append(c)
            x = h
        context, alignment = self.attention(  # c_t (B, D), α_t (B, T')
            x, memory.keys, memory.values, memory.pad_mask, state.alignment, window=attention_window
        )
        return SpellerState(torch.stack(hidden, 1), torch.stack(cell, 1), context, alignment)

    def logits(self, top_hidden: Tensor, context: Tensor) -> Tensor:
        """The character distribution's logits (eq. 8) from s_t (..., H) and c_t (..., D).

        Any leading shape: one step (B, H) or all teacher-forced steps at once (B, U, H).
        """
        return self.output(self.dropout(torch.cat([top_hidden, context], dim=-1)))

    def forward(
        self, memory: AttentionMemory, tokens_in: Tensor, sampling_probability: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """Teacher forcing with scheduled sampling (Bengio et al. 2015): ``step`` over every input.

        Args:
            memory: attention memory of the batch.
            tokens_in: (B, U) speller inputs, ``<sos>`` first.
            sampling_probability: at every step after the first, each utterance independently
                feeds its own previous prediction (argmax of the previous logits) instead of
                ``tokens_in`` with this probability.

        Returns:
            logits (B, U, V) and alignments (B, U, T') (averaged over heads).
        """
        if not 0.0 <= sampling_probability <= 1.0:
            raise ValueError(f"sampling_probability must be in [0, 1], got {sampling_probability}")
        state = self.initial_state(memory)
        batch, steps = tokens_in.shape
        record = None
        if (
            getattr(self.attention, "context_is_weighted_values", False)
            and torch.is_grad_enabled()
            and memory.values.requires_grad
        ):  # the values' gradient once for all steps (_ValuesGradient); the same result
            record = _StepRecord()
            keys = _ValuesGradient.apply(memory.keys, memory.values, record)
            memory = AttentionMemory(memory.values.detach(), keys, memory.pad_mask)
        tops, contexts, alignments = [], [], []
        tokens = tokens_in[:, 0]
        for step in range(steps):
            if step > 0:
                tokens = tokens_in[:, step]
                if sampling_probability > 0.0:
                    with torch.no_grad():
                        predicted = self.logits(tops[-1], contexts[-1]).argmax(dim=-1)
                    sampled = torch.rand(batch, device=tokens.device) < sampling_probability
                    tokens = torch.where(sampled, predicted, tokens)
            state = self.advance(tokens, state, memory)
            tops.append(state.hidden[:, -1])
            contexts.append(state.context)
            alignments.append(head_average(state.alignment))
            if record is not None:
                record.alignments.append(state.alignment.detach())
                if state.context.requires_grad:
                    state.context.register_hook(record.context_hook(step))
        # The output MLP once over all steps (B, U, H + D) rather than inside each step: the
        # same values as ``step``, but its weight gradients become one product each instead of
        # U rank-B products (benchmarks/README.md). Scheduled sampling also runs it per step,
        # without gradients, only to pick the fed-back predictions.
        logits = self.logits(torch.stack(tops, dim=1), torch.stack(contexts, dim=1))
        alignments = torch.stack(alignments, dim=1)
        if record is not None:
            logits, alignments = _NewBackwardPass.apply(logits, alignments, record)
        return logits, alignments
