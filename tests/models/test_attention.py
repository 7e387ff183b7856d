"""Every attention mechanism: a distribution over real frames, batch = one by one, gradients
everywhere, hand-computed scores, beam search, and clear errors."""

import math

import pytest
import torch

from asr.models import build_model
from asr.models.attention import (
    ATTENTION_TYPES,
    Attention,
    SelfAttention,
    build_attention,
    median_window_mask,
)
from asr.search import beam_search, greedy_search

SIZE = 6  # query and key width: dot and scaled_dot need them equal

# One entry per mechanism of the issue: every score function, multi-head variants, and every
# way of attending (soft is the default of each score).
MECHANISMS = {
    "content": {"type": "content"},
    "additive": {"type": "additive", "attention_size": 4},
    "location_base": {"type": "location_base", "max_source_length": 8},
    "general": {"type": "general"},
    "dot": {"type": "dot"},
    "scaled_dot": {"type": "scaled_dot"},
    "location": {
        "type": "location", "attention_size": 4, "location_channels": 2,
        "location_kernel_size": 3,
    },
    "multihead_additive": {"type": "additive", "attention_size": 4, "num_heads": 2},
    "multihead_scaled_dot": {"type": "scaled_dot", "attention_size": 4, "num_heads": 2},
    "multihead_location": {
        "type": "location", "attention_size": 4, "location_channels": 2,
        "location_kernel_size": 3, "num_heads": 2,
    },
    "local_median": {
        "type": "location", "attention_size": 4, "location_channels": 2,
        "location_kernel_size": 3, "mode": "local", "window_left": 1, "window_right": 2,
    },
    "local_gaussian": {
        "type": "general", "mode": "local", "window": "gaussian", "window_half_width": 2,
    },
    "hard": {"type": "additive", "attention_size": 4, "mode": "hard"},
    "hard_location": {
        "type": "location", "attention_size": 4, "location_channels": 2,
        "location_kernel_size": 3, "mode": "hard",
    },
    "smooth_sharp": {"type": "dot", "smoothing": True, "sharpening": 2.0},
}  # fmt: skip


def make(name: str, seed: int = 0) -> Attention:
    torch.manual_seed(seed)
    return build_attention(query_size=SIZE, key_size=SIZE, **MECHANISMS[name])


def inputs(lens=(7, 4), seed=0):
    generator = torch.Generator().manual_seed(seed)
    batch, time = len(lens), max(lens)
    query = torch.randn(batch, SIZE, generator=generator)
    pad_mask = torch.arange(time) >= torch.tensor(lens)[:, None]
    values = torch.randn(batch, time, SIZE, generator=generator).masked_fill(pad_mask[..., None], 0)
    return query, values, pad_mask


def previous_alignment(attention: Attention, pad_mask, seed=1):
    """A random α_{t-1} over real frames, shaped as the attention expects."""
    shape = attention.initial_alignment(pad_mask).shape
    scores = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    mask = pad_mask if len(shape) == 2 else pad_mask[:, None]
    return torch.softmax(scores.masked_fill(mask, float("-inf")), -1)


def test_every_type_of_the_table_is_registered():
    assert set(ATTENTION_TYPES) == {
        "content", "additive", "location_base", "general", "dot", "scaled_dot", "location", "none"
    }  # fmt: skip


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("training", [False, True])
def test_weights_are_a_distribution_over_real_frames(name, training):
    attention = make(name).train(training)
    query, values, pad_mask = inputs()
    keys = attention.project_keys(values)
    initial = attention.initial_alignment(pad_mask)
    for prev in (initial, previous_alignment(attention, pad_mask)):
        context, alignment = attention(query, keys, values, pad_mask, prev)
        assert context.shape == (2, SIZE) and alignment.shape == prev.shape
        per_head = alignment if alignment.dim() == 3 else alignment[:, None]
        assert torch.all(per_head >= 0)
        torch.testing.assert_close(per_head.sum(-1), torch.ones(per_head.shape[:2]))
        assert torch.all(per_head.masked_select(pad_mask[:, None]) == 0)
        if attention.mode == "hard":
            assert torch.all((per_head == 0) | (per_head == 1))
        if attention.num_heads == 1:
            torch.testing.assert_close(context, torch.einsum("bt,btd->bd", alignment, values))


