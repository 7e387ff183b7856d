import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data import (
    BucketBatchSampler,
    SkipCounter,
    Skipped,
    Utterance,
    UtteranceDataset,
    collate,
    read_manifest,
    validate,
    write_manifest,
)
from asr.errors import UserError
from asr.text import Vocabulary


def _wav(path, seconds=0.5, sample_rate=16000):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sample_rate)
    return path


def _manifest(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_manifest_relative_paths_and_round_trip(tmp_path):
    _wav(tmp_path / "a.wav")
    m = _manifest(
        tmp_path / "m.jsonl",
        [{"id": "a", "audio": "a.wav", "duration": 0.5, "text": "hi", "speaker": "s1"}],
    )
    (utt,) = read_manifest(m)
    assert utt.audio == tmp_path / "a.wav" and utt.speaker == "s1"
    write_manifest(tmp_path / "copy.jsonl", [utt])
    assert read_manifest(tmp_path / "copy.jsonl") == [utt]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('{"id": "a", "text": "x"}', "missing key"),
    ],
)
def test_malformed_manifest_names_file_and_line(tmp_path, line, message):
    m = tmp_path / "bad.jsonl"
    m.write_text(line + "\n")
    with pytest.raises(UserError, match=rf"bad.jsonl:1: {message}"):
        read_manifest(m)


