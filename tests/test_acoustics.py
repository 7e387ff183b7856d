"""Acoustic simulation and the piper voice: deterministic from the seed, lengths and rates kept."""

from __future__ import annotations

import pytest
import torch

from asr import acoustics
from asr.augment import WaveformAugment
from asr.piper import NeuralVoice, missing_message


def batch():
    waveforms = torch.randn(3, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    lens = torch.tensor([8000, 6000, 3000])
    waveforms[1, 6000:] = 0.0
    waveforms[2, 3000:] = 0.0
    return waveforms, lens


@pytest.mark.parametrize(
    "effect",
    [
        lambda w, n, g: acoustics.reverberate(w, n, g, 1.0, (0.2, 0.6), (0.0, 10.0), 16000),
        lambda w, n, g: acoustics.add_babble(w, n, g, 1.0, (5.0, 10.0)),
        lambda w, n, g: acoustics.telephone(w, n, g, 1.0, 16000),
        lambda w, n, g: acoustics.add_dc(w, n, g, 0.05),
    ],
    ids=["reverb", "babble", "telephone", "dc"],
)
def test_effect_is_seeded_keeps_shape_and_padding(effect, request):
    effect_name = request.node.callspec.id
    waveforms, lens = batch()
    first = effect(waveforms, lens, torch.Generator().manual_seed(1))
    again = effect(waveforms, lens, torch.Generator().manual_seed(1))
    other = effect(waveforms, lens, torch.Generator().manual_seed(2))
    assert first.shape == waveforms.shape
    assert torch.equal(first, again)
    # The telephone channel draws only which rows it picks: with probability 1 it is fixed.
    assert torch.equal(first, other) == (effect_name == "telephone")
    assert not torch.allclose(first, waveforms)
    assert first[1, 6000:].abs().max() == 0 and first[2, 3000:].abs().max() == 0


def test_telephone_removes_energy_outside_the_band():
    t = torch.arange(16000) / 16000
    tone = 0.5 * torch.sin(2 * torch.pi * 100 * t) + 0.5 * torch.sin(2 * torch.pi * 6000 * t)
    out = acoustics.telephone(tone[None], torch.tensor([16000]), torch.Generator(), 1.0, 16000)
    spectrum = torch.fft.rfft(out[0].double()).abs()
    assert spectrum[100] < 0.05 * spectrum.max() + 1e-9 or spectrum.max() < 1e-3
    assert spectrum[6000] < 0.05 * torch.fft.rfft(tone.double()).abs()[6000]


def test_waveform_augment_with_acoustics_is_seeded():
    augment = WaveformAugment(
        speed_factors=(1.0,), reverb_probability=0.5, babble_probability=0.5,
        telephone_probability=0.5, dc_offset=0.01,
    )  # fmt: skip
    waveforms, lens = batch()
    a, a_lens = augment(waveforms, lens, torch.Generator().manual_seed(3))
    b, _ = augment(waveforms, lens, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(a_lens, lens)


def test_bad_probability_is_one_clear_error():
    with pytest.raises(ValueError, match="reverb_probability"):
        WaveformAugment(reverb_probability=1.5)


def test_piper_voice_is_seeded_and_resampled():
    reason = missing_message("joe")
    if reason is not None:
        pytest.skip(reason)
    from asr.piper import PiperSynthesizer

    synth = PiperSynthesizer("joe")
    voices = [NeuralVoice(), NeuralVoice(length_scale=1.2, speed=0.9)]
    texts = ["the cat sat on the mat", "could you close the window"]
    first = synth.synthesize_many(texts, voices, seed=4)
    again = synth.synthesize_many(texts, voices, seed=4)
    other = synth.synthesize_many(texts, voices, seed=5)
    for a, b in zip(first, again, strict=True):
        assert a.sample_rate == 16000 and torch.equal(a.waveform, b.waveform)
        assert [w for w, _ in a.words] == [w for w, _ in b.words]
    assert any(
        a.waveform.shape != c.waveform.shape or not torch.equal(a.waveform, c.waveform)
        for a, c in zip(first, other, strict=True)
    )
    assert first[1].duration > 1.0  # a 5-word sentence, slowed


def test_unseen_engine_split_is_written_beside_test(tmp_path):
    reason = missing_message("joe")
    if reason is not None:
        pytest.skip(reason)
    import json

    from asr.corpora.synthetic import build_corpus

    summary = build_corpus(tmp_path, size="tiny", seed=0, num_workers=1, unseen_engine="piper")
    records = [
        json.loads(line)
        for line in (tmp_path / "test_unseen_engine.jsonl").read_text().splitlines()
    ]
    test_texts = {json.loads(line)["text"] for line in (tmp_path / "test.jsonl").open()}
    assert len(records) == summary["test_unseen_engine"]["utterances"] > 0
    assert all(r["speaker"].startswith("piper-") and r["text"] in test_texts for r in records)
    assert all((tmp_path / r["audio"]).is_file() for r in records)
