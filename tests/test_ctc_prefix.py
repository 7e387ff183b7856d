import doctest
import math

import pytest
import torch
import torch.nn.functional as F

import asr.ctc_prefix
from asr.ctc_prefix import CTCPrefixScorer

BLANK, EOS = 0, 2
NEG_INF = float("-inf")


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))


def reference_prefix_score(x: list[list[float]], prefix: list[int], token: int) -> float:
    """log ψ(prefix·token) by the textbook recursion (Watanabe et al. 2017, Algorithm 2).

    One utterance, one hypothesis, plain loops: x is its T real frames of log-posteriors
    (frames 1..T, index t - 1), r[t] for t = 1..T. The forward variables of ``prefix`` are
    built from the empty prefix up, one label at a time, with no state carried between calls.
    """
    frames = len(x)
    # The empty prefix: only blanks so far.
    r_n = [NEG_INF] * (frames + 1)
    r_b = [NEG_INF] * (frames + 1)
    r_b[1] = x[0][BLANK]
    for t in range(2, frames + 1):
        r_b[t] = r_b[t - 1] + x[t - 1][BLANK]
    last = None
    for c in [*prefix, token]:
        if c == EOS:
            return _logadd(r_n[frames], r_b[frames])
        h_n = [NEG_INF] * (frames + 1)
        h_b = [NEG_INF] * (frames + 1)
        h_n[1] = x[0][c] if last is None else NEG_INF
        psi = h_n[1]
        for t in range(2, frames + 1):
            phi = r_b[t - 1] if c == last else _logadd(r_b[t - 1], r_n[t - 1])
            h_n[t] = _logadd(h_n[t - 1], phi) + x[t - 1][c]
            h_b[t] = _logadd(h_b[t - 1], h_n[t - 1]) + x[t - 1][BLANK]
            psi = _logadd(psi, phi + x[t - 1][c])
        r_n, r_b, last = h_n, h_b, c
    return psi


def random_log_probs(lens, vocab, seed, dtype=torch.float64, padding=float("nan")):
    """(B, T, V) log-softmax posteriors; padded frames hold ``padding`` (NaN: must be unread)."""
    generator = torch.Generator().manual_seed(seed)
    batch, frames = len(lens), max(lens)
    logits = 2.0 * torch.randn(batch, frames, vocab, generator=generator, dtype=dtype)
    log_probs = logits.log_softmax(dim=-1)
    padded = torch.arange(frames) >= torch.tensor(lens)[:, None]
    return log_probs.masked_fill(padded[..., None], padding), torch.tensor(lens)


def random_walk(scorer, num_beams, width, vocab, steps, seed):
    """A label-synchronous beam's life: random candidates (with repeats and <eos>) each step,
    then random survivors within each utterance. Yields (state, prefixes, candidates, scores)."""
    generator = torch.Generator().manual_seed(seed)
    device = scorer.log_probs.device
    state = scorer.initial_state(num_beams)
    hypotheses = scorer.batch_size * num_beams
    prefixes = [[] for _ in range(hypotheses)]
    for _ in range(steps):
        candidates = torch.randint(1, vocab - 1, (hypotheses, width), generator=generator)
        candidates = candidates + (candidates >= EOS).long()  # any label but <blank>, <eos>
        candidates[:, 1] = EOS
        last = state.last_tokens.cpu()
        candidates[:, 0] = torch.where(last >= 0, last, 3)  # repeats of the last label
        scores, extensions = scorer.score(state, candidates.to(device))
        yield state, prefixes, candidates, scores
        # Survivors: any beam of the same utterance, any candidate but the <eos> column.
        beams = torch.randint(0, num_beams, (hypotheses,), generator=generator)
        rows = torch.arange(hypotheses) // num_beams * num_beams + beams
        column = torch.randint(0, width - 1, (hypotheses,), generator=generator)
        column = column + (column >= 1).long()  # skip column 1, <eos>
        state = scorer.select(state, extensions, rows.to(device), column.to(device))
        prefixes = [
            [*prefixes[r], int(candidates[r, c])]
            for r, c in zip(rows.tolist(), column.tolist(), strict=True)
        ]


