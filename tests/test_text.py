import pytest

from asr.errors import TextError
from asr.text import Vocabulary, normalize_text


def test_normalize_folds_case_accents_punctuation_and_hyphens():
    assert normalize_text("  Café au-lait, PLEASE!  ") == "cafe au lait please"
    assert normalize_text("It’s Sarah's") == "it's sarah's"


def test_round_trip_and_special_ids():
    vocab = Vocabulary()
    ids = vocab.encode("hello world")
    assert min(ids) > vocab.eos_id
    assert vocab.decode(ids) == "hello world"
    assert vocab.decode([*ids, vocab.eos_id, *ids]) == "hello world"
    assert vocab.tokens[:3] == ("<blank>", "<sos>", "<eos>")


def test_out_of_vocabulary_text_names_the_characters():
    vocab = Vocabulary()
    with pytest.raises(TextError, match="'7'"):
        vocab.encode("route 7")
    assert vocab.unknown_characters("route 66 ok") == {"6"}


def test_dict_round_trip():
    vocab = Vocabulary()
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab


def test_phone_vocabulary_spells_space_separated_phones():
    vocab = Vocabulary(["h#", "sh", "iy", "ax-h"], unit="phone")
    ids = vocab.encode("h#  sh iy ax-h h#")
    assert ids == [3, 4, 5, 6, 3]
    assert vocab.decode([*ids, vocab.eos_id, 4]) == "h# sh iy ax-h h#"
    assert vocab.unknown_tokens("h# zh iy") == {"zh"}
    with pytest.raises(TextError, match="phones outside the vocabulary: 'zh'"):
        vocab.encode("h# zh")


def test_phone_vocabulary_from_transcripts_is_sorted_and_round_trips():
    vocab = Vocabulary.from_transcripts(["sh iy h#", "h# ae"], unit="phone")
    assert vocab.units == ("ae", "h#", "iy", "sh") and vocab.unit == "phone"
    restored = Vocabulary.from_dict(vocab.to_dict())
    assert restored == vocab and restored.unit == "phone"
    assert Vocabulary(["a"], unit="char") != Vocabulary(["a"], unit="phone")


def test_checkpoints_without_a_unit_load_as_characters():
    # The layout written before phone units existed.
    old = {"characters": list(" '" + "abcdefghijklmnopqrstuvwxyz")}
    vocab = Vocabulary.from_dict(old)
    assert vocab == Vocabulary() and vocab.unit == "char"
    assert Vocabulary().to_dict()["characters"] == old["characters"]


@pytest.mark.parametrize(
    "units, unit", [(["a", "a"], "char"), (["ab"], "char"), (["a b"], "phone"), (["x"], "word")]
)
def test_bad_vocabularies_are_refused(units, unit):
    with pytest.raises(ValueError):
        Vocabulary(units, unit=unit)


def test_word_vocabulary_maps_unknown_words_to_unk_and_round_trips():
    from asr.text import WordVocabulary, vocabulary_from_dict

    words = WordVocabulary.from_counts({"the": 5, "cat": 2, "dog": 2, "emu": 1}, min_count=2)
    assert words.words == ("the", "cat", "dog")  # most frequent first, ties by spelling
    assert words.encode("The EMU, the dog") == [4, WordVocabulary.unk_id, 4, 6]
    assert words.decode([4, 3, 5, Vocabulary.eos_id, 6]) == "the <unk> cat"
    assert vocabulary_from_dict(words.to_dict()) == words
    assert vocabulary_from_dict(Vocabulary().to_dict()) == Vocabulary()
    for bad in (["a", "a"], ["two words"], ["Caps"], ["<unk>"]):
        with pytest.raises(ValueError):
            WordVocabulary(bad)
