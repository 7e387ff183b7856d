"""Greedy searches: the speller's most likely token at every step, and CTC's best path.

Both run the model as the caller left it (call ``model.eval()`` first) under
``torch.inference_mode()``, on the features' device; limits and token rules are
:mod:`asr.search.rules`'.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.models.attention import head_average
from asr.models.las import LAS
from asr.search.rules import (
    BLANK_ID,
    EOS_ID,
    SOS_ID,
    Hypothesis,
    TokenRules,
    encode,
    length_limits,
    step_options,
)


def greedy_search(
    model: LAS,
    features: Tensor,
    feature_lens: Tensor,
    max_length_ratio: float = 2.0,
    min_length_ratio: float = 0.0,
    attention_window: tuple[int, int] | None = None,
) -> list[Hypothesis]:
    """The most likely token at every step, for a batch of utterances (one host sync a step:
    the check whether every utterance has finished).

    Args:
        model: a LAS model, in the mode the caller chose (normally ``eval()``).
        features: (B, T, F) padded features.
        feature_lens: (B,) real frames per utterance.
        max_length_ratio, min_length_ratio: character limits per encoder frame (rules).
        attention_window: (left, right) listener frames around the previous alignment's median
            that attention may read at every step (``Speller.step``), or None for everywhere.

    Returns:
        One hypothesis per utterance, in batch order.
    """
    with torch.inference_mode():
        listened, memory = encode(model, features, feature_lens)
        encoded_lens = listened.encoded_lens
        min_lens, max_lens = length_limits(encoded_lens, max_length_ratio, min_length_ratio)
        state = model.speller.initial_state(memory)
        options = step_options(attention_window)
        batch = features.size(0)
        rules = TokenRules(model.speller.vocab_size, features.device)
        tokens = torch.full((batch,), SOS_ID, dtype=torch.long, device=features.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
        emitted, scores, alignments = [], [], []
        for step in range(int(max_lens.max()) + 1):  # at step max_lens[b], <eos> is forced
            logits, state = model.speller.step(tokens, state, memory, **options)
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


def ctc_greedy_search(model: LAS, features: Tensor, feature_lens: Tensor) -> list[Hypothesis]:
    """CTC's best path: the most likely symbol of every frame of the CTC head, repeats
    collapsed and ``<blank>`` removed (Graves et al. 2006). No speller step runs.

    ``<sos>`` and ``<eos>`` are never CTC labels and are masked before the argmax.
    Each hypothesis's ``log_probs`` are the posteriors of its tokens at the frames that emitted
    them, then that of the last frame's symbol (in place of ``<eos>``); ``score`` is the best
    path's log-probability (every real frame's best symbol); ``alignment`` is one-hot at the
    encoder frame (of the speller's T') holding each emitting frame, and the last one for the
    final row, so word times come out as for the attention searches; ``ctc_score`` is the score.

    Args: as :func:`greedy_search` (the CTC head reads listener layer ``model.ctc_layer``).
    """
    with torch.inference_mode():
        listened = model.encode(features, feature_lens)
        log_probs, ctc_lens = model.ctc_log_probs(listened)  # (B, T_c, V), (B,)
        never = torch.zeros(log_probs.size(-1), dtype=torch.bool, device=log_probs.device)
        never[[SOS_ID, EOS_ID]] = True
        best, symbols = log_probs.masked_fill(never, float("-inf")).max(dim=-1)  # (B, T_c)
        frames = torch.arange(symbols.size(1), device=symbols.device)
        real = frames < ctc_lens.to(symbols.device)[:, None]
        previous = torch.cat([symbols.new_full((symbols.size(0), 1), -1), symbols[:, :-1]], 1)
        emits = (symbols != BLANK_ID) & (symbols != previous) & real  # (B, T_c)
        path_scores = best.masked_fill(~real, 0.0).sum(dim=1)  # (B,)
        best, symbols, emits = best.cpu(), symbols.cpu(), emits.cpu()
        ctc_lens, encoded_lens = ctc_lens.cpu(), listened.encoded_lens.cpu()
        path_scores = path_scores.cpu()

    hypotheses = []
    for b in range(symbols.size(0)):
        at = emits[b].nonzero()[:, 0]  # (U,) emitting frames
        last = int(ctc_lens[b]) - 1
        encoder_frames = int(encoded_lens[b])
        # CTC frame t covers encoder frame floor(t · T' / T_c) (the pyramid halves time).
        rows = torch.cat([at, torch.tensor([last])]) * encoder_frames // int(ctc_lens[b])
        alignment = torch.zeros(len(rows), encoder_frames, dtype=best.dtype)
        alignment[torch.arange(len(rows)), rows] = 1.0
        score = float(path_scores[b])
        hypotheses.append(
            Hypothesis(
                tokens=symbols[b, at].tolist(),
                log_probs=torch.cat([best[b, at], best[b, last : last + 1]]),
                alignment=alignment,
                score=score,
                ctc_score=score,
            )
        )
    return hypotheses
