import pytest
import torch

from asr.models import LAS, build_model
from asr.search import Hypothesis, beam_search, greedy_search

VOCAB, FEATURES = 10, 6


def make_model(seed=0, **listener) -> LAS:
    torch.manual_seed(seed)
    config = {
        "listener": {"hidden_size": 8, "num_layers": 1, "num_pyramid_layers": 1} | listener,
        "speller": {"embedding_size": 4, "hidden_size": 8},
        "attention": {
            "type": "location",
            "attention_size": 6,
            "location_channels": 2,
            "location_kernel_size": 3,
        },
        "ctc_weight": 0.3,
        "label_smoothing": 0.0,
        "sampling_probability": 0.0,
    }
    return build_model(config, vocab_size=VOCAB, input_size=FEATURES)


def make_features(lens=(12, 7, 9), seed=1):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lens), max(lens), FEATURES, generator=generator)
    for b, frames in enumerate(lens):
        features[b, frames:] = 30.0
    return features, torch.tensor(lens)


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    # Toy-sized ops gain nothing from threads, and on a shared 2-core machine OpenMP threads
    # waiting for each other made the overfit test 20x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    # Double precision keeps batch-vs-single differences far below any score gap. Doubled
    # weights make the random model decisive: varied tokens, <eos> early for some utterances and
    # the length limit for others, and beams that differ from greedy.
    model = make_model().double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)
    return model


def check_hypothesis(hypothesis: Hypothesis, encoder_frames: int):
    assert all(3 <= token < VOCAB for token in hypothesis.tokens)
    assert hypothesis.alignment.shape == (len(hypothesis.tokens) + 1, encoder_frames)
    assert hypothesis.alignment.device.type == "cpu"
    torch.testing.assert_close(
        hypothesis.alignment.sum(-1), torch.ones(len(hypothesis.tokens) + 1, dtype=torch.double)
    )
    assert hypothesis.score <= 0


def test_greedy_batch_equals_one_at_a_time(model):
    features, lens = make_features()
    batch = greedy_search(model, features.double(), lens)
    encoder_lens = model.listener.output_lengths(lens).tolist()
    for b, hypothesis in enumerate(batch):
        check_hypothesis(hypothesis, encoder_lens[b])
        (alone,) = greedy_search(model, features[b : b + 1, : lens[b]].double(), lens[b : b + 1])
        assert alone.tokens == hypothesis.tokens
        assert alone.score == pytest.approx(hypothesis.score, abs=1e-9)
        torch.testing.assert_close(alone.alignment, hypothesis.alignment)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_batch_equals_one_at_a_time(model, length_penalty):
    features, lens = make_features()
    batch = beam_search(model, features.double(), lens, beam_size=3, length_penalty=length_penalty)
    encoder_lens = model.listener.output_lengths(lens).tolist()
    for b, hypotheses in enumerate(batch):
        assert 1 <= len(hypotheses) <= 3
        for hypothesis in hypotheses:
            check_hypothesis(hypothesis, encoder_lens[b])
        normalized = [h.score / (len(h.tokens) + 1) ** length_penalty for h in hypotheses]
        assert normalized == sorted(normalized, reverse=True)
        (alone,) = beam_search(
            model,
            features[b : b + 1, : lens[b]].double(),
            lens[b : b + 1],
            beam_size=3,
            length_penalty=length_penalty,
        )
        assert [h.tokens for h in alone] == [h.tokens for h in hypotheses]
        assert [h.score for h in alone] == pytest.approx([h.score for h in hypotheses], abs=1e-9)
        torch.testing.assert_close(alone[0].alignment, hypotheses[0].alignment)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_of_one_is_greedy(model, length_penalty):
    features, lens = make_features()
    greedy = greedy_search(model, features.double(), lens)
    beam = beam_search(model, features.double(), lens, beam_size=1, length_penalty=length_penalty)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert b.tokens == g.tokens
        assert b.score == pytest.approx(g.score, abs=1e-9)
        torch.testing.assert_close(b.alignment, g.alignment)


def test_wider_beam_finds_at_least_as_likely_a_transcript(model):
    features, lens = make_features()
    greedy = greedy_search(model, features.double(), lens)
    beam = beam_search(model, features.double(), lens, beam_size=4, length_penalty=0.0)
    for g, hypotheses in zip(greedy, beam, strict=True):
        assert hypotheses[0].score >= g.score - 1e-9


def test_length_limits_in_characters_per_encoder_frame(model):
    features, lens = make_features()
    encoder_lens = model.listener.output_lengths(lens)  # [6, 4, 5]
    for search in (greedy_search, lambda *a, **k: [h[0] for h in beam_search(*a, **k)]):
        short = search(model, features.double(), lens, max_length_ratio=0.5)
        assert all(len(h.tokens) <= int(0.5 * n) for h, n in zip(short, encoder_lens, strict=True))
        long = search(model, features.double(), lens, min_length_ratio=1.5, max_length_ratio=1.5)
        assert [len(h.tokens) for h in long] == [int(1.5 * n) for n in encoder_lens]


