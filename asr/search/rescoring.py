"""N-best rescoring: a language model's log-likelihood added to each finished hypothesis."""

from __future__ import annotations

from dataclasses import replace

import torch

from asr.models.language_model import CharLSTMLM
from asr.models.word_lookahead import LookaheadWordLM
from asr.search.rules import Hypothesis


def rescore_with_language_model(
    results: list[list[Hypothesis]],
    language_model: CharLSTMLM | LookaheadWordLM,
    weight: float,
    length_penalty: float = 1.0,
) -> list[list[Hypothesis]]:
    """Each utterance's hypotheses with ``weight`` · log p_LM(tokens <eos>) added to the score,
    re-ranked by the search's normalisation ``score / (characters + 1) ** length_penalty``.

    All hypotheses of all utterances go through the LM in one teacher-forced batch
    (:meth:`CharLSTMLM.log_likelihood`), on the LM's device; ``lm_score`` is set to the
    log-likelihood.

    Args:
        results: per utterance, its hypotheses (a beam search's output).
        language_model: an LM with the acoustic model's vocabulary, in ``eval()`` mode.
        weight: the rescoring weight.
        length_penalty: as the search used it.
    """
    flat = [h for hypotheses in results for h in hypotheses]
    if not flat:
        return results
    device = next(language_model.parameters()).device
    lens = torch.tensor([len(h.tokens) for h in flat], device=device)
    tokens = torch.zeros(len(flat), max(1, int(lens.max())), dtype=torch.long, device=device)
    for i, h in enumerate(flat):
        tokens[i, : len(h.tokens)] = torch.tensor(h.tokens, dtype=torch.long)
    with torch.inference_mode():
        likelihoods = language_model.log_likelihood(tokens, lens).double().tolist()
    rescored, first = [], 0
    for hypotheses in results:
        scores = likelihoods[first : first + len(hypotheses)]
        first += len(hypotheses)
        updated = [
            replace(h, score=h.score + weight * lm, lm_score=lm)
            for h, lm in zip(hypotheses, scores, strict=True)
        ]
        updated.sort(key=lambda h: -h.score / (len(h.tokens) + 1) ** length_penalty)
        rescored.append(updated)
    return rescored