@pytest.mark.parametrize("name", MECHANISMS)
def test_a_batch_equals_its_utterances_one_by_one(name):
    attention = make(name).eval()  # the hard mode samples in training
    query, values, pad_mask = inputs()
    keys = attention.project_keys(values)
    prev = previous_alignment(attention, pad_mask)
    context, alignment = attention(query, keys, values, pad_mask, prev)
    for b, length in enumerate((7, 4)):
        alone = attention(
            query[b : b + 1],
            keys[b : b + 1, :length],
            values[b : b + 1, :length],
            pad_mask[b : b + 1, :length],
            prev[b : b + 1, ..., :length],
        )
        torch.testing.assert_close(alone[0], context[b : b + 1])
        torch.testing.assert_close(alone[1], alignment[b : b + 1, ..., :length])


@pytest.mark.parametrize("name", MECHANISMS)
def test_gradients_reach_every_parameter(name):
    attention = make(name).train()
    query, values, pad_mask = inputs()
    values.requires_grad_(True)
    keys = attention.project_keys(values)
    _, first = attention(query, keys, values, pad_mask, attention.initial_alignment(pad_mask))
    # A second step reads the first's alignment (location features), as in the speller. The
    # loss reads only the contexts, as the speller's does; hard attention's gradient reaches the
    # scores through the straight-through estimator.
    context, _ = attention(query * 0.5, keys, values, pad_mask, first)
    (context * torch.randn_like(context)).sum().backward()
    for parameter_name, parameter in attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name
    assert values.grad is not None and values.grad.abs().sum() > 0


def test_attention_is_stateless():
    for name in MECHANISMS:
        attention = make(name).eval()
        assert list(attention.buffers()) == []
        query, values, pad_mask = inputs()
        keys = attention.project_keys(values)
        prev = previous_alignment(attention, pad_mask)
        first = attention(query, keys, values, pad_mask, prev)
        attention(torch.randn(2, SIZE), keys, values, pad_mask, prev)  # a call in between
        second = attention(query, keys, values, pad_mask, prev)
        assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


# -- each score function against a hand computation (one utterance, T' = 3) ----------------

