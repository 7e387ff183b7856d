"""Greedy, CTC greedy and beam search over ``Speller.step``, batched over utterances.

Every search runs the model as the caller left it (call ``model.eval()`` first) under
``torch.inference_mode()``, on the features' device, with one host sync per step: the check
whether every utterance has finished.

- :mod:`asr.search.rules`: the :class:`Hypothesis` every search returns, length limits, token
  rules (``<blank>``/``<sos>`` never emitted, ``<eos>`` within limits, the ``<eos>`` threshold).
- :mod:`asr.search.greedy`: :func:`greedy_search` and :func:`ctc_greedy_search`.
- :mod:`asr.search.beam`: :func:`beam_search`, joint CTC/attention with shallow fusion.
- :mod:`asr.search.scorers`: the CTC, LM, length and coverage terms of a beam step.
- :mod:`asr.search.rescoring`: N-best rescoring with a language model.
"""

from asr.search.beam import beam_search
from asr.search.greedy import ctc_greedy_search, greedy_search
from asr.search.rescoring import rescore_with_language_model
from asr.search.rules import Hypothesis

__all__ = [
    "Hypothesis",
    "beam_search",
    "ctc_greedy_search",
    "greedy_search",
    "rescore_with_language_model",
]
