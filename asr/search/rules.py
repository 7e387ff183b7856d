"""What every search shares: the hypothesis it returns, the length limits, the token rules.

Output length limits are ratios of each utterance's **encoder length T'** (listener frames, 80 ms
each with 3 pyramid layers): an utterance may spell at most ``floor(max_length_ratio · T')``
characters and at least ``floor(min_length_ratio · T')`` (capped at the maximum), not counting
``<eos>``. ``<eos>`` is suppressed before the minimum and forced at the maximum; ``<blank>`` and
``<sos>`` are never emitted (they are masked before the softmax, so the scores are
log-probabilities over the tokens that may actually follow).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from asr.models.las import LAS
from asr.models.listener import ListenerOutput
from asr.models.speller import AttentionMemory
from asr.text import Vocabulary

BLANK_ID, SOS_ID, EOS_ID = Vocabulary.blank_id, Vocabulary.sos_id, Vocabulary.eos_id


@dataclass
class Hypothesis:
    """One decoded utterance: what the search chose and what every caller needs of it.

    tokens: character ids, without ``<sos>``/``<eos>`` (U of them).
    log_probs: (U + 1,) the speller's log-probability of each token and of the final ``<eos>``,
        as the search saw it (``<blank>``/``<sos>`` masked), on CPU; CTC greedy search gives
        each token's CTC posterior at the frame that emitted it instead.
    alignment: (U + 1, T') attention weights of every emitted token including ``<eos>``, over the
        utterance's own T' real encoder frames, on CPU (averaged over heads).
    score: what the search ranked by, before length normalisation: the sum of ``log_probs`` for
        attention-only search; with joint scoring (1 - λ)·attention + λ·CTC + β·LM + bonuses
        (:func:`asr.search.beam_search`), plus any N-best rescoring weight × ``lm_score``.
    reached_limit: the search forced ``<eos>`` at the maximum length (it never chose to stop).
    ctc_score: log p_ctc(tokens | X) when the beam search scored with CTC (CTC greedy search:
        its best path's log-probability), else None.
    lm_score: log p_LM(tokens <eos>) when a language model scored it, else None.
    text: the tokens spelled out; set by :meth:`asr.recognizer.Recognizer.transcribe_batch`
        (the search knows no vocabulary).
    nbest: the N best hypotheses of the utterance, this one first, when N-best output was
        asked for (``DecodingOptions.nbest`` > 1); empty otherwise.
    """

    tokens: list[int]
    log_probs: Tensor
    alignment: Tensor
    score: float
    reached_limit: bool = False
    ctc_score: float | None = None
    lm_score: float | None = None
    text: str = ""
    nbest: list[Hypothesis] = field(default_factory=list)

    @property
    def attention_score(self) -> float:
        """The speller's log-probability of the hypothesis, ``<eos>`` included."""
        return float(self.log_probs.sum())


def encode(
    model: LAS, features: Tensor, feature_lens: Tensor
) -> tuple[ListenerOutput, AttentionMemory]:
    """The listener's output and the speller's attention memory of a batch."""
    listened = model.encode(features, feature_lens)
    return listened, model.speller.memory(listened.encoded, listened.encoded_lens)


def length_limits(
    encoded_lens: Tensor, max_length_ratio: float, min_length_ratio: float
) -> tuple[Tensor, Tensor]:
    """(min_lens, max_lens), each (B,): character limits from encoder lengths (module docstring)."""
    if max_length_ratio < 0 or min_length_ratio < 0:
        raise ValueError("max_length_ratio and min_length_ratio must not be negative")
    lens = encoded_lens.double()
    max_lens = (lens * max_length_ratio).floor().long()
    min_lens = torch.minimum((lens * min_length_ratio).floor().long(), max_lens)
    return min_lens, max_lens


def step_options(attention_window: tuple[int, int] | None) -> dict:
    """Keyword arguments of ``speller.step``: the window only when one is asked for, so a
    speller-like model without windows (benchmarks/peers/plain.py's LAS) searches as well."""
    return {} if attention_window is None else {"attention_window": attention_window}


class TokenRules:
    """Which tokens may follow, computed once per search: (V,) masks on the search's device."""

    def __init__(self, vocab_size: int, device: torch.device) -> None:
        ids = torch.arange(vocab_size, device=device)
        self.is_eos = ids == EOS_ID
        self.not_eos = ~self.is_eos
        self.never = (ids == BLANK_ID) | (ids == SOS_ID)

    def log_probs(self, logits: Tensor, step: int, min_lens: Tensor, max_lens: Tensor) -> Tensor:
        """Log-probabilities (N, V) of the next token after ``step`` characters, within limits.

        logits (N, V); min_lens, max_lens (N,) in characters.
        """
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half -> float
        log_probs = logits.masked_fill(self.never, float("-inf")).log_softmax(dim=-1)
        too_short = (step < min_lens)[:, None]  # (N, 1)
        at_limit = (step >= max_lens)[:, None]
        forbidden = (self.is_eos & too_short) | (self.not_eos & at_limit)  # (N, V)
        return log_probs.masked_fill(forbidden, float("-inf"))

    def eos_threshold(self, log_probs: Tensor, threshold: float) -> Tensor:
        """``<eos>`` kept only where its log-probability is at least ``threshold`` times the
        best token's (SpeechBrain's ``eos_threshold``; both are <= 0, so a threshold of 1.5
        allows ``<eos>`` within 1.5x the best's log-probability). log_probs (N, V).

        Where ``<eos>`` is the only token allowed (at the length limit) it is the best one and
        is kept for any threshold >= 1.
        """
        best = log_probs.max(dim=-1, keepdim=True).values  # (N, 1)
        eos = log_probs[:, EOS_ID : EOS_ID + 1]
        too_unlikely = (eos < threshold * best) & self.is_eos  # (N, V)
        return log_probs.masked_fill(too_unlikely, float("-inf"))