S = [0.5, -1.0]  # the speller state s
H = [[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]  # listener frames h_i


def energies_of(attention, prev=None):
    query, values = torch.tensor([S]), torch.tensor([H])
    keys = attention.project_keys(values)
    prev = (
        attention.initial_alignment(torch.zeros(1, 3, dtype=torch.bool)) if prev is None else prev
    )
    heads_prev = prev.view(1, attention.num_heads, 3)
    return attention.energies(query, keys, heads_prev)[0]


def assert_energies(attention, expected):
    """The energies (heads, T') of ``attention`` for S and H equal ``expected``."""
    torch.testing.assert_close(energies_of(attention), torch.tensor(expected))


def dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def set_weights(module, **weights):
    with torch.no_grad():
        for name, value in weights.items():
            module.get_parameter(name).copy_(torch.as_tensor(value))


def test_dot_and_scaled_dot_scores():
    for name, scale in (("dot", 1.0), ("scaled_dot", 1 / math.sqrt(2))):
        attention = build_attention(name, query_size=2, key_size=2)
        expected = [[scale * dot(S, h) for h in H]]
        assert_energies(attention, expected)


def test_general_score():
    attention = build_attention("general", query_size=2, key_size=2)
    W = [[1.0, 2.0], [-1.0, 0.5]]  # maps h (D) to the query space (Q)
    set_weights(attention, **{"key_projection.weight": W})
    expected = [[dot(S, [dot(W[0], h), dot(W[1], h)]) for h in H]]  # sᵀ W h_i
    assert_energies(attention, expected)


def test_content_score_is_a_scaled_cosine():
    attention = build_attention("content", query_size=2, key_size=2)
    W, w_beta, b_beta = [[2.0, 0.0], [1.0, 1.0]], [[0.3, 0.1]], [0.2]
    set_weights(
        attention,
        **{"query_projection.weight": W, "strength.weight": w_beta, "strength.bias": b_beta},
    )
    k = [dot(W[0], S), dot(W[1], S)]
    beta = math.log1p(math.exp(dot(w_beta[0], S) + b_beta[0]))  # softplus
    cosine = [dot(k, h) / math.sqrt(dot(k, k) * dot(h, h)) for h in H]
    assert_energies(attention, [[beta * c for c in cosine]])


def test_additive_score_single_and_multi_head():
    W = [[1.0, 0.0], [0.5, -1.0]]
    V, b, v = [[0.2, 0.1], [-0.3, 1.0]], [0.1, -0.2], [1.5, -2.0]
    weights = {
        "query_projection.weight": W, "key_projection.weight": V, "key_projection.bias": b,
    }  # fmt: skip
    hidden = [[math.tanh(dot(W[a], S) + dot(V[a], h) + b[a]) for a in range(2)] for h in H]

    single = build_attention("additive", query_size=2, key_size=2, attention_size=2)
    set_weights(single, **weights, **{"energy.weight": [v]})
    assert_energies(single, [[dot(v, row) for row in hidden]])

    # Two heads of one dimension each: head a scores v_a tanh(...)_a.
    multi = build_attention("additive", query_size=2, key_size=2, attention_size=2, num_heads=2)
    set_weights(multi, **weights, **{"energy.weight": [[v[0]], [v[1]]]})
    expected = [[v[a] * row[a] for row in hidden] for a in range(2)]
    assert_energies(multi, expected)


def test_multi_head_scaled_dot_scores_each_head_in_its_subspace():
    attention = build_attention(
        "scaled_dot", query_size=2, key_size=2, attention_size=2, num_heads=2
    )
    Wq, Wk = [[1.0, 2.0], [0.0, 1.0]], [[0.5, 0.5], [-1.0, 2.0]]
    set_weights(attention, **{"query_projection.weight": Wq, "key_projection.weight": Wk})
    expected = [[dot(Wq[a], S) * dot(Wk[a], h) / math.sqrt(1) for h in H] for a in range(2)]
    assert_energies(attention, expected)


def test_location_base_scores_positions_and_masks_past_its_maximum_length():
    attention = build_attention("location_base", query_size=2, key_size=2, max_source_length=2)
    W, b = [[1.0, 0.0], [0.0, 1.0]], [0.5, -0.5]
    set_weights(attention, **{"position_scores.weight": W, "position_scores.bias": b})
    expected = [[S[0] + 0.5, S[1] - 0.5, float("-inf")]]  # frame 3 lies past max_source_length
    assert_energies(attention, expected)
    query, values = torch.tensor([S]), torch.tensor([H])
    pad_mask = torch.zeros(1, 3, dtype=torch.bool)
    _, alignment = attention(query, values, values, pad_mask, attention.initial_alignment(pad_mask))
    weights = torch.softmax(torch.tensor(expected[0][:2]), 0).tolist()
    assert alignment[0].tolist() == pytest.approx(weights + [0.0])


@pytest.mark.parametrize("smoothing", [False, True])
def test_location_aware_energies_and_weights(smoothing):
    # Q = D = C = 1, A = 2, kernel 3, T' = 3: e_i = wᵀ tanh(W s + V h_i + b + U f_i), then β.
    attention = build_attention(
        "location", query_size=1, key_size=1, attention_size=2, location_channels=1,
        location_kernel_size=3, sharpening=2.0, smoothing=smoothing,
    )  # fmt: skip
    W, V, b, U, w = [1.0, -1.0], [2.0, 0.5], [0.1, -0.2], [1.0, 0.5], [1.0, -2.0]
    F = [1.0, 2.0, 3.0]
    set_weights(
        attention,
        **{
            "query_projection.weight": [[x] for x in W],
            "key_projection.weight": [[x] for x in V],
            "key_projection.bias": b,
            "location_conv.weight": [[F]],
            "location_projection.weight": [[x] for x in U],
            "energy.weight": [w],
        },
    )
    s, h, prev = 0.5, [1.0, 2.0, 3.0], [0.25, 0.75, 0.0]
    # f_i = Σ_k F_k α_{i+k-1} (cross-correlation, zero 'same' padding).
    f = [
        sum(F[k] * (prev[i + k - 1] if 0 <= i + k - 1 < 3 else 0) for k in range(3))
        for i in range(3)
    ]
    assert f == [0.25 * 2 + 0.75 * 3, 0.25 + 0.75 * 2, 0.75]
    e = [
        sum(w[a] * math.tanh(W[a] * s + V[a] * h[i] + b[a] + U[a] * f[i]) for a in range(2))
        for i in range(3)
    ]
    query, values = torch.tensor([[s]]), torch.tensor(h).view(1, 3, 1)
    keys = attention.project_keys(values)
    energies = attention.energies(query, keys, torch.tensor([[prev]]))
    torch.testing.assert_close(energies, torch.tensor([[e]]))

    pad_mask = torch.tensor([[False, False, True]])  # the last frame is padding
    _, alignment = attention(query, keys, values, pad_mask, torch.tensor([prev]))
    sharpened = [2.0 * x for x in e[:2]]
    scores = [1 / (1 + math.exp(-x)) if smoothing else math.exp(x) for x in sharpened]
    torch.testing.assert_close(alignment, torch.tensor([[x / sum(scores) for x in scores] + [0.0]]))


def test_multi_head_location_equals_single_heads_side_by_side():
    torch.manual_seed(0)
    options = {"attention_size": 4, "location_channels": 2, "location_kernel_size": 3}
    multi = build_attention("location", query_size=3, key_size=4, num_heads=2, **options)
    query, values, pad_mask = torch.randn(2, 3), torch.randn(2, 5, 4), torch.zeros(2, 5, dtype=bool)
    prev = torch.softmax(torch.randn(2, 2, 5), -1)
    energies = multi.energies(query, multi.project_keys(values), prev)
    for head in range(2):
        single = build_attention(
            "location", query_size=3, key_size=4, **options | {"attention_size": 2}
        )
        rows = slice(2 * head, 2 * head + 2)
        set_weights(
            single,
            **{
                "query_projection.weight": multi.query_projection.weight[rows],
                "key_projection.weight": multi.key_projection.weight[rows],
                "key_projection.bias": multi.key_projection.bias[rows],
                "location_conv.weight": multi.location_conv.weight[rows],
                "location_projection.weight": multi.location_projection.weight,
                "energy.weight": multi.energy.weight[head : head + 1],
            },
        )
        expected = single.energies(query, single.project_keys(values), prev[:, head : head + 1])
        torch.testing.assert_close(energies[:, head : head + 1], expected)
    del pad_mask


# -- ways of attending ---------------------------------------------------------------------


def test_median_window_keeps_only_frames_around_the_previous_median():
    prev = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0, 0.0, 0.0]])  # median: frame 2 (cum 0.6)
    assert median_window_mask(prev, 1, 2).tolist() == [
        [True, False, False, False, False, True, True]
    ]
    attention = make("local_median").eval()
    query, values, pad_mask = inputs(lens=(7,))
    keys = attention.project_keys(values)
    _, alignment = attention(query, keys, values, pad_mask, prev)
    assert torch.all(alignment[0, [0, 5, 6]] == 0) and torch.all(alignment[0, 1:5] > 0)


