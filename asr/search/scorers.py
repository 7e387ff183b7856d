"""The scores a beam search step adds beside the speller's: CTC prefix scores, a language
model's, a length bonus and a coverage term, with the state each keeps per alive beam.

:class:`StepScorer` holds every such state for N = B·K beams (row n = b·K + k), turns a step's
speller log-probabilities into each candidate's score increment (``score``), and reorders its
states, field by field, to the beams the search keeps (``select``). A term whose weight is 0 is
not computed at all, so with every weight 0 the increments are the speller's log-probabilities
themselves and the search is the plain attention beam search.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from asr.ctc_prefix import CTCPrefixExtensions, CTCPrefixScorer
from asr.models.language_model import CharLSTMLM
from asr.models.las import LAS
from asr.models.listener import ListenerOutput
from asr.models.word_lookahead import LookaheadWordLM
from asr.search.rules import TokenRules


class ScoredStep:
    """One step's candidates for every beam.

    increments: (N, W) what each candidate adds to its beam's score.
    tokens: (N, W) the candidates, or None when all V tokens are candidates, in id order.
    ctc_scores: (N, W) log ψ(g·c) of each candidate (``<eos>``: log p_ctc(g)), or None.
    lm_log_probs: (N, V) the LM's log p(c | g), or None.
    """

    def __init__(self, increments, tokens=None, ctc_scores=None, lm_log_probs=None) -> None:
        self.increments: Tensor = increments
        self.tokens: Tensor | None = tokens
        self.ctc_scores: Tensor | None = ctc_scores
        self.lm_log_probs: Tensor | None = lm_log_probs


class CandidateTotals(NamedTuple):
    """(B, 2K) log p_ctc-so-far and LM log-probability-so-far of the search's candidates."""

    ctc: Tensor
    lm: Tensor


