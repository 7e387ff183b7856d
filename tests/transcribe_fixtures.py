"""A tiny trained model and recordings made from its sentences, shared by the transcribe tests.

las_tiny learns the four sentences of :mod:`tests.e2e_corpus`, each heard with 0 to 0.3 s of
silence around it and at two levels, so that it also recognises them as the voice activity
detector cuts them out of a longer recording. Training
takes 10 to 30 s and happens once per test session, whichever test file asks first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from hydra import compose, initialize_config_dir

from asr import CONF_DIR
from asr.synthesis import EspeakSynthesizer
from tests.e2e_corpus import SENTENCES, VOICE

RATE = 16000
TINY_TRAINING = [
    "model=las_tiny",
    "augment=none",
    "trainer.max_epochs=15",
    "trainer.progress_bar=false",
    "trainer.plot_utterances=0",
    "optim.warmup_steps=10",
    "optim.optimizer.lr=5e-3",
    "optim.final_lr_ratio=0.3",
    "data.max_batch_size=4",
    "trainer.precision=fp32",  # the same numbers on every CPU (auto: bf16 where native)
]


@dataclass
class TinyModel:
    checkpoint: Path
    corpus: Path
    texts: dict[str, str]  # wav path -> sentence


_cache: dict[str, TinyModel] = {}


def tiny_model(root: Path) -> TinyModel:
    """Train (once per session) and return the tiny model; ``root`` is an empty folder."""
    if "model" not in _cache:
        from asr.train import train

        texts = make_corpus(root / "corpus")
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[f"data.corpus_dir={root / 'corpus'}", f"exp_dir={root / 'exp'}"]
                + TINY_TRAINING,
            )
        summary = train(cfg)
        assert summary["best_dev_cer"] == 0.0, summary["epochs"][-1]
        _cache["model"] = TinyModel(root / "exp" / "best.pt", root / "corpus", texts)
    return _cache["model"]


def make_corpus(out: Path) -> dict[str, str]:
    """Train/dev/test manifests of the sentences with silence around them; {plain wav: text}."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    rows, plain = [], {}
    # (leading silence, trailing silence, gain)
    variants = [(0.0, 0.0, 1.0), (0.15, 0.15, 1.0), (0.3, 0.1, 0.5), (0.1, 0.3, 1.0)]
    for i, (text, wave, _) in enumerate(sentence_audio()):
        for v, (lead, trail, gain) in enumerate(variants):
            padded = np.concatenate(
                [np.zeros(int(lead * RATE)), wave * gain, np.zeros(int(trail * RATE))]
            )
            name = f"utt{i}_v{v}.wav"
            soundfile.write(out / name, padded.astype(np.float32), RATE, subtype="PCM_16")
            rows.append(
                {
                    "id": f"utt{i}_v{v}",
                    "audio": name,
                    "text": text,
                    "duration": len(padded) / RATE,
                    "speaker": VOICE.name,
                }
            )
            if v == 0:
                plain[str(out / name)] = text
    train = [{**row, "id": f"{row['id']}_r{r}"} for r in range(3) for row in rows]
    for split, split_rows in (("train", train), ("dev", rows), ("test", rows)):
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
    return plain


def sentence_audio() -> list[tuple[str, np.ndarray, list[tuple[str, float]]]]:
    """(text, waveform at 16 kHz, word start times) of each training sentence."""
    synth = EspeakSynthesizer()
    out = []
    for sentence in SENTENCES:
        result = synth.synthesize(sentence, VOICE)
        out.append((sentence, result.waveform.numpy(), result.words))
    return out


def long_recording(
    path: Path, repeats: int, gap_seconds: float = 0.6, rate: int = RATE, channels: int = 1
) -> tuple[list[str], list[tuple[str, float]]]:
    """Write the sentences ``repeats`` times, separated by silence, streaming to ``path``.

    Returns the sentences in order and every word with its start in seconds.
    """
    from asr.audio import resample

    sentences = sentence_audio()
    texts, words = [], []
    offset = 0.0
    gap = np.zeros(int(gap_seconds * rate), dtype=np.float32)
    with soundfile.SoundFile(path, "w", rate, channels, subtype="PCM_16") as file:
        for r in range(repeats):
            text, wave, word_times = sentences[r % len(sentences)]
            wave = resample(wave, RATE, rate)
            for piece in (wave, gap):
                file.write(np.repeat(piece[:, None], channels, axis=1))
            texts.append(text)
            words += [(w, offset + t) for w, t in word_times]
            offset += (len(wave) + len(gap)) / rate
    return texts, words