def test_gaussian_window_is_centred_on_the_predicted_position():
    attention = make("local_gaussian").eval()
    query, values, pad_mask = inputs(lens=(7,))
    keys = attention.project_keys(values)
    with torch.no_grad():
        position = float(6 * torch.sigmoid(attention.position(query)))  # p_t = (L - 1) σ(...)
    _, alignment = attention(query, keys, values, pad_mask, attention.initial_alignment(pad_mask))
    frames = torch.arange(7.0)
    outside = (frames - position).abs() > 2
    assert torch.all(alignment[0, outside] == 0) and torch.all(alignment[0, ~outside] > 0)
    energies = attention.energies(query, keys, None)[0, 0]
    gaussian = -((frames - position) ** 2) / (2 * 1.0**2)  # σ = D / 2 = 1
    expected = torch.softmax((energies + gaussian).masked_fill(outside, float("-inf")), 0)
    torch.testing.assert_close(alignment[0], expected)


def test_hard_attention_takes_the_argmax_at_inference_and_samples_in_training():
    attention = make("hard")
    query, values, pad_mask = inputs(lens=(7,))
    keys = attention.project_keys(values)
    prev = attention.initial_alignment(pad_mask)
    energies = attention.energies(query, keys, prev[:, None])[0, 0]
    _, alignment = attention.eval()(query, keys, values, pad_mask, prev)
    assert alignment[0].tolist() == torch.nn.functional.one_hot(energies.argmax(), 7).tolist()
    attention.train()
    picked = {int(attention(query, keys, values, pad_mask, prev)[1].argmax()) for _ in range(200)}
    assert len(picked) > 1  # a sample, not always the argmax


