"""The Python API on every kind of input people have: formats, rates, channels, long files,
silence, corrupt files, folders; and the checkpoint's refusal of unsafe or incompatible files."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import asr.recording
from asr import Transcriber
from asr.errors import AudioError, UserError
from tests.transcribe_fixtures import RATE, long_recording, sentence_audio, tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def transcriber(model):
    # Greedy: the tiny model's word-perfect dev score is measured with greedy search, and these
    # tests check the pipeline, not the search.
    return Transcriber.from_checkpoint(model.checkpoint, device="cpu", beam_size=1, batch_size=8)


@pytest.fixture(scope="session")
def two_sentences():
    """("good morning", "open the door") with a 0.8 s pause, at 16 kHz, and their text."""
    audio = {text: wave for text, wave, _ in sentence_audio()}
    pause = np.zeros(int(0.8 * RATE), dtype=np.float32)
    wave = np.concatenate([pause, audio["good morning"], pause, audio["open the door"], pause])
    return wave, "good morning open the door"


def write(path: Path, wave: np.ndarray, rate: int, channels: int = 1, **kwargs) -> Path:
    from asr.audio import resample

    path.parent.mkdir(parents=True, exist_ok=True)
    data = resample(wave, RATE, rate)
    data = np.stack([data * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
    soundfile.write(path, data, rate, **kwargs)
    return path


def check_consistent(result) -> None:
    """Words, segments and text agree; times are ordered and inside their segments."""
    assert result.ok
    assert " ".join(w.word for w in result.words) == result.text
    previous = 0.0
    for segment in result.segments:
        assert 0.0 <= segment.start < segment.end <= result.duration + 1e-3
        assert 0.0 < segment.confidence <= 1.0
        for word in segment.words:
            assert segment.start - 1e-6 <= word.start <= word.end <= segment.end + 1e-6
            assert word.start >= previous - 1e-6
            assert 0.0 < word.confidence <= 1.0
            previous = word.start


FORMATS = [  # suffix, format, subtype, rate, channels
    ("wav", "WAV", "PCM_16", 16000, 1),
    ("wav", "WAV", "FLOAT", 8000, 1),
    ("flac", "FLAC", "PCM_24", 44100, 2),
    ("ogg", "OGG", "VORBIS", 48000, 2),
    ("mp3", "MP3", "MPEG_LAYER_III", 44100, 2),
    ("sph", "NIST", "PCM_16", 22050, 1),
]


@pytest.mark.parametrize(("suffix", "file_format", "subtype", "rate", "channels"), FORMATS)
def test_every_format_rate_and_channel_count(
    transcriber, two_sentences, tmp_path, suffix, file_format, subtype, rate, channels
):
    if file_format not in soundfile.available_formats():
        pytest.skip(f"this libsndfile cannot write {file_format}")
    wave, text = two_sentences
    path = write(
        tmp_path / f"in.{suffix}", wave, rate, channels, format=file_format, subtype=subtype
    )
    result = transcriber.transcribe(path)
    check_consistent(result)
    assert len(result.segments) == 2
    assert result.duration == pytest.approx(len(wave) / RATE, abs=0.1)
    if rate >= RATE:
        assert result.text == text
    else:  # the tiny model never heard narrowband speech: as for the same audio in memory
        from asr.audio import resample

        narrowband = resample(resample(wave, RATE, rate), rate, RATE)
        assert result.text == transcriber.transcribe(narrowband).text


def test_waveforms_in_memory_equal_the_file(transcriber, two_sentences, tmp_path):
    wave, text = two_sentences
    from_file = transcriber.transcribe(write(tmp_path / "a.wav", wave, RATE, subtype="FLOAT"))
    from_tensor = transcriber.transcribe(torch.from_numpy(wave))
    from asr.audio import resample

    stereo = np.stack([resample(wave, RATE, 44100)] * 2)  # (C, S) at 44.1 kHz
    from_array = transcriber.transcribe(stereo, sample_rate=44100)
    assert from_file.text == from_tensor.text == from_array.text == text
    assert from_tensor.source == "<waveform>"
    for a, b in zip(from_file.words, from_tensor.words, strict=True):
        assert a.start == pytest.approx(b.start, abs=1e-3)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_batched_across_files_equals_one_by_one(transcriber, model):
    files = sorted(str(p) for p in model.corpus.glob("utt*_v*.wav"))
    together = transcriber.transcribe_many(files)
    assert [r.source for r in together] == files  # input order, whatever the batching
    for path, result in zip(files, together, strict=True):
        alone = transcriber.transcribe(path)
        assert result.text == alone.text
        assert result.confidence == pytest.approx(alone.confidence, abs=1e-4)
        for a, b in zip(result.words, alone.words, strict=True):
            assert a.start == pytest.approx(b.start, abs=1e-3)


def test_plain_utterances_are_recognised_with_confident_words(transcriber, model):
    for path, text in model.texts.items():
        result = transcriber.transcribe(path)
        check_consistent(result)
        assert result.text == text
        assert result.confidence > 0.5


@pytest.mark.parametrize("noise_db", [None, -70.0])
def test_silence_only_gives_an_empty_transcript(transcriber, tmp_path, noise_db):
    samples = np.zeros(5 * RATE, dtype=np.float32)
    if noise_db is not None:
        samples += 10 ** (noise_db / 20) * np.random.default_rng(0).standard_normal(5 * RATE)
    path = write(tmp_path / "silence.flac", samples.astype(np.float32), RATE)
    result = transcriber.transcribe(path)
    assert result.ok and result.text == "" and result.segments == [] and result.words == []
    assert result.duration == pytest.approx(5.0)
    assert result.confidence is None


def corrupt_flac(path: Path, wave: np.ndarray) -> Path:
    """A FLAC file whose frames after the first quarter are overwritten with noise bytes."""
    write(path, wave, RATE, format="FLAC")
    data = bytearray(path.read_bytes())
    start = len(data) // 4
    data[start:] = np.random.default_rng(0).integers(0, 256, len(data) - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def bad_files(folder: Path, wave: np.ndarray) -> dict[str, str]:
    """Every kind of bad input: {path: what its error must say}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is not audio\n")
    header_only = folder / "header_only.wav"
    soundfile.write(header_only, np.zeros((0, 1), dtype=np.float32), RATE)
    return {
        str(folder / "missing.wav"): "does not exist",
        str(folder / "empty.wav"): "empty",
        str(folder / "text.wav"): "not audio",
        str(header_only): "no samples",
        str(corrupt_flac(folder / "corrupt.flac", wave)): "corrupt",
    }


