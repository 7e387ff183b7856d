"""The synthetic corpus: files, manifests, disjoint splits, caching and determinism (size tiny)."""

from __future__ import annotations

import json

import pytest

from asr.audio import audio_duration, load_audio
from asr.corpora import synthetic
from asr.corpora.synthetic import (
    DIGITS,
    SIZES,
    SPLITS,
    VARIANTS,
    build_corpus,
    generate_digit_strings,
    main,
    voice_splits,
)
from asr.synthesis import EspeakSynthesizer
from asr.text import Vocabulary

pytestmark = pytest.mark.slow  # synthesises small corpora: a few seconds in all


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = build_corpus(out, size="tiny", seed=0, num_workers=1)
    return out, summary


def read_manifest(out, split) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]


def test_files_and_manifests(corpus):
    out, summary = corpus
    vocabulary = Vocabulary()
    for split in SPLITS:
        records = read_manifest(out, split)
        assert len(records) == SIZES["tiny"][split] == summary["splits"][split]["utterances"]
        for record in records:
            assert set(record) >= {"id", "audio", "duration", "text", "speaker", "words"}
            assert record["audio"] == f"wav/{split}/{record['id']}.wav"
            assert vocabulary.encode(record["text"])  # spellable, non-empty
            assert [word for word, _ in record["words"]] == record["text"].split()
    assert (out / "corpus.json").is_file()


def test_durations_match_audio(corpus):
    out, _ = corpus
    for record in read_manifest(out, "dev"):
        path = out / record["audio"]
        assert audio_duration(path) == pytest.approx(record["duration"], abs=1e-3)
        waveform = load_audio(path)
        assert waveform.shape[0] == round(record["duration"] * 16000)
        assert waveform.abs().max() > 0.05


def test_splits_disjoint_by_voice_and_sentence(corpus):
    out, _ = corpus
    records = {split: read_manifest(out, split) for split in SPLITS}
    pairs = {
        split: {record["speaker"].split("_p")[0] for record in records[split]} for split in SPLITS
    }
    texts = {split: {record["text"] for record in records[split]} for split in SPLITS}
    for a, b in [("train", "dev"), ("train", "test"), ("dev", "test")]:
        assert not pairs[a] & pairs[b], (a, b)  # (accent, variant) pairs never shared
        assert not texts[a] & texts[b], (a, b)
    for split in SPLITS:  # each sentence spoken by one or two voices
        counts = {}
        for record in records[split]:
            counts[record["text"]] = counts.get(record["text"], 0) + 1
        assert set(counts.values()) <= {1, 2}


def test_summary(corpus):
    _, summary = corpus
    assert summary["version"] and summary["params"]["size"] == "tiny"
    assert summary["vocabulary_size"] >= summary["train_vocabulary_size"] > 0
    assert 0.0 <= summary["test_oov_rate"] <= 1.0
    assert summary["splits"]["train"]["hours"] > 0


def test_voice_grid():
    synthesizer = EspeakSynthesizer()
    variants = [v for v in VARIANTS if v in synthesizer.variants()]
    voices = voice_splits(synthesizer.english_languages(), variants, 1, seed=0)
    names = [voice.name for split in SPLITS for voice in voices[split]]
    assert len(names) == len(set(names)) >= 40
    train_pairs = {(v.language, v.variant) for v in voices["train"]}
    for split in ("dev", "test"):
        assert not {(v.language, v.variant) for v in voices[split]} & train_pairs
    # Every accent and every variant still speaks some training data.
    assert {v.language for v in voices["train"]} == set(synthesizer.english_languages())
    assert {v.variant for v in voices["train"]} == set(variants)


def test_second_call_reuses(corpus, capsys, monkeypatch):
    out, summary = corpus
    watched = [out / "corpus.json", *(out / f"{split}.jsonl" for split in SPLITS)]
    watched.append(out / read_manifest(out, "train")[0]["audio"])
    before = {path: path.stat().st_mtime_ns for path in watched}

    def no_synthesis(jobs, num_workers):
        raise AssertionError(f"a reused corpus synthesised {len(jobs)} utterances again")

    # Nothing is synthesised (checked directly, not by a wall-clock bound a busy machine breaks).
    monkeypatch.setattr(synthetic, "_synthesize_all", no_synthesis)
    again = build_corpus(out, size="tiny", seed=0, num_workers=1)
    assert again == summary
    assert "reusing corpus at" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in watched} == before


def test_deterministic_across_builds_and_workers(corpus, tmp_path):
    out, _ = corpus
    assert main(["--out", str(tmp_path), "--size", "tiny", "--seed", "0", "--workers", "2"]) == 0
    for split in SPLITS:
        assert (tmp_path / f"{split}.jsonl").read_text() == (out / f"{split}.jsonl").read_text()
    first = read_manifest(out, "test")[0]["audio"]
    assert (tmp_path / first).read_bytes() == (out / first).read_bytes()


def test_digit_strings_are_distinct_digit_words_and_seeded():
    strings = generate_digit_strings(500, seed=3)
    assert len(set(strings)) == 500 and strings == generate_digit_strings(500, seed=3)
    assert all(1 <= len(s.split()) <= 7 and set(s.split()) <= set(DIGITS) for s in strings)
    assert strings != generate_digit_strings(500, seed=4)


def test_digits_corpus(tmp_path):
    summary = build_corpus(tmp_path, size="tiny", seed=0, num_workers=1, text="digits")
    assert summary["params"]["text"] == "digits"
    words = {
        w for split in SPLITS for u in read_manifest(tmp_path, split) for w in u["text"].split()
    }
    assert words <= set(DIGITS)
    test = {u["text"] for u in read_manifest(tmp_path, "test")}
    assert not test & {u["text"] for u in read_manifest(tmp_path, "train")}
    with pytest.raises(ValueError, match="text must be one of sentences, digits"):
        build_corpus(tmp_path / "x", size="tiny", text="poems")
