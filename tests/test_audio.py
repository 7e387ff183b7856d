"""load_audio reads every format we promise, resamples, and names the file in every error."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from asr.audio import audio_duration, load_audio, resample, save_audio
from asr.errors import AudioError


def tone(rate: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone of shape (S, C) at half scale; channel c has amplitude 0.5 / (c + 1)."""
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([wave / (c + 1) for c in range(channels)], axis=1).astype(np.float32)


FORMATS = [  # (suffix, soundfile format, subtype)
    ("wav", "WAV", "PCM_16"),
    ("flac", "FLAC", "PCM_16"),
    ("ogg", "OGG", "VORBIS"),
    ("sph", "NIST", "PCM_16"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
]


@pytest.mark.parametrize(("suffix", "file_format", "subtype"), FORMATS)
@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_reads_each_format_and_rate(tmp_path, suffix, file_format, subtype, rate):
    if file_format not in soundfile.available_formats():
        pytest.skip(f"this libsndfile cannot write {file_format}")
    path = tmp_path / f"tone.{suffix}"
    try:
        soundfile.write(path, tone(rate), rate, format=file_format, subtype=subtype)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        pytest.skip(f"cannot write {file_format} at {rate} Hz here: {error}")
    waveform = load_audio(path)
    assert waveform.dtype == torch.float32 and waveform.ndim == 1
    # Lossy codecs pad a little; PCM formats are exact.
    assert abs(waveform.shape[0] - 8000) <= (0 if subtype == "PCM_16" else 1200)
    assert 0.3 < waveform.abs().max() <= 1.0
    assert audio_duration(path) == pytest.approx(0.5, abs=0.08)


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    soundfile.write(path, tone(16000, channels=2), 16000)
    waveform = load_audio(path)
    assert waveform.shape == (8000,)
    # Channels of amplitude 0.5 and 0.25 in phase average to 0.375.
    assert waveform.abs().max() == pytest.approx(0.375, abs=2e-3)


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 16000), (22050, 16000)])
def test_resampled_length(tmp_path, orig, new):
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone(orig, seconds=1.25), orig)
    assert load_audio(path, sample_rate=new).shape == (round(1.25 * new),)
    assert resample(tone(orig)[:, 0], orig, new).shape == (round(0.5 * new),)


def test_save_audio_round_trip(tmp_path):
    waveform = torch.from_numpy(tone(16000)[:, 0])
    for suffix in ("wav", "flac"):
        path = tmp_path / "nested" / f"out.{suffix}"
        save_audio(path, waveform, 16000)
        assert soundfile.info(path).subtype == "PCM_16"
        assert torch.allclose(load_audio(path), waveform, atol=1e-4)
    with pytest.raises(AudioError, match="out.mp3"):
        save_audio(tmp_path / "out.mp3", waveform, 16000)


def _missing(tmp_path):
    return tmp_path / "missing.wav"


def _empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def _text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)
    return path


def _truncated(tmp_path):
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, tone(16000), 16000)
    path = tmp_path / "truncated.wav"
    path.write_bytes(whole.read_bytes()[:30])  # cut inside the header
    return path


def _corrupt_flac(tmp_path):
    whole = tmp_path / "whole.flac"
    soundfile.write(whole, tone(16000), 16000)
    path = tmp_path / "corrupt.flac"
    path.write_bytes(whole.read_bytes()[:60])
    return path


