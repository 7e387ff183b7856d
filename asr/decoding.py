"""Decoding a dataset: the loop ``asr evaluate`` and training's dev decoding share."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.data import BucketBatchSampler, SkipCounter, UtteranceDataset, collate
from asr.recognizer import DecodingOptions, Recognizer, Transcript


@dataclass
class DecodedUtterance:
    id: str
    reference: str
    hypothesis: str
    duration: float  # seconds of audio
    transcript: Transcript


def decode_dataset(
    recognizer: Recognizer,
    dataset: UtteranceDataset,
    options: DecodingOptions,
    device: torch.device,
    skips: SkipCounter,
    batch_size: int = 32,
    desc: str = "decoding",
    progress: bool = True,
) -> list[DecodedUtterance]:
    """Decode every usable utterance, ``batch_size`` at a time in length-sorted batches.

    Utterances that cannot be read are counted in ``skips``. This is the one decoding loop over a
    dataset: ``asr evaluate`` and training's dev decoding both use it.
    """
    recognizer.eval()
    sampler = BucketBatchSampler(dataset.durations(), float("inf"), batch_size, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    results = []
    audio_seconds, started = 0.0, time.monotonic()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for batch in bar:
        skips.add(batch.skipped)
        if len(batch) == 0:
            continue
        lens = batch.waveform_lens
        transcripts = recognizer.transcribe_batch(
            batch.waveforms.to(device), lens.to(device), options
        )
        for i, transcript in enumerate(transcripts):
            duration = float(lens[i]) / recognizer.sample_rate
            results.append(
                DecodedUtterance(
                    batch.ids[i], batch.texts[i], transcript.text, duration, transcript
                )
            )
            audio_seconds += duration
        bar.set_postfix(rtf=f"{(time.monotonic() - started) / max(audio_seconds, 1e-9):.4f}")
    bar.close()
    return results
