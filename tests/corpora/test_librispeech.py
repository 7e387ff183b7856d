"""LibriSpeech: the official layout in, manifests out; bad input is counted; prepare -> train ->
evaluate on the official split names, with a report that matches a recomputation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.corpora.librispeech import main, prepare
from asr.data import read_manifest
from asr.errors import UserError
from tests.corpora.layouts import make_librispeech
from tests.corpora.tiny_run import evaluate_splits, train_tiny
from tests.report_check import check_report

pytestmark = pytest.mark.slow  # synthesises speech, and one test trains for a few seconds

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory):
    root = tmp_path_factory.mktemp("librispeech")
    written = make_librispeech(root / "download")
    summary = prepare(root / "download", root / "prepared", verify=True, workers=1)
    return root, written, summary


def test_manifests_by_official_split_name(librispeech):
    root, written, summary = librispeech
    for split, texts in written.items():
        utterances = read_manifest(root / "prepared" / f"{split}.jsonl")
        assert {u.id: u.text for u in utterances} == texts
        for utt in utterances:
            speaker, chapter, _ = utt.id.split("-")
            assert utt.speaker == speaker and utt.extra == {"chapter": chapter}
            assert utt.audio.suffix == ".flac" and utt.audio.is_absolute()
            assert 0.5 < utt.duration < 5
    assert summary["splits"]["train-clean-100"] == {
        "utterances": 6,
        "hours": pytest.approx(summary["splits"]["train-clean-100"]["hours"]),
        "speakers": 2,
    }
    # The four splits this copy lacks are each one counted problem; train-960 needs all three.
    assert summary["problems"] == {"missing split": 4}
    assert not (root / "prepared" / "train-960.jsonl").exists()
    saved = json.loads((root / "prepared" / "prepare.json").read_text())
    assert saved["splits"] == summary["splits"]


def test_bad_input_is_one_line_each_counted_and_the_rest_prepared(tmp_path, caplog):
    make_librispeech(tmp_path)
    chapter = tmp_path / "LibriSpeech" / "train-clean-100" / "103" / "1240"
    (chapter / "103-1240-0001.flac").unlink()  # a transcript line without audio
    (chapter / "103-1240-0007.flac").write_bytes((chapter / "103-1240-0000.flac").read_bytes())
    corrupt = chapter / "103-1240-0002.flac"  # cut in half: the header reads, the body does not
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 2])
    with (chapter / "103-1240.trans.txt").open("a") as file:
        file.write("this line is malformed\n")
    caplog.set_level("WARNING")
    summary = prepare(tmp_path, tmp_path / "out", splits=["train-clean-100", "test-other"])
    assert summary["problems"] == {
        "transcript without audio": 1,
        "audio without transcript": 1,
        "unreadable audio": 1,
        "malformed line": 1,
        "missing split": 1,
    }
    # Our own loggers only: a library may log warnings of its own in another environment.
    messages = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name.startswith("asr.")
    ]
    assert len(messages) == 5 and all("\n" not in m for m in messages)
    assert any("103-1240-0001 has no audio file 103-1240-0001.flac" in m for m in messages)
    assert any("103-1240-0007.flac has no line in 103-1240.trans.txt" in m for m in messages)
    assert any("103-1240-0002" in m and "corrupt" in m for m in messages)
    assert any("split test-other not found" in m for m in messages)
    ids = [u.id for u in read_manifest(tmp_path / "out" / "train-clean-100.jsonl")]
    assert ids == ["103-1240-0000", "1034-121119-0000", "1034-121119-0001", "1034-121119-0002"]


def test_header_only_check_finds_the_corrupt_file_later(tmp_path):
    make_librispeech(tmp_path, {"dev-clean": [("1272", "128104", 2, (0, 2))]})
    flac = tmp_path / "LibriSpeech" / "dev-clean" / "1272" / "128104" / "1272-128104-0000.flac"
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    summary = prepare(tmp_path, tmp_path / "out", splits=["dev-clean"], verify=False)
    assert summary["splits"]["dev-clean"]["utterances"] == 2 and summary["problems"] == {}


def test_all_three_training_splits_make_train_960(tmp_path):
    layout = {
        split: [("19", "198", 0, (index,))]
        for index, split in enumerate(("train-clean-100", "train-clean-360", "train-other-500"))
    }
    for split in layout:  # the same speaker and chapter twice would clash: make ids distinct
        layout[split] = [(str(19 + len(split)), "198", 0, layout[split][0][3])]
    make_librispeech(tmp_path, layout)
    summary = prepare(tmp_path, tmp_path / "out", verify=False)
    assert summary["splits"]["train-960"]["utterances"] == 3


def test_no_split_at_all_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "LibriSpeech").mkdir()
    with pytest.raises(UserError, match="no LibriSpeech split found"):
        prepare(tmp_path, tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        main(["--root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "LibriSpeech folder not found" in err and err.count("\n") == 1


def test_recipe_prepare_script_runs(librispeech, tmp_path):
    root, _, _ = librispeech
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "recipes/librispeech/prepare.py"),
            "--root",
            str(root / "download"),
            "--out",
            str(tmp_path),
            "--splits",
            "dev-clean",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        # This checkout's asr package, whichever one the interpreter has installed.
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "dev-clean" in result.stdout and (tmp_path / "dev-clean.jsonl").is_file()


def test_prepare_train_evaluate_and_the_report_matches_a_recomputation(librispeech, tmp_path):
    root, written, _ = librispeech
    corpus = root / "prepared"
    summary = train_tiny("librispeech", corpus, tmp_path / "exp")
    assert summary["epochs"][0]["step"] >= 1 and summary["skipped"] == {}
    splits = ["dev-clean", "test-clean"]
    rows = evaluate_splits(
        "librispeech", corpus, tmp_path / "exp" / "best.pt", tmp_path / "eval", splits
    )
    assert [row["utterances"] for row in rows] == [2, 2]
    check_report(tmp_path / "eval", splits)
    # References are normalised like the hypotheses: lower case, as the model spells.
    refs = (tmp_path / "eval" / "test-clean" / "ref.txt").read_text().splitlines()
    expected = sorted(f"{k} {v.lower()}" for k, v in written["test-clean"].items())
    assert refs == expected
