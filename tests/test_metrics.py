import pytest

from asr.errors import UserError
from asr.metrics import (
    ErrorCounts,
    read_transcripts,
    score,
    utterance_errors,
    write_transcripts,
)


def test_hand_counted_word_and_character_errors():
    references = ["a b c d", "a b c"]
    hypotheses = ["a x c d e", "a c"]
    scores = score(references, hypotheses)
    # Words: b->x (S), +e (I); then b dropped (D). Hits a c d + a c.
    assert scores.words == ErrorCounts(
        substitutions=1, deletions=1, insertions=1, hits=5, reference_length=7
    )
    assert scores.wer == pytest.approx(3 / 7)
    # Characters (spaces count): b->x (S), +" e" (2 I); "a b c" -> "a c" drops "b " (2 D).
    assert scores.chars == ErrorCounts(
        substitutions=1, deletions=2, insertions=2, hits=9, reference_length=12
    )
    assert scores.cer == pytest.approx(5 / 12)
    assert scores.utterances == 2


def test_extra_white_space_does_not_count():
    assert score(["  the   cat "], ["the cat"]).cer == 0.0


@pytest.mark.parametrize(
    ("reference", "hypothesis", "words", "chars"),
    [
        ("", "", ErrorCounts(), ErrorCounts()),
        ("", "a b", ErrorCounts(insertions=2), ErrorCounts(insertions=3)),
        (
            "a b",
            " ",
            ErrorCounts(deletions=2, reference_length=2),
            ErrorCounts(deletions=3, reference_length=3),
        ),
    ],
)
def test_empty_sides(reference, hypothesis, words, chars):
    scores = score([reference], [hypothesis])
    assert scores.words == words and scores.chars == chars


def test_empty_reference_rates():
    assert score([""], [""]).wer == 0.0
    assert score([""], ["a b"]).wer == 2.0  # empty reference counted as one word, as jiwer 4
    assert score(["a b"], [""]).wer == 1.0
    mixed = score(["", "a b", "c"], ["x", "a b", ""])
    assert mixed.words == ErrorCounts(0, 1, 1, 2, 3)
    assert mixed.wer == pytest.approx(2 / 3)


def test_error_counts_add_and_scores_as_dict():
    total = ErrorCounts(1, 2, 3, 4, 7) + ErrorCounts(1, 1, 1, 1, 3)
    assert total == ErrorCounts(2, 3, 4, 5, 10)
    assert total.rate == pytest.approx(0.9)
    data = score(["a"], ["b"]).as_dict()
    assert data["wer"] == 1.0 and data["words"]["substitutions"] == 1 and data["utterances"] == 1


def test_utterance_errors_alignment_marks_each_operation():
    result = utterance_errors("a b c d", "a x c e d")
    assert result["wer"] == pytest.approx(0.5)
    assert result["words"]["substitutions"] == 1 and result["words"]["insertions"] == 1
    assert result["alignment"] == "REF: a b c * d\nHYP: a x c e d\n       S   I"
    deletion = utterance_errors("alpha beta gamma", "alpha gamma")["alignment"]
    assert deletion == "REF: alpha beta gamma\nHYP: alpha *    gamma\n           D"
    assert utterance_errors("", "hi")["alignment"] == "REF: *\nHYP: hi\n     I"
    assert utterance_errors("", "")["alignment"] == "REF:\nHYP:\n"


def test_transcripts_round_trip(tmp_path):
    transcripts = {"utt-2": "hello world", "utt-1": "", "spk_3-x": "it's  fine"}
    path = tmp_path / "nested" / "hyp.txt"
    write_transcripts(path, transcripts)
    assert path.read_text() == "utt-2 hello world\nutt-1\nspk_3-x it's fine\n"
    read = read_transcripts(path)
    assert read == {"utt-2": "hello world", "utt-1": "", "spk_3-x": "it's fine"}
    assert list(read) == list(transcripts)


def test_read_transcripts_accepts_tabs_and_blank_lines(tmp_path):
    path = tmp_path / "ref.txt"
    path.write_text("a\thello  there\n\nb   \nc x\n")
    assert read_transcripts(path) == {"a": "hello there", "b": "", "c": "x"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("a one\n  b two\n", "ref.txt:2"), ("a one\nb two\na three\n", "ref.txt:3: utterance id")],
)
def test_malformed_transcripts_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "ref.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_transcripts(path)


def test_missing_or_undecodable_transcripts(tmp_path):
    with pytest.raises(UserError, match="missing.txt"):
        read_transcripts(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"a \xff\xfe\n")
    with pytest.raises(UserError, match="binary.txt"):
        read_transcripts(binary)


def test_write_rejects_ids_with_spaces(tmp_path):
    with pytest.raises(ValueError):
        write_transcripts(tmp_path / "x.txt", {"bad id": "text"})


def test_alignment_of_an_empty_hypothesis():
    assert utterance_errors("a bb", "")["alignment"] == "REF: a bb\nHYP: * *\n     D D"


def test_confusion_totals_equal_the_edit_counts():
    from asr.metrics import word_confusions

    refs = ["the cat sat on the mat", "a dog", "", "good morning to you"]
    hyps = ["the hat sat on a mat mat", "", "well then", "good morning two you"]
    scores = score(refs, hyps)
    confusions = word_confusions(refs, hyps)
    assert sum(confusions.substitutions.values()) == scores.words.substitutions
    assert sum(confusions.deletions.values()) == scores.words.deletions
    assert sum(confusions.insertions.values()) == scores.words.insertions
    top = confusions.most_common(1)
    assert len(top["substitutions"]) == 1 and top["substitutions"][0]["count"] == 1
    assert {d["word"] for d in confusions.most_common()["deletions"]} == {"a", "dog"}


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("standard", "Don't STOP—believing!", "don't stop believing"),
        ("none", "  Don't   STOP ", "Don't STOP"),
        ("timit39", "h# q ao ax-h zh pcl p epi h#", "sil aa ah sh sil p sil sil"),
    ],
)
def test_text_normalizers(name, text, expected):
    from asr.metrics import text_normalizer

    assert text_normalizer(name)(text) == expected


def test_unknown_normalizer_is_a_user_error():
    from asr.metrics import text_normalizer

    with pytest.raises(UserError, match="unknown text normalisation 'lower'"):
        text_normalizer("lower")