def test_decode_window_is_an_argument_of_the_call():
    """The decode-time window is passed in (stateless attention), not kept on the module."""
    attention = make("additive").eval()
    query, values, pad_mask = inputs(lens=(7,))
    keys = attention.project_keys(values)
    prev = torch.zeros(1, 7)
    prev[0, 3] = 1.0
    _, windowed = attention(query, keys, values, pad_mask, prev, window=(0, 1))
    assert windowed[0].nonzero().flatten().tolist() == [3, 4]
    _, free = attention(query, keys, values, pad_mask, prev)
    assert torch.all(free > 0)
    assert not hasattr(attention, "decode_window")


def test_no_attention_reads_the_listener_final_states():
    attention = build_attention("none", query_size=3, key_size=4)
    _, values, pad_mask = inputs(lens=(5, 3))
    values = torch.randn(2, 5, 4).masked_fill(pad_mask[..., None], 0)
    prev = attention.initial_alignment(pad_mask)
    context, alignment = attention(torch.randn(2, 3), values, values, pad_mask, prev)
    # forward direction (first half) at the last real frame, backward direction at frame 0
    expected = torch.stack([torch.cat([values[0, 4, :2], values[0, 0, 2:]]),
                            torch.cat([values[1, 2, :2], values[1, 0, 2:]])])  # fmt: skip
    torch.testing.assert_close(context, expected)
    assert torch.all(alignment == 0)


# -- self-attention ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_heads": 2, "attention_size": 4},
        {"type": "additive", "attention_size": 4, "num_heads": 2},
        {"type": "general"},
        {"type": "content"},
        {"type": "location_base", "max_source_length": 8},
    ],
)
def test_self_attention_is_exact_under_padding(options):
    torch.manual_seed(0)
    layer = SelfAttention(SIZE, **options).eval()
    _, values, pad_mask = inputs()
    lens = torch.tensor([7, 4])
    out = layer(values, lens)
    assert out.shape == values.shape and torch.all(out[pad_mask] == 0)
    alone = layer(values[1:, :4], lens[1:])
    torch.testing.assert_close(alone, out[1:, :4])
    layer.train()
    out = layer(values.requires_grad_(), lens)
    out.sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_self_attention_refuses_scores_that_need_a_previous_alignment():
    with pytest.raises(ValueError, match="content score function"):
        SelfAttention(SIZE, type="location")


