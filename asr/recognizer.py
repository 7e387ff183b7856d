"""Waveforms in, text out: the filterbank, the normaliser, the LAS model and the search, together.

A ``Recognizer`` is what a checkpoint rebuilds: everything needed to turn audio into text lives
in its state_dict (model weights and normalisation statistics) plus the vocabulary and the config
that built it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from asr.errors import UserError
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models import build_model
from asr.models.language_model import CharLSTMLM
from asr.models.las import LAS
from asr.models.word_lookahead import DEFAULT_OOV_PENALTY, LookaheadWordLM, checked_oov_penalty
from asr.search import (
    Hypothesis,
    beam_search,
    ctc_greedy_search,
    greedy_search,
    rescore_with_language_model,
)
from asr.text import Vocabulary, WordVocabulary

SEARCHES = ("attention", "ctc_greedy")


DECODING_PRECISIONS = ("fp32", "bf16")


def in_float32(hypothesis: Hypothesis) -> Hypothesis:
    """``hypothesis`` (and its N best) with float32 log-probabilities and alignment."""
    return replace(
        hypothesis,
        log_probs=hypothesis.log_probs.float(),
        alignment=hypothesis.alignment.float(),
        nbest=[in_float32(h) for h in hypothesis.nbest],
    )


@dataclass(frozen=True)
class DecodingOptions:
    """How to search (asr.search); every field is a ``decoding.*`` config key.

    ``search``: ``attention`` (the speller: greedy when ``beam_size`` is 1 and no other score is
    asked for, else beam search) or ``ctc_greedy`` (the CTC head's best path alone; the beam
    options do not apply).

    Beam search ranks ``(1 - ctc_weight)·attention + ctc_weight·CTC prefix score +
    lm_weight·LM + length_bonus·characters + coverage_weight·covered frames``, normalised by
    ``(characters + 1) ** length_penalty`` (see :func:`asr.search.beam_search`; ``ctc_weight``
    needs a model with a CTC head, ``lm_weight`` and ``lm_rescore_weight`` a language model).
    ``pre_beam_ratio`` × beam_size candidates per beam get a CTC score. ``eos_threshold`` lets
    ``<eos>`` compete only where its log-probability is at least that many times the best
    token's (SpeechBrain; null: off). ``end_detect`` = M > 0 stops an utterance once the best
    hypotheses ended at each of the last M steps are ``end_detect_margin`` below the best ended
    (ESPnet). ``nbest`` hypotheses per utterance are returned (at most ``beam_size``);
    ``lm_rescore_weight`` adds that weight × the LM log-likelihood of each finished hypothesis
    and re-ranks them.

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
    # Joint decoding and the other search options (after the fields above, whose positions
    # callers may rely on).
    search: str = "attention"
    nbest: int = 1
    ctc_weight: float = 0.0
    pre_beam_ratio: float = 1.5
    lm_weight: float = 0.0
    lm_rescore_weight: float = 0.0
    length_bonus: float = 0.0
    coverage_weight: float = 0.0
    coverage_threshold: float = 0.5
    eos_threshold: float | None = None
    end_detect: int = 0
    end_detect_margin: float = 10.0
    # A word language model's log-probability for a character leaving its word list
    # (asr.models.word_lookahead); a character LM ignores it.
    oov_penalty: float = DEFAULT_OOV_PENALTY
    # A word language model may end a sentence after any word and start another
    # (asr.models.word_lookahead): for input holding several sentences; a character LM
    # ignores it.
    sentence_restarts: bool = False
    # fp32, or bf16: the search's networks under bfloat16 autocast (scores, CTC prefix sums and
    # the returned log-probabilities and alignments stay float32).
    precision: str = "fp32"

    def __post_init__(self) -> None:
        window = self.attention_window
        if window is not None:
            if len(window) != 2 or min(window) < 0:
                raise ValueError(
                    f"attention_window must be [left, right] listener frames >= 0, got {window}"
                )
            object.__setattr__(self, "attention_window", (int(window[0]), int(window[1])))
        if self.precision not in DECODING_PRECISIONS:
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {self.search!r}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        if not 1 <= self.nbest <= (self.beam_size if self.search == "attention" else 1):
            raise ValueError(
                f"nbest {self.nbest} must be between 1 and beam_size {self.beam_size} "
                "(1 for ctc_greedy)"
            )
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ValueError(
                f"ctc_weight must be in [0, 1), got {self.ctc_weight} (search=ctc_greedy "
                "decodes with CTC alone)"
            )
        for name in ("lm_weight", "lm_rescore_weight", "coverage_weight", "length_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.pre_beam_ratio < 1.0:
            raise ValueError(f"pre_beam_ratio must be at least 1, got {self.pre_beam_ratio}")
        if self.eos_threshold is not None and self.eos_threshold < 1.0:
            raise ValueError(f"eos_threshold must be at least 1 or null, got {self.eos_threshold}")
        if self.end_detect < 0:
            raise ValueError(f"end_detect must not be negative, got {self.end_detect}")
        checked_oov_penalty(self.oov_penalty)

    @property
    def uses_language_model(self) -> bool:
        return self.lm_weight > 0 or self.lm_rescore_weight > 0

    @property
    def plain_greedy(self) -> bool:
        """Whether the speller's greedy search is this search (no beam, no other score)."""
        return (
            self.beam_size == 1
            and not (self.ctc_weight or self.uses_language_model or self.length_bonus)
            and not (self.coverage_weight or self.eos_threshold is not None)
        )

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
        """Build from a training config's ``features``, ``normalizer``, ``model`` and
        ``attention`` sections."""
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        model_cfg = {**cfg["model"], "attention": cfg["attention"]}
        try:  # a config key the constructors do not take, or a value they refuse
            filterbank = LogMelFilterbank(**cfg["features"])
            # Checkpoints from before the normalizer group have none: the global statistics.
            normalizer = GlobalNormalizer(filterbank_size(cfg), **(cfg.get("normalizer") or {}))
            model = build_model(
                model_cfg, vocab_size=len(vocabulary), input_size=filterbank_size(cfg)
            )
        except (TypeError, ValueError) as error:
            raise UserError(f"bad model configuration: {error}") from None
        return cls(model, vocabulary, filterbank, normalizer)

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
        self,
        waveforms: Tensor,
        waveform_lens: Tensor,
        options: DecodingOptions,
        language_model: CharLSTMLM | LookaheadWordLM | None = None,
    ) -> list[Hypothesis]:
        """The best hypothesis of each utterance of a padded batch, with its text.

        This is the one decoding path: ``asr.decoding.decode_dataset`` (``asr evaluate``,
        training's dev decoding) and the transcriber both call it.

        Args:
            waveforms: (B, S) padded waveforms at ``sample_rate``.
            waveform_lens: (B,) real samples per utterance.
            options: the search and its settings.
            language_model: for ``options.lm_weight`` (shallow fusion) and
                ``options.lm_rescore_weight``, with this recognizer's vocabulary
                (:meth:`check_language_model`), on the model's device.

        Returns:
            One :class:`asr.search.Hypothesis` per utterance, in batch order: tokens, text,
            per-token log-probabilities, alignment over its own frames, score; with
            ``options.nbest`` > 1 its ``nbest`` holds the N best, itself first.

        Raises:
            UserError: the options need a CTC head the model lacks, or a language model none
                was given for.
        """
        self.check_options(options, language_model)
        features, feature_lens = self.features(waveforms, waveform_lens)
        bf16 = options.precision == "bf16"
        with torch.autocast(features.device.type, dtype=torch.bfloat16, enabled=bf16):
            best = self._search(features, feature_lens, options, language_model)
        if bf16:  # what callers read stays float32, whatever the networks ran in
            best = [in_float32(h) for h in best]
        return best

    def _search(
        self,
        features: Tensor,
        feature_lens: Tensor,
        options: DecodingOptions,
        language_model: CharLSTMLM | LookaheadWordLM | None,
    ) -> list[Hypothesis]:
        """``transcribe_batch`` after the features: the search ``options`` name, spelled."""
        if options.search == "ctc_greedy":
            best = ctc_greedy_search(self.model, features, feature_lens)
            return [replace(h, text=self.vocabulary.decode(h.tokens)) for h in best]
        search_args = dict(
            max_length_ratio=options.max_length_ratio,
            min_length_ratio=options.min_length_ratio,
            attention_window=options.attention_window,
        )
        if options.plain_greedy:
            best = greedy_search(self.model, features, feature_lens, **search_args)
            return [replace(h, text=self.vocabulary.decode(h.tokens)) for h in best]
        if isinstance(language_model, LookaheadWordLM):
            language_model = language_model.with_options(
                options.oov_penalty, options.sentence_restarts
            )
        results = beam_search(
            self.model,
            features,
            feature_lens,
            beam_size=options.beam_size,
            length_penalty=options.length_penalty,
            **search_args,
            ctc_weight=options.ctc_weight,
            pre_beam_ratio=options.pre_beam_ratio,
            language_model=language_model,
            lm_weight=options.lm_weight,
            length_bonus=options.length_bonus,
            coverage_weight=options.coverage_weight,
            coverage_threshold=options.coverage_threshold,
            eos_threshold=options.eos_threshold,
            end_detect=options.end_detect,
            end_detect_margin=options.end_detect_margin,
        )
        if options.lm_rescore_weight > 0:
            results = rescore_with_language_model(
                results, language_model, options.lm_rescore_weight, options.length_penalty
            )
        best = []
        for hypotheses in results:
            spelled = [replace(h, text=self.vocabulary.decode(h.tokens)) for h in hypotheses]
            nbest = spelled[: options.nbest] if options.nbest > 1 else []
            best.append(replace(spelled[0], nbest=nbest))
        return best

    def check_language_model(
        self,
        language_model: CharLSTMLM,
        vocabulary: Vocabulary | WordVocabulary,
        path: str | os.PathLike,
    ) -> CharLSTMLM | LookaheadWordLM:
        """``language_model`` (as :func:`asr.checkpoint.load_language_model` returns it with its
        ``vocabulary``, from ``path``) ready to fuse with this recognizer: a character LM that
        spells this recognizer's vocabulary as it is, a word LM seen through this recognizer's
        characters (:class:`asr.models.word_lookahead.LookaheadWordLM`).

        Raises:
            UserError: a character LM of another vocabulary, or a word LM for a phone model.
        """
        if isinstance(vocabulary, WordVocabulary):
            if self.vocabulary.unit != "char":
                raise UserError(
                    f"language model {path} predicts words, which fuse with a character model "
                    f"only, and this one spells {self.vocabulary.unit}s"
                )
            device = next(language_model.parameters()).device
            return LookaheadWordLM(language_model, vocabulary, self.vocabulary).to(device)
        if vocabulary != self.vocabulary:
            raise UserError(
                f"language model {path} spells {len(vocabulary)} tokens "
                f"({' '.join(vocabulary.tokens[:12])} ...), not the acoustic model's "
                f"{len(self.vocabulary)} ({' '.join(self.vocabulary.tokens[:12])} ...): train "
                "it with the acoustic model's vocabulary"
            )
        return language_model

    def check_options(
        self, options: DecodingOptions, language_model: CharLSTMLM | LookaheadWordLM | None
    ) -> None:
        """One clear line for options this model or the missing language model cannot serve."""
        wants_ctc = options.search == "ctc_greedy" or options.ctc_weight > 0
        if wants_ctc and self.model.ctc_head is None:
            what = (
                "search=ctc_greedy"
                if options.search == "ctc_greedy"
                else (f"decoding.ctc_weight={options.ctc_weight}")
            )
            raise UserError(
                f"{what} needs a CTC head, and this model has none (it was trained with "
                "model.ctc_weight=0)"
            )
        if options.uses_language_model and language_model is None:
            raise UserError(
                f"decoding.lm_weight={options.lm_weight} and lm_rescore_weight="
                f"{options.lm_rescore_weight} need a language model: lm=LM.pt for asr evaluate, "
                "--lm LM.pt for asr transcribe"
            )


def filterbank_size(cfg: Mapping) -> int:
    return int(cfg["features"].get("num_mel_bins", 80))
