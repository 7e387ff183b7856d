"""Joint CTC/attention beam search with shallow fusion, CTC greedy search, the search options and
N-best rescoring, on toy models in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr.errors import UserError
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models.language_model import CharLSTMLM
from asr.recognizer import DecodingOptions, Recognizer
from asr.search import beam_search, ctc_greedy_search, greedy_search, rescore_with_language_model
from asr.text import Vocabulary
from tests import reference_search
from tests.test_search import FEATURES, VOCAB, make_features, make_model, teacher_forced

EOS = Vocabulary.eos_id


@pytest.fixture(scope="module")
def model():
    # As tests/test_search.py's: doubled weights make the random model decisive.
    model = make_model().double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    return model


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(5)
    lm = CharLSTMLM(VOCAB, embedding_size=4, hidden_size=8, num_layers=2).double().eval()
    with torch.no_grad():
        for parameter in lm.parameters():
            parameter.mul_(3.0)  # a decisive LM, so fusion changes hypotheses
    return lm


JOINT = dict(ctc_weight=0.3, lm_weight=0.5, length_bonus=0.4, coverage_weight=0.2)


def ctc_log_likelihood(model, features, lens, b, tokens) -> float:
    """log p_ctc(tokens | X) of utterance b by torch's CTC loss, the plain reference."""
    with torch.no_grad():
        log_probs, ctc_lens = model.ctc_log_probs(model.encode(features, lens))
    if not tokens:
        return float(log_probs[b, : ctc_lens[b], 0].sum())
    loss = F.ctc_loss(
        log_probs[b : b + 1, : ctc_lens[b]].transpose(0, 1),
        torch.tensor([tokens]),
        ctc_lens[b : b + 1],
        torch.tensor([len(tokens)]),
        reduction="sum",
    )
    return -float(loss)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_zero_weights_reproduce_the_attention_beam_search(model, lm, length_penalty):
    features, lens = make_features()
    features = features.double()
    for kwargs in ({}, {"language_model": lm, "ctc_weight": 0.0, "lm_weight": 0.0}):
        new = beam_search(model, features, lens, 3, length_penalty, **kwargs)
        old = reference_search.beam_search(model, features, lens, 3, length_penalty)
        for mine, theirs in zip(new, old, strict=True):
            assert [h.tokens for h in mine] == [h.tokens for h in theirs]
            assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], abs=1e-12)
            for a, b in zip(mine, theirs, strict=True):
                torch.testing.assert_close(a.log_probs, b.log_probs, rtol=0, atol=1e-12)
                assert a.ctc_score is None and a.lm_score is None


def test_joint_batch_equals_one_at_a_time(model, lm):
    features, lens = make_features()
    features = features.double()
    batch = beam_search(model, features, lens, 3, language_model=lm, **JOINT)
    plain = beam_search(model, features, lens, 3)
    assert [h[0].tokens for h in batch] != [h[0].tokens for h in plain]  # the weights matter
    for b, hypotheses in enumerate(batch):
        alone = features[b : b + 1, : lens[b]]
        (single,) = beam_search(model, alone, lens[b : b + 1], 3, language_model=lm, **JOINT)
        assert [h.tokens for h in single] == [h.tokens for h in hypotheses]
        assert [h.score for h in single] == pytest.approx([h.score for h in hypotheses], abs=1e-9)
        assert [h.ctc_score for h in single] == pytest.approx([h.ctc_score for h in hypotheses])


@pytest.mark.parametrize("pre_beam_ratio", [1.0, 4.0])
def test_joint_scores_are_the_weighted_sum_of_their_parts(model, lm, pre_beam_ratio):
    """Each finished hypothesis's score is (1-λ)·attention + λ·log p_ctc + β·log p_LM +
    bonus·U + τ·covered frames, each part recomputed independently of the search."""
    features, lens = make_features()
    features = features.double()
    results = beam_search(
        model, features, lens, 3, language_model=lm, pre_beam_ratio=pre_beam_ratio, **JOINT
    )
    for b, hypotheses in enumerate(results):
        for h in hypotheses:
            alone, alone_lens = features[b : b + 1, : lens[b]], lens[b : b + 1]
            attention, alignment = teacher_forced(model, alone, alone_lens, h.tokens)
            torch.testing.assert_close(h.log_probs, attention, rtol=0, atol=1e-10)
            ctc = ctc_log_likelihood(model, features, lens, b, h.tokens)
            assert h.ctc_score == pytest.approx(ctc, abs=1e-8)
            tokens = torch.tensor([h.tokens or [0]])
            with torch.no_grad():
                lm_score = float(lm.log_likelihood(tokens, torch.tensor([len(h.tokens)]))[0])
            assert h.lm_score == pytest.approx(lm_score, abs=1e-8)
            covered = int((alignment.sum(dim=0) > 0.5).sum())
            expected = (
                0.7 * float(attention.sum())
                + 0.3 * ctc
                + 0.5 * lm_score
                + 0.4 * len(h.tokens)
                + 0.2 * covered
            )
            assert h.score == pytest.approx(expected, abs=1e-8)


