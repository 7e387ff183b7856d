"""CMU flite as a corpus engine: deterministic, 16 kHz, skipped in one line when not installed."""

from __future__ import annotations

import json

import pytest
import torch

from asr import flite
from asr.errors import UserError
from asr.flite import FliteSynthesizer, FliteVoice


def needs_flite():
    reason = flite.missing_message()
    if reason is not None:
        pytest.skip(reason)


def test_voice_names_are_stable_and_bad_settings_refused():
    assert FliteVoice("kal16", 0.9, 100, 15).name == "flite-kal16_d0.90_f100_s15"
    with pytest.raises(ValueError, match="unknown flite voice"):
        FliteVoice("hal9000")
    with pytest.raises(ValueError, match="duration_stretch"):
        FliteVoice("slt", duration_stretch=3.0)


def test_missing_program_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(flite.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="apt-get install flite") as error:
        FliteSynthesizer()
    assert "\n" not in str(error.value)


def test_same_voice_same_samples_and_16_khz():
    needs_flite()
    synth = FliteSynthesizer()
    text = "could you close the window please"
    for name in ("kal", "slt"):  # 8 kHz diphone and 16 kHz CLUSTERGEN voices
        voice = FliteVoice(name, duration_stretch=1.1, f0_mean=110, f0_stddev=20)
        a = synth.synthesize(text, voice)
        b = synth.synthesize(text, voice)
        assert a.sample_rate == 16000 and torch.equal(a.waveform, b.waveform)
        assert a.waveform.dtype == torch.float32 and 1.0 < a.duration < 5.0
        assert [w for w, _ in a.words] == text.split()
    slower = synth.synthesize(text, FliteVoice("slt", duration_stretch=1.4))
    faster = synth.synthesize(text, FliteVoice("slt", duration_stretch=0.8))
    assert slower.duration > faster.duration * 1.3


def test_flite_speaks_a_share_of_training_and_can_be_the_unseen_engine(tmp_path):
    needs_flite()
    from asr.corpora.synthetic import build_corpus

    build_corpus(tmp_path / "a", size="tiny", seed=0, num_workers=1, engines=("espeak", "flite"))
    build_corpus(tmp_path / "b", size="tiny", seed=0, num_workers=2, engines=("espeak", "flite"))
    train_a = (tmp_path / "a" / "train.jsonl").read_text().splitlines()
    speakers = [json.loads(line)["speaker"] for line in train_a]
    assert 10 <= sum(s.startswith("flite-") for s in speakers) <= 20  # a quarter of 60
    assert train_a == (tmp_path / "b" / "train.jsonl").read_text().splitlines()
    flite_ids = [json.loads(line)["id"] for line in train_a if "flite-" in line]
    for utterance_id in flite_ids[:3]:  # the same samples, whatever the number of workers
        a = (tmp_path / "a" / "wav" / "train" / f"{utterance_id}.wav").read_bytes()
        assert a == (tmp_path / "b" / "wav" / "train" / f"{utterance_id}.wav").read_bytes()

    summary = build_corpus(
        tmp_path / "c", size="tiny", seed=0, num_workers=1, unseen_engine="flite"
    )
    unseen = (tmp_path / "c" / "test_unseen_engine.jsonl").read_text().splitlines()
    assert len(unseen) == summary["test_unseen_engine"]["utterances"] > 0
    assert all(json.loads(line)["speaker"].startswith("flite-") for line in unseen)
    train_c = (tmp_path / "c" / "train.jsonl").read_text()
    assert "flite-" not in train_c  # training never hears the unseen engine


def test_an_engine_cannot_both_train_and_be_unseen():
    from asr.corpora.engines import check_engines

    with pytest.raises(ValueError, match="must not also speak training"):
        check_engines(("espeak", "flite"), "flite")
