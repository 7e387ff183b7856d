"""Greedy and beam search over ``Speller.step``, batched over utterances.

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
    """One decoded transcript.

    tokens: character ids, without ``<sos>``/``<eos>``.
    score: total log-probability of the characters and ``<eos>`` (before length normalisation).
    alignment: (U + 1, T') attention weights of every emitted token including ``<eos>``, over the
        utterance's own T' real encoder frames, on CPU.
    """

    tokens: list[int]
    score: float
    alignment: Tensor


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
) -> list[Hypothesis]:
    """The most likely token at every step, for a batch of utterances.

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        max_length_ratio, min_length_ratio: character limits per encoder frame (module docstring).

    Returns:
        One hypothesis per utterance, in batch order.
    """
    with torch.inference_mode():
        memory, encoded_lens = _encode(model, features, feature_lens)
        min_lens, max_lens = _length_limits(encoded_lens, max_length_ratio, min_length_ratio)
        state = model.speller.initial_state(memory)
        batch = features.size(0)
        rules = _TokenRules(model.speller.vocab_size, features.device)
        tokens = torch.full((batch,), SOS_ID, dtype=torch.long, device=features.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
        emitted, scores, alignments = [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory)
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
        encoded_lens = encoded_lens.cpu()

    # Outside inference mode, so the returned alignments are ordinary tensors.
    hypotheses = []
    for b in range(batch):
        row = emitted[b].tolist()
        length = row.index(EOS_ID)  # characters before the first <eos>
        hypotheses.append(
            Hypothesis(
                tokens=row[:length],
                score=float(scores[b, : length + 1].sum()),
                alignment=alignments[b, : length + 1, : int(encoded_lens[b])].clone(),
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

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        beam_size: K.
        length_penalty: exponent of the length normalisation.
        max_length_ratio, min_length_ratio: character limits per encoder frame (module docstring).

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
        rules = _TokenRules(model.speller.vocab_size, device)
        tokens = torch.full((batch * beams,), SOS_ID, dtype=torch.long, device=device)
        # All beams start identical, so only beam 0 is alive at first.
        alive_scores = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        alive_scores[:, 0] = 0.0
        row_offsets = torch.arange(batch, device=device)[:, None] * beams  # (B, 1)
        candidate_rank = torch.arange(2 * beams, device=device)

        # Finished hypotheses, best first: normalised and raw score, the step that emitted
        # <eos> and the beam (alive before that step) it extended.
        finished_normalized = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        finished_scores = torch.full((batch, beams), float("-inf"), dtype=dtype, device=device)
        finished_steps = torch.zeros((batch, beams), dtype=torch.long, device=device)
        finished_beams = torch.zeros((batch, beams), dtype=torch.long, device=device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=device)

        # Back-pointers per step: alive beam k came from beam origins[s][b, k] by emitting
        # tokens[s][b, k]; alignments[s][b, j] is beam j's attention at step s.
        history_origins, history_tokens, history_alignments = [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory)
            log_probs = rules.log_probs(logits, step, beam_min_lens, beam_max_lens)
            vocab = log_probs.size(-1)
            candidates = alive_scores[:, :, None] + log_probs.view(batch, beams, vocab)
            candidate_scores, candidate_index = candidates.view(batch, -1).topk(2 * beams, dim=-1)
            candidate_origins = candidate_index // vocab  # (B, 2K)
            candidate_tokens = candidate_index % vocab
            is_eos = candidate_tokens == EOS_ID

            # <eos> candidates among the best K finish, unless their utterance has stopped.
            finishing = is_eos & (candidate_rank < beams) & ~stopped[:, None]
            new_scores = candidate_scores.masked_fill(~finishing, float("-inf"))
            normalizer = float(step + 1) ** length_penalty  # characters + <eos>
            pool_normalized = torch.cat([finished_normalized, new_scores / normalizer], dim=1)
            finished_normalized, best = pool_normalized.topk(beams, dim=-1)
            finished_scores = torch.cat([finished_scores, new_scores], 1).gather(1, best)
            finished_steps = torch.cat(
                [finished_steps, torch.full_like(candidate_origins, step)], 1
            ).gather(1, best)
            finished_beams = torch.cat([finished_beams, candidate_origins], 1).gather(1, best)

            # The best K candidates that do not end stay alive.
            alive_scores, alive = candidate_scores.masked_fill(is_eos, float("-inf")).topk(beams)
            origins = candidate_origins.gather(1, alive)  # (B, K)
            tokens = candidate_tokens.gather(1, alive)  # (B, K)
            history_origins.append(origins)
            history_tokens.append(tokens)
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

        origins = torch.stack(history_origins).tolist()  # [S][B][K]
        emitted = torch.stack(history_tokens).tolist()
        alignments = torch.stack(history_alignments).cpu()  # (S, B, K, T')
        finished_scores = finished_scores.tolist()
        finished_steps = finished_steps.tolist()
        finished_beams = finished_beams.tolist()
        encoded_lens = encoded_lens.tolist()

    # Follow the back-pointers, outside inference mode so the alignments are ordinary tensors.
    results = []
    for b in range(batch):
        hypotheses = []
        pool = zip(finished_scores[b], finished_steps[b], finished_beams[b], strict=True)
        for score, last_step, beam in pool:
            if score == float("-inf"):
                break  # the rest of the pool is empty too
            # The beams the hypothesis occupied, from its <eos> at last_step back to step 0.
            tokens_reversed, beam_path = [], [beam]
            for step in range(last_step - 1, -1, -1):
                tokens_reversed.append(emitted[step][b][beam])
                beam = origins[step][b][beam]
                beam_path.append(beam)
            steps = torch.arange(last_step + 1)
            alignment = alignments[steps, b, torch.tensor(beam_path[::-1])]  # (U + 1, T')
            hypotheses.append(
                Hypothesis(
                    tokens=tokens_reversed[::-1],
                    score=float(score),
                    alignment=alignment[:, : encoded_lens[b]],
                )
            )
        results.append(hypotheses)
    return results
