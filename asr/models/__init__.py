"""The LAS model's parts, and ``build_model`` that maps the model config to them."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from asr.models.attention import ATTENTION_TYPES, SelfAttention, build_attention
from asr.models.language_model import CharLSTMLM, LMState
from asr.models.las import LAS, LossOutput
from asr.models.listener import Listener, ListenerOutput
from asr.models.speller import AttentionMemory, Speller, SpellerState

__all__ = [
    "ATTENTION_TYPES",
    "LAS",
    "AttentionMemory",
    "CharLSTMLM",
    "LMState",
    "Listener",
    "SelfAttention",
    "ListenerOutput",
    "LossOutput",
    "Speller",
    "SpellerState",
    "build_attention",
    "build_model",
]

_SECTIONS = ("listener", "speller", "attention", "self_attention")
_LAS_KEYS = ("ctc_weight", "ctc_layer", "label_smoothing", "sampling_probability")


def build_model(cfg: Mapping[str, Any], vocab_size: int, input_size: int) -> LAS:
    """Build a LAS model from its config.

    ``cfg`` (a mapping or an OmegaConf ``DictConfig``) has the sections ``listener`` (Listener
    arguments but ``input_size``), ``speller`` (Speller arguments but ``vocab_size``,
    ``encoder_size`` and ``attention``) and ``attention`` (``type`` plus that type's arguments
    but ``query_size`` and ``key_size``), optionally ``self_attention`` (``SelfAttention``
    arguments but ``size``; absent or null for none), and the LAS arguments ``ctc_weight``,
    ``ctc_layer``, ``label_smoothing`` and ``sampling_probability`` at the top level. Missing
    sections and keys take the constructors' defaults; an unknown top-level key is an error.

    >>> model = build_model(
    ...     {"listener": {"hidden_size": 8}, "speller": {"hidden_size": 8},
    ...      "attention": {"type": "location", "attention_size": 4}, "ctc_weight": 0.5},
    ...     vocab_size=31, input_size=80)
    >>> model.listener.output_size, model.ctc_weight
    (16, 0.5)
    """
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    unknown = sorted(set(cfg) - set(_SECTIONS) - set(_LAS_KEYS))
    if unknown:
        raise ValueError(
            f"unknown model config key(s) {', '.join(unknown)}; valid keys: "
            f"{', '.join(_SECTIONS + _LAS_KEYS)}"
        )
    listener_cfg = dict(cfg.get("listener") or {})
    speller_cfg = dict(cfg.get("speller") or {})
    attention_cfg = dict(cfg.get("attention") or {})
    if "type" not in attention_cfg:
        valid = ", ".join(sorted(ATTENTION_TYPES))
        raise ValueError(f"model config attention needs a 'type'; valid types: {valid}")

    listener = Listener(input_size=input_size, **listener_cfg)
    speller_hidden_size = speller_cfg.get(
        "hidden_size", inspect.signature(Speller).parameters["hidden_size"].default
    )
    attention = build_attention(
        query_size=speller_hidden_size, key_size=listener.output_size, **attention_cfg
    )
    speller = Speller(
        vocab_size=vocab_size,
        encoder_size=listener.output_size,
        attention=attention,
        **speller_cfg,
    )
    self_attention_cfg = cfg.get("self_attention")
    self_attention = (
        SelfAttention(size=listener.output_size, **self_attention_cfg)
        if self_attention_cfg is not None
        else None
    )
    return LAS(
        listener,
        speller,
        self_attention=self_attention,
        **{key: cfg[key] for key in _LAS_KEYS if key in cfg},
    )