def _no_samples(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    return path


def _too_short(tmp_path):
    path = tmp_path / "click.wav"
    soundfile.write(path, np.full(399, 0.1, dtype=np.float32), 16000)
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_missing, "does not exist"),
        (_empty, "empty"),
        (_text, "not audio"),
        (_truncated, "truncated or corrupt"),
        (_corrupt_flac, "truncated or corrupt"),
        (_no_samples, "no samples"),
        (_too_short, "shorter than one 25 ms frame"),
    ],
)
def test_errors_name_the_file(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(AudioError, match=words) as caught:
        load_audio(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_min_samples_is_adjustable(tmp_path):
    path = _too_short(tmp_path)
    assert load_audio(path, min_samples=100).shape == (399,)
    with pytest.raises(AudioError, match=str(path)):
        load_audio(path, min_samples=1000)


def test_duration_errors_name_the_file(tmp_path):
    for make in (_missing, _empty, _text):
        path = make(tmp_path)
        with pytest.raises(AudioError, match=str(path).replace(".", r"\.")):
            audio_duration(path)


def test_offset_and_duration_read_one_stretch(tmp_path):
    path = tmp_path / "ramp.wav"
    ramp = (np.arange(16000) / 16000).astype(np.float32) * 0.5
    soundfile.write(path, ramp, 16000, subtype="FLOAT")
    stretch = load_audio(path, offset=0.25, duration=0.5)
    assert stretch.shape == (8000,)
    assert stretch[0].item() == pytest.approx(ramp[4000], abs=1e-6)
    assert load_audio(path, offset=0.75).shape == (4000,)
    with pytest.raises(AudioError, match="no samples from 2.00 s on"):
        load_audio(path, offset=2.0)


def write_sphere(path, samples: np.ndarray, coding: str | None = None) -> None:
    """A NIST SPHERE file with a TIMIT-style header (1024 bytes) and little-endian PCM."""
    fields = [
        "database_id -s5 TIMIT",
        "database_version -s3 1.0",
        "utterance_id -s8 aks0_sa1",
        "channel_count -i 1",
        f"sample_count -i {len(samples)}",
        "sample_rate -i 16000",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        "sample_sig_bits -i 16",
    ]
    if coding:
        fields.append(f"sample_coding -s{len(coding)} {coding}")
    header = "NIST_1A\n   1024\n" + "".join(f"{f}\n" for f in fields) + "end_head\n"
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    path.write_bytes(header.encode("ascii").ljust(1024, b" ") + pcm)


def test_timit_style_sphere_is_read(tmp_path):
    path = tmp_path / "SA1.WAV"
    write_sphere(path, tone(16000)[:, 0])
    waveform = load_audio(path)
    assert waveform.shape == (8000,) and waveform.abs().max() == pytest.approx(0.5, abs=1e-3)
    assert audio_duration(path) == pytest.approx(0.5)


def test_shorten_compressed_sphere_is_refused_in_one_line(tmp_path):
    path = tmp_path / "compressed.wv1"
    write_sphere(path, tone(16000)[:, 0], coding="pcm,embedded-shorten-v2.00")
    path.write_bytes(path.read_bytes()[:1024] + b"ajkg" + bytes(range(256)) * 8)
    with pytest.raises(AudioError, match="compressed with embedded-shorten-v2.00.*sph2pipe") as e:
        load_audio(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_one_open_file_probes_reads_stretches_and_streams(tmp_path):
    from asr.audio import AudioFile, probe_audio

    path = tmp_path / "tone.flac"
    soundfile.write(path, tone(44100, seconds=1.0, channels=2), 44100, format="FLAC")
    with AudioFile(path, 16000) as file:
        assert (file.info.frames, file.info.sample_rate, file.info.channels) == (44100, 44100, 2)
        assert file.info.duration == pytest.approx(1.0) and not file.info.truncated
        whole = file.read()
        assert whole.shape == (16000,)
        np.testing.assert_allclose(
            file.read(offset=0.25, duration=0.5), whole[4000:12000], atol=0.02
        )
        streamed = np.concatenate(list(file.blocks(0.3)))
        np.testing.assert_allclose(streamed, whole, atol=1e-3)
        assert np.concatenate(list(file.blocks(0.3))).shape == streamed.shape  # again, from 0
    assert probe_audio(path) == file.info


def test_a_truncated_wav_reads_what_it_holds_and_says_so(tmp_path):
    from asr.audio import probe_audio

    whole = tmp_path / "whole.wav"
    soundfile.write(whole, tone(16000, seconds=1.0), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    data = whole.read_bytes()
    cut.write_bytes(data[: 44 + 2 * 6000])  # the 44-byte header, then 6000 of 16000 samples
    info = probe_audio(cut)
    assert (info.frames, info.promised_frames, info.truncated) == (6000, 16000, True)
    assert str(cut) in info.truncation_message() and "1.00 s" in info.truncation_message()
    assert load_audio(cut).shape == (6000,)
    assert probe_audio(whole).promised_frames is None


def test_pad_waveforms_pads_with_zeros_to_the_longest_and_a_minimum():
    from asr.audio import pad_waveforms

    padded, lens = pad_waveforms([np.ones(3, np.float32), torch.ones(5)], min_samples=4)
    assert lens.tolist() == [4, 5]
    assert padded.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    padded, lens = pad_waveforms([np.ones(2, np.float32)], min_samples=4)
    assert padded.shape == (1, 4) and lens.tolist() == [4]