@pytest.mark.parametrize(
    "lens, num_beams, width, vocab, steps",
    [
        ((7, 4, 1), 2, 4, 6, 5),  # a one-frame utterance; prefixes outgrow the short ones
        ((5,), 3, 3, 5, 6),
        ((6, 6), 1, 5, 7, 4),
        ((3, 8, 5, 2), 2, 3, 5, 4),
    ],
)
def test_scores_equal_the_per_hypothesis_reference(lens, num_beams, width, vocab, steps):
    log_probs, lens_tensor = random_log_probs(lens, vocab, seed=sum(lens) + width)
    scorer = CTCPrefixScorer(log_probs, lens_tensor, blank_id=BLANK, eos_id=EOS)
    checked = 0
    for _, prefixes, candidates, scores in random_walk(
        scorer, num_beams, width, vocab, steps, seed=width
    ):
        expected = torch.empty_like(scores)
        for n, prefix in enumerate(prefixes):
            b = n // num_beams
            x = log_probs[b, : lens[b]].tolist()
            for c, token in enumerate(candidates[n].tolist()):
                expected[n, c] = reference_prefix_score(x, prefix, token)
        torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)
        checked += int(torch.isfinite(expected).sum())
    assert checked > 0


def test_prefix_probability_is_its_end_plus_its_extensions():
    # ψ(g) sums the probabilities of every labelling that begins with g: the one that is g
    # (<eos>) and those that continue with some label c. With p(<eos> label) = 0 the identity
    # is exact: ψ(g) = p(g) + Σ_c ψ(g·c), over every non-blank c.
    vocab, num_beams = 6, 2
    log_probs, lens = random_log_probs((6, 4), vocab, seed=3)
    log_probs[..., EOS] = NEG_INF
    log_probs = log_probs.log_softmax(dim=-1)
    scorer = CTCPrefixScorer(log_probs, lens, blank_id=BLANK, eos_id=EOS)
    every_label = torch.arange(1, vocab).expand(len(lens) * num_beams, -1)  # <eos> included
    generator = torch.Generator().manual_seed(0)
    state = scorer.initial_state(num_beams)
    for _ in range(4):
        scores, extensions = scorer.score(state, every_label)
        total = scores.logsumexp(dim=-1)
        finite = state.scores > NEG_INF
        torch.testing.assert_close(total[finite], state.scores[finite], rtol=1e-10, atol=1e-10)
        assert bool((scores <= state.scores[:, None] + 1e-12).all())
        column = torch.randint(0, vocab - 2, (every_label.size(0),), generator=generator)
        column = column + (column >= EOS - 1).long()  # not <eos>
        state = scorer.select(state, extensions, torch.arange(every_label.size(0)), column)
    assert bool((state.scores == NEG_INF).any())  # 4 labels cannot fit in the 4-frame one


def test_a_batch_scores_as_its_utterances_one_by_one():
    lens, num_beams, width, vocab = (6, 3, 5), 2, 4, 6
    log_probs, lens_tensor = random_log_probs(lens, vocab, seed=11)
    batch_scorer = CTCPrefixScorer(log_probs, lens_tensor, blank_id=BLANK, eos_id=EOS)
    alone = [
        CTCPrefixScorer(log_probs[b : b + 1, :length], lens_tensor[b : b + 1], BLANK, EOS)
        for b, length in enumerate(lens)
    ]
    for _, prefixes, candidates, scores in random_walk(
        batch_scorer, num_beams, width, vocab, steps=4, seed=5
    ):
        for b, scorer in enumerate(alone):
            own = slice(b * num_beams, (b + 1) * num_beams)
            state = _state_of(scorer, prefixes[own], num_beams)
            alone_scores, _ = scorer.score(state, candidates[own])
            torch.testing.assert_close(alone_scores, scores[own], rtol=1e-12, atol=1e-12)


def _state_of(scorer, prefixes, num_beams):
    """The scorer's state for the given prefixes (all one length), built label by label."""
    state = scorer.initial_state(num_beams)
    for i in range(len(prefixes[0])):
        tokens = torch.tensor([[prefix[i]] for prefix in prefixes])
        _, extensions = scorer.score(state, tokens)
        rows = torch.arange(len(prefixes))
        state = scorer.select(state, extensions, rows, torch.zeros_like(rows))
    return state


