"""Any corpus: Kaldi data directories (wav.scp, text, segments, utt2spk; command entries run or
refused) and JSONL/CSV/TSV tables, into manifests; bad input is counted; prepare -> train ->
evaluate on segments cut from long recordings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from asr.corpora.custom import main, prepare_kaldi, prepare_tables
from asr.data import UtteranceDataset, read_manifest
from asr.errors import UserError
from asr.text import Vocabulary
from tests.corpora.layouts import RATE, SENTENCES, VOICES, make_kaldi, speech
from tests.corpora.tiny_run import evaluate_splits, train_tiny
from tests.report_check import check_report

pytestmark = pytest.mark.slow  # synthesises speech, and one test trains for a few seconds


@pytest.fixture(scope="module")
def kaldi(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaldi")
    written = make_kaldi(root)
    dirs = {"train": root / "data" / "train", "test": root / "data" / "test"}
    summary = prepare_kaldi(dirs, root / "prepared", root=root, run_commands=True)
    return root, written, summary


def test_segments_become_manifest_segments(kaldi):
    root, written, summary = kaldi
    train = read_manifest(root / "prepared" / "train.jsonl")
    assert {u.id: u.text for u in train} == written["train"]
    assert summary["problems"] == {}
    by_id = {u.id: u for u in train}
    first = by_id["spkA-rec1-000"]
    assert first.offset == pytest.approx(0.3, abs=0.01) and first.speaker == "spkA"
    assert first.extra == {"recording": "spkA-rec1"}
    # The command entry ran once; its audio is kept beside the manifests.
    assert by_id["spkA-rec3-000"].audio == (root / "prepared/audio/train/spkA-rec3.wav").resolve()
    # Each segment reads as long as its times say, out of the long recording.
    dataset = UtteranceDataset(train, Vocabulary())
    for index, utt in enumerate(train):
        assert len(dataset[index].waveform) == pytest.approx(utt.duration * RATE, abs=2)
    test = read_manifest(root / "prepared" / "test.jsonl")
    assert [u.offset for u in test] == [None, None, None] and test[0].speaker == ""


def test_command_entries_are_refused_without_run_commands(tmp_path, caplog):
    make_kaldi(tmp_path)
    caplog.set_level("WARNING")
    summary = prepare_kaldi({"train": tmp_path / "data" / "train"}, tmp_path / "out", root=tmp_path)
    assert summary["problems"] == {"command refused": 1}
    (message,) = [r.getMessage() for r in caplog.records if "command" in r.getMessage()]
    assert "spkA-rec3 is a command ('cat " in message and "--run-commands" in message
    ids = [u.id for u in read_manifest(tmp_path / "out" / "train.jsonl")]
    assert ids and not any(i.startswith("spkA-rec3") for i in ids)


def test_bad_kaldi_input_is_one_line_each_counted(tmp_path, caplog):
    make_kaldi(tmp_path)
    train = tmp_path / "data" / "train"
    with (train / "text").open("a") as file:
        file.write("spkZ-rec9-000 A TRANSCRIPT WITHOUT AUDIO\n")
    with (train / "segments").open("a") as file:
        file.write("spkA-rec1-009 spkA-rec1 0.50 1.00\n")  # audio without a transcript
        file.write("spkA-rec1-010 spkA-rec1 9.00 8.00\n")  # malformed times
    with (train / "wav.scp").open("a") as file:
        file.write("spkQ-rec4 exp/feats.ark:1234\n")
        file.write("spkQ-rec5 false |\n")
    (tmp_path / "audio" / "spkB-rec2.wav").write_bytes(b"RIFF not really")  # unreadable
    caplog.set_level("WARNING")
    summary = prepare_kaldi({"train": train}, tmp_path / "out", root=tmp_path, run_commands=True)
    assert summary["problems"] == {
        "transcript without audio": 1,
        "audio without transcript": 1,
        "malformed line": 1,
        "archive entry refused": 1,
        "command failed": 1,
        "unreadable audio": 2,  # the two segments of the broken recording
    }
    warnings = [  # our own loggers only: a library's warning must not change the count
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name.startswith("asr.")
    ]
    assert len(warnings) == 7 and all("\n" not in w for w in warnings)
    assert len(read_manifest(tmp_path / "out" / "train.jsonl")) == 5


def test_not_a_kaldi_directory(tmp_path):
    with pytest.raises(UserError, match="no wav.scp"):
        prepare_kaldi({"train": tmp_path}, tmp_path / "out")


def test_tables_in_csv_tsv_and_jsonl(tmp_path):
    audio = tmp_path / "clips"
    audio.mkdir()
    long = [speech(SENTENCES[i], VOICES[0]) for i in (0, 1)]
    soundfile.write(audio / "long.wav", np.concatenate(long), RATE, subtype="PCM_16")
    split, end = len(long[0]) / RATE, (len(long[0]) + len(long[1])) / RATE
    soundfile.write(audio / "a.wav", speech(SENTENCES[2], VOICES[1]), RATE, subtype="PCM_16")
    (tmp_path / "train.csv").write_text(
        "path,sentence,client_id,start,end\n"
        f"clips/long.wav,{SENTENCES[0]},s1,0,{split:.3f}\n"
        f"clips/long.wav,{SENTENCES[1]},s1,{split:.3f},{end:.3f}\n"
        "clips/a.wav,,s2,,\n"  # audio without text
        ",some words,s2,,\n"  # text without audio
        "clips/missing.wav,hello,s3,,\n"  # a missing file
    )
    (tmp_path / "dev.tsv").write_text(f"path\tsentence\nclips/a.wav\t{SENTENCES[2]}\n")
    (tmp_path / "test.jsonl").write_text(
        json.dumps({"audio_filepath": str(audio / "a.wav"), "text": SENTENCES[2], "duration": 9})
        + "\n{not json\n"  # one malformed line: counted, the rest prepared
    )
    tables = {
        name: tmp_path / f"{name}.{ext}"
        for name, ext in (("train", "csv"), ("dev", "tsv"), ("test", "jsonl"))
    }
    summary = prepare_tables(tables, tmp_path / "out")
    assert summary["problems"] == {
        "audio without transcript": 1,
        "transcript without audio": 1,
        "missing audio file": 1,
        "malformed line": 1,
    }
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [u.id for u in train] == ["long_00000000", f"long_{round(1000 * split):08d}"]
    assert train[1].offset == pytest.approx(split, abs=1e-3) and train[1].speaker == "s1"
    assert train[1].duration == pytest.approx(end - split, abs=1e-3)
    (test,) = read_manifest(tmp_path / "out" / "test.jsonl")
    assert test.duration == pytest.approx(len(speech(SENTENCES[2], VOICES[1])) / RATE, abs=1e-3)


def test_table_without_a_text_column_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("path,words\na.wav,hello\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), "table", f"train={tmp_path / 't.csv'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "t.csv has no text column" in err and err.count("\n") == 1


def test_prepare_train_evaluate_on_segments(kaldi, tmp_path):
    root, _, _ = kaldi
    corpus = root / "prepared"
    extra = [f"data.dev_manifest={corpus / 'test.jsonl'}"]
    summary = train_tiny("custom", corpus, tmp_path / "exp", extra)
    assert summary["epochs"][0]["step"] >= 1 and summary["skipped"] == {}
    evaluate_splits(
        "custom", corpus, tmp_path / "exp" / "best.pt", tmp_path / "eval", ["train", "test"]
    )
    check_report(tmp_path / "eval", ["train", "test"])