class StepScorer:
    """Everything a beam adds to the speller's scores (asr.search.beam), for K beams a batch.

    Args:
        model: the acoustic model; its CTC head scores when ``ctc_weight`` > 0.
        listened: the batch's listener output (the CTC head reads it).
        beams: K.
        ctc_weight, pre_beam_ratio, language_model, lm_weight, length_bonus, coverage_weight,
            coverage_threshold: as :func:`asr.search.beam_search` takes them.
    """

    def __init__(
        self,
        model: LAS,
        listened: ListenerOutput,
        beams: int,
        ctc_weight: float = 0.0,
        pre_beam_ratio: float = 1.5,
        language_model: CharLSTMLM | LookaheadWordLM | None = None,
        lm_weight: float = 0.0,
        length_bonus: float = 0.0,
        coverage_weight: float = 0.0,
        coverage_threshold: float = 0.5,
    ) -> None:
        if not 0.0 <= ctc_weight < 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1), got {ctc_weight}")
        if pre_beam_ratio < 1.0:
            raise ValueError(f"pre_beam_ratio must be at least 1, got {pre_beam_ratio}")
        if lm_weight < 0 or coverage_weight < 0:
            raise ValueError("lm_weight and coverage_weight must not be negative")
        vocab_size = model.speller.vocab_size
        if lm_weight > 0 and language_model is None:
            raise ValueError(f"lm_weight {lm_weight} needs a language model")
        if lm_weight > 0 and language_model.vocab_size != vocab_size:
            raise ValueError(
                f"the language model spells {language_model.vocab_size} tokens, the acoustic "
                f"model {vocab_size}"
            )
        if ctc_weight > 0 and getattr(model, "ctc_head", None) is None:
            raise ValueError("ctc_weight > 0 needs a CTC head, and this model has none")
        batch = listened.encoded.size(0)
        device = listened.encoded.device
        self.batch, self.beams = batch, beams
        self.ctc_weight, self.lm_weight = ctc_weight, lm_weight
        self.length_bonus = length_bonus
        self.coverage_weight, self.coverage_threshold = coverage_weight, coverage_threshold
        self.pre_beam = min(vocab_size, math.ceil(pre_beam_ratio * beams))

        self.ctc: CTCPrefixScorer | None = None
        if ctc_weight > 0:
            self.ctc = CTCPrefixScorer(*model.ctc_log_probs(listened))
            self.ctc_state = self.ctc.initial_state(beams)
            self._extensions: CTCPrefixExtensions | None = None
        self.language_model = language_model if lm_weight > 0 else None
        if self.language_model is not None:
            # CharLSTMLM's LMState or LookaheadWordLM's LookaheadState: batch-first fields.
            self.lm_state = self.language_model.initial_state(batch * beams, device)
            self.lm_totals = torch.zeros(batch, beams, dtype=torch.float64, device=device)
            self._candidate_lm: Tensor | None = None
        if coverage_weight > 0:
            frames = listened.encoded.size(1)
            self.coverage = listened.encoded.new_zeros(batch * beams, frames)  # Σ_i α_ij

    def score(
        self, tokens: Tensor, log_probs: Tensor, alignment: Tensor, rules: TokenRules
    ) -> ScoredStep:
        """Candidates and their increments after a speller step.

        Args:
            tokens: (N,) the tokens the beams just fed to the speller (the LM reads them too).
            log_probs: (N, V) the speller's log-probabilities of the next token (within rules).
            alignment: (N, T') the attention of this step (head-averaged).
            rules: the search's token rules.
        """
        increments = log_probs
        if self.ctc is not None:
            increments = (1.0 - self.ctc_weight) * log_probs
        lm_log_probs = None
        if self.language_model is not None:
            lm_log_probs, self.lm_state = self.language_model.step(tokens, self.lm_state)
            lm_log_probs = lm_log_probs.to(log_probs.dtype)
            increments = increments + self.lm_weight * lm_log_probs
        if self.length_bonus != 0:
            increments = increments + self.length_bonus * rules.not_eos.to(increments.dtype)
        if self.coverage_weight > 0:
            # Chorowski & Jaitly 2017, eq. 11: τ · Σ_j [Σ_i α_ij > threshold], added step by step
            # as the frames this step's attention newly covers; the same for every candidate.
            before = (self.coverage > self.coverage_threshold).sum(dim=-1)
            self.coverage = self.coverage + alignment
            gained = (self.coverage > self.coverage_threshold).sum(dim=-1) - before  # (N,)
            increments = increments + self.coverage_weight * gained[:, None].to(increments.dtype)
        if self.ctc is None:
            return ScoredStep(increments, lm_log_probs=lm_log_probs)
        # The pre-beam: only the best candidates by the other scores get a CTC prefix score.
        increments, candidates = increments.topk(self.pre_beam, dim=-1)  # (N, C)
        ctc_scores, self._extensions = self.ctc.score(self.ctc_state, candidates)
        ctc_gain = CTCPrefixScorer.increments(self.ctc_state, ctc_scores)
        increments = increments + self.ctc_weight * ctc_gain
        return ScoredStep(increments, candidates, ctc_scores, lm_log_probs)

    def candidate_totals(
        self, scored: ScoredStep, rows: Tensor, columns: Tensor, tokens: Tensor
    ) -> CandidateTotals:
        """CTC and LM log-probabilities of the search's chosen candidates (0 where unscored).

        rows: (B·2K,) each candidate's beam row n; columns, tokens: (B, 2K) its column in
        ``scored`` and its token.
        """
        zeros = torch.zeros(tokens.shape, dtype=scored.increments.dtype, device=tokens.device)
        ctc = lm = zeros
        if scored.ctc_scores is not None:
            ctc = scored.ctc_scores[rows, columns.view(-1)].view_as(tokens)
        if scored.lm_log_probs is not None:
            step_lm = scored.lm_log_probs[rows, tokens.view(-1)].double()
            self._candidate_lm = (self.lm_totals.view(-1)[rows] + step_lm).view_as(tokens)
            lm = self._candidate_lm.to(zeros.dtype)
        return CandidateTotals(ctc, lm)

    def select(self, rows: Tensor, columns: Tensor, alive: Tensor) -> None:
        """Keep the beams the search chose: new row n is old row ``rows[n]`` (N,) extended by
        its candidate in column ``columns[n]`` (N,); ``alive`` (B, K) indexes the 2K candidates
        that ``candidate_totals`` saw."""
        if self.ctc is not None:
            self.ctc_state = CTCPrefixScorer.select(self.ctc_state, self._extensions, rows, columns)
        if self.language_model is not None:
            self.lm_state = type(self.lm_state)(*(f.index_select(0, rows) for f in self.lm_state))
            self.lm_totals = self._candidate_lm.gather(1, alive)
        if self.coverage_weight > 0:
            self.coverage = self.coverage.index_select(0, rows)