def test_full_sequence_score_equals_ctc_loss():
    labels = [[3, 4, 3], [5, 5], [], [4]]  # a repeat needs a blank between its labels
    lens = (7, 5, 3, 1)
    log_probs, lens_tensor = random_log_probs(lens, 6, seed=2, padding=0.0)
    scorer = CTCPrefixScorer(log_probs, lens_tensor, blank_id=BLANK, eos_id=EOS)
    state = scorer.initial_state(num_beams=1)
    full = torch.empty(len(labels), dtype=torch.float64)
    for step in range(max(map(len, labels)) + 1):
        following = [y[step] if step < len(y) else 3 for y in labels]
        candidates = torch.tensor([[token, EOS] for token in following])
        scores, extensions = scorer.score(state, candidates)
        for b, y in enumerate(labels):
            if step == len(y):
                full[b] = scores[b, 1]
        rows = torch.arange(len(labels))
        state = scorer.select(state, extensions, rows, torch.zeros_like(rows))
    targets = torch.tensor([y + [0] * (3 - len(y)) for y in labels])
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),
        targets,
        lens_tensor,
        torch.tensor([len(y) for y in labels]),
        blank=BLANK,
        reduction="none",
    )
    torch.testing.assert_close(full, -loss, rtol=1e-10, atol=1e-10)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_float32_on_any_device_agrees_with_float64(device):
    lens, num_beams, width, vocab = (8, 5), 3, 4, 7
    log_probs, lens_tensor = random_log_probs(lens, vocab, seed=7)
    exact = CTCPrefixScorer(log_probs, lens_tensor, BLANK, EOS)
    single = CTCPrefixScorer(log_probs.float().to(device), lens_tensor.to(device), BLANK, EOS)
    # The walks draw the same candidates and survivors: they depend on the seed alone.
    walks = zip(
        random_walk(exact, num_beams, width, vocab, steps=5, seed=1),
        random_walk(single, num_beams, width, vocab, steps=5, seed=1),
        strict=True,
    )
    for (_, prefixes, _, scores), (_, same_prefixes, _, got) in walks:
        assert prefixes == same_prefixes
        assert got.dtype == torch.float32 and got.device.type == device
        # Log-probabilities of at most ~30 nats built over 8 frames: float32's relative
        # rounding (6e-8 per operation, a few dozen operations) stays far below 1e-4.
        torch.testing.assert_close(got.cpu().double(), scores, rtol=1e-5, atol=1e-4)


def test_half_precision_is_scored_in_float32():
    log_probs, lens = random_log_probs((4, 3), 5, seed=1, padding=0.0)
    scorer = CTCPrefixScorer(log_probs.half(), lens)
    scores, _ = scorer.score(scorer.initial_state(2), torch.tensor([[3, EOS]] * 4))
    assert scores.dtype == torch.float32 and bool(torch.isfinite(scores).all())


def test_increments_of_an_impossible_prefix_stay_impossible():
    log_probs, lens = random_log_probs((2,), 5, seed=4)
    scorer = CTCPrefixScorer(log_probs, lens)
    state = scorer.initial_state(1)
    for token in (3, 4, 3):  # three labels cannot fit in two frames
        scores, extensions = scorer.score(state, torch.tensor([[token, EOS]]))
        increments = scorer.increments(state, scores)
        assert not bool(increments.isnan().any())
        torch.testing.assert_close(increments, scores - state.scores[:, None])
        state = scorer.select(state, extensions, torch.tensor([0]), torch.tensor([0]))
    assert state.scores.item() == NEG_INF
    scores, _ = scorer.score(state, torch.tensor([[3, EOS]]))
    assert scorer.increments(state, scores).tolist() == [[NEG_INF, NEG_INF]]


def test_blank_is_never_a_label():
    log_probs, lens = random_log_probs((3,), 5, seed=0)
    scorer = CTCPrefixScorer(log_probs, lens)
    scores, _ = scorer.score(scorer.initial_state(1), torch.tensor([[BLANK, 3]]))
    assert scores[0, 0].item() == NEG_INF and scores[0, 1].item() > NEG_INF


def test_rejects_inconsistent_inputs():
    log_probs, lens = random_log_probs((3, 2), 5, seed=0)
    with pytest.raises(ValueError, match="lens"):
        CTCPrefixScorer(log_probs, torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="lens"):
        CTCPrefixScorer(log_probs, torch.tensor([4, 2]))
    with pytest.raises(ValueError, match="B, T', V"):
        CTCPrefixScorer(log_probs[0], lens)
    with pytest.raises(ValueError, match="distinct"):
        CTCPrefixScorer(log_probs, lens, blank_id=0, eos_id=0)
    scorer = CTCPrefixScorer(log_probs, lens)
    with pytest.raises(ValueError, match="candidates"):
        scorer.score(scorer.initial_state(2), torch.tensor([[3]] * 3))
    with pytest.raises(ValueError, match="num_beams"):
        scorer.initial_state(0)


def test_docstring_example():
    assert doctest.testmod(asr.ctc_prefix).failed == 0
