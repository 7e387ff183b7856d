"""Config schemas: the types of every key of ``conf/train.yaml``, ``conf/evaluate.yaml`` and
``conf/train_lm.yaml``.

The dataclasses below are registered in Hydra's ConfigStore as ``train_schema``,
``evaluate_schema`` and ``train_lm_schema``, the first entry of those files' defaults lists.
Hydra then merges every config group and override into a typed, closed config, so a misspelt key
(``trainer.max_epoch=3``) or a wrong type (``trainer.max_epochs=abc``) fails while composing, in
one line that names the key. Values live in the YAML files, with their comments; the schemas
only say which keys exist and what they hold.

The sections that configure one of our classes (``features``, ``normalizer``, ``augment.waveform``,
``augment.spectrogram``, ``decoding``, ``language_model``) are derived from that class's
constructor, defaults included, so a new constructor argument is a new config key without
editing this file.
``model`` and ``attention`` change keys with the attention type; ``build_model`` checks them
against the constructors (an unknown key is one line there).
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.errors import UserError
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models.language_model import CharLSTMLM
from asr.recognizer import DecodingOptions

_SCALARS = (int, float, bool, str)


def _config_type(hint: Any) -> Any:
    """The OmegaConf-supported type closest to a constructor's annotation (else ``Any``)."""
    if hint in _SCALARS:
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = _config_type(rest[0])
            return Any if inner is Any else Optional[inner]  # noqa: UP045 (OmegaConf needs it)
        return Any
    if origin in (tuple, list):
        items = {a for a in args if a is not Ellipsis}
        if len(items) == 1 and (item := items.pop()) in _SCALARS:
            return list[item]
        return Any
    return Any


def schema_from(cls: type, name: str, exclude: tuple[str, ...] = ()) -> type:
    """A dataclass with one field per argument of ``cls``'s constructor, typed and defaulted.

    >>> FilterbankSchema = schema_from(LogMelFilterbank, "FilterbankSchema")
    >>> OmegaConf.structured(FilterbankSchema).hop_ms
    10.0
    """
    hints = typing.get_type_hints(cls.__init__)
    fields = []
    for parameter in inspect.signature(cls.__init__).parameters.values():
        if parameter.name in ("self", *exclude) or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        kind = _config_type(hints.get(parameter.name, Any))
        default = parameter.default
        if default is inspect.Parameter.empty:
            spec = field(default=MISSING)
        elif isinstance(default, (tuple, list)):
            spec = field(default_factory=lambda value=default: list(value))
        else:
            spec = field(default=default)
        fields.append((parameter.name, kind, spec))
    return dataclasses.make_dataclass(name, fields)


FeaturesConfig = schema_from(LogMelFilterbank, "FeaturesConfig")
# The filterbank gives the normaliser's width.
NormalizerConfig = schema_from(GlobalNormalizer, "NormalizerConfig", exclude=("num_features",))
WaveformAugmentConfig = schema_from(WaveformAugment, "WaveformAugmentConfig")
SpectrogramAugmentConfig = schema_from(SpectrogramAugment, "SpectrogramAugmentConfig")
# The decoding keys are asr.recognizer.DecodingOptions' fields, whatever they become.
DecodingConfig = schema_from(DecodingOptions, "DecodingConfig")
# The language model's keys are CharLSTMLM's arguments; the vocabulary gives its size.
LanguageModelConfig = schema_from(CharLSTMLM, "LanguageModelConfig", exclude=("vocab_size",))


@dataclass
class AugmentConfig:
    """Training-only augmentation; null switches a part off."""

    waveform: Optional[WaveformAugmentConfig] = None  # type: ignore[valid-type]  # noqa: UP045
    spectrogram: Optional[SpectrogramAugmentConfig] = None  # type: ignore[valid-type]  # noqa: UP045


@dataclass
class DataConfig:
    """A corpus (conf/data/*.yaml): manifests, tokens, filters and batching."""

    corpus_dir: Optional[str] = MISSING  # noqa: UP045
    train_manifest: str = MISSING
    dev_manifest: str = MISSING
    test_manifest: Optional[str] = MISSING  # noqa: UP045
    sample_rate: int = MISSING
    unit: str = MISSING
    tokens: Optional[list[str]] = MISSING  # noqa: UP045
    normalization: str = MISSING
    min_duration: float = MISSING
    max_duration: float = MISSING
    min_tokens_per_second: float = MISSING
    max_tokens_per_second: Optional[float] = MISSING  # noqa: UP045
    max_batch_seconds: float = MISSING
    max_batch_size: int = MISSING
    sorted_epochs: int = MISSING
    num_workers: int = MISSING
    cache_audio: bool = MISSING
    feature_cache_dir: Optional[str] = MISSING  # noqa: UP045
    dev_max_utterances: Optional[int] = MISSING  # noqa: UP045


