"""espeak-ng synthesis: audible, deterministic, voice-dependent, with one start time per word."""

from __future__ import annotations

import pytest
import torch

from asr.synthesis import EspeakSynthesizer, Voice
from asr.text import normalize_text


@pytest.fixture(scope="module")
def synth() -> EspeakSynthesizer:
    return EspeakSynthesizer()


def test_one_engine_per_process(synth):
    assert EspeakSynthesizer() is synth


def test_bundled_data_has_english_accents_and_variants(synth):
    languages = synth.english_languages()
    assert {"en-us", "en", "en-gb-scotland", "en-gb-x-rp"} <= set(languages)
    assert "en-shaw" not in languages  # Shavian alphabet cannot read Latin letters
    assert {"m3", "f2", "klatt"} <= set(synth.variants())


def test_hello_world(synth):
    out = synth.synthesize("hello world", Voice("en-us", "m3"))
    assert out.sample_rate == 16000
    assert out.waveform.dtype == torch.float32 and out.waveform.ndim == 1
    assert 0.5 < out.duration < 2.0
    assert out.waveform.abs().max() > 0.1  # not silence
    assert out.waveform.abs().max() <= 1.0
    assert [word for word, _ in out.words] == ["hello", "world"]
    assert 0.0 <= out.words[0][1] < out.words[1][1] < out.duration


def test_edge_silence_is_trimmed(synth):
    out = synth.synthesize("good morning", Voice("en-gb-x-rp", "f2"))
    loud = (out.waveform.abs() > 0.003).nonzero().flatten()
    assert loud[0] <= 0.16 * 16000
    assert out.waveform.shape[0] - loud[-1] <= 0.16 * 16000


def test_same_voice_and_text_give_identical_samples(synth):
    voice = Voice("en-gb-scotland", "klatt", pitch=40, rate=150, pitch_range=30)
    first = synth.synthesize("could you pass the salt please", voice)
    synth.synthesize("something else in between", Voice("en-us", "f3"))
    second = synth.synthesize("could you pass the salt please", voice)
    assert torch.equal(first.waveform, second.waveform)
    assert first.words == second.words


@pytest.mark.parametrize(
    "other",
    [
        Voice("en-us", "f2"),  # variant
        Voice("en-gb-scotland", "m3"),  # accent
        Voice("en-us", "m3", pitch=80),  # pitch
        Voice("en-us", "m3", rate=120),  # rate
    ],
)
def test_different_voices_sound_different(synth, other):
    base = synth.synthesize("the weather is lovely today", Voice("en-us", "m3"))
    changed = synth.synthesize("the weather is lovely today", other)
    n = min(base.waveform.shape[0], changed.waveform.shape[0])
    assert base.waveform.shape != changed.waveform.shape or not torch.allclose(
        base.waveform[:n], changed.waveform[:n], atol=1e-3
    )


def test_slower_rate_is_longer(synth):
    fast = synth.synthesize("we walked to the station together", Voice("en-us", "m3", rate=220))
    slow = synth.synthesize("we walked to the station together", Voice("en-us", "m3", rate=120))
    assert slow.duration > 1.4 * fast.duration


@pytest.mark.parametrize(
    "text",
    [
        "It's Sarah's turn, don't you think?",
        "There was an owl in the garden at two o'clock.",
        "A well-known café—closed on Mondays.",
    ],
)
def test_one_start_time_per_transcript_word(synth, text):
    out = synth.synthesize(text, Voice("en-029", "f4"))
    assert [word for word, _ in out.words] == normalize_text(text).split()
    starts = [start for _, start in out.words]
    assert starts == sorted(starts)
    assert starts[-1] < out.duration


def test_bad_requests(synth):
    with pytest.raises(ValueError, match="empty"):
        synth.synthesize("  ", Voice("en-us"))
    with pytest.raises(ValueError, match="variant"):
        synth.synthesize("hello", Voice("en-us", "no-such-variant"))
    with pytest.raises(ValueError, match="language"):
        synth.synthesize("hello", Voice("xx-yy"))
    with pytest.raises(ValueError, match="pitch"):
        Voice("en-us", pitch=120)
    with pytest.raises(ValueError, match="rate"):
        Voice("en-us", rate=10)


def test_voice_names_are_stable_ids():
    assert Voice("en-us", "f2", pitch=60, rate=170).name == "en-us+f2_p60_r170"
    assert Voice("en", "", pitch=50, rate=175, pitch_range=30).name == "en_p50_r175_g30"
