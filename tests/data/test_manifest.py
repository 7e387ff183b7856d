import json
import math

import pytest

from asr.data import SkipCounter, Utterance, read_manifest, validate, write_manifest
from asr.errors import UserError
from asr.text import Vocabulary
from tests.data.files import data_warnings, manifest, wav


def test_manifest_relative_paths_and_round_trip(tmp_path):
    wav(tmp_path / "a.wav")
    m = manifest(
        tmp_path / "m.jsonl",
        [{"id": "a", "audio": "a.wav", "duration": 0.5, "text": "hi", "speaker": "s1"}],
    )
    (utt,) = read_manifest(m)
    assert utt.audio == tmp_path / "a.wav" and utt.speaker == "s1"
    write_manifest(tmp_path / "copy.jsonl", [utt])
    assert read_manifest(tmp_path / "copy.jsonl") == [utt]


GOOD_A = {"id": "a", "audio": "a.wav", "duration": 0.5, "text": "hi"}
GOOD_C = {"id": "c", "audio": "c.wav", "duration": 0.5, "text": "ho"}


@pytest.mark.parametrize(
    "line, reason, message",
    [
        ("{not json", "bad manifest line", "not valid JSON"),
        ("[1, 2]", "bad manifest line", "expected a JSON object, got [1, 2]"),
        ({"id": "b", "text": "x"}, "bad manifest line", "missing key(s) audio"),
        (
            {"id": "b", "audio": "b.wav", "text": None},
            "bad manifest line",
            "text must be a string, got null",
        ),
        (
            {"id": "b", "audio": None, "text": "x"},
            "bad manifest line",
            "audio must be a string, got null",
        ),
        ({"id": "b", "audio": "", "text": "x"}, "bad manifest line", "audio is empty"),
        (
            {"id": 5, "audio": "b.wav", "text": "x"},
            "bad manifest line",
            "id must be a string, got 5",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": 7},
            "bad manifest line",
            "text must be a string, got 7",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "duration": "abc"},
            "bad manifest line",
            'duration must be a number of seconds, got "abc"',
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "duration": True},
            "bad manifest line",
            "duration must be a number of seconds, got true",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "duration": -1},
            "bad manifest line",
            "duration must be a positive number of seconds, got -1.0",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "duration": 1, "offset": "1.5"},
            "bad manifest line",
            'offset must be a number of seconds, got "1.5"',
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "duration": 1, "offset": -2},
            "bad manifest line",
            "offset must be a number of seconds >= 0, got -2.0",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "offset": 1},
            "bad manifest line",
            "a line with an offset needs a duration",
        ),
        (
            {"id": "b", "audio": "b.wav", "text": "x", "speaker": 103},
            "bad manifest line",
            "speaker must be a string, got 103",
        ),
        (
            {**GOOD_A, "audio": "b.wav"},
            "duplicate id",
            "duplicate utterance id 'a' (first on line 1)",
        ),
    ],
)
def test_a_bad_line_is_skipped_counted_and_named_once(tmp_path, caplog, line, reason, message):
    m = manifest(tmp_path / "m.jsonl", [GOOD_A, line, GOOD_C])
    skips = SkipCounter()
    utterances = read_manifest(m, skips)
    assert [u.id for u in utterances] == ["a", "c"]
    assert skips.counts == {reason: 1}
    (warning,) = data_warnings(caplog)
    assert f"{m}:2: " in warning and message in warning


def test_a_manifest_without_a_usable_line_is_one_user_error(tmp_path):
    m = manifest(tmp_path / "bad.jsonl", ["{not json", {"id": 5, "audio": "a", "text": "x"}])
    with pytest.raises(UserError, match=r"bad.jsonl:1: not valid JSON .*\(and 1 more bad lines\)"):
        read_manifest(m)
    single = manifest(tmp_path / "one.jsonl", ['{"id": "a", "text": "x"}'])
    with pytest.raises(UserError, match=r"one.jsonl:1: missing key\(s\) audio"):
        read_manifest(single)


def test_bytes_that_are_not_utf8_are_a_bad_line(tmp_path, caplog):
    m = manifest(tmp_path / "m.jsonl", [GOOD_A, GOOD_C])
    m.write_bytes(m.read_bytes() + b'{"id": "\xff", "audio": "x.wav", "text": "x"}\n')
    assert [u.id for u in read_manifest(m)] == ["a", "c"]
    (warning,) = data_warnings(caplog)
    assert f"{m}:3: not UTF-8 text" in warning


