"""The attention beam search as it was before joint CTC/attention scoring (main at 3e1e642),
kept verbatim as the reference that λ = β = 0 must reproduce (tests/test_joint_search.py).


Both searches run the model as the caller left it (call ``model.eval()`` first) under
``torch.inference_mode()``, on the features' device, with one host sync per step: the check
whether every utterance has finished.

Output length limits are ratios of each utterance's **encoder length T'** (listener frames, 80 ms
each with 3 pyramid layers): an utterance may spell at most ``floor(max_length_ratio · T')``
characters and at least ``floor(min_length_ratio · T')`` (capped at the maximum), not counting
``<eos>``. ``<eos>`` is suppressed before the minimum and forced at the maximum; ``<blank>`` and
``<sos>`` are never emitted (they are masked before the softmax, so the scores are
log-probabilities over the tokens that may actually follow).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from asr.models.attention import head_average
from asr.models.las import LAS
from asr.models.speller import AttentionMemory, SpellerState
from asr.text import Vocabulary

BLANK_ID, SOS_ID, EOS_ID = Vocabulary.blank_id, Vocabulary.sos_id, Vocabulary.eos_id


@dataclass
class Hypothesis:
    """One decoded utterance: what the search chose and what every caller needs of it.

    tokens: character ids, without ``<sos>``/``<eos>`` (U of them).
    log_probs: (U + 1,) log-probability of each token and of the final ``<eos>``, as the search
        scored it (``<blank>``/``<sos>`` masked, before length normalisation), on CPU.
    alignment: (U + 1, T') attention weights of every emitted token including ``<eos>``, over the
        utterance's own T' real encoder frames, on CPU (averaged over heads).
    score: total log-probability, the sum of ``log_probs`` (the value the search ranked by).
    reached_limit: the search forced ``<eos>`` at the maximum length (it never chose to stop).
    text: the tokens spelled out; set by :meth:`asr.recognizer.Recognizer.transcribe_batch`
        (the search knows no vocabulary).
    """

    tokens: list[int]
    log_probs: Tensor
    alignment: Tensor
    score: float
    reached_limit: bool = False
    text: str = ""


def _encode(model: LAS, features: Tensor, feature_lens: Tensor) -> tuple[AttentionMemory, Tensor]:
    listened = model.encode(features, feature_lens)
    memory = model.speller.memory(listened.encoded, listened.encoded_lens)
    return memory, listened.encoded_lens


def _length_limits(
    encoded_lens: Tensor, max_length_ratio: float, min_length_ratio: float
) -> tuple[Tensor, Tensor]:
    """(min_lens, max_lens), each (B,): character limits from encoder lengths (module docstring)."""
    if max_length_ratio < 0 or min_length_ratio < 0:
        raise ValueError("max_length_ratio and min_length_ratio must not be negative")
    lens = encoded_lens.double()
    max_lens = (lens * max_length_ratio).floor().long()
    min_lens = torch.minimum((lens * min_length_ratio).floor().long(), max_lens)
    return min_lens, max_lens


def _step_options(attention_window: tuple[int, int] | None) -> dict:
    """Keyword arguments of ``speller.step``: the window only when one is asked for, so a
    speller-like model without windows (benchmarks/peers.py's plain LAS) searches as well."""
    return {} if attention_window is None else {"attention_window": attention_window}


class _TokenRules:
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


def greedy_search(
    model: LAS,
    features: Tensor,
    feature_lens: Tensor,
    max_length_ratio: float = 2.0,
    min_length_ratio: float = 0.0,
    attention_window: tuple[int, int] | None = None,
) -> list[Hypothesis]:
    """The most likely token at every step, for a batch of utterances.

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        max_length_ratio, min_length_ratio: character limits per encoder frame (module docstring).
        attention_window: (left, right) listener frames around the previous alignment's median
            that attention may read at every step (``Speller.step``), or None for everywhere.

    Returns:
        One hypothesis per utterance, in batch order.
    """
    with torch.inference_mode():
        memory, encoded_lens = _encode(model, features, feature_lens)
        min_lens, max_lens = _length_limits(encoded_lens, max_length_ratio, min_length_ratio)
        state = model.speller.initial_state(memory)
        step_options = _step_options(attention_window)
        batch = features.size(0)
        rules = _TokenRules(model.speller.vocab_size, features.device)
        tokens = torch.full((batch,), SOS_ID, dtype=torch.long, device=features.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
        emitted, scores, alignments = [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory, **step_options)
            score, tokens = rules.log_probs(logits, step, min_lens, max_lens).max(dim=-1)
            emitted.append(tokens)
            scores.append(score)
            alignments.append(head_average(state.alignment))
            finished = finished | (tokens == EOS_ID)
            if bool(finished.all()):  # the one host sync per step
                break
        emitted = torch.stack(emitted, dim=1).cpu()  # (B, S)
        scores = torch.stack(scores, dim=1).cpu()  # (B, S)
        alignments = torch.stack(alignments, dim=1).cpu()  # (B, S, T')
        encoded_lens, max_lens = encoded_lens.cpu(), max_lens.tolist()

    # Outside inference mode, so the returned tensors are ordinary ones.
    hypotheses = []
    for b in range(batch):
        row = emitted[b].tolist()
        length = row.index(EOS_ID)  # characters before the first <eos>
        log_probs = scores[b, : length + 1].clone()
        hypotheses.append(
            Hypothesis(
                tokens=row[:length],
                log_probs=log_probs,
                alignment=alignments[b, : length + 1, : int(encoded_lens[b])].clone(),
                score=float(log_probs.sum()),
                reached_limit=length >= max_lens[b],
            )
        )
    return hypotheses


def beam_search(
    model: LAS,
    features: Tensor,
    feature_lens: Tensor,
    beam_size: int = 10,
    length_penalty: float = 1.0,
    max_length_ratio: float = 2.0,
    min_length_ratio: float = 0.0,
    attention_window: tuple[int, int] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search for a batch of utterances, K = ``beam_size`` beams each.

    Every step extends each alive beam by every token and keeps the 2K best candidates per
    utterance; an ``<eos>`` candidate ranked within the best K finishes a hypothesis, and the
    best K candidates that are not ``<eos>`` stay alive (so ``beam_size=1`` is greedy search).

    Finished hypotheses are ranked by the plain length normalisation
    ``score / (characters + 1) ** length_penalty`` (the +1 counts ``<eos>``; 0 disables it).
    An utterance stops once it holds K finished hypotheses and the best of them cannot be beaten:
    no alive beam's score, normalised by the same length, reaches it. Scores only fall as a
    hypothesis grows, so the rule is exact for ``length_penalty=0``; for a positive penalty it is
    the usual heuristic that ignores a longer hypothesis's smaller penalty. The search ends when
    every utterance has stopped or reached its maximum length.

    Every step also records, per alive beam, the beam it came from, its token, that token's
    log-probability and the attention it emitted with; a finished hypothesis follows these
    back-pointers, all hypotheses at once, from its ``<eos>`` back to the first step.

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        beam_size: K.
        length_penalty: exponent of the length normalisation.
        max_length_ratio, min_length_ratio: character limits per encoder frame (module docstring).
        attention_window: as for :func:`greedy_search`.

    Returns:
        Per utterance, its finished hypotheses (at most K), best first by normalised score.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must not be negative, got {length_penalty}")
    beams = beam_size
    with torch.inference_mode():
        memory, encoded_lens = _encode(model, features, feature_lens)
        min_lens, max_lens = _length_limits(encoded_lens, max_length_ratio, min_length_ratio)
        device, batch = features.device, features.size(0)
        dtype = torch.promote_types(memory.values.dtype, torch.float32)  # of the scores

        # Every utterance's memory and limits repeated for its K beams: row b * K + k.
        memory = AttentionMemory(*(field.repeat_interleave(beams, dim=0) for field in memory))
        beam_min_lens = min_lens.repeat_interleave(beams)
        beam_max_lens = max_lens.repeat_interleave(beams)
        state = model.speller.initial_state(memory)
        step_options = _step_options(attention_window)
        rules = _TokenRules(model.speller.vocab_size, device)
        tokens = torch.full((batch * beams,), SOS_ID, dtype=torch.long, device=device)
        # All beams start identical, so only beam 0 is alive at first.
        alive_scores = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        alive_scores[:, 0] = 0.0
        row_offsets = torch.arange(batch, device=device)[:, None] * beams  # (B, 1)
        candidate_rank = torch.arange(2 * beams, device=device)

        # Finished hypotheses, best first: normalised and raw score, the step that emitted
        # <eos>, the beam (alive before that step) it extended, and its <eos>'s log-probability.
        finished_normalized = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        finished_scores = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        finished_steps = torch.zeros((batch, beams), dtype=torch.long, device=device)
        finished_beams = torch.zeros((batch, beams), dtype=torch.long, device=device)
        finished_eos = torch.zeros((batch, beams), dtype=dtype, device=device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=device)

        # Back-pointers per step s: alive beam k came from beam origins[s][b, k] by emitting
        # tokens[s][b, k] with log-probability token_log_probs[s][b, k]; alignments[s][b, j] is
        # the attention of beam j (alive before step s) at step s.
        history_origins, history_tokens, history_log_probs, history_alignments = [], [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory, **step_options)
            log_probs = rules.log_probs(logits, step, beam_min_lens, beam_max_lens)
            vocab = log_probs.size(-1)
            candidates = alive_scores[:, :, None] + log_probs.view(batch, beams, vocab)
            candidate_scores, candidate_index = candidates.view(batch, -1).topk(2 * beams, dim=-1)
            candidate_log_probs = log_probs.view(batch, -1).gather(1, candidate_index)  # (B, 2K)
            candidate_origins = candidate_index // vocab  # (B, 2K)
            candidate_tokens = candidate_index % vocab
            is_eos = candidate_tokens == EOS_ID

            # <eos> candidates among the best K finish, unless their utterance has stopped.
            finishing = is_eos & (candidate_rank < beams) & ~stopped[:, None]
            new_scores = candidate_scores.masked_fill(~finishing, float("-inf"))
            normalizer = float(step + 1) ** length_penalty  # characters + <eos>
            pool_normalized = torch.cat([finished_normalized, new_scores / normalizer], dim=1)
            finished_normalized, best = pool_normalized.topk(beams, dim=-1)

            def keep_best(finished: Tensor, new: Tensor, best: Tensor = best) -> Tensor:
                return torch.cat([finished, new], dim=1).gather(1, best)

            finished_scores = keep_best(finished_scores, new_scores)
            finished_steps = keep_best(finished_steps, torch.full_like(candidate_origins, step))
            finished_beams = keep_best(finished_beams, candidate_origins)
            finished_eos = keep_best(finished_eos, candidate_log_probs)

            # The best K candidates that do not end stay alive.
            alive_scores, alive = candidate_scores.masked_fill(is_eos, float("-inf")).topk(beams)
            origins = candidate_origins.gather(1, alive)  # (B, K)
            tokens = candidate_tokens.gather(1, alive)  # (B, K)
            history_origins.append(origins)
            history_tokens.append(tokens)
            history_log_probs.append(candidate_log_probs.gather(1, alive))
            history_alignments.append(head_average(state.alignment).view(batch, beams, -1))

            bound = alive_scores.max(dim=-1).values / normalizer  # (B,)
            full = finished_normalized[:, -1] > float("-inf")
            stopped = (
                stopped | (bound == float("-inf")) | (full & (finished_normalized[:, 0] >= bound))
            )
            if bool(stopped.all()):  # the one host sync per step
                break
            rows = (origins + row_offsets).view(-1)  # (B * K,)
            state = SpellerState(*(field.index_select(0, rows) for field in state))
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
        finished_scores = finished_scores.tolist()
        finished_steps = finished_steps.tolist()
        encoded_lens, max_lens = encoded_lens.tolist(), max_lens.tolist()

    # Outside inference mode, so the returned tensors are ordinary ones.
    results = []
    for b in range(batch):
        hypotheses = []
        for k, (score, last_step) in enumerate(
            zip(finished_scores[b], finished_steps[b], strict=True)
        ):
            if score == float("-inf"):
                break  # the rest of the pool is empty too
            hypotheses.append(
                Hypothesis(
                    tokens=path_tokens[b, k, :last_step].tolist(),
                    log_probs=path_log_probs[b, k, : last_step + 1].clone(),
                    alignment=path_alignments[b, k, : last_step + 1, : encoded_lens[b]].clone(),
                    score=float(score),
                    reached_limit=last_step >= max_lens[b],
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