def test_missing_lm_or_ctc_head_is_refused(model, lm):
    features, lens = make_features()
    with pytest.raises(ValueError, match="needs a language model"):
        beam_search(model, features.double(), lens, 2, lm_weight=0.3)
    no_ctc = make_model()
    no_ctc.ctc_head = None
    with pytest.raises(ValueError, match="CTC head"):
        beam_search(no_ctc, features, lens, 2, ctc_weight=0.3)


def test_ctc_greedy_equals_argmax_collapse(model):
    features, lens = make_features()
    features = features.double()
    hypotheses = ctc_greedy_search(model, features, lens)
    with torch.no_grad():
        log_probs, ctc_lens = model.ctc_log_probs(model.encode(features, lens))
    for b, h in enumerate(hypotheses):
        tokens, previous, best_path = [], None, 0.0
        for t in range(int(ctc_lens[b])):
            frame = log_probs[b, t].clone()
            frame[[Vocabulary.sos_id, EOS]] = float("-inf")
            symbol = int(frame.argmax())
            best_path += float(frame.max())
            if symbol != Vocabulary.blank_id and symbol != previous:
                tokens.append(symbol)
            previous = symbol
        assert h.tokens == tokens
        assert h.score == pytest.approx(best_path, abs=1e-10)
        assert h.log_probs.shape == (len(tokens) + 1,)
        assert h.alignment.shape[0] == len(tokens) + 1
        torch.testing.assert_close(h.alignment.sum(-1), torch.ones(len(tokens) + 1).double())
    assert any(h.tokens for h in hypotheses)


def test_eos_threshold_keeps_eos_only_near_the_best_token(model):
    features, lens = make_features()
    features = features.double()
    checked = 0
    for threshold in (1.0, 1.5):
        for b, hypotheses in enumerate(
            beam_search(model, features, lens, 3, eos_threshold=threshold, max_length_ratio=3.0)
        ):
            for h in hypotheses:
                if h.reached_limit:
                    continue
                alone, alone_lens = features[b : b + 1, : lens[b]], lens[b : b + 1]
                with torch.no_grad():
                    listened = model.encode(alone, alone_lens)
                    memory = model.speller.memory(listened.encoded, listened.encoded_lens)
                    tokens_in = torch.tensor([[Vocabulary.sos_id, *h.tokens]])
                    logits, _ = model.speller(memory, tokens_in)
                logits[..., [Vocabulary.blank_id, Vocabulary.sos_id]] = float("-inf")
                last = logits[0, -1].log_softmax(-1)
                assert float(last[EOS]) >= threshold * float(last.max()) - 1e-12
                checked += 1
    assert checked > 0
    # A threshold of 1 allows <eos> only as the best token: one beam is then greedy search.
    (greedy, beam) = (
        greedy_search(model, features, lens),
        beam_search(model, features, lens, 1, eos_threshold=1.0),
    )
    assert [h.tokens for h in greedy] == [h[0].tokens for h in beam]


def test_end_detection_stops_early_without_changing_a_clear_winner(model):
    features, lens = make_features()
    features = features.double()
    plain = beam_search(model, features, lens, 3, length_penalty=0.0, max_length_ratio=4.0)
    never = beam_search(
        model, features, lens, 3, 0.0, 4.0, end_detect=2, end_detect_margin=float("inf")
    )
    assert [[h.tokens for h in u] for u in never] == [[h.tokens for h in u] for u in plain]
    eager = beam_search(model, features, lens, 3, 0.0, 4.0, end_detect=1, end_detect_margin=0.0)
    for a, b in zip(eager, plain, strict=True):
        assert a[0].score <= b[0].score + 1e-12  # it may stop before finding the best
        assert len(a) >= 1


def test_rescoring_adds_the_weighted_lm_log_likelihood_and_reranks(model, lm):
    features, lens = make_features()
    results = beam_search(model, features.double(), lens, 3, length_penalty=1.0)
    rescored = rescore_with_language_model(results, lm, 0.7, length_penalty=1.0)
    for before, after in zip(results, rescored, strict=True):
        assert sorted(map(tuple, (h.tokens for h in before))) == sorted(
            map(tuple, (h.tokens for h in after))
        )
        originals = {tuple(h.tokens): h.score for h in before}
        for h in after:
            tokens = torch.tensor([h.tokens or [0]])
            with torch.no_grad():
                expected = float(lm.log_likelihood(tokens, torch.tensor([len(h.tokens)]))[0])
            assert h.lm_score == pytest.approx(expected, abs=1e-9)
            assert h.score == pytest.approx(originals[tuple(h.tokens)] + 0.7 * expected)
        normalized = [h.score / (len(h.tokens) + 1) for h in after]
        assert normalized == sorted(normalized, reverse=True)


def toy_recognizer(model) -> Recognizer:
    vocabulary = Vocabulary(list("abcdefg"), unit="phone")
    assert len(vocabulary) == VOCAB
    filterbank = LogMelFilterbank(num_mel_bins=FEATURES)
    return Recognizer(model.float(), vocabulary, filterbank, GlobalNormalizer(FEATURES)).eval()


