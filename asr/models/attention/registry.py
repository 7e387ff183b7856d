"""The attention types by name (``ATTENTION_TYPES``) and ``build_attention`` to pick one."""

from __future__ import annotations

from asr.models.attention.base import Attention
from asr.models.attention.location import LocationAwareAttention
from asr.models.attention.scores import (
    AdditiveAttention,
    ContentAttention,
    DotAttention,
    GeneralAttention,
    LocationBaseAttention,
    NoAttention,
    ScaledDotAttention,
)

ATTENTION_TYPES: dict[str, type[Attention]] = {
    "content": ContentAttention,
    "additive": AdditiveAttention,
    "location_base": LocationBaseAttention,
    "general": GeneralAttention,
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "location": LocationAwareAttention,
    "none": NoAttention,
}


def build_attention(type: str, query_size: int, key_size: int, **kwargs) -> Attention:
    """The attention module registered as ``type`` in ``ATTENTION_TYPES``.

    >>> build_attention("location", query_size=4, key_size=6, attention_size=3).energy
    Linear(in_features=3, out_features=1, bias=False)
    """
    if type not in ATTENTION_TYPES:
        valid = ", ".join(sorted(ATTENTION_TYPES))
        raise ValueError(f"unknown attention type {type!r}; valid types: {valid}")
    return ATTENTION_TYPES[type](query_size=query_size, key_size=key_size, **kwargs)
