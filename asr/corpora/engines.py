"""Speech engines beyond espeak-ng in the synthetic corpus, and the unseen-engine test split.

espeak-ng is formant synthesis: a model trained on it alone fails on other voices (issue 15:
94% WER on three other synthesizers). Two more engines, a neural one (piper, ``asr.piper``) and
a concatenative/parametric one (CMU flite, ``asr.flite``), used two ways, both deterministic
from the corpus seed and both off unless asked for:

- ``engines=("espeak", "piper", "flite")`` (any with espeak): each extra engine speaks
  ``EXTRA_SHARE`` of every split's utterances, a disjoint seeded choice per engine (piper's
  first, so adding flite leaves piper's share as it was); the rest of the plan is untouched.
- ``unseen_engine="flite"`` (or ``"piper"``): ``test_unseen_engine.jsonl`` and
  ``wav/test_unseen_engine/`` beside the test split: the test split's first sentences spoken by
  an engine that training never heard (leave-one-engine-out), so that ``asr evaluate
  splits=[test,test_unseen_engine]`` shows how much of the error is the engine. Its own
  ``test_unseen_engine.json`` caches it, so adding it never rebuilds the rest of the corpus.

Piper's network draws its noise from a per-session generator (see ``asr.piper``), so its
utterances are spoken in groups of ``PIPER_GROUP`` in plan order, each group in a fresh session
seeded from (corpus seed, split, group): the result is the same for any number of workers.
"""

from __future__ import annotations

import json
import random
import shutil
import zlib
from pathlib import Path

from asr import flite
from asr.audio import save_audio
from asr.flite import FliteSynthesizer, FliteVoice
from asr.piper import NeuralVoice, PiperSynthesizer, missing_message
from asr.synthesis import Synthesis
from asr.text import normalize_text

ENGINES = ("espeak", "piper", "flite")
UNSEEN_SPLIT = "test_unseen_engine"
EXTRA_SHARE = 0.25  # of each split's utterances, per extra training engine
PIPER_GROUP = 16  # utterances a piper session speaks (a session costs about two utterances)
UNSEEN_SIZES = {"tiny": 10, "small": 200, "medium": 400, "large": 1000}

# Renderings of one neural speaker: VITS scales around piper's defaults (1.0, 0.667, 0.8) and
# a resampling speed factor (pitch and formants together, +-10%).
LENGTH_SCALES = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
NOISE_SCALES = (0.4, 0.5, 0.6, 0.667, 0.75, 0.85)
NOISE_WS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SPEEDS = (0.9, 0.93, 0.96, 1.0, 1.04, 1.07, 1.1)

# Renderings of flite's voices: tempo, and a pitch contour around each voice's own register.
DURATION_STRETCHES = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)
F0_MEANS = {"slt": (150, 165, 180, 195, 210), "default": (85, 95, 105, 115, 125, 135)}
F0_STDDEVS = (10, 15, 20, 25, 30)


def check_engines(engines: tuple[str, ...], unseen_engine: str | None) -> None:
    """ValueError for an unknown engine, a corpus without espeak, or an unseen engine that
    also speaks training."""
    for engine in (*engines, *([unseen_engine] if unseen_engine else [])):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if "espeak" not in engines:
        raise ValueError("engines must include espeak (it speaks the corpus's voice grid)")
    if unseen_engine is not None and unseen_engine in engines:
        raise ValueError(f"the unseen engine {unseen_engine!r} must not also speak training")


def unavailable(engine: str) -> str | None:
    """One line saying why ``engine`` cannot speak here, or None."""
    if engine == "piper":
        return missing_message("joe")
    if engine == "flite":
        return flite.missing_message()
    return None


def found_line() -> str:
    """One line naming the engines that can speak here and what the others need."""
    found = [engine for engine in ENGINES if unavailable(engine) is None]
    missing = [f"{engine} ({unavailable(engine)})" for engine in ENGINES if engine not in found]
    return f"engines found: {', '.join(found)}" + (
        f"; not found: {'; '.join(missing)}" if missing else ""
    )


def pick_unseen(engines: tuple[str, ...]) -> str | None:
    """The unseen engine for ``--unseen-engine auto``: flite, else piper, if installed and not
    a training engine; None when neither can be."""
    for engine in ("flite", "piper"):
        if engine not in engines and unavailable(engine) is None:
            return engine
    return None


def draw_neural_voice(rng: random.Random) -> NeuralVoice:
    return NeuralVoice(
        "joe",
        length_scale=rng.choice(LENGTH_SCALES),
        noise_scale=rng.choice(NOISE_SCALES),
        noise_w=rng.choice(NOISE_WS),
        speed=rng.choice(SPEEDS),
    )


def draw_flite_voice(rng: random.Random) -> FliteVoice:
    voice = rng.choice(flite.VOICES)
    return FliteVoice(
        voice,
        duration_stretch=rng.choice(DURATION_STRETCHES),
        f0_mean=rng.choice(F0_MEANS.get(voice, F0_MEANS["default"])),
        f0_stddev=rng.choice(F0_STDDEVS),
    )


DRAWS = {"piper": draw_neural_voice, "flite": draw_flite_voice}