# -- the speller and the searches with every mechanism -------------------------------------


def tiny_model(mechanism: dict):
    torch.manual_seed(0)
    cfg = {
        "listener": {"hidden_size": 4, "num_layers": 0, "num_pyramid_layers": 1},
        "speller": {"hidden_size": 8, "embedding_size": 4},
        "attention": mechanism,
        "ctc_weight": 0.0,
    }
    return build_model(cfg, vocab_size=10, input_size=5).eval()


@pytest.mark.parametrize("name", [*MECHANISMS, "none", "self_attention"])
def test_batched_beam_and_greedy_search_equal_one_by_one(name):
    # ESPnet's batched beam search once broke for location attention; check every mechanism.
    if name == "none":
        model = tiny_model({"type": "none"})
    elif name == "self_attention":
        model = tiny_model({"type": "location"})
        model_cfg = {"type": "scaled_dot", "num_heads": 2, "attention_size": 4}
        model.self_attention = SelfAttention(8, **model_cfg).eval()
    else:
        options = MECHANISMS[name] | ({"max_source_length": 16} if "max_source_length" in
                                      MECHANISMS[name] else {})  # fmt: skip
        model = tiny_model(options)
    model = model.double()
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 13, 5, generator=generator, dtype=torch.double)
    lens = torch.tensor([13, 9, 6])
    options = {"max_length_ratio": 1.5, "min_length_ratio": 0.0}
    beams = beam_search(model, features, lens, beam_size=3, **options)
    greedy = greedy_search(model, features, lens, **options)
    for b in range(3):
        alone = features[b : b + 1, : lens[b]]
        (one_beam,) = beam_search(model, alone, lens[b : b + 1], beam_size=3, **options)
        (one_greedy,) = greedy_search(model, alone, lens[b : b + 1], **options)
        assert greedy[b].tokens == one_greedy.tokens
        assert [h.tokens for h in beams[b]] == [h.tokens for h in one_beam]
        assert [h.score for h in beams[b]] == pytest.approx([h.score for h in one_beam])
        torch.testing.assert_close(beams[b][0].alignment, one_beam[0].alignment)
        assert beams[b][0].alignment.shape[1] == (int(lens[b]) + 1) // 2


def test_teacher_forcing_trains_every_mechanism():
    for name in [*MECHANISMS, "none"]:
        model = tiny_model(MECHANISMS.get(name, {"type": "none"})).train()
        features, lens = torch.randn(2, 9, 5), torch.tensor([9, 6])
        targets, target_lens = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
        model(features, lens, targets, target_lens).loss.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert missing == [], name


# -- errors ----------------------------------------------------------------------------------


def test_unknown_type_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        build_attention("nope", query_size=3, key_size=5)
    message = str(error.value)
    assert "\n" not in message and message.startswith("unknown attention type 'nope'")
    assert all(name in message for name in ATTENTION_TYPES)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"type": "location", "location_kernel_size": 4}, "odd"),
        ({"type": "location", "sharpening": 0.0}, "sharpening"),
        ({"type": "dot", "query_size": 3}, "hidden_size"),
        ({"type": "additive", "mode": "sometimes"}, "valid modes: soft, local, hard"),
        ({"type": "additive", "window": "box"}, "valid windows"),
        ({"type": "general", "num_heads": 2}, "one head"),
        ({"type": "additive", "num_heads": 4}, "divisible"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    kwargs = {"query_size": SIZE, "key_size": SIZE} | kwargs
    with pytest.raises(ValueError, match=match):
        build_attention(**kwargs)
