"""Decoding a dataset: the loop ``asr evaluate`` and training's dev decoding share."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.data import BucketBatchSampler, SkipCounter, UtteranceDataset, collate
from asr.models.language_model import CharLSTMLM
from asr.recognizer import DecodingOptions, Recognizer
from asr.search import Hypothesis

TOO_LONG = "too long to decode whole"


@dataclass
class DecodedUtterance:
    """One utterance of a dataset and what the recognizer made of it."""

    id: str
    reference: str
    hypothesis: str  # the decoded text (``transcript.text``)
    duration: float  # seconds of audio
    transcript: Hypothesis


def decode_dataset(
    recognizer: Recognizer,
    dataset: UtteranceDataset,
    options: DecodingOptions,
    device: torch.device,
    skips: SkipCounter,
    batch_size: int = 32,
    desc: str = "decoding",
    progress: bool = True,
    max_seconds: float | None = None,
    language_model: CharLSTMLM | None = None,
) -> list[DecodedUtterance]:
    """Decode every usable utterance, ``batch_size`` at a time in length-sorted batches.

    Utterances that cannot be read are counted in ``skips``, and so are those longer than
    ``max_seconds`` (reason ``TOO_LONG``): the search attends over every frame at every step,
    so decoding an hour whole would need tens of GB. This is the one decoding loop over a
    dataset: ``asr evaluate`` and training's dev decoding both use it, through
    :meth:`Recognizer.transcribe_batch` as the transcriber does; ``language_model`` goes to
    it (shallow fusion and N-best rescoring, as ``options`` ask).
    """
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    recognizer.eval()
    durations = dataset.durations()
    if max_seconds is not None:
        for index, seconds in enumerate(durations):
            if seconds > max_seconds:
                skips.skip(
                    dataset.utterances[index].id,
                    TOO_LONG,
                    f"{seconds:.1f} s is longer than the {max_seconds:g} s decoded whole",
                )
    kept = [i for i, s in enumerate(durations) if max_seconds is None or s <= max_seconds]
    sampler = BucketBatchSampler(
        [durations[i] for i in kept], float("inf"), batch_size, shuffle=False
    )
    batches = [[kept[i] for i in batch] for batch in sampler]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate)
    results = []
    audio_seconds, started = 0.0, time.monotonic()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for batch in bar:
        skips.add(batch.skipped)
        if len(batch) == 0:
            continue
        lens = batch.waveform_lens
        decoded = recognizer.transcribe_batch(
            batch.waveforms.to(device), lens.to(device), options, language_model
        )
        for i, hypothesis in enumerate(decoded):
            duration = float(lens[i]) / recognizer.sample_rate
            results.append(
                DecodedUtterance(
                    batch.ids[i], batch.texts[i], hypothesis.text, duration, hypothesis
                )
            )
            audio_seconds += duration
        bar.set_postfix(rtf=f"{(time.monotonic() - started) / max(audio_seconds, 1e-9):.4f}")
    bar.close()
    return results