def test_missing_manifest(tmp_path):
    with pytest.raises(UserError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_bad_utterances_are_skipped_and_counted(tmp_path):
    _wav(tmp_path / "good.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio")
    _wav(tmp_path / "short.wav", seconds=0.01)
    utts = [
        Utterance("good", tmp_path / "good.wav", 0.5, "fine"),
        Utterance("oov", tmp_path / "good.wav", 0.5, "route 66"),
        Utterance("empty", tmp_path / "empty.wav", 0.5, "x"),
        Utterance("notaudio", tmp_path / "text.wav", 0.5, "x"),
        Utterance("missing", tmp_path / "missing.wav", 0.5, "x"),
        Utterance("short", tmp_path / "short.wav", 0.01, "x"),
    ]
    skips = SkipCounter()
    vocab = Vocabulary()
    kept = validate(utts, vocab, skips)
    assert [u.id for u in kept] == ["good", "empty", "notaudio", "missing", "short"]
    items = [UtteranceDataset(kept, vocab)[i] for i in range(len(kept))]
    batch = collate(items)
    assert batch.ids == ["good"]
    assert {s.id for s in batch.skipped} == {"empty", "notaudio", "missing", "short"}
    skips.add(batch.skipped)
    assert skips.total == 5
    assert "unreadable audio" in skips.summary()


def test_collate_pads_and_keeps_lengths():
    from asr.data import Example

    items = [
        Example("a", torch.ones(5), torch.tensor([3, 4]), "x"),
        Example("b", torch.ones(3), torch.tensor([5, 6, 7]), "y"),
        Skipped("c", "unreadable audio", "bad"),
    ]
    batch = collate(items)
    assert batch.waveforms.shape == (2, 5) and batch.waveforms[1, 3:].eq(0).all()
    assert batch.targets.tolist() == [[3, 4, 0], [5, 6, 7]]
    assert batch.waveform_lens.tolist() == [5, 3] and batch.target_lens.tolist() == [2, 3]
    assert len(collate([items[2]])) == 0


def test_bucket_sampler_respects_budget_covers_everything_and_is_deterministic():
    durations = [float(d) for d in np.random.default_rng(0).uniform(0.5, 6.0, size=200)]
    sampler = BucketBatchSampler(durations, max_batch_seconds=20.0, max_batch_size=8, seed=3)
    batches = sampler.batches(0)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert len(b) <= 8
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 20.0
    assert batches == sampler.batches(0)
    assert batches != sampler.batches(1)
    sampler.set_epoch(0, start_batch=5)
    assert list(sampler) == batches[5:]


def test_sorted_epochs_run_shortest_first_then_shuffle():
    durations = [float(d) for d in np.random.default_rng(1).uniform(0.5, 6.0, size=100)]
    sampler = BucketBatchSampler(durations, 12.0, 8, seed=0, sorted_epochs=1)
    first = sampler.batches(0)
    longest = [max(durations[i] for i in b) for b in first]
    assert longest == sorted(longest)
    second = sampler.batches(1)
    assert [max(durations[i] for i in b) for b in second] != sorted(
        max(durations[i] for i in b) for b in second
    )


def test_segments_and_extra_keys_round_trip(tmp_path):
    _wav(tmp_path / "long.wav", seconds=2.0)
    m = _manifest(
        tmp_path / "m.jsonl",
        [
            {"id": "whole", "audio": "long.wav", "duration": 2.0, "text": "hi", "chapter": "12"},
            {"id": "seg", "audio": "long.wav", "duration": 0.5, "offset": 1.25, "text": "hi"},
        ],
    )
    whole, seg = read_manifest(m)
    assert whole.offset is None and whole.extra == {"chapter": "12"}
    assert seg.offset == 1.25 and seg.extra == {}
    write_manifest(tmp_path / "copy.jsonl", [whole, seg])
    lines = [json.loads(line) for line in (tmp_path / "copy.jsonl").read_text().splitlines()]
    assert lines[0]["chapter"] == "12" and "offset" not in lines[0]
    assert lines[1]["offset"] == 1.25
    dataset = UtteranceDataset([whole, seg], Vocabulary())
    assert dataset[0].waveform.shape == (32000,)
    assert dataset[1].waveform.shape == (8000,)


def test_offset_without_duration_is_a_clear_error(tmp_path):
    m = _manifest(tmp_path / "m.jsonl", [{"id": "a", "audio": "a.wav", "offset": 1, "text": "x"}])
    with pytest.raises(UserError, match="m.jsonl:1: a line with an offset needs a duration"):
        read_manifest(m)


def test_impossible_token_rates_are_skipped_and_counted(tmp_path):
    utts = [
        Utterance("ok", tmp_path / "a.wav", 1.0, "hello there"),  # 11 characters a second
        Utterance("fast", tmp_path / "a.wav", 0.2, "hello there"),  # 55 a second
        Utterance("slow", tmp_path / "a.wav", 20.0, "hi"),  # 0.1 a second
    ]
    skips = SkipCounter()
    kept = validate(utts, Vocabulary(), skips, min_tokens_per_second=0.5, max_tokens_per_second=25)
    assert [u.id for u in kept] == ["ok"]
    assert skips.counts == {"impossible length ratio": 2}


def test_phone_transcripts_are_validated_by_phone(tmp_path):
    phones = Vocabulary(["h#", "sh", "iy"], unit="phone")
    utts = [
        Utterance("ok", tmp_path / "a.wav", 1.0, "h# sh iy h#"),
        Utterance("oov", tmp_path / "a.wav", 1.0, "h# zh iy h#"),
    ]
    skips = SkipCounter()
    assert [u.id for u in validate(utts, phones, skips)] == ["ok"]
    assert skips.counts == {"text outside vocabulary": 1}


def test_feature_cache_computes_once_and_matches_the_filterbank(tmp_path):
    from asr.data import FeatureCache
    from asr.features import LogMelFilterbank

    _wav(tmp_path / "a.wav", seconds=0.5)
    _wav(tmp_path / "b.wav", seconds=0.3)
    utts = [
        Utterance("a", tmp_path / "a.wav", 0.5, "a"),
        Utterance("b", tmp_path / "b.wav", 0.3, "b"),
    ]
    filterbank = LogMelFilterbank()
    cache = FeatureCache(tmp_path / "cache", filterbank)
    dataset = UtteranceDataset(utts, Vocabulary(), feature_cache=cache)
    batch = collate([dataset[0], dataset[1]])
    files = sorted((tmp_path / "cache").rglob("*.pt"))
    assert len(files) == 2
    assert batch.features.shape == (2, 48, 80) and batch.feature_lens.tolist() == [48, 28]
    assert batch.waveform_lens.tolist() == [8000, 4800] and batch.waveforms.shape == (2, 0)
    wave = UtteranceDataset(utts, Vocabulary())[0].waveform
    expected, _ = filterbank(wave[None], torch.tensor([len(wave)]))
    assert torch.allclose(batch.features[0], expected[0], atol=0.02)  # float16 storage
    stamps = [f.stat().st_mtime_ns for f in files]
    again = collate([dataset[0], dataset[1]])
    assert torch.equal(again.features, batch.features)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not recomputed
    other = FeatureCache(tmp_path / "cache", LogMelFilterbank(num_mel_bins=40))
    assert other.folder != cache.folder  # another filterbank never reads these features


def test_evaluation_dataset_does_not_need_spellable_text(tmp_path):
    _wav(tmp_path / "a.wav")
    utt = Utterance("a", tmp_path / "a.wav", 0.5, "route 66")
    assert isinstance(UtteranceDataset([utt], Vocabulary())[0], Skipped)
    example = UtteranceDataset([utt], Vocabulary(), encode_text=False)[0]
    assert example.text == "route 66" and example.tokens.numel() == 0
