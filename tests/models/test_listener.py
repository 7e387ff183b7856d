import itertools
import random

import pytest
import torch

from asr.models.listener import (
    Listener,
    concatenate_frame_pairs,
    reverse_within_lengths,
    time_segments,
)


def padded_batch(lens, feature_size=5, seed=0):
    """Random features (B, T, F) whose padding holds large garbage, to catch any leak."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lens), max(lens), feature_size, generator=generator)
    for b, length in enumerate(lens):
        features[b, length:] = 100.0
    return features.double(), torch.tensor(lens)


def test_output_lengths_ceil_halve_per_pyramid_layer():
    listener = Listener(input_size=3, hidden_size=2, num_layers=1, num_pyramid_layers=3)
    lens = torch.tensor([1, 7, 8, 9, 16, 17])
    assert listener.output_lengths(lens).tolist() == [1, 1, 1, 2, 2, 3]  # ceil(lens / 8)


@pytest.mark.parametrize("lens", [[9, 4, 1], [8, 7, 5]])
def test_forward_shapes_and_layer_lengths_with_odd_lengths(lens):
    listener = Listener(input_size=5, hidden_size=3, num_layers=1, num_pyramid_layers=2).double()
    out = listener(*padded_batch(lens))
    time = max(lens)
    expected_times = [time, (time + 1) // 2, ((time + 1) // 2 + 1) // 2]
    assert [tuple(o.shape) for o, _ in out.layer_outputs] == [(3, t, 6) for t in expected_times]
    assert out.encoded_lens.tolist() == listener.output_lengths(torch.tensor(lens)).tolist()
    assert out.encoded is out.layer_outputs[-1][0]
    for output, layer_lens in out.layer_outputs:  # padded frames zeroed at every layer
        for b, length in enumerate(layer_lens.tolist()):
            assert torch.all(output[b, length:] == 0)
            assert torch.all(output[b, :length].abs().sum(-1) > 0)


def test_odd_last_frame_is_paired_with_a_zero_frame():
    x = torch.arange(1.0, 7.0).view(1, 3, 2)  # 3 frames of width 2
    pairs, lens = concatenate_frame_pairs(x, torch.tensor([3]))
    assert pairs.tolist() == [[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]]]
    assert lens.tolist() == [2]


def test_reverse_within_lengths_keeps_padding_and_is_an_involution():
    x = torch.arange(8.0).view(2, 4, 1)
    reversed_x = reverse_within_lengths(x, torch.tensor([4, 2]))
    assert reversed_x.squeeze(-1).tolist() == [[3.0, 2.0, 1.0, 0.0], [5.0, 4.0, 6.0, 7.0]]
    assert torch.equal(reverse_within_lengths(reversed_x, torch.tensor([4, 2])), x)


@pytest.mark.parametrize("num_layers, num_pyramid_layers", [(1, 2), (0, 3), (2, 0)])
def test_padded_batch_equals_each_utterance_alone(num_layers, num_pyramid_layers):
    torch.manual_seed(0)
    listener = Listener(
        input_size=5, hidden_size=3, num_layers=num_layers, num_pyramid_layers=num_pyramid_layers
    ).double()
    lens = [11, 6, 3]
    features, feature_lens = padded_batch(lens)
    weights = torch.randn(len(lens), 11, 6, dtype=torch.double)  # a loss that touches every frame
    # float64 and 1e-12: the batch and the single utterance multiply matrices of other shapes, so
    # only rounding may differ (~1e-16 here); any leak of the padding's 100.0 would be far larger.

    out = listener(features, feature_lens)
    (out.encoded * weights[:, : out.encoded.size(1)]).sum().backward()
    batch_grads = [p.grad.clone() for p in listener.parameters()]

    single_grads = [torch.zeros_like(p) for p in listener.parameters()]
    for b, length in enumerate(lens):
        listener.zero_grad()
        single = listener(features[b : b + 1, :length], feature_lens[b : b + 1])
        frames = single.encoded_lens.item()
        assert single.encoded.shape[1] == frames
        torch.testing.assert_close(single.encoded[0], out.encoded[b, :frames], atol=1e-12, rtol=0)
        (single.encoded * weights[b : b + 1, :frames]).sum().backward()
        for total, p in zip(single_grads, listener.parameters(), strict=True):
            total += p.grad
    for batch_grad, single_grad in zip(batch_grads, single_grads, strict=True):
        torch.testing.assert_close(batch_grad, single_grad, atol=1e-12, rtol=0)


def test_dropout_only_between_layers_and_validation():
    listener = Listener(
        input_size=4, hidden_size=2, num_layers=1, num_pyramid_layers=1, dropout=0.5
    )
    listener.eval()
    features = torch.randn(1, 6, 4)
    first = listener(features, torch.tensor([6])).encoded
    # Bitwise: the same computation twice; active dropout would make the two calls differ.
    assert torch.equal(first, listener(features, torch.tensor([6])).encoded)
    with pytest.raises(ValueError, match="at least one layer"):
        Listener(num_layers=0, num_pyramid_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        Listener(dropout=1.0)


def brute_force_frames(lens: list[int], max_segments: int) -> int:
    """Fewest frames computed over every choice of at most max_segments - 1 inner boundaries."""
    candidates = sorted({length for length in lens if length < lens[0]})
    best = None
    for count in range(min(max_segments, len(candidates) + 1)):
        for inner in itertools.combinations(candidates, count):
            bounds = [0, *inner, lens[0]]
            frames = sum(
                sum(length > start for length in lens) * (end - start)
                for start, end in itertools.pairwise(bounds)
            )
            best = frames if best is None else min(best, frames)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_time_segments_cover_the_batch_and_compute_the_fewest_frames(seed):
    rng = random.Random(seed)
    lens = sorted((rng.randint(1, 30) for _ in range(rng.randint(1, 9))), reverse=True)
    max_segments = rng.randint(1, 5)
    segments = time_segments(lens, max_segments)
    assert 1 <= len(segments) <= max_segments
    assert segments[0][0] == 0 and segments[-1][1] == lens[0]
    for (_, end, _), (start, _, _) in itertools.pairwise(segments):
        assert end == start
    for start, end, rows in segments:
        assert start < end
        assert rows == sum(length > start for length in lens)  # every running utterance
    frames = sum(rows * (end - start) for start, end, rows in segments)
    assert frames == brute_force_frames(lens, max_segments)


def test_time_segments_validation():
    assert time_segments([5, 5, 5], 4) == [(0, 5, 3)]
    assert time_segments([9, 8, 3, 2], 1) == [(0, 9, 4)]
    with pytest.raises(ValueError, match="decreasing"):
        time_segments([2, 9], 2)
    with pytest.raises(ValueError, match="max_time_segments"):
        Listener(max_time_segments=0)


@pytest.mark.parametrize("max_time_segments", [1, 4])
def test_batch_padded_past_its_longest_utterance(max_time_segments):
    # Feature extraction may pad a batch beyond its longest utterance's frames; the extra frames
    # are padding like any other, and every layer's outputs keep the padded length.
    torch.manual_seed(0)
    listener = Listener(
        input_size=5, hidden_size=4, num_layers=1, num_pyramid_layers=2,
        max_time_segments=max_time_segments,
    )  # fmt: skip
    lens = torch.tensor([37, 20, 9, 30])
    features = torch.randn(4, 43, 5)
    padded = listener(features, lens)
    cropped = listener(features[:, :37], lens)
    assert padded.encoded.shape[1] == 11 and cropped.encoded.shape[1] == 10
    torch.testing.assert_close(padded.encoded[:, :10], cropped.encoded)
    assert torch.all(padded.encoded[:, 10:] == 0)
