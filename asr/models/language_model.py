"""A character LSTM language model, for shallow fusion and N-best rescoring in the search.

It spells with the acoustic model's vocabulary (``asr.text.Vocabulary``): a sentence
y_1 … y_U is read as ``<sos> y_1 … y_U`` and predicts ``y_1 … y_U <eos>``, so
p(y) = Π_u p(y_u | <sos>, y_<u) · p(<eos> | <sos>, y). ``<blank>`` (id 0) only pads.

Like the speller, one ``step`` serves the search and its state is explicit and batch-first
(``LMState``), so a beam search reorders it with ``index_select(0, ...)`` on every field;
``forward`` runs the same LSTM over whole teacher-forced sentences for training and gives the
same values as the loop over ``step``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.text import Vocabulary


class LMState(NamedTuple):
    """The language model's recurrent state after a step; both fields are batch-first.

    hidden: (N, L, H) LSTM hidden states, bottom layer first.
    cell: (N, L, H) LSTM cell states.
    """

    hidden: Tensor
    cell: Tensor


class CharLSTMLM(nn.Module):
    """Embedding, a stacked LSTM and a linear output layer over the vocabulary.

    Dropout (Zaremba et al. 2014) is applied to the embeddings, between LSTM layers and to the
    top layer's output, in training mode only.

    Args:
        vocab_size: V, number of tokens including the special ones.
        embedding_size: width of the token embedding.
        hidden_size: H, width of every LSTM layer.
        num_layers: L, stacked LSTM layers.
        dropout: dropout probability.

    >>> lm = CharLSTMLM(vocab_size=31, embedding_size=8, hidden_size=16, num_layers=2)
    >>> state = lm.initial_state(3)
    >>> log_probs, state = lm.step(torch.full((3,), Vocabulary.sos_id), state)
    >>> tuple(log_probs.shape), tuple(state.hidden.shape)
    ((3, 31), (3, 2, 16))
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 128,
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if min(vocab_size, embedding_size, hidden_size, num_layers) < 1:
            raise ValueError(
                "language model vocab_size, embedding_size, hidden_size and num_layers must be "
                "positive"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"language model dropout must be in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self._arguments = dict(
            vocab_size=vocab_size,
            embedding_size=embedding_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            embedding_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # nn.LSTM drops between layers only
        )
        self.output = nn.Linear(hidden_size, vocab_size)

    def hyperparameters(self) -> dict:
        """The constructor arguments, so a checkpoint can rebuild the model (asr.checkpoint)."""
        return dict(self._arguments)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> LMState:
        """Zero LSTM states for N = ``batch_size`` sentences, in the parameters' dtype."""
        weight = self.output.weight
        zeros = weight.new_zeros(batch_size, self.num_layers, self.hidden_size, device=device)
        return LMState(hidden=zeros, cell=zeros)

    def step(self, tokens: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        """One token further.

        Args:
            tokens: (N,) previous tokens (``<sos>`` at the first step).
            state: the state after the previous step.

        Returns:
            log-probabilities (N, V) of the next token (at least float32), and the new state.
        """
        embedded = self.dropout(self.embedding(tokens[:, None]))  # (N, 1, E)
        # nn.LSTM keeps layers first: (L, N, H).
        hx = (state.hidden.transpose(0, 1).contiguous(), state.cell.transpose(0, 1).contiguous())
        top, (hidden, cell) = self.lstm(embedded, hx)  # top (N, 1, H)
        logits = self.output(self.dropout(top[:, 0]))  # (N, V)
        log_probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(-1)
        return log_probs, LMState(hidden.transpose(0, 1), cell.transpose(0, 1))

    def forward(self, tokens_in: Tensor, lens: Tensor) -> Tensor:
        """Teacher-forced logits of whole sentences.

        Args:
            tokens_in: (B, U) inputs, ``<sos>`` first, padded past each length.
            lens: (B,) real inputs per sentence.

        Returns:
            logits (B, U, V) of the next token at every position; zero at padded positions. The
            LSTM reads left to right, so padding never changes a real position.
        """
        top, _ = self.lstm(self.dropout(self.embedding(tokens_in)))  # (B, U, H)
        logits = self.output(self.dropout(top))  # (B, U, V)
        padding = pad_mask(lens.to(logits.device), tokens_in.size(1))  # (B, U)
        return logits.masked_fill(padding[..., None], 0.0)

    def log_likelihood(self, tokens: Tensor, lens: Tensor) -> Tensor:
        """(B,) log p(y) of each sentence, ``<eos>`` included: the N-best rescoring term.

        Args:
            tokens: (B, U) token ids without ``<sos>``/``<eos>``, padded with ``<blank>``.
            lens: (B,) tokens per sentence (0 for an empty sentence).
        """
        lens = lens.to(tokens.device)
        batch = tokens.size(0)
        # Input "<sos> y_1 … y_U" and output "y_1 … y_U <eos>", both (B, U + 1), as LAS builds.
        tokens_in = torch.cat([tokens.new_full((batch, 1), Vocabulary.sos_id), tokens], dim=1)
        tokens_out = torch.cat([tokens, tokens.new_zeros(batch, 1)], dim=1)
        tokens_out = tokens_out.scatter(1, lens[:, None], Vocabulary.eos_id)
        logits = self(tokens_in, lens + 1)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        token_log_probs = -nn.functional.cross_entropy(
            logits.transpose(1, 2), tokens_out, reduction="none"
        )  # (B, U + 1)
        real = ~pad_mask(lens + 1, tokens_out.size(1))
        return (token_log_probs * real).sum(dim=1)

    def loss(self, tokens: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy per real output token (the tokens and ``<eos>``), for training.

        Args: as ``log_likelihood``.

        Returns:
            the mean loss in nats per token (its exp is the perplexity), and the number of real
            output tokens, to weight batches when averaging over a data set.
        """
        num_tokens = (lens.to(tokens.device) + 1).sum()
        return -self.log_likelihood(tokens, lens).sum() / num_tokens, num_tokens