def test_search_leaves_the_mode_alone():
    model = make_model().train()
    features, lens = make_features()
    greedy_search(model, features, lens)
    beam_search(model, features, lens, beam_size=2)
    assert model.training


def test_overfit_two_utterances_decode_exactly():
    """A tiny model learns two fixed "utterances" and both searches spell them back."""
    model = make_model(seed=0, hidden_size=16)
    features, lens = make_features(lens=(16, 12), seed=3)
    targets = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 3, 0, 0]])
    target_lens = torch.tensor([5, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        model(features, lens, targets, target_lens).loss.backward()
        optimizer.step()
    model.eval()
    expected = [[3, 4, 5, 6, 7], [8, 9, 3]]
    assert [h.tokens for h in greedy_search(model, features, lens)] == expected
    assert [h[0].tokens for h in beam_search(model, features, lens, beam_size=3)] == expected


def teacher_forced(model, features, lens, tokens: list[int]):
    """Log-probabilities (U + 1,) and alignment (U + 1, T') of ``tokens`` then <eos>, scored by
    the speller's teacher forcing with <blank>/<sos> masked as the search masks them."""
    from asr.text import Vocabulary

    with torch.no_grad():
        listened = model.encode(features, lens)
        memory = model.speller.memory(listened.encoded, listened.encoded_lens)
        tokens_in = torch.tensor([[Vocabulary.sos_id, *tokens]])
        logits, alignments = model.speller(memory, tokens_in)  # (1, U + 1, V), (1, U + 1, T')
        never = torch.zeros(logits.size(-1), dtype=torch.bool)
        never[[Vocabulary.blank_id, Vocabulary.sos_id]] = True
        log_probs = logits.masked_fill(never, float("-inf")).log_softmax(dim=-1)[0]
        tokens_out = torch.tensor([*tokens, Vocabulary.eos_id])
        return log_probs.gather(1, tokens_out[:, None])[:, 0], alignments[0]


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_token_log_probs_and_alignment_equal_teacher_forced_rescoring(model, search):
    """Every hypothesis carries each token's log-probability (summing to its score) and the
    alignment it was emitted with: what a second, teacher-forced pass would compute."""
    features, lens = make_features()
    features = features.double()
    if search == "greedy":
        results = [[h] for h in greedy_search(model, features, lens)]
    else:
        results = beam_search(model, features, lens, beam_size=3, length_penalty=1.0)
    checked = 0
    for b, hypotheses in enumerate(results):
        for hypothesis in hypotheses:
            alone = features[b : b + 1, : lens[b]]
            log_probs, alignment = teacher_forced(model, alone, lens[b : b + 1], hypothesis.tokens)
            assert hypothesis.log_probs.shape == (len(hypothesis.tokens) + 1,)
            torch.testing.assert_close(hypothesis.log_probs, log_probs, rtol=0, atol=1e-10)
            torch.testing.assert_close(hypothesis.alignment, alignment, rtol=0, atol=1e-10)
            assert hypothesis.score == pytest.approx(float(log_probs.sum()), abs=1e-10)
            checked += 1
    assert checked > len(results) if search == "beam" else checked == len(results)


def test_reached_limit_says_whether_eos_was_forced(model):
    features, lens = make_features()
    encoder_lens = model.listener.output_lengths(lens).tolist()
    for search in (greedy_search, lambda *a, **k: [h[0] for h in beam_search(*a, **k)]):
        forced = search(model, features.double(), lens, min_length_ratio=1.0, max_length_ratio=1.0)
        assert all(h.reached_limit for h in forced)
        free = search(model, features.double(), lens, max_length_ratio=50.0)
        for h, frames in zip(free, encoder_lens, strict=True):
            assert h.reached_limit == (len(h.tokens) >= 50 * frames)


def test_an_attention_window_keeps_every_step_near_the_last_alignment(model):
    """A (0, 0) window lets each step read only the previous alignment's median frame: the
    alignment is one-hot, and it never moves since the median stays where it was."""
    features, lens = make_features()
    for search in (greedy_search, lambda *a, **k: [h[0] for h in beam_search(*a, **k)]):
        for hypothesis in search(model, features.double(), lens, attention_window=(0, 0)):
            expected = torch.zeros_like(hypothesis.alignment)
            expected[:, 0] = 1.0  # the initial alignment's median is frame 0
            torch.testing.assert_close(hypothesis.alignment, expected)
        unrestricted = search(model, features.double(), lens)
        assert any((h.alignment[:, 1:] > 0).any() for h in unrestricted)