@dataclass
class OptimConfig:
    """The optimizer (``hydra.utils.instantiate`` arguments) and its LR schedule."""

    optimizer: dict[str, Any] = MISSING
    warmup_steps: int = MISSING
    final_lr_ratio: float = MISSING
    max_grad_norm: float = MISSING


@dataclass
class TrainerConfig:
    """The training loop (conf/trainer/default.yaml documents each key)."""

    max_epochs: int = MISSING
    device: str = MISSING
    precision: str = MISSING
    resume: bool = MISSING
    checkpoint_minutes: float = MISSING
    dev_batch_size: int = MISSING
    plot_utterances: int = MISSING
    log_every_steps: int = MISSING
    accumulate_batches: int = MISSING
    keep_checkpoints: int = MISSING
    max_steps: Optional[int] = MISSING  # noqa: UP045
    progress_bar: bool = MISSING
    checkpoint_every_steps: int = MISSING
    keep_last_checkpoints: int = MISSING
    max_bad_steps: int = MISSING
    devices: int = MISSING


@dataclass
class TrainConfig:
    """``asr train``: conf/train.yaml and its groups."""

    data: DataConfig = MISSING
    features: FeaturesConfig = MISSING  # type: ignore[valid-type]
    normalizer: NormalizerConfig = MISSING  # type: ignore[valid-type]
    augment: AugmentConfig = MISSING
    model: dict[str, Any] = MISSING  # keys checked by asr.models.build_model
    attention: dict[str, Any] = MISSING  # keys depend on attention.type
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    decoding: DecodingConfig = MISSING  # type: ignore[valid-type]
    exp_dir: str = MISSING
    seed: int = MISSING


@dataclass
class EvaluateConfig:
    """``asr evaluate``: conf/evaluate.yaml and its groups."""

    data: DataConfig = MISSING
    decoding: DecodingConfig = MISSING  # type: ignore[valid-type]
    checkpoint: str = MISSING
    splits: list[str] = MISSING
    out_dir: str = MISSING
    device: str = MISSING
    batch_size: int = MISSING
    max_utterance_seconds: Optional[float] = MISSING  # noqa: UP045
    normalization: str = MISSING
    top_confusions: int = MISSING
    lm: Optional[str] = None  # noqa: UP045  (a language model checkpoint for shallow fusion)


@dataclass
class LMTextConfig:
    """The language model's text and its batches (conf/train_lm.yaml documents each key)."""

    train: list[str] = MISSING
    dev: list[str] = MISSING
    max_sentences: Optional[int] = MISSING  # noqa: UP045
    max_sentence_tokens: int = MISSING
    max_batch_tokens: int = MISSING
    max_batch_size: int = MISSING
    buffer_sentences: int = MISSING
    unit: str = "char"
    min_word_count: int = 1


@dataclass
class LMOptimConfig:
    """The optimizer (``hydra.utils.instantiate`` arguments), clipping and LR decay."""

    optimizer: dict[str, Any] = MISSING
    max_grad_norm: float = MISSING
    plateau_factor: float = MISSING


@dataclass
class LMTrainerConfig:
    """The language model's training loop."""

    max_epochs: int = MISSING
    device: str = MISSING
    resume: bool = MISSING
    checkpoint_minutes: float = MISSING
    dev_every_steps: Optional[int] = MISSING  # noqa: UP045
    max_steps: Optional[int] = MISSING  # noqa: UP045
    progress_bar: bool = MISSING


@dataclass
class TrainLMConfig:
    """``asr train-lm``: conf/train_lm.yaml and its groups."""

    data: DataConfig = MISSING
    text: LMTextConfig = MISSING
    language_model: LanguageModelConfig = MISSING  # type: ignore[valid-type]
    optim: LMOptimConfig = MISSING
    trainer: LMTrainerConfig = MISSING
    exp_dir: str = MISSING
    seed: int = MISSING


def register_configs() -> None:
    """Put the schemas where conf/train.yaml, evaluate.yaml and train_lm.yaml name them."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="evaluate_schema", node=EvaluateConfig)
    store.store(name="train_lm_schema", node=TrainLMConfig)


def check_config(cfg: DictConfig, schema: type | None = None) -> None:
    """One clear line for a missing required key (``???`` in conf/), or a key ``schema`` lacks.

    Composing already refuses unknown keys, but not those added with ``+key=value``
    (``+trainer.max_epoch=3`` would be ignored): checking against ``schema`` catches them.
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"missing required config key(s): {', '.join(missing)}")
    if schema is not None:
        try:
            OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.to_container(cfg))
        except OmegaConfBaseException as error:
            first = str(error).splitlines()[0]  # the rest repeats the key and the types
            raise UserError(f"bad configuration: {first} (key {error.full_key})") from None


register_configs()  # importing the schemas is what makes conf/*.yaml compose
