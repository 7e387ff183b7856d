"""Waveforms in, text out: the filterbank, the normaliser, the LAS model and the search, together.

A ``Recognizer`` is what a checkpoint rebuilds: everything needed to turn audio into text lives
in its state_dict (model weights and normalisation statistics) plus the vocabulary and the config
that built it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from asr.errors import UserError
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models import build_model
from asr.models.las import LAS
from asr.search import Hypothesis, beam_search, greedy_search
from asr.text import Vocabulary


@dataclass(frozen=True)
class DecodingOptions:
    """asr.search arguments; beam_size 1 means greedy search.

    ``attention_window`` = (left, right) restricts attention at decoding time to the listener
    frames around the previous alignment's median (Chorowski et al. 2015, §2.3), whatever the
    model was trained with: it keeps long utterances from skipping or looping. The searches pass
    it to every attention call (``Speller.step``); None attends wherever the model's attention
    does.
    """

    beam_size: int = 1
    length_penalty: float = 1.0
    max_length_ratio: float = 2.0
    min_length_ratio: float = 0.0
    attention_window: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        window = self.attention_window
        if window is not None:
            if len(window) != 2 or min(window) < 0:
                raise ValueError(
                    f"attention_window must be [left, right] listener frames >= 0, got {window}"
                )
            object.__setattr__(self, "attention_window", (int(window[0]), int(window[1])))

    @classmethod
    def from_config(cls, cfg: Mapping | DictConfig) -> DecodingOptions:
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        try:
            return cls(**cfg)
        except (TypeError, ValueError) as error:  # an unknown key or a bad value
            raise UserError(f"bad decoding configuration: {error}") from None


class Recognizer(nn.Module):
    def __init__(
        self,
        model: LAS,
        vocabulary: Vocabulary,
        filterbank: LogMelFilterbank,
        normalizer: GlobalNormalizer,
    ) -> None:
        super().__init__()
        self.model = model
        self.vocabulary = vocabulary
        self.filterbank = filterbank
        self.normalizer = normalizer

    @classmethod
    def from_config(cls, cfg: Mapping | DictConfig, vocabulary: Vocabulary) -> Recognizer:
        """Build from a training config's ``features``, ``model`` and ``attention`` sections."""
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        model_cfg = {**cfg["model"], "attention": cfg["attention"]}
        try:  # a config key the constructors do not take, or a value they refuse
            filterbank = LogMelFilterbank(**cfg["features"])
            model = build_model(
                model_cfg, vocab_size=len(vocabulary), input_size=filterbank_size(cfg)
            )
        except (TypeError, ValueError) as error:
            raise UserError(f"bad model configuration: {error}") from None
        return cls(model, vocabulary, filterbank, GlobalNormalizer(filterbank_size(cfg)))

    @property
    def sample_rate(self) -> int:
        return self.filterbank.sample_rate

    def raw_features(self, waveforms: Tensor, waveform_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Log-mel features before normalisation, (B, T, F) and (B,)."""
        return self.filterbank(waveforms, waveform_lens)

    def features(self, waveforms: Tensor, waveform_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised log-mel features (B, T, F) and their lengths (B,)."""
        features, feature_lens = self.filterbank(waveforms, waveform_lens)
        return self.normalizer(features, feature_lens), feature_lens

    @torch.inference_mode()
    def transcribe_batch(
        self, waveforms: Tensor, waveform_lens: Tensor, options: DecodingOptions
    ) -> list[Hypothesis]:
        """The best hypothesis of each utterance of a padded batch, with its text.

        This is the one decoding path: ``asr.decoding.decode_dataset`` (``asr evaluate``,
        training's dev decoding) and the transcriber both call it.

        Args:
            waveforms: (B, S) padded waveforms at ``sample_rate``.
            waveform_lens: (B,) real samples per utterance.
            options: the search and its settings.

        Returns:
            One :class:`asr.search.Hypothesis` per utterance, in batch order: tokens, text,
            per-token log-probabilities, alignment over its own frames, score.
        """
        features, feature_lens = self.features(waveforms, waveform_lens)
        search_args = dict(
            max_length_ratio=options.max_length_ratio,
            min_length_ratio=options.min_length_ratio,
            attention_window=options.attention_window,
        )
        if options.beam_size <= 1:
            best = greedy_search(self.model, features, feature_lens, **search_args)
        else:
            beams = beam_search(
                self.model,
                features,
                feature_lens,
                beam_size=options.beam_size,
                length_penalty=options.length_penalty,
                **search_args,
            )
            best = [hypotheses[0] for hypotheses in beams]
        return [replace(h, text=self.vocabulary.decode(h.tokens)) for h in best]


def filterbank_size(cfg: Mapping) -> int:
    return int(cfg["features"].get("num_mel_bins", 80))
