import pytest
import torch

from asr.data import (
    FeatureCache,
    SkipCounter,
    Skipped,
    Utterance,
    UtteranceDataset,
    collate,
    truncated_wav,
    validate,
)
from asr.features import LogMelFilterbank
from asr.text import Vocabulary
from tests.data.files import RATE, cut_wav, data_warnings, wav


def test_bad_utterances_are_skipped_and_counted(tmp_path):
    wav(tmp_path / "good.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio")
    wav(tmp_path / "short.wav", seconds=0.01)
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


def _epochs(dataset, skips, epochs=2):
    """The ids each epoch trains on, the dataset's skips added to ``skips`` as training does."""
    used = []
    for _ in range(epochs):
        batch = collate([dataset[i] for i in range(len(dataset))])
        skips.add(batch.skipped)
        used.append(batch.ids)
    return used


@pytest.mark.parametrize("cache_audio", [False, True])
def test_a_truncated_wav_is_skipped_counted_and_named_once(tmp_path, caplog, cache_audio):
    wav(tmp_path / "a.wav", seconds=0.5)
    cut_wav(tmp_path / "cut.wav", seconds=1.0, kept=0.5)
    wav(tmp_path / "c.wav", seconds=0.5)
    utts = [
        Utterance("a", tmp_path / "a.wav", 0.5, "a"),
        Utterance("cut", tmp_path / "cut.wav", 1.0, "the whole transcript"),
        Utterance("c", tmp_path / "c.wav", 0.5, "c"),
    ]
    skips = SkipCounter()
    dataset = UtteranceDataset(utts, Vocabulary(), cache_audio=cache_audio)
    assert _epochs(dataset, skips) == [["a", "c"], ["a", "c"]]
    assert skips.counts == {"truncated audio": 1}
    (warning,) = data_warnings(caplog)
    assert "cut.wav is truncated" in warning and "promises 1.00 s" in warning


def test_a_segment_past_the_end_of_its_file_is_truncated_audio(tmp_path, caplog):
    wav(tmp_path / "long.wav", seconds=2.0)
    utts = [
        Utterance("inside", tmp_path / "long.wav", 0.5, "a", offset=1.0),
        Utterance("past", tmp_path / "long.wav", 1.0, "b", offset=1.5),
    ]
    skips = SkipCounter()
    assert _epochs(UtteranceDataset(utts, Vocabulary()), skips) == [["inside"], ["inside"]]
    assert skips.counts == {"truncated audio": 1}
    (warning,) = data_warnings(caplog)
    assert "long.wav from 1.50 s for 1.00 s runs past the end" in warning


def test_truncated_wav_is_read_from_the_header(tmp_path):
    assert truncated_wav(wav(tmp_path / "whole.wav")) is None
    assert "promises 1.00 s but it holds 0.50 s" in truncated_wav(cut_wav(tmp_path / "cut.wav"))
    # A program writing WAV to a pipe cannot seek back to write the size: 0xFFFFFFFF, no truncation.
    streamed = bytearray(wav(tmp_path / "streamed.wav").read_bytes())
    at = streamed.index(b"data") + 4
    streamed[at : at + 4] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(streamed)
    assert truncated_wav(tmp_path / "streamed.wav") is None
    (tmp_path / "flac.flac").write_bytes(b"fLaC" + bytes(40))
    assert truncated_wav(tmp_path / "flac.flac") is None


def test_feature_cache_computes_once_and_matches_the_filterbank(tmp_path):
    wav(tmp_path / "a.wav", seconds=0.5)
    wav(tmp_path / "b.wav", seconds=0.3)
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


def test_feature_cache_skips_missing_and_truncated_audio(tmp_path, caplog):
    wav(tmp_path / "a.wav")
    cut_wav(tmp_path / "cut.wav")
    utts = [
        Utterance("a", tmp_path / "a.wav", 0.5, "a"),
        Utterance("gone", tmp_path / "gone.wav", 0.5, "b"),
        Utterance("cut", tmp_path / "cut.wav", 1.0, "c"),
    ]
    cache = FeatureCache(tmp_path / "cache", LogMelFilterbank())
    skips = SkipCounter()
    dataset = UtteranceDataset(utts, Vocabulary(), feature_cache=cache)
    assert _epochs(dataset, skips) == [["a"], ["a"]]
    assert skips.counts == {"unreadable audio": 1, "truncated audio": 1}
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 1  # nothing cached for the two
    warnings = data_warnings(caplog)
    assert len(warnings) == 2
    assert any("gone.wav does not exist" in w for w in warnings)
    assert any("cut.wav is truncated" in w for w in warnings)


def test_evaluation_dataset_does_not_need_spellable_text(tmp_path):
    wav(tmp_path / "a.wav")
    utt = Utterance("a", tmp_path / "a.wav", 0.5, "route 66")
    assert isinstance(UtteranceDataset([utt], Vocabulary())[0], Skipped)
    example = UtteranceDataset([utt], Vocabulary(), encode_text=False)[0]
    assert example.text == "route 66" and example.tokens.numel() == 0


def test_segments_read_their_stretch(tmp_path):
    wav(tmp_path / "long.wav", seconds=2.0)
    whole = Utterance("whole", tmp_path / "long.wav", 2.0, "hi")
    seg = Utterance("seg", tmp_path / "long.wav", 0.5, "hi", offset=1.25)
    dataset = UtteranceDataset([whole, seg], Vocabulary())
    assert dataset[0].waveform.shape == (2 * RATE,)
    assert dataset[1].waveform.shape == (RATE // 2,)