@pytest.mark.parametrize("streamed", [False, True])
def test_bad_files_raise_one_clear_error(
    transcriber, two_sentences, tmp_path, monkeypatch, streamed
):
    if streamed:  # read in blocks, as a long file is: the error surfaces mid-stream
        monkeypatch.setattr(asr.recording, "IN_MEMORY_SECONDS", 0.5)
        monkeypatch.setattr(asr.recording, "BLOCK_SECONDS", 0.5)
    for path, message in bad_files(tmp_path, two_sentences[0]).items():
        with pytest.raises(AudioError, match=message) as error:
            transcriber.transcribe(path)
        assert Path(path).name in str(error.value) and "\n" not in str(error.value)


def test_a_folder_of_good_and_bad_files(transcriber, model, two_sentences, tmp_path):
    wave, text = two_sentences
    folder = tmp_path / "calls"
    bad = bad_files(folder / "bad", wave)
    del bad[str(folder / "bad" / "missing.wav")]  # a folder only lists what exists
    write(folder / "a" / "first.wav", wave, RATE)
    write(folder / "b.ogg", wave, 32000, 2, format="OGG", subtype="VORBIS")
    (folder / "notes.txt").write_text("not listed: not an audio suffix")
    results = {r.source: r for r in transcriber.transcribe_many([folder])}
    good = {str(folder / "a" / "first.wav"), str(folder / "b.ogg")}
    assert set(results) == good | set(bad)
    for path in good:
        assert results[path].ok and results[path].text == text
    for path, message in bad.items():
        assert not results[path].ok and message in results[path].error
        assert results[path].text == "" and results[path].segments == []