def test_recognizer_nbest_lm_and_ctc_checks(tmp_path):
    from asr.checkpoint import load_language_model, save_language_model

    def load_fusion_language_model(path, vocabulary):
        return recognizer.check_language_model(*load_language_model(path), path)

    recognizer = toy_recognizer(make_model())
    waveforms = torch.randn(2, 3200, generator=torch.Generator().manual_seed(0)) * 0.1
    waveform_lens = torch.tensor([3200, 2400])
    options = DecodingOptions(beam_size=3, nbest=3)
    for h in recognizer.transcribe_batch(waveforms, waveform_lens, options):
        assert 1 <= len(h.nbest) <= 3
        assert h.nbest[0].tokens == h.tokens and h.nbest[0].text == h.text
        assert all(n.text == recognizer.vocabulary.decode(n.tokens) for n in h.nbest)
    with pytest.raises(UserError, match="need a language model"):
        recognizer.transcribe_batch(waveforms, waveform_lens, DecodingOptions(lm_weight=0.3))

    lm = CharLSTMLM(VOCAB, embedding_size=4, hidden_size=8, num_layers=1)
    save_language_model(tmp_path / "lm.pt", lm, recognizer.vocabulary)
    loaded = load_fusion_language_model(tmp_path / "lm.pt", recognizer.vocabulary)
    fused = DecodingOptions(beam_size=2, ctc_weight=0.3, lm_weight=0.3, lm_rescore_weight=0.2)
    (first, _) = recognizer.transcribe_batch(waveforms, waveform_lens, fused, loaded)
    assert first.lm_score is not None and first.ctc_score is not None
    other = Vocabulary(list("abcdefg"))
    save_language_model(tmp_path / "other.pt", CharLSTMLM(len(other)), other)
    with pytest.raises(UserError, match="not the acoustic model's"):
        load_fusion_language_model(tmp_path / "other.pt", recognizer.vocabulary)

    recognizer.model.ctc_head = None
    for bad in (DecodingOptions(beam_size=2, ctc_weight=0.3), DecodingOptions(search="ctc_greedy")):
        with pytest.raises(UserError, match="needs a CTC head") as error:
            recognizer.transcribe_batch(waveforms, waveform_lens, bad)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"nbest": 3, "beam_size": 2},
        {"ctc_weight": 1.0},
        {"search": "ctc_beam"},
        {"eos_threshold": 0.5},
        {"lm_weight": -1.0},
    ],
)
def test_bad_decoding_options_are_one_line(bad):
    with pytest.raises(UserError, match="bad decoding configuration"):
        DecodingOptions.from_config(bad)


def test_the_benchmark_runs_and_compares_the_three_searches(capsys):
    from benchmarks import joint_search

    toy = ["--model", "las_tiny", "--utterances", "2", "--frames", "40", "--steps", "4"]
    toy += ["--beam-size", "3", "--lm-hidden-size", "8", "--repeats", "1", "--device", "cpu"]
    results = joint_search.main(toy)
    table = capsys.readouterr().out
    assert "| attention only |" in table and "+ CTC + LM" in table
    assert len(results["searches"]) == 3
    assert results["searches"]["attention only"]["ratio"] == 1.0


def test_an_utterance_ctc_makes_impossible_gets_one_empty_hypothesis(model, monkeypatch):
    """CTC posteriors that allow only <blank>, and <eos> suppressed at first: no candidate can
    ever finish, and each utterance still gets a hypothesis, empty and scored -inf."""
    real = model.ctc_log_probs

    def blank_only(listened):
        log_probs, lens = real(listened)
        only_blank = torch.full_like(log_probs, float("-inf"))
        only_blank[..., Vocabulary.blank_id] = 0.0
        return only_blank, lens

    monkeypatch.setattr(model, "ctc_log_probs", blank_only)
    features, lens = make_features()
    results = beam_search(model, features.double(), lens, 2, ctc_weight=0.3, min_length_ratio=0.5)
    encoder_lens = model.listener.output_lengths(lens).tolist()
    for (h,), frames in zip(results, encoder_lens, strict=True):
        assert h.tokens == [] and h.score == float("-inf") and h.reached_limit
        assert h.alignment.shape == (1, frames)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_joint_search_on_cuda_equals_cpu(model, lm):
    import copy

    features, lens = make_features()
    features = features.double()
    cpu = beam_search(model, features, lens, 3, language_model=lm, **JOINT)
    cuda_model, cuda_lm = copy.deepcopy(model).cuda(), copy.deepcopy(lm).cuda()
    cuda = beam_search(cuda_model, features.cuda(), lens.cuda(), 3, language_model=cuda_lm, **JOINT)
    for a, b in zip(cpu, cuda, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-8)
    (greedy,) = [ctc_greedy_search(cuda_model, features.cuda(), lens.cuda())]
    assert [h.tokens for h in greedy] == [
        h.tokens for h in ctc_greedy_search(model, features, lens)
    ]
