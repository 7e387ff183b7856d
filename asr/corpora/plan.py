"""The plan of the synthetic corpus: which voice says which sentence in which split.

Voices are every English accent of the bundled espeak data (en-us, en-gb, en-gb-scotland, ...)
crossed with a set of voice variants (male, female, Klatt), each with its own pitch, pitch range
and speaking rate (``voice_splits``). The dev and test splits are spoken by (accent, variant)
pairs that never occur in train, so they measure unseen voices; every accent and every variant
still occurs in train. ``plan_utterances`` deals the sentences out so that no sentence appears
in two splits, and each is spoken by one or two voices.

Everything here is a pure function of its arguments and seed; ``asr.corpora.synthetic`` renders
the plan into audio and manifests.
"""

from __future__ import annotations

import random

from asr.corpora.sentences import generate_sentences
from asr.synthesis import Voice

SPLITS = ("train", "dev", "test")

# Variants that sound like a person (the bundled data also has robots, whispers and croaks).
VARIANTS = (
    *("m1", "m2", "m3", "m4", "m5", "m6", "m7"),
    *("f1", "f2", "f3", "f4", "f5", "Annie", "linda", "steph"),
    *("klatt", "klatt2", "klatt3", "david"),
)
HELD_OUT_PAIRS_PER_ACCENT = {"dev": 1, "test": 2}
PITCHES = range(30, 71)
RATES = range(120, 176, 5)  # espeak words a minute; about 3 s for a 9-word sentence
PITCH_RANGES = (30, 40, 50, 60, 70)
SECOND_VOICE_PROBABILITY = 0.5


def voice_splits(
    accents: list[str], variants: list[str], settings_per_pair: int, seed: int
) -> dict[str, list[Voice]]:
    """Voices of each split; dev and test use (accent, variant) pairs that train never uses.

    Every accent holds out one variant for dev and two for test, rotating through a seeded
    permutation of the variants so that each variant is held out for few accents and still
    speaks train with the others.
    """
    rng = random.Random(f"voices-{seed}")
    order = rng.sample(sorted(variants), len(variants))
    held_out_per_accent = sum(HELD_OUT_PAIRS_PER_ACCENT.values())
    if len(order) <= held_out_per_accent:
        raise ValueError(f"need more than {held_out_per_accent} variants, got {len(order)}")
    pairs: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    for i, accent in enumerate(sorted(accents)):
        position = i * held_out_per_accent
        held_out = {}
        for split in ("test", "dev"):
            for _ in range(HELD_OUT_PAIRS_PER_ACCENT[split]):
                held_out[order[position % len(order)]] = split
                position += 1
        for variant in order:
            pairs[held_out.get(variant, "train")].append((accent, variant))

    voices: dict[str, list[Voice]] = {}
    for split in SPLITS:
        voices[split] = []
        for accent, variant in pairs[split]:
            settings: set[tuple[int, int, int]] = set()
            while len(settings) < settings_per_pair:
                settings.add((rng.choice(PITCHES), rng.choice(RATES), rng.choice(PITCH_RANGES)))
            for pitch, rate, pitch_range in sorted(settings):
                voices[split].append(Voice(accent, variant, pitch, rate, pitch_range))
    return voices


DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEXTS = ("sentences", "digits")


def generate_digit_strings(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct strings of 1-7 spoken digits ("four oh two" style, with "zero"), in a
    seeded order: a small, fast-to-learn task (like TIDIGITS) whose concatenations test whether
    attention keeps its place among repeated, similar words."""
    rng = random.Random(f"digits-{seed}")
    strings: dict[str, None] = {}
    while len(strings) < count:
        length = rng.randint(1, 7)
        strings[" ".join(rng.choice(DIGITS) for _ in range(length))] = None
    return list(strings)


def plan_utterances(
    sizes: dict[str, int], voices: dict[str, list[Voice]], seed: int, text: str = "sentences"
) -> dict[str, list[tuple[str, str, Voice]]]:
    """(id, written sentence, voice) of every utterance of each split.

    Sentences are drawn once for the whole corpus and dealt out to test, dev and train in
    turn, so no sentence is in two splits; each is spoken by one or two different voices.
    ``text`` is "sentences" (everyday English) or "digits" (``generate_digit_strings``).
    """
    count = sum(sizes[split] for split in SPLITS)
    generate = generate_sentences if text == "sentences" else generate_digit_strings
    sentences = iter(generate(count, seed=seed))
    rng = random.Random(f"plan-{seed}")
    plan: dict[str, list[tuple[str, str, Voice]]] = {}
    for split in ("test", "dev", "train"):
        utterances: list[tuple[str, str, Voice]] = []
        while len(utterances) < sizes[split]:
            sentence = next(sentences)
            speakers = 2 if rng.random() < SECOND_VOICE_PROBABILITY else 1
            speakers = min(speakers, sizes[split] - len(utterances), len(voices[split]))
            for voice in rng.sample(voices[split], speakers):
                utterances.append((f"{split}-{len(utterances):06d}", sentence, voice))
        plan[split] = utterances
    return {split: plan[split] for split in SPLITS}