def test_globs_expand_and_unmatched_ones_fail(transcriber, model, tmp_path):
    pattern = str(model.corpus / "utt1_v*.wav")
    matches = len(list(model.corpus.glob("utt1_v*.wav")))
    results = transcriber.transcribe_many([pattern, str(tmp_path / "*.nothing")])
    assert len(results) == matches + 1 and matches > 1
    assert all(r.text == "open the door" for r in results[:matches])
    assert not results[-1].ok and "does not exist" in results[-1].error


def test_long_recording_streams_in_blocks_with_the_same_result(transcriber, tmp_path, monkeypatch):
    path = tmp_path / "long.flac"
    texts, words = long_recording(path, repeats=16, rate=44100, channels=2)
    in_memory = transcriber.transcribe(path)
    monkeypatch.setattr(asr.recording, "IN_MEMORY_SECONDS", 5.0)
    monkeypatch.setattr(asr.recording, "BLOCK_SECONDS", 3.3)
    streamed = transcriber.transcribe(path)
    assert streamed.text == in_memory.text == " ".join(texts)
    bounds = [t for s in streamed.segments for t in (s.start, s.end)]
    assert bounds == pytest.approx([t for s in in_memory.segments for t in (s.start, s.end)])
    check_consistent(streamed)
    assert len(streamed.words) == len(words)


def test_a_ten_minute_file_in_bounded_memory_without_looping_or_truncation(transcriber, tmp_path):
    path = tmp_path / "ten_minutes.flac"
    texts, _ = long_recording(path, repeats=480, gap_seconds=0.4, rate=44100, channels=2)
    seconds = soundfile.info(path).duration
    assert seconds > 600
    decoded_seconds = []
    tracemalloc.start()
    try:
        results = list(
            transcriber.iter_transcribe(
                [path], on_segment=lambda _s, seg, _a: decoded_seconds.append(seg.end - seg.start)
            )
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result = results[0]
    assert result.text == " ".join(texts)  # nothing looped, nothing lost
    assert len(result.segments) == len(texts)
    assert max(decoded_seconds) <= transcriber.vad.max_segment_seconds
    # The whole file as float32 would be 10 min x 44.1 kHz x 2 channels x 4 B = 212 MB (or 38 MB
    # mono at 16 kHz); streaming holds a 10 s block, the frame energies and one batch.
    assert peak < 20e6, f"peak traced memory {peak / 1e6:.0f} MB"


def test_continuous_speech_is_cut_below_the_maximum_segment(model, two_sentences):
    wave, _ = two_sentences
    transcriber = Transcriber.from_checkpoint(
        model.checkpoint, beam_size=1, max_segment_seconds=2.0
    )
    result = transcriber.transcribe(np.concatenate([wave] * 3))
    assert all(s.end - s.start <= 2.0 + 1e-6 for s in result.segments)
    check_consistent(result)


def test_a_failed_segment_is_split_and_decoded_again(model, transcriber, monkeypatch):
    audio = {text: wave for text, wave, _ in sentence_audio()}
    gap = np.zeros(int(0.25 * RATE), dtype=np.float32)  # shorter than a pause: one segment
    wave = np.concatenate([audio["the cat sat down"], gap, audio["it's late now"]])
    assert len(transcriber.transcribe(wave).segments) == 1
    monkeypatch.setattr(Transcriber, "_looks_failed", lambda self, piece, decoded: piece.depth == 0)
    result = transcriber.transcribe(wave)
    assert len(result.segments) == 2
    assert result.segments[0].end == result.segments[1].start  # cut in the gap
    assert result.text == "the cat sat down it's late now"


def test_word_times_follow_the_speech(transcriber, tmp_path):
    """The tiny model's attention is blurry; its word starts still land near espeak's."""
    path = tmp_path / "timed.wav"
    texts, reference = long_recording(path, repeats=8, gap_seconds=0.7)
    result = transcriber.transcribe(path)
    assert [w.word for w in result.words] == [w for w, _ in reference]
    errors = np.array([w.start - t for w, (_, t) in zip(result.words, reference, strict=True)])
    print(f"median word start error {np.median(np.abs(errors)):.3f} s")
    assert np.median(np.abs(errors)) < 0.6
    check_consistent(result)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def test_a_malicious_checkpoint_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "owned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.pt"
    torch.save({"format": 1, "recognizer": {}, "payload": Exploit()}, path)
    with pytest.raises(UserError, match="refusing to load") as error:
        Transcriber.from_checkpoint(path)
    assert "could run code" in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"las_asr_version": "0.9.0"}, "written by las-asr 0.9.0, newer than"),
        ({"las_asr_version": "3.0.0"}, "upgrade las-asr to 3.0"),
        ({"las_asr_version": None}, "does not record which las-asr version"),
        ({"format": 99}, "checkpoint format 99"),
        ({"config": {"features": {}}}, "cannot rebuild the model"),
    ],
)
def test_incompatible_checkpoints_are_refused_clearly(model, tmp_path, change, message):
    payload = torch.load(model.checkpoint, weights_only=True)
    payload.update(change)
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(UserError, match=message):
        Transcriber.from_checkpoint(path)


