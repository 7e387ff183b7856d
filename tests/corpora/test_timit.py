"""TIMIT: the LDC layout with NIST SPHERE audio in; 61-phone manifests for the standard splits
out; 39-phone scoring; prepare -> train -> evaluate with a phone error rate that matches a
recomputation."""

from __future__ import annotations

import shutil

import pytest

from asr.corpora.timit import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    FOLD_61_TO_39,
    PHONES_39,
    PHONES_61,
    fold_phones,
    prepare,
)
from asr.data import read_manifest
from asr.errors import UserError
from tests.corpora.layouts import make_timit
from tests.corpora.tiny_run import evaluate_splits, train_tiny
from tests.report_check import check_report

pytestmark = pytest.mark.slow  # synthesises speech, and one test trains for a few seconds


@pytest.fixture(scope="module")
def timit(tmp_path_factory):
    root = tmp_path_factory.mktemp("timit")
    written = make_timit(root / "download")
    summary = prepare(root / "download", root / "prepared")
    return root, written, summary


def test_phone_sets_and_speaker_lists():
    assert len(PHONES_61) == len(set(PHONES_61)) == 61
    assert len(PHONES_39) == 39 and "sil" in PHONES_39 and "q" not in PHONES_39
    assert set(FOLD_61_TO_39) <= set(PHONES_61)
    assert len(CORE_TEST_SPEAKERS) == 24 and len(set(CORE_TEST_SPEAKERS)) == 24
    assert len(DEV_SPEAKERS) == 50 and not set(DEV_SPEAKERS) & set(CORE_TEST_SPEAKERS)
    # 2 men and 1 woman in each of the 8 dialect regions.
    assert sum(s.startswith("f") for s in CORE_TEST_SPEAKERS) == 8
    assert fold_phones("h# ax-h q zh ux kcl k epi h#") == "sil ah sh uw sil k sil sil"


def test_standard_splits_without_sa_sentences(timit):
    root, written, summary = timit
    splits = {s: read_manifest(root / "prepared" / f"{s}.jsonl") for s in ("train", "dev", "test")}
    assert [u.id for u in splits["train"]] == [
        "fcjf0_si1027",
        "fcjf0_sx127",
        "fcjf0_sx37",
        "mklw0_si1571",
        "mklw0_sx131",
        "mklw0_sx221",
    ]
    assert [u.id for u in splits["dev"]] == ["faks0_si943", "faks0_sx133"]
    assert [u.id for u in splits["test"]] == ["mdab0_si1039", "mdab0_sx139"]
    for utterances in splits.values():
        for utt in utterances:
            assert utt.text == written[utt.id]  # 61 phones, h# at both ends
            assert utt.text.startswith("h# ") and set(utt.text.split()) <= set(PHONES_61)
            assert utt.extra["gender"] == utt.id[0] and utt.extra["words"]
            assert utt.audio.name.endswith(".WAV") and 0.5 < utt.duration < 5
    assert splits["dev"][0].extra["words"] == "the cat sat down"
    assert summary["problems"] == {}


def test_bad_input_is_one_line_each_counted_and_the_rest_prepared(tmp_path, caplog):
    make_timit(tmp_path)
    speaker = tmp_path / "TIMIT" / "TRAIN" / "DR1" / "FCJF0"
    (speaker / "SI1027.PHN").unlink()  # audio without a transcript
    (speaker / "SX37.WAV").unlink()  # a transcript without audio
    phn = speaker / "SX127.PHN"
    phn.write_text(phn.read_text().replace(" dh\n", " xx\n").replace(" sh\n", " xx\n"))
    shutil.rmtree(tmp_path / "TIMIT" / "TEST")  # no dev and no test split
    caplog.set_level("WARNING")
    summary = prepare(tmp_path, tmp_path / "out")
    assert summary["problems"] == {
        "audio without transcript": 1,
        "transcript without audio": 1,
        "malformed line": 1,
        "missing split": 1,
    }
    # Our own loggers only: a library may log warnings of its own in another environment.
    ours = [record for record in caplog.records if record.name.startswith("asr.")]
    assert [record.getMessage().count("\n") for record in ours] == [0, 0, 0, 0]
    assert [u.id for u in read_manifest(tmp_path / "out" / "train.jsonl")] == [
        "mklw0_si1571",
        "mklw0_sx131",
        "mklw0_sx221",
    ]


def test_lower_case_copies_are_found(tmp_path):
    make_timit(tmp_path, {"train/dr1/fcjf0": [("si1027", 0, 0)]})
    summary = prepare(tmp_path / "TIMIT", tmp_path / "out")
    assert summary["splits"]["train"]["utterances"] == 1


def test_not_a_timit_folder_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no TRAIN or TEST folder"):
        prepare(tmp_path, tmp_path / "out")


def test_prepare_train_evaluate_phone_error_rate(timit, tmp_path):
    root, _, _ = timit
    corpus = root / "prepared"
    summary = train_tiny("timit", corpus, tmp_path / "exp")
    assert summary["selected_by"] == "dev_per" and "dev_per" in summary["epochs"][0]
    rows = evaluate_splits(
        "timit", corpus, tmp_path / "exp" / "best.pt", tmp_path / "eval", ["dev", "test"]
    )
    assert all(row["unit"] == "phone" and row["normalization"] == "timit39" for row in rows)
    check_report(tmp_path / "eval", ["dev", "test"], unit="phone")
    # Both sides were folded to the 39 phones before scoring.
    for name in ("ref.txt", "hyp.txt"):
        for line in (tmp_path / "eval" / "test" / name).read_text().splitlines():
            assert set(line.split()[1:]) <= set(PHONES_39), line
    refs = (tmp_path / "eval" / "test" / "ref.txt").read_text()
    assert refs.startswith("mdab0_si1039 sil ow sil p ih n dh ah sil d aa r sil\n")
