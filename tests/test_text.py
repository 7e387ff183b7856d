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
