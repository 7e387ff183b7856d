"""Attention for the speller: every score function of the classic survey, every way of attending,
and ``build_attention`` to pick one by name.

An attention module is a **score function** (a subclass of ``Attention``) combined with a **way of
attending** (the base class's ``mode``, ``sharpening``, ``smoothing`` and window options), so any
score can be soft, local or hard. Every module is **stateless**: it keeps no tensors between
calls. The speller owns the per-step state (the previous alignment) and passes it in, so beam
search reorders it like any other field, and a batch never leaks into the next one.

The contract every type follows:

- ``project_keys(encoded (B, T', D)) -> keys (B, T', A)``, once per utterance;
- ``initial_alignment(pad_mask (B, T')) -> (B, T')`` (``(B, heads, T')`` with several heads),
  the "previous alignment" of step 0;
- ``forward(query (B, Q), keys, values (B, T', D), pad_mask (B, T'), prev_alignment)
  -> (context (B, D), alignment)``, alignment shaped like ``initial_alignment``'s, every head's
  weights non-negative, summing to 1 over real frames and exactly 0 on padding;
- ``score(query (B, N, Q), keys) -> energies (B, heads, N, T')`` for score functions that do not
  read the previous alignment: the speller asks with N = 1, ``SelfAttention`` with N = T'.

Score functions (``ATTENTION_TYPES``), with s the speller state and h_i a listener frame:

============== ================================================ ===========================
type           energy e_i                                        paper
============== ================================================ ===========================
content        β_t · cos(W s, h_i), β_t = softplus(w_β·s + b)    Graves et al. 2014
additive       vᵀ tanh(W s + V h_i + b)                          Bahdanau et al. 2015
location_base  (W s)_i: positions only, no content               Luong et al. 2015
general        sᵀ W h_i                                          Luong et al. 2015
dot            sᵀ h_i                                            Luong et al. 2015
scaled_dot     sᵀ h_i / √D                                       Vaswani et al. 2017
location       wᵀ tanh(W s + V h_i + U (F * α_{t-1})_i + b)      Chorowski et al. 2015
none           no attention: a fixed context                     Sutskever / Cho et al. 2014
============== ================================================ ===========================

``additive``, ``scaled_dot`` and ``location`` also take ``num_heads`` > 1 (multi-head attention
as in Chiu et al. 2018): each head scores in its own ``attention_size / num_heads`` subspace,
reads its own projection of the values, and an output projection mixes the heads' contexts.

To add a score function, subclass ``Attention``, implement ``project_keys`` and ``energies`` (and
``score`` if it is content-only), and register it in ``ATTENTION_TYPES``; its constructor takes
``query_size`` and ``key_size`` first, its own options next, and passes ``**attending`` to the
base class.
"""

from asr.models.attention.base import MODES, WINDOWS, Attention, head_average, median_window_mask
from asr.models.attention.location import LocationAwareAttention
from asr.models.attention.registry import ATTENTION_TYPES, build_attention
from asr.models.attention.scores import (
    AdditiveAttention,
    ContentAttention,
    DotAttention,
    GeneralAttention,
    LocationBaseAttention,
    NoAttention,
    ScaledDotAttention,
)
from asr.models.attention.self_attention import SelfAttention

__all__ = [
    "ATTENTION_TYPES",
    "MODES",
    "WINDOWS",
    "AdditiveAttention",
    "Attention",
    "ContentAttention",
    "DotAttention",
    "GeneralAttention",
    "LocationAwareAttention",
    "LocationBaseAttention",
    "NoAttention",
    "ScaledDotAttention",
    "SelfAttention",
    "build_attention",
    "head_average",
    "median_window_mask",
]
