import math

import pytest
import torch

from asr.models.attention import ATTENTION_TYPES, LocationAwareAttention, build_attention


def attention_inputs(lens=(7, 4), query_size=3, key_size=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batch, time = len(lens), max(lens)
    query = torch.randn(batch, query_size, generator=generator)
    values = torch.randn(batch, time, key_size, generator=generator)
    pad_mask = torch.arange(time) >= torch.tensor(lens)[:, None]
    values = values.masked_fill(pad_mask[:, :, None], 0.0)
    return query, values, pad_mask


def make_attention(**kwargs):
    torch.manual_seed(0)
    options = {"attention_size": 4, "location_channels": 2, "location_kernel_size": 3}
    return LocationAwareAttention(query_size=3, key_size=5, **options | kwargs)


@pytest.mark.parametrize("smoothing", [False, True])
def test_weights_are_a_distribution_over_real_frames(smoothing):
    attention = make_attention(smoothing=smoothing, sharpening=2.0)
    query, values, pad_mask = attention_inputs()
    keys = attention.project_keys(values)
    prev = attention.initial_alignment(pad_mask)
    assert prev.tolist()[1] == [1.0, 0, 0, 0, 0, 0, 0]
    context, alignment = attention(query, keys, values, pad_mask, prev)
    assert context.shape == (2, 5) and alignment.shape == (2, 7)
    assert torch.all(alignment >= 0)
    torch.testing.assert_close(alignment.sum(-1), torch.ones(2))
    assert torch.all(alignment[pad_mask] == 0)
    torch.testing.assert_close(context, torch.einsum("bt,btd->bd", alignment, values))


def test_padding_does_not_change_an_utterance():
    attention = make_attention()
    query, values, pad_mask = attention_inputs()
    keys = attention.project_keys(values)
    prev = torch.softmax(torch.randn(2, 7).masked_fill(pad_mask, float("-inf")), -1)
    context, alignment = attention(query, keys, values, pad_mask, prev)
    alone = attention(query[1:], keys[1:, :4], values[1:, :4], pad_mask[1:, :4], prev[1:, :4])
    torch.testing.assert_close(alone[0], context[1:])
    torch.testing.assert_close(alone[1], alignment[1:, :4])


def test_location_features_use_the_previous_alignment():
    attention = make_attention()
    query, values, pad_mask = attention_inputs()
    keys = attention.project_keys(values)
    first = attention(query, keys, values, pad_mask, attention.initial_alignment(pad_mask))
    shifted = torch.zeros(2, 7)
    shifted[:, 3] = 1.0
    second = attention(query, keys, values, pad_mask, shifted)
    assert not torch.allclose(first[1], second[1])


def test_stateless():
    attention = make_attention()
    assert list(attention.buffers()) == []
    query, values, pad_mask = attention_inputs()
    keys = attention.project_keys(values)
    prev = attention.initial_alignment(pad_mask)
    first = attention(query, keys, values, pad_mask, prev)
    attention(torch.randn(2, 3), keys, values, pad_mask, torch.rand(2, 7))  # a call in between
    second = attention(query, keys, values, pad_mask, prev)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("smoothing", [False, True])
def test_hand_computed_energies(smoothing):
    # Q = D_k = C = 1, A = 2, kernel 3, T' = 3: e_i = β wᵀ tanh(W s + V h_i + b + U f_i).
    attention = LocationAwareAttention(
        query_size=1,
        key_size=1,
        attention_size=2,
        location_channels=1,
        location_kernel_size=3,
        sharpening=2.0,
        smoothing=smoothing,
    )
    W, V, b, U, w = [1.0, -1.0], [2.0, 0.5], [0.1, -0.2], [1.0, 0.5], [1.0, -2.0]
    F = [1.0, 2.0, 3.0]
    with torch.no_grad():
        attention.query_projection.weight.copy_(torch.tensor(W)[:, None])
        attention.key_projection.weight.copy_(torch.tensor(V)[:, None])
        attention.key_projection.bias.copy_(torch.tensor(b))
        attention.location_conv.weight.copy_(torch.tensor(F).view(1, 1, 3))
        attention.location_projection.weight.copy_(torch.tensor(U)[:, None])
        attention.energy.weight.copy_(torch.tensor(w)[None, :])
    s, h, prev = 0.5, [1.0, 2.0, 3.0], [0.25, 0.75, 0.0]
    # f_i = Σ_k F_k α_{i+k-1} (cross-correlation, zero 'same' padding).
    f = [
        sum(F[k] * (prev[i + k - 1] if 0 <= i + k - 1 < 3 else 0.0) for k in range(3))
        for i in range(3)
    ]
    assert f == [0.25 * 2 + 0.75 * 3, 0.25 + 0.75 * 2, 0.75]
    expected = [
        2.0 * sum(w[a] * math.tanh(W[a] * s + V[a] * h[i] + b[a] + U[a] * f[i]) for a in range(2))
        for i in range(3)
    ]
    query, values = torch.tensor([[s]]), torch.tensor(h).view(1, 3, 1)
    keys = attention.project_keys(values)
    prev_alignment = torch.tensor([prev])
    energies = attention.energies(query, keys, prev_alignment)
    torch.testing.assert_close(energies, torch.tensor([expected]))

    pad_mask = torch.tensor([[False, False, True]])  # the last frame is padding
    _, alignment = attention(query, keys, values, pad_mask, prev_alignment)
    if smoothing:
        scores = [1 / (1 + math.exp(-e)) for e in expected[:2]]
    else:
        scores = [math.exp(e) for e in expected[:2]]
    weights = [score / sum(scores) for score in scores] + [0.0]
    torch.testing.assert_close(alignment, torch.tensor([weights]))


def test_build_attention_and_unknown_type():
    attention = build_attention("location", query_size=3, key_size=5, attention_size=4)
    assert isinstance(attention, LocationAwareAttention)
    assert "location" in ATTENTION_TYPES
    with pytest.raises(ValueError, match=r"unknown attention type 'nope'; valid types: .*location"):
        build_attention("nope", query_size=3, key_size=5)


def test_rejects_even_kernel_and_bad_sharpening():
    with pytest.raises(ValueError, match="odd"):
        LocationAwareAttention(3, 5, location_kernel_size=4)
    with pytest.raises(ValueError, match="sharpening"):
        LocationAwareAttention(3, 5, sharpening=0.0)
