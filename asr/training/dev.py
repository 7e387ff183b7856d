"""The dev pass after each epoch: decoded and scored exactly as ``asr evaluate`` does.

Decoding is :func:`asr.decoding.decode_dataset` and scoring :func:`asr.report.score_decoded`,
the functions ``asr evaluate`` uses, so a dev CER in the training log is the CER ``asr evaluate``
reports for the same checkpoint, decoding options and normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from asr.data import SkipCounter, UtteranceDataset
from asr.decoding import DecodedUtterance, decode_dataset
from asr.errors import UserError
from asr.recognizer import DecodingOptions, Recognizer
from asr.report import score_decoded


@dataclass
class DevScores:
    cer: float
    wer: float  # the phone error rate for a phone model
    decoded: dict[str, DecodedUtterance]  # by utterance id


def score_dev(
    recognizer: Recognizer,
    dev_set: UtteranceDataset,
    options: DecodingOptions,
    device: torch.device,
    skips: SkipCounter,
    normalize: Callable[[str], str],
    batch_size: int = 32,
    progress: bool = True,
    gather: Callable[[list[DecodedUtterance]], list[DecodedUtterance]] | None = None,
) -> DevScores:
    """Decode and score the dev set; leaves the model in training mode.

    ``gather``: in data-parallel training each rank decodes its shard of the dev set, and this
    collects every rank's results (asr.distributed.gather) before scoring, on every rank.

    A dev set of which no utterance could be decoded is refused: its error rates would read 0%
    and make the first epoch the best one for good.
    """
    results = decode_dataset(
        recognizer,
        dev_set,
        options,
        device,
        skips,
        batch_size=batch_size,
        desc="dev decoding",
        progress=progress,
    )
    recognizer.model.train()
    if gather is not None:
        results = gather(results)
    if not results:
        raise UserError(
            f"none of the {len(dev_set)} dev utterances could be decoded ({skips.summary()}): "
            "a dev error rate over nothing would select the epoch; fix data.dev_manifest"
        )
    scores = score_decoded(results, normalize)
    return DevScores(scores.cer, scores.wer, {r.id: r for r in results})