def test_checkpoint_needs_no_config_directory(model, tmp_path, monkeypatch):
    """Everything comes from the file: run from elsewhere with the config tree out of reach."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(asr, "CONF_DIR", tmp_path / "nowhere")
    transcriber = Transcriber.from_checkpoint(model.checkpoint, beam_size=1)
    path, text = next(iter(model.texts.items()))
    assert transcriber.transcribe(path).text == text


def test_import_asr_stays_light_until_the_transcriber_is_used():
    import subprocess
    import sys

    code = (
        "import sys, asr; assert 'torch' not in sys.modules; "
        "from asr import Transcriber; assert 'torch' in sys.modules; print(Transcriber.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Transcriber"


# ---------------------------------------------------------------------------------------------
# One read per file, one search per segment; warnings; the checkpoint's decoding settings


def test_each_file_is_opened_once_and_each_segment_searched_once(
    transcriber, model, two_sentences, tmp_path, monkeypatch
):
    import asr.recognizer
    from asr.models.speller import Speller

    folder = tmp_path / "folder"
    for i, path in enumerate(sorted(model.texts)):
        write(folder / f"plain{i}.wav", soundfile.read(path, dtype="float32")[0], RATE)
    write(folder / "two.flac", two_sentences[0], 44100, 2, format="FLAC")
    opens, searched = [], []

    class CountingSoundFile(soundfile.SoundFile):
        def __init__(self, file, *args, **kwargs):
            opens.append(os.fspath(file))
            super().__init__(file, *args, **kwargs)

    def counting(search):
        def wrapper(model, features, feature_lens, **options):
            searched.append(features.size(0))
            return search(model, features, feature_lens, **options)

        return wrapper

    monkeypatch.setattr(soundfile, "SoundFile", CountingSoundFile)  # soundfile.info opens one too
    monkeypatch.setattr(asr.recognizer, "greedy_search", counting(asr.recognizer.greedy_search))
    monkeypatch.setattr(Speller, "forward", lambda *a: pytest.fail("a second, teacher-forced pass"))
    results = transcriber.transcribe_many([folder])
    files = sorted(str(p) for p in folder.iterdir())
    assert [r.source for r in results] == files and all(r.ok for r in results)
    assert sorted(opens) == files  # one open per file: header and samples through it
    segments = sum(len(r.segments) for r in results)
    assert segments == len(files) + 1  # two.flac has two
    assert sum(searched) == segments  # every segment searched once, none twice


def test_a_truncated_wav_is_transcribed_with_a_warning(transcriber, two_sentences, tmp_path):
    wave, _ = two_sentences
    whole = write(tmp_path / "whole.wav", wave, RATE, subtype="PCM_16")
    path = tmp_path / "cut.wav"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])  # the header still promises every sample
    result = transcriber.transcribe(path)
    assert result.ok and result.text.startswith("good morning")
    assert result.duration == pytest.approx(0.6 * len(wave) / RATE, abs=0.05)
    (warning,) = result.warnings
    assert str(path) in warning and "truncated" in warning and "\n" not in warning
    assert transcriber.transcribe(whole).warnings == []


def test_narrowband_audio_is_transcribed_with_a_warning(transcriber, two_sentences, tmp_path):
    wave, _ = two_sentences
    path = write(tmp_path / "phone.wav", wave, 8000)
    (warning,) = transcriber.transcribe(path).warnings
    assert str(path) in warning and "8000 Hz" in warning and "16000 Hz" in warning
    (warning,) = transcriber.transcribe(resample_to(wave, 8000), sample_rate=8000).warnings
    assert "waveform" in warning and "8000 Hz" in warning
    assert transcriber.transcribe(write(tmp_path / "wide.wav", wave, 44100)).warnings == []


def resample_to(wave: np.ndarray, rate: int) -> np.ndarray:
    from asr.audio import resample

    return resample(wave, RATE, rate)


def test_the_checkpoint_decoding_settings_are_used(model, tmp_path, spy_search):
    from asr.recognizer import DecodingOptions

    payload = torch.load(model.checkpoint, weights_only=True)
    payload["config"]["decoding"] = {
        "beam_size": 10,
        "length_penalty": 0.5,
        "max_length_ratio": 1.5,
        "min_length_ratio": 0.1,
        "attention_window": [2, 3],
    }
    path = tmp_path / "windowed.pt"
    torch.save(payload, path)
    transcriber = Transcriber.from_checkpoint(path, device="cpu", beam_size=1)
    assert transcriber.options == DecodingOptions(1, 0.5, 1.5, 0.1, (2, 3))
    passed = spy_search("greedy_search")
    transcriber.transcribe(next(iter(model.texts)))
    assert passed == [
        {"max_length_ratio": 1.5, "min_length_ratio": 0.1, "attention_window": (2, 3)}
    ]


def test_a_low_average_confidence_is_warned_about_and_a_confident_file_is_not(model, tmp_path):
    path, text = next(iter(model.texts.items()))
    quiet = Transcriber.from_checkpoint(model.checkpoint, device="cpu", beam_size=1)
    confidence = quiet.transcribe(path).confidence
    # The thresholds sit on either side of this file's own confidence: the rule, not the model.
    below = Transcriber.from_checkpoint(
        model.checkpoint, device="cpu", beam_size=1, low_confidence=confidence - 0.01
    ).transcribe(path)
    above = Transcriber.from_checkpoint(
        model.checkpoint, device="cpu", beam_size=1, low_confidence=confidence + 0.01
    ).transcribe(path)
    never = Transcriber.from_checkpoint(
        model.checkpoint, device="cpu", beam_size=1, low_confidence=None
    ).transcribe(path)
    assert below.text == above.text == text
    assert not any("confidence" in w for w in below.warnings + never.warnings)
    (warning,) = [w for w in above.warnings if "confidence" in w]
    assert str(path) in warning and "unlike the model's training data" in warning


def test_the_cli_prints_the_low_confidence_warning_in_one_line(model, capsys):
    from asr.cli import main

    path, _ = next(iter(model.texts.items()))
    assert main(["transcribe", "--model", str(model.checkpoint), "--beam-size", "1",
                 "--no-progress", "--low-confidence", "0.999", str(path)]) == 0  # fmt: skip
    lines = [line for line in capsys.readouterr().err.splitlines() if "confidence" in line]
    assert len(lines) == 1 and lines[0].startswith("asr: warning: ")
