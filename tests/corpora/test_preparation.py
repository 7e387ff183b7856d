"""The steps every importer shares: audio checks (in parallel too), problem counts, summaries."""

from __future__ import annotations

import math

import numpy as np
import soundfile

from asr.corpora.preparation import Problems, check_audio, format_summary, write_corpus
from asr.data import Utterance


def test_check_audio_measures_durations_in_worker_processes(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    utterances = [
        Utterance(f"u{i}", tmp_path / ("bad.wav" if i == 7 else "a.wav"), math.nan, "x")
        for i in range(80)
    ]
    utterances.append(Utterance("seg", tmp_path / "a.wav", 0.25, "x", offset=0.125))
    utterances.append(Utterance("late", tmp_path / "a.wav", 1.0, "x", offset=0.25))
    problems = Problems()
    kept = check_audio(utterances, problems, verify=True, workers=2)
    assert len(kept) == 80 and "u7" not in {u.id for u in kept}
    assert {u.duration for u in kept} == {0.5, 0.25}
    assert problems.counts == {"unreadable audio": 2}  # u7, and the segment past the end
    header_only = check_audio(utterances[:3], Problems(), verify=False, workers=1)
    assert [u.duration for u in header_only] == [0.5, 0.5, 0.5]


def test_summary_lists_splits_and_problems(tmp_path):
    soundfile.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    problems = Problems()
    problems.add("audio without transcript", "x.wav has no transcript")
    utterances = [Utterance("b", tmp_path / "a.wav", 1.0, "hi", "s1")]
    summary = write_corpus(
        tmp_path / "out", "test", tmp_path, {"dev": utterances, "test": []}, problems
    )
    assert summary["splits"] == {"dev": {"utterances": 1, "hours": 0.0003, "speakers": 1}}
    assert summary["problems"] == {"audio without transcript": 1, "missing split": 1}
    text = format_summary(summary)
    assert "dev" in text and "1 audio without transcript" in text


def test_check_audio_counts_a_truncated_wav_and_keeps_the_rest(tmp_path, caplog):
    soundfile.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    soundfile.write(tmp_path / "cut.wav", np.zeros(16000, dtype=np.float32), 16000)
    data = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # a copy interrupted halfway
    utterances = [
        Utterance("a", tmp_path / "a.wav", math.nan, "x"),
        Utterance("cut", tmp_path / "cut.wav", math.nan, "x"),
        Utterance("gone", tmp_path / "gone.wav", math.nan, "x"),
    ]
    for verify in (True, False):
        problems = Problems()
        caplog.clear()
        assert [u.id for u in check_audio(utterances, problems, verify=verify)] == ["a"]
        assert problems.counts == {"truncated audio": 1, "missing audio file": 1}
        truncated = [r.getMessage() for r in caplog.records if "is truncated" in r.getMessage()]
        assert len(truncated) == 1 and "cut.wav" in truncated[0]