def add_engines(
    plan: dict[str, list[tuple]], engines: tuple[str, ...], seed: int
) -> dict[str, list[tuple]]:
    """``plan`` with ``EXTRA_SHARE`` of each split's espeak utterances re-voiced by each extra
    engine of ``engines``, in ``ENGINES`` order, each engine from its own seeded generator."""
    for engine in ENGINES[1:]:
        if engine not in engines:
            continue
        rng = random.Random(f"{engine}-{seed}")
        revoiced = {}
        for split, utterances in plan.items():
            # Only espeak's utterances are re-voiced. For the first extra engine that is all of
            # them, which draws exactly what piper drew before flite existed.
            free = [i for i, u in enumerate(utterances) if not _extra_voice(u[2])]
            count = min(round(EXTRA_SHARE * len(utterances)), len(free))
            chosen = set(rng.sample(free, count))
            revoiced[split] = [
                (uid, sentence, DRAWS[engine](rng) if i in chosen else voice)
                for i, (uid, sentence, voice) in enumerate(utterances)
            ]
        plan = revoiced
    return plan


def _extra_voice(voice) -> bool:
    return isinstance(voice, (NeuralVoice, FliteVoice))


def synthesize_flite(out_dir: str, split: str, utterance_id: str, sentence: str, voice):
    """Speak one flite utterance and write its file; its (split, manifest record)."""
    result = FliteSynthesizer().synthesize(sentence, voice, sample_rate=16000)
    return [(split, write_utterance(out_dir, split, utterance_id, sentence, voice.name, result))]


def write_utterance(
    out_dir: str, split: str, utterance_id: str, sentence: str, speaker: str, result: Synthesis
) -> dict:
    """Write ``result`` (any engine's) as ``wav/<split>/<id>.wav``; its manifest record."""
    audio = f"wav/{split}/{utterance_id}.wav"
    save_audio(Path(out_dir) / audio, result.waveform, result.sample_rate)
    return {
        "id": utterance_id,
        "audio": audio,
        "duration": round(result.waveform.shape[0] / result.sample_rate, 5),  # exact in samples
        "text": normalize_text(sentence),
        "speaker": speaker,
        "words": [[word, start] for word, start in result.words],
    }


def piper_jobs(out_dir: str, split: str, utterances: list[tuple], seed: int) -> list[tuple]:
    """Group jobs (see ``synthesize_group``) for the piper utterances of one split, in order."""
    piper = [u for u in utterances if isinstance(u[2], NeuralVoice)]
    jobs = []
    for start in range(0, len(piper), PIPER_GROUP):
        group_seed = zlib.crc32(f"{seed}-{split}-{start}".encode())
        jobs.append((out_dir, split, piper[start : start + PIPER_GROUP], group_seed))
    return jobs


def synthesize_group(job: tuple) -> list[tuple[str, dict]]:
    """Speak one group job and write its files; (split, manifest record) of each utterance."""
    out_dir, split, utterances, group_seed = job
    sample_rate = 16000
    sentences = [sentence for _, sentence, _ in utterances]
    voices = [voice for _, _, voice in utterances]
    results = PiperSynthesizer(voices[0].model).synthesize_many(
        sentences, voices, seed=group_seed, sample_rate=sample_rate
    )
    return [
        (split, write_utterance(out_dir, split, utterance_id, sentence, voice.name, result))
        for (utterance_id, sentence, voice), result in zip(utterances, results, strict=True)
    ]


def build_unseen_split(
    out_dir: Path, engine: str, size: str, seed: int, test_sentences: list[str]
) -> dict | None:
    """Write the unseen-engine split (cached) and return its summary; None, with one printed
    line naming what to install, when ``engine`` is not available."""
    reason = unavailable(engine)
    if reason is not None:
        print(f"skipping {UNSEEN_SPLIT}: {reason}")
        return None
    count = min(UNSEEN_SIZES[size], len(test_sentences))
    params = {"engine": engine, "size": size, "seed": seed, "count": count}
    summary_path = out_dir / f"{UNSEEN_SPLIT}.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if summary.get("params") == params and (out_dir / f"{UNSEEN_SPLIT}.jsonl").is_file():
            return summary
    except (OSError, ValueError):
        pass
    rng = random.Random(f"unseen-{engine}-{seed}")
    utterances = [
        (f"{UNSEEN_SPLIT}-{i:06d}", sentence, DRAWS[engine](rng))
        for i, sentence in enumerate(test_sentences[:count])
    ]
    shutil.rmtree(out_dir / "wav" / UNSEEN_SPLIT, ignore_errors=True)
    (out_dir / "wav" / UNSEEN_SPLIT).mkdir(parents=True)
    records = []
    if engine == "piper":
        for job in piper_jobs(str(out_dir), UNSEEN_SPLIT, utterances, seed):
            records.extend(record for _, record in synthesize_group(job))
    else:
        for utterance in utterances:
            records.extend(
                record for _, record in synthesize_flite(str(out_dir), UNSEEN_SPLIT, *utterance)
            )
    temporary = out_dir / f"{UNSEEN_SPLIT}.jsonl.tmp"
    temporary.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    temporary.replace(out_dir / f"{UNSEEN_SPLIT}.jsonl")
    summary = {
        "params": params,
        "utterances": len(records),
        "hours": round(sum(r["duration"] for r in records) / 3600, 3),
        "voices": len({r["speaker"] for r in records}),
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
