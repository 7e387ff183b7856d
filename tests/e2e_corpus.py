"""A handful of synthesized utterances, shared by the end-to-end tests."""

from __future__ import annotations

import json
from pathlib import Path

from asr.audio import save_audio
from asr.synthesis import EspeakSynthesizer, Voice

SENTENCES = ("the cat sat down", "open the door", "good morning", "it's late now")
VOICE = Voice("en-us", "", 50, 160)


def make_tiny_corpus(out: Path, repeats: int = 10) -> dict[str, str]:
    """Write wavs and train/dev/test manifests; returns {wav path: text}.

    The training manifest lists each utterance ``repeats`` times, so one epoch is several
    passes and the per-epoch dev decoding stays a small share of the test's time.
    """
    out.mkdir(parents=True, exist_ok=True)
    synth = EspeakSynthesizer()
    entries, texts = [], {}
    for i, sentence in enumerate(SENTENCES):
        result = synth.synthesize(sentence, VOICE)
        path = out / f"utt{i}.wav"
        save_audio(path, result.waveform, 16000)
        texts[str(path)] = sentence
        entries.append(
            {
                "id": f"utt{i}",
                "audio": path.name,
                "duration": result.duration,
                "text": sentence,
                "speaker": VOICE.name,
            }
        )
    train = [{**e, "id": f"{e['id']}_r{r}"} for r in range(repeats) for e in entries]
    for split, rows in (("train", train), ("dev", entries), ("test", entries)):
        (out / f"{split}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in rows))
    return texts
