"""Beam search over ``Speller.step``, batched over utterances, with joint CTC/attention scoring,
shallow fusion with a language model, and the usual length, coverage and end-of-sentence rules.

Every step extends the K alive beams of every utterance at once (rows n = b·K + k); each
candidate c after a hypothesis g adds (:class:`asr.search.scorers.StepScorer`)

    (1 - λ) · log p_att(c | g, X)                         the speller (λ = ``ctc_weight``)
    + λ · (log ψ(g·c) - log ψ(g))                         CTC prefix score (Watanabe et al. 2017)
    + β · log p_LM(c | g)                                 shallow fusion (β = ``lm_weight``)
    + length_bonus                                        for every character, not ``<eos>``
    + coverage_weight · (newly covered encoder frames)    Chorowski & Jaitly 2017, eq. 11

With every weight 0 this is the plain attention beam search, computed by the same operations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.models.attention import head_average
from asr.models.language_model import CharLSTMLM
from asr.models.las import LAS
from asr.models.speller import AttentionMemory, SpellerState
from asr.search.rules import (
    EOS_ID,
    SOS_ID,
    Hypothesis,
    TokenRules,
    encode,
    length_limits,
    step_options,
)
from asr.search.scorers import StepScorer

NEG_INF = float("-inf")


def beam_search(
    model: LAS,
    features: Tensor,
    feature_lens: Tensor,
    beam_size: int = 10,
    length_penalty: float = 1.0,
    max_length_ratio: float = 2.0,
    min_length_ratio: float = 0.0,
    attention_window: tuple[int, int] | None = None,
    *,
    ctc_weight: float = 0.0,
    pre_beam_ratio: float = 1.5,
    language_model: CharLSTMLM | None = None,
    lm_weight: float = 0.0,
    length_bonus: float = 0.0,
    coverage_weight: float = 0.0,
    coverage_threshold: float = 0.5,
    eos_threshold: float | None = None,
    end_detect: int = 0,
    end_detect_margin: float = 10.0,
) -> list[list[Hypothesis]]:
    """Beam search for a batch of utterances, K = ``beam_size`` beams each.

    Every step scores each alive beam's candidates (module docstring) and keeps the 2K best
    per utterance; an ``<eos>`` candidate ranked within the best K finishes a hypothesis, and
    the best K candidates that are not ``<eos>`` stay alive (so ``beam_size=1`` with every
    weight 0 is greedy search). Without CTC every token is a candidate; with CTC, the
    ``ceil(pre_beam_ratio · K)`` best of each beam by the other terms (ESPnet's pre-beam on
    its "full" scorers, the speller and LM), and only those get a CTC prefix score, all
    utterances × beams × candidates in one :class:`asr.ctc_prefix.CTCPrefixScorer` call.

    Finished hypotheses are ranked by the length normalisation
    ``score / (characters + 1) ** length_penalty`` (the +1 counts ``<eos>``; 0 disables it).
    An utterance stops once it holds K finished hypotheses and the best of them cannot be beaten:
    no alive beam's score, normalised by the same length, reaches it. Exact when every term only
    lowers a score (length_penalty, length_bonus and coverage_weight 0); otherwise the usual
    heuristic. With ``end_detect`` = M > 0 it also stops (ESPnet's ``end_detect``) once the best
    hypotheses that ended at each of the last M steps all score more than ``end_detect_margin``
    below the best one ended so far. The search ends when every utterance has stopped or
    reached its maximum length. With CTC, the maximum is also capped at the CTC head's frames,
    since CTC cannot spell more labels than it has frames.

    Every step also records, per alive beam, the beam it came from, its token, that token's
    speller log-probability and the attention it emitted with; a finished hypothesis follows
    these back-pointers, all hypotheses at once, from its ``<eos>`` back to the first step.

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        beam_size: K.
        length_penalty: exponent of the length normalisation.
        max_length_ratio, min_length_ratio: character limits per encoder frame (rules).
        attention_window: as for :func:`asr.search.greedy_search`.
        ctc_weight: λ in [0, 1); > 0 needs the model's CTC head.
        pre_beam_ratio: candidates per beam scored by CTC, as a multiple of K.
        language_model: the LM for shallow fusion (needed when ``lm_weight`` > 0), on the
            features' device, with the acoustic model's vocabulary.
        lm_weight: β.
        length_bonus: added per character.
        coverage_weight, coverage_threshold: τ and the cumulative attention a frame needs to
            count as covered.
        eos_threshold: ``<eos>`` only where its speller log-probability is at least this many
            times the best token's (SpeechBrain; >= 1), or None.
        end_detect, end_detect_margin: M (0: off) and the margin of end detection.

    Returns:
        Per utterance, its finished hypotheses (at most K), best first by normalised score. An
        utterance whose every candidate became impossible (CTC cannot place any of them on the
        audio) gets one empty hypothesis scored -inf and marked ``reached_limit``.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must not be negative, got {length_penalty}")
    if end_detect < 0:
        raise ValueError(f"end_detect must not be negative, got {end_detect}")
    beams = beam_size
    with torch.inference_mode():
        listened, memory = encode(model, features, feature_lens)
        encoded_lens = listened.encoded_lens
        min_lens, max_lens = length_limits(encoded_lens, max_length_ratio, min_length_ratio)
        device, batch = features.device, features.size(0)
        dtype = torch.promote_types(memory.values.dtype, torch.float32)  # of the scores
        scorer = StepScorer(
            model,
            listened,
            beams,
            ctc_weight=ctc_weight,
            pre_beam_ratio=pre_beam_ratio,
            language_model=language_model,
            lm_weight=lm_weight,
            length_bonus=length_bonus,
            coverage_weight=coverage_weight,
            coverage_threshold=coverage_threshold,
        )
        if scorer.ctc is not None:  # CTC spells at most one label a frame: stop there
            max_lens = torch.minimum(max_lens, scorer.ctc.lens)
            min_lens = torch.minimum(min_lens, max_lens)

        # Every utterance's memory and limits repeated for its K beams: row b * K + k.
        memory = AttentionMemory(*(field.repeat_interleave(beams, dim=0) for field in memory))
        beam_min_lens = min_lens.repeat_interleave(beams)
        beam_max_lens = max_lens.repeat_interleave(beams)
        state = model.speller.initial_state(memory)
        options = step_options(attention_window)
        rules = TokenRules(model.speller.vocab_size, device)
        tokens = torch.full((batch * beams,), SOS_ID, dtype=torch.long, device=device)
        # All beams start identical, so only beam 0 is alive at first.
        alive_scores = torch.full((batch, beams), NEG_INF, dtype=dtype, device=device)
        alive_scores[:, 0] = 0.0
        row_offsets = torch.arange(batch, device=device)[:, None] * beams  # (B, 1)
        candidate_rank = torch.arange(2 * beams, device=device)

        # Finished hypotheses, best first: normalised and raw score, the step that emitted
        # <eos>, the beam (alive before that step) it extended, its <eos>'s speller
        # log-probability, and its CTC and LM log-probabilities (0 when not scored).
        def pool(kind=dtype, fill=0.0) -> Tensor:
            return torch.full((batch, beams), fill, dtype=kind, device=device)

        finished_normalized, finished_scores = pool(fill=NEG_INF), pool(fill=NEG_INF)
        finished_steps, finished_beams = pool(torch.long, 0), pool(torch.long, 0)
        finished_eos, finished_ctc, finished_lm = pool(), pool(), pool()
        stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        best_ended = torch.full((batch,), NEG_INF, dtype=dtype, device=device)
        recent_ended: list[Tensor] = []  # (B,) best raw score ended at each step, for end_detect

        # Back-pointers per step s: alive beam k came from beam origins[s][b, k] by emitting
        # tokens[s][b, k] with log-probability token_log_probs[s][b, k]; alignments[s][b, j] is
        # the attention of beam j (alive before step s) at step s.
        history_origins, history_tokens, history_log_probs, history_alignments = [], [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory, **options)
            log_probs = rules.log_probs(logits, step, beam_min_lens, beam_max_lens)
            if eos_threshold is not None:
                log_probs = rules.eos_threshold(log_probs, eos_threshold)
            alignment = head_average(state.alignment)  # (N, T')
            scored = scorer.score(tokens, log_probs, alignment, rules)
            width = scored.increments.size(-1)
            candidates = alive_scores[:, :, None] + scored.increments.view(batch, beams, width)
            candidate_scores, candidate_index = candidates.view(batch, -1).topk(2 * beams, dim=-1)
            candidate_origins = candidate_index // width  # (B, 2K)
            candidate_columns = candidate_index % width
            candidate_rows = (candidate_origins + row_offsets).view(-1)  # (B * 2K,) into N
            if scored.tokens is None:  # every token a candidate: the column is the token
                candidate_tokens = candidate_columns
                candidate_log_probs = log_probs.view(batch, -1).gather(1, candidate_index)
            else:
                flat_columns = candidate_columns.view(-1)
                candidate_tokens = scored.tokens[candidate_rows, flat_columns].view(batch, -1)
                candidate_log_probs = log_probs[candidate_rows, candidate_tokens.view(-1)]
                candidate_log_probs = candidate_log_probs.view(batch, -1)
            candidate_ctc, candidate_lm = scorer.candidate_totals(
                scored, candidate_rows, candidate_columns, candidate_tokens
            )
            is_eos = candidate_tokens == EOS_ID

            # <eos> candidates among the best K finish, unless their utterance has stopped.
            finishing = is_eos & (candidate_rank < beams) & ~stopped[:, None]
            new_scores = candidate_scores.masked_fill(~finishing, NEG_INF)
            normalizer = float(step + 1) ** length_penalty  # characters + <eos>
            pool_normalized = torch.cat([finished_normalized, new_scores / normalizer], dim=1)
            finished_normalized, best = pool_normalized.topk(beams, dim=-1)

            def keep_best(finished: Tensor, new: Tensor, best: Tensor = best) -> Tensor:
                return torch.cat([finished, new], dim=1).gather(1, best)

            finished_scores = keep_best(finished_scores, new_scores)
            finished_steps = keep_best(finished_steps, torch.full_like(candidate_origins, step))
            finished_beams = keep_best(finished_beams, candidate_origins)
            finished_eos = keep_best(finished_eos, candidate_log_probs)
            finished_ctc = keep_best(finished_ctc, candidate_ctc)
            finished_lm = keep_best(finished_lm, candidate_lm)

            # The best K candidates that do not end stay alive.
            alive_scores, alive = candidate_scores.masked_fill(is_eos, NEG_INF).topk(beams)
            origins = candidate_origins.gather(1, alive)  # (B, K)
            tokens = candidate_tokens.gather(1, alive)  # (B, K)
            history_origins.append(origins)
            history_tokens.append(tokens)
            history_log_probs.append(candidate_log_probs.gather(1, alive))
            history_alignments.append(alignment.view(batch, beams, -1))

            bound = alive_scores.max(dim=-1).values / normalizer  # (B,)
            full = finished_normalized[:, -1] > NEG_INF
            stopped = stopped | (bound == NEG_INF) | (full & (finished_normalized[:, 0] >= bound))
            if end_detect > 0:
                ended_now = new_scores.max(dim=-1).values  # (B,)
                best_ended = torch.maximum(best_ended, ended_now)
                recent_ended = [*recent_ended[-(end_detect - 1) :], ended_now][-end_detect:]
                if len(recent_ended) == end_detect:
                    recent = torch.stack(recent_ended)  # (M, B)
                    far_below = (recent > NEG_INF) & (recent - best_ended < -end_detect_margin)
                    stopped = stopped | far_below.all(dim=0)
            if bool(stopped.all()):  # the one host sync per step
                break
            rows = (origins + row_offsets).view(-1)  # (B * K,)
            state = SpellerState(*(field.index_select(0, rows) for field in state))
            scorer.select(rows, candidate_columns.gather(1, alive).view(-1), alive)
            tokens = tokens.view(-1)

        paths = _follow_back_pointers(
            torch.stack(history_origins),
            torch.stack(history_tokens),
            torch.stack(history_log_probs),
            torch.stack(history_alignments),
            finished_steps,
            finished_beams,
            finished_eos,
        )
        path_tokens, path_log_probs, path_alignments = (tensor.cpu() for tensor in paths)
        finished_scores, finished_steps = finished_scores.tolist(), finished_steps.tolist()
        finished_ctc, finished_lm = finished_ctc.tolist(), finished_lm.tolist()
        encoded_lens, max_lens = encoded_lens.tolist(), max_lens.tolist()

    # Outside inference mode, so the returned tensors are ordinary ones.
    results = []
    for b in range(batch):
        hypotheses = []
        for k, (score, last_step) in enumerate(
            zip(finished_scores[b], finished_steps[b], strict=True)
        ):
            if score == NEG_INF:
                break  # the rest of the pool is empty too
            hypotheses.append(
                Hypothesis(
                    tokens=path_tokens[b, k, :last_step].tolist(),
                    log_probs=path_log_probs[b, k, : last_step + 1].clone(),
                    alignment=path_alignments[b, k, : last_step + 1, : encoded_lens[b]].clone(),
                    score=float(score),
                    reached_limit=last_step >= max_lens[b],
                    ctc_score=finished_ctc[b][k] if scorer.ctc is not None else None,
                    lm_score=finished_lm[b][k] if scorer.language_model is not None else None,
                )
            )
        if not hypotheses:  # every candidate was impossible (under CTC): say so, empty
            frames = encoded_lens[b]
            hypotheses.append(
                Hypothesis(
                    tokens=[],
                    log_probs=torch.full((1,), NEG_INF, dtype=path_log_probs.dtype),
                    alignment=torch.full((1, frames), 1.0 / frames, dtype=path_alignments.dtype),
                    score=NEG_INF,
                    reached_limit=True,
                )
            )
        results.append(hypotheses)
    return results


def _follow_back_pointers(
    origins: Tensor,
    tokens: Tensor,
    log_probs: Tensor,
    alignments: Tensor,
    last_steps: Tensor,
    last_beams: Tensor,
    eos_log_probs: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every finished hypothesis's tokens, their log-probabilities and alignment at once.

    Args:
        origins, tokens, log_probs: (S, B, K) back-pointers of the alive beams per step.
        alignments: (S, B, K, T') attention of the beams alive before each step.
        last_steps: (B, N) the step at which each of N finished hypotheses emitted ``<eos>``.
        last_beams: (B, N) the beam, alive before that step, that it extended.
        eos_log_probs: (B, N) its ``<eos>``'s log-probability.

    Returns:
        tokens (B, N, S), log-probabilities (B, N, S) and alignments (B, N, S, T'); entry s is
        the hypothesis's step s, valid up to ``last_steps`` (its ``<eos>``; the token there is
        ``<eos>``), arbitrary after it.
    """
    steps = origins.size(0)
    beam = last_beams.clone()  # per hypothesis: the beam alive after step s, for s < last step
    path_tokens = torch.full((steps, *beam.shape), EOS_ID, dtype=torch.long, device=beam.device)
    path_log_probs = eos_log_probs.new_zeros((steps, *beam.shape))
    attended = torch.zeros_like(path_tokens)  # the beam whose attention step s used
    for step in range(steps - 1, -1, -1):  # a step at a time, all hypotheses together
        at_end, before_end = last_steps == step, last_steps > step
        path_log_probs[step] = torch.where(at_end, eos_log_probs, path_log_probs[step])
        came_from = origins[step].gather(1, beam)
        path_tokens[step] = torch.where(before_end, tokens[step].gather(1, beam), EOS_ID)
        path_log_probs[step] = torch.where(
            before_end, log_probs[step].gather(1, beam), path_log_probs[step]
        )
        beam = torch.where(before_end, came_from, beam)
        attended[step] = beam
    batch = torch.arange(beam.size(0), device=beam.device)[None, :, None]  # (1, B, 1)
    step_index = torch.arange(steps, device=beam.device)[:, None, None]  # (S, 1, 1)
    path_alignments = alignments[step_index, batch, attended]  # (S, B, N, T')
    return (
        path_tokens.permute(1, 2, 0),
        path_log_probs.permute(1, 2, 0),
        path_alignments.permute(1, 2, 0, 3),
    )