def test_missing_manifest(tmp_path):
    with pytest.raises(UserError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_segments_and_extra_keys_round_trip(tmp_path):
    wav(tmp_path / "long.wav", seconds=2.0)
    m = manifest(
        tmp_path / "m.jsonl",
        [
            {"id": "whole", "audio": "long.wav", "duration": 2.0, "text": "hi", "chapter": "12"},
            {"id": "seg", "audio": "long.wav", "duration": 0.5, "offset": 1.25, "text": "hi"},
        ],
    )
    whole, seg = read_manifest(m)
    assert whole.offset is None and whole.extra == {"chapter": "12"}
    assert seg.offset == 1.25 and seg.extra == {}
    write_manifest(tmp_path / "copy.jsonl", [whole, seg])
    lines = [json.loads(line) for line in (tmp_path / "copy.jsonl").read_text().splitlines()]
    assert lines[0]["chapter"] == "12" and "offset" not in lines[0]
    assert lines[1]["offset"] == 1.25


def test_absent_or_null_optional_fields_are_unknown_and_round_trip(tmp_path):
    m = manifest(
        tmp_path / "m.jsonl",
        [
            {"id": "a", "audio": "a.wav", "text": "x"},
            {"id": "b", "audio": "b.wav", "text": "x", "duration": None, "speaker": None},
            '{"id": "c", "audio": "c.wav", "text": "x", "duration": NaN}',  # older write_manifest
        ],
    )
    utterances = read_manifest(m)
    assert all(math.isnan(u.duration) and u.speaker == "" for u in utterances)
    write_manifest(tmp_path / "copy.jsonl", utterances)
    assert "NaN" not in (tmp_path / "copy.jsonl").read_text()  # not JSON: the key is left out
    assert read_manifest(tmp_path / "copy.jsonl") == utterances


def test_a_missing_duration_is_read_from_the_header_for_the_filters(tmp_path, caplog):
    wav(tmp_path / "short.wav", seconds=0.5)
    wav(tmp_path / "long.wav", seconds=3.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    m = manifest(
        tmp_path / "m.jsonl",
        [
            {"id": "ok", "audio": "short.wav", "text": "hi"},
            {"id": "long", "audio": "long.wav", "duration": None, "text": "hi"},
            {"id": "fast", "audio": "short.wav", "text": "far too many words for half a second"},
            {"id": "missing", "audio": "gone.wav", "text": "hi"},
            {"id": "empty", "audio": "empty.wav", "text": "hi"},
        ],
    )
    skips = SkipCounter()
    kept = validate(
        read_manifest(m), Vocabulary(), skips, max_duration=2.0, max_tokens_per_second=25
    )
    assert [u.id for u in kept] == ["ok"] and kept[0].duration == pytest.approx(0.5)
    assert skips.counts == {
        "duration out of range": 1,
        "impossible length ratio": 1,
        "unreadable audio": 2,
    }
    warnings = data_warnings(caplog)
    assert len(warnings) == 4
    assert any("gone.wav does not exist" in w for w in warnings)
    assert any("empty.wav is empty" in w for w in warnings)


def test_impossible_token_rates_are_skipped_and_counted(tmp_path):
    utts = [
        Utterance("ok", tmp_path / "a.wav", 1.0, "hello there"),  # 11 characters a second
        Utterance("fast", tmp_path / "a.wav", 0.2, "hello there"),  # 55 a second
        Utterance("slow", tmp_path / "a.wav", 20.0, "hi"),  # 0.1 a second
    ]
    skips = SkipCounter()
    kept = validate(utts, Vocabulary(), skips, min_tokens_per_second=0.5, max_tokens_per_second=25)
    assert [u.id for u in kept] == ["ok"]
    assert skips.counts == {"impossible length ratio": 2}


def test_phone_transcripts_are_validated_by_phone(tmp_path):
    phones = Vocabulary(["h#", "sh", "iy"], unit="phone")
    utts = [
        Utterance("ok", tmp_path / "a.wav", 1.0, "h# sh iy h#"),
        Utterance("oov", tmp_path / "a.wav", 1.0, "h# zh iy h#"),
    ]
    skips = SkipCounter()
    assert [u.id for u in validate(utts, phones, skips)] == ["ok"]
    assert skips.counts == {"text outside vocabulary": 1}


def test_a_manifest_line_and_an_utterance_are_counted_apart(tmp_path):
    # A duplicate line is keyed by file:line, so the kept utterance with that id can still be
    # skipped (and counted) later, e.g. when its audio cannot be read.
    skips = SkipCounter()
    skips.skip(f"{tmp_path}/m.jsonl:2", "duplicate id", "duplicate utterance id 'a'")
    skips.skip("a", "unreadable audio", "gone")
    skips.skip("a", "unreadable audio", "gone")  # met again next epoch: counted once
    assert skips.counts == {"duplicate id": 1, "unreadable audio": 1} and skips.total == 2
