"""The word LM seen through characters (asr.models.word_lookahead): the characters of a word
multiply to the word LM's probability, every node's distribution sums to one, leaving the word
list costs the OOV penalty, rows are independent, and the beam search fuses it."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from asr.models.language_model import CharLSTMLM
from asr.models.word_lookahead import LexiconTree, LookaheadWordLM
from asr.search import beam_search, rescore_with_language_model
from asr.text import Vocabulary, WordVocabulary
from tests.test_search import VOCAB, make_features, make_model

# 7 characters with space: the vocabulary size of tests/test_search.py's toy model.
CHARACTERS = Vocabulary(list(" abcdef"))
WORDS = WordVocabulary(["bad", "a", "bead", "cab", "be", "dab", "fed", "bed", "ace", "face"])
SPACE = CHARACTERS.tokens.index(" ")


@pytest.fixture(scope="module")
def lookahead():
    assert len(CHARACTERS) == VOCAB
    torch.manual_seed(3)
    word_lm = CharLSTMLM(len(WORDS), embedding_size=6, hidden_size=12, num_layers=1)
    with torch.no_grad():
        for parameter in word_lm.parameters():
            parameter.mul_(3.0)  # a decisive LM: its choices change hypotheses
    return LookaheadWordLM(word_lm.double().eval(), WORDS, CHARACTERS, oov_penalty=-7.0)


def ids(text: str) -> list[int]:
    return [CHARACTERS.tokens.index(ch) for ch in text]


def walk(lm: LookaheadWordLM, text: str, end: bool = True) -> tuple[float, list[torch.Tensor]]:
    """Σ log p(character) of ``text`` (then ``<eos>`` when ``end``), one row, and each step's
    distribution."""
    state = lm.initial_state(1)
    token, total, steps = torch.tensor([Vocabulary.sos_id]), 0.0, []
    targets = ids(text) + ([Vocabulary.eos_id] if end else [])
    with torch.no_grad():
        for target in targets:
            log_probs, state = lm.step(token, state)
            steps.append(log_probs[0])
            total += float(log_probs[0, target])
            token = torch.tensor([target])
    return total, steps


def word_log_prob(lm: LookaheadWordLM, words: list[str]) -> float:
    """Σ log P(w_i | w_<i) by the word LM itself, without </s>."""
    state = lm.word_lm.initial_state(1)
    token, total = torch.tensor([Vocabulary.sos_id]), 0.0
    with torch.no_grad():
        for word in words:
            log_probs, state = lm.word_lm.step(token, state)
            total += float(log_probs[0, WORDS.id(word)])
            token = torch.tensor([WORDS.id(word)])
    return total


def test_tree_ranges_cover_exactly_the_words_with_each_prefix():
    words = ["bad", "a", "bead", "be", "ace"]
    tree = LexiconTree(words, CHARACTERS)
    ordered = [words[i] for i in tree.order.tolist()]
    assert ordered == sorted(words)
    nodes = {"": 0}
    for prefix in sorted({w[:n] for w in words for n in range(1, len(w) + 1)}, key=len):
        nodes[prefix] = int(tree.child[nodes[prefix[:-1]], ids(prefix[-1])[0]])
        low, high = int(tree.low[nodes[prefix]]), int(tree.high[nodes[prefix]])
        assert ordered[low:high] == [w for w in ordered if w.startswith(prefix)], prefix
        ends = int(tree.word[nodes[prefix]])
        assert (ordered[ends] == prefix) if prefix in words else ends == -1
    assert int(tree.child[nodes["bad"]].max()) == -1  # a leaf
    assert tree.num_nodes == len(nodes)


@pytest.mark.parametrize("sentence", ["a", "bead fed", "be bed a face"])
def test_the_characters_of_known_words_multiply_to_the_word_probabilities(lookahead, sentence):
    total, _ = walk(lookahead, sentence)
    assert total == pytest.approx(word_log_prob(lookahead, sentence.split()), abs=1e-9)


def test_every_distribution_inside_a_word_sums_to_one(lookahead):
    """After a non-empty prefix: its continuations and the word's end share its probability
    (characters that leave the list get the penalty, outside that sum)."""
    _, steps = walk(lookahead, "bead fed", end=False)
    for position, log_probs in enumerate(steps):
        if position == 0 or "bead fed"[position - 1] == " ":
            continue  # a word start: <unk> and </s> hold the rest of the mass
        kept = log_probs[3:] != lookahead.oov_penalty  # characters, space (<eos> repeats it)
        inside = log_probs[3:][kept].exp().sum()
        assert float(inside) == pytest.approx(1.0, abs=1e-6), position


def test_leaving_the_word_list_costs_the_penalty_once_per_word(lookahead):
    # "bx": no word starts "bf"; "bfa" is spelled free after the penalty, then "<unk>" is read.
    total, steps = walk(lookahead, "bfa be")
    assert float(steps[1][CHARACTERS.tokens.index("f")]) == -7.0
    assert torch.equal(steps[2], torch.zeros(len(CHARACTERS), dtype=steps[2].dtype))
    state = lookahead.word_lm.initial_state(1)
    with torch.no_grad():
        first, state = lookahead.word_lm.step(torch.tensor([Vocabulary.sos_id]), state)
        second, _ = lookahead.word_lm.step(torch.tensor([WordVocabulary.unk_id]), state)
    b_prefix = sum(math.exp(first[0, WORDS.id(w)]) for w in WORDS.words if w.startswith("b"))
    expected = math.log(b_prefix) - 7.0 + float(second[0, WORDS.id("be")])
    assert total == pytest.approx(expected, abs=1e-9)
    # Ending a word at a prefix that is no word costs the penalty too ("fe" is only a prefix).
    assert walk(lookahead, "fe")[1][-1][Vocabulary.eos_id] == -7.0


def test_rows_of_a_batch_are_independent(lookahead):
    sentences = ["bead fed", "cab a", "bfa dab", "face be"]
    alone = [walk(lookahead, s)[1] for s in sentences]  # len(s) + 1 distributions each
    width = max(map(len, sentences))
    padded = [s.ljust(width + 1) for s in sentences]
    state = lookahead.initial_state(len(sentences))
    tokens = torch.full((len(sentences),), Vocabulary.sos_id)
    with torch.no_grad():
        for position in range(width + 1):
            log_probs, state = lookahead.step(tokens, state)
            for row, sentence in enumerate(sentences):
                if position <= len(sentence):
                    expected = alone[row][position]
                    torch.testing.assert_close(log_probs[row], expected, rtol=0, atol=1e-9)
            tokens = torch.tensor([ids(s[position])[0] for s in padded])


def test_another_penalty_shares_the_networks(lookahead):
    other = lookahead.with_options(-2.0, sentence_restarts=False)
    assert other.word_lm is lookahead.word_lm and other.tree is lookahead.tree
    assert other.oov_penalty == -2.0 and lookahead.oov_penalty == -7.0
    with pytest.raises(ValueError, match="log-probability"):
        lookahead.with_options(1.0, sentence_restarts=False)


def test_the_beam_search_fuses_it_and_a_batch_equals_its_utterances(lookahead):
    model = make_model().double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    features, lens = make_features()
    features = features.double()
    fused = dict(language_model=lookahead, lm_weight=0.8, ctc_weight=0.3)
    batch = beam_search(model, features, lens, 3, **fused)
    plain = beam_search(model, features, lens, 3, ctc_weight=0.3)
    assert [h[0].tokens for h in batch] != [h[0].tokens for h in plain]  # the LM matters
    checked = 0
    for b, hypotheses in enumerate(batch):
        alone = features[b : b + 1, : lens[b]]
        (single,) = beam_search(model, alone, lens[b : b + 1], 3, **fused)
        assert [h.tokens for h in single] == [h.tokens for h in hypotheses]
        assert [h.score for h in single] == pytest.approx([h.score for h in hypotheses], abs=1e-9)
        for h in hypotheses:  # the LM part of each score is the look-ahead's own sum
            text = CHARACTERS.decode(h.tokens)
            if h.tokens and CHARACTERS.encode(text) == h.tokens:  # no stray spaces
                assert h.lm_score == pytest.approx(walk(lookahead, text)[0], abs=1e-9)
                checked += 1
    assert checked >= 3


def test_rescoring_reads_the_words_of_each_hypothesis(lookahead):
    model = make_model().double().eval()
    features, lens = make_features()
    results = beam_search(model, features.double(), lens, 3)
    rescored = rescore_with_language_model(results, lookahead, weight=0.5)
    for hypotheses in rescored:
        for h in hypotheses:
            words = CHARACTERS.decode(h.tokens).split()
            ids_ = torch.tensor([[WORDS.id(w) for w in words] or [0]])
            with torch.no_grad():
                expected = lookahead.word_lm.log_likelihood(ids_, torch.tensor([len(words)]))
            assert h.lm_score == pytest.approx(float(expected), abs=1e-9)


def test_a_word_lm_needs_a_character_vocabulary():
    word_lm = CharLSTMLM(len(WORDS), embedding_size=4, hidden_size=4, num_layers=1)
    with pytest.raises(ValueError, match="character vocabulary"):
        LookaheadWordLM(word_lm, WORDS, Vocabulary(["aa", "b"], unit="phone"))
    with pytest.raises(ValueError, match="predicts"):
        LookaheadWordLM(CharLSTMLM(5), WORDS, CHARACTERS)


def test_a_recognizer_fuses_a_word_lm_checkpoint_and_a_phone_model_refuses_it(tmp_path):
    from asr.checkpoint import load_language_model, save_language_model
    from asr.errors import UserError
    from asr.features import GlobalNormalizer, LogMelFilterbank
    from asr.recognizer import DecodingOptions, Recognizer
    from tests.test_search import FEATURES

    word_lm = CharLSTMLM(len(WORDS), embedding_size=4, hidden_size=8, num_layers=1)
    save_language_model(tmp_path / "words.pt", word_lm, WORDS)
    loaded, words = load_language_model(tmp_path / "words.pt")
    assert words == WORDS

    def recognizer(vocabulary):
        filterbank = LogMelFilterbank(num_mel_bins=FEATURES)
        model = make_model().float()
        return Recognizer(model, vocabulary, filterbank, GlobalNormalizer(FEATURES)).eval()

    chars = recognizer(CHARACTERS)
    fused = chars.check_language_model(loaded, words, tmp_path / "words.pt")
    assert isinstance(fused, LookaheadWordLM) and fused.vocab_size == len(CHARACTERS)
    waveforms = torch.randn(2, 3200, generator=torch.Generator().manual_seed(0)) * 0.1
    lens = torch.tensor([3200, 2400])
    options = DecodingOptions(beam_size=2, lm_weight=0.5, oov_penalty=-3.0, nbest=2)
    (first, second) = chars.transcribe_batch(waveforms, lens, options, fused)
    assert first.lm_score is not None and second.lm_score is not None
    phones = recognizer(Vocabulary(list("abcdefg"), unit="phone"))
    with pytest.raises(UserError, match="fuse with a character model only"):
        phones.check_language_model(loaded, words, tmp_path / "words.pt")
    with pytest.raises(UserError, match="oov_penalty"):
        DecodingOptions.from_config({"oov_penalty": 2.0})


def restart_reference(lm: LookaheadWordLM, words: list[str]) -> tuple[float, list[bool]]:
    """Σ log P'(w_i | ·) with sentence restarts, computed from the word LM directly: each word
    after the first is P(w | h) + P(</s> | h) P(w | <s>), and the LSTM goes on from the larger
    branch; also whether each later word started a new sentence."""
    word_lm = lm.word_lm
    with torch.no_grad():
        start_log_probs, start = word_lm.step(
            torch.tensor([Vocabulary.sos_id]), word_lm.initial_state(1)
        )
        log_probs, state = start_log_probs, start
        total = float(log_probs[0, WORDS.id(words[0])])
        log_probs, state = word_lm.step(torch.tensor([WORDS.id(words[0])]), state)
        restarted = []
        for word in words[1:]:
            go_on = math.exp(log_probs[0, WORDS.id(word)])
            anew = math.exp(log_probs[0, WORDS.eos_id] + start_log_probs[0, WORDS.id(word)])
            total += math.log(go_on + anew)
            restarted.append(anew > go_on)
            log_probs, state = word_lm.step(
                torch.tensor([WORDS.id(word)]), start if anew > go_on else state
            )
    return total, restarted


def test_sentence_restarts_let_a_new_sentence_begin_after_any_word(lookahead):
    # The fixture's LM rarely ends a sentence; with </s> made likelier (its logit + 4) some of
    # these words are read as the start of a new sentence and some as continuations.
    word_lm = copy.deepcopy(lookahead.word_lm)
    with torch.no_grad():
        word_lm.output.bias[WordVocabulary.eos_id] += 4.0
    single = LookaheadWordLM(word_lm, WORDS, CHARACTERS, oov_penalty=-7.0)
    restarting = single.with_options(-7.0, sentence_restarts=True)
    choices = []
    for sentence in ["bead fed", "be bed a face", "a a a a", "fed cab bad ace be"]:
        total, _ = walk(restarting, sentence)
        expected, restarted = restart_reference(restarting, sentence.split())
        assert total == pytest.approx(expected, abs=1e-9), sentence
        # More probable than the single-sentence reading, which it contains.
        assert total > walk(single, sentence)[0]
        choices += restarted
    assert True in choices and False in choices  # both branches were taken somewhere
    # The first word is the same either way; without the option nothing changes.
    torch.testing.assert_close(walk(restarting, "bead")[1][0], walk(single, "bead")[1][0])
    assert single.sentence_restarts is False
