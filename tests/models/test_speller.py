import pytest
import torch

from asr.models.attention import LocationAwareAttention
from asr.models.speller import Speller, SpellerState

VOCAB, ENCODER, HIDDEN = 9, 6, 5


def make_speller(num_layers=1, dropout=0.0):
    torch.manual_seed(0)
    attention = LocationAwareAttention(
        HIDDEN, ENCODER, attention_size=4, location_channels=2, location_kernel_size=3
    )
    return Speller(
        VOCAB,
        ENCODER,
        attention,
        embedding_size=3,
        hidden_size=HIDDEN,
        num_layers=num_layers,
        dropout=dropout,
    )


def make_memory(speller, lens=(5, 3), dtype=torch.float32):
    encoded = torch.randn(len(lens), max(lens), ENCODER, dtype=dtype)
    encoded_lens = torch.tensor(lens)
    encoded = encoded.masked_fill((torch.arange(max(lens)) >= encoded_lens[:, None])[..., None], 0)
    return speller.memory(encoded, encoded_lens)


def test_state_is_batch_first():
    speller = make_speller(num_layers=2)
    memory = make_memory(speller)
    assert memory.keys.shape == (2, 5, 4) and memory.pad_mask.tolist()[1] == [0, 0, 0, 1, 1]
    state = speller.initial_state(memory)
    shapes = [tuple(field.shape) for field in state]
    assert shapes == [(2, 2, HIDDEN), (2, 2, HIDDEN), (2, ENCODER), (2, 5)]
    logits, state = speller.step(torch.tensor([1, 1]), state, memory)
    assert logits.shape == (2, VOCAB)
    assert [tuple(field.shape) for field in state] == shapes


@pytest.mark.parametrize("num_layers", [1, 2])
def test_teacher_forcing_equals_the_step_loop(num_layers):
    # float64: forward applies the output layer to (B, U, H + D) at once and step to (B, H + D);
    # in float32 those differently shaped matrix products round differently by kernel path
    # (6e-8 under MKL_ENABLE_INSTRUCTIONS=AVX2), so exactness is checked where rounding is 1e-16.
    speller = make_speller(num_layers=num_layers).double()
    memory = make_memory(speller, dtype=torch.float64)
    tokens_in = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 0]])
    logits, alignments = speller(memory, tokens_in)
    assert logits.shape == (2, 4, VOCAB) and alignments.shape == (2, 4, 5)
    assert torch.all(alignments[1, :, 3:] == 0)

    state = speller.initial_state(memory)
    for step in range(4):
        step_logits, state = speller.step(tokens_in[:, step], state, memory)
        torch.testing.assert_close(logits[:, step], step_logits, rtol=0, atol=1e-12)
        torch.testing.assert_close(alignments[:, step], state.alignment, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_teacher_forcing_gradients_equal_the_step_loop(num_layers):
    """forward applies the output MLP once to all steps; the plain loop over ``step`` is the
    reference for every parameter's gradient."""
    speller = make_speller(num_layers=num_layers).double()
    memory = make_memory(speller, dtype=torch.float64)
    tokens_in = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 0]])
    weights = torch.randn(2, 4, VOCAB, dtype=torch.double)

    logits, _ = speller(memory, tokens_in)
    parameters = list(speller.parameters())
    batched = torch.autograd.grad((logits * weights).sum(), parameters, retain_graph=True)

    state, step_logits = speller.initial_state(memory), []
    for step in range(4):
        out, state = speller.step(tokens_in[:, step], state, memory)
        step_logits.append(out)
    loss = (torch.stack(step_logits, dim=1) * weights).sum()
    reference = torch.autograd.grad(loss, parameters)
    for got, expected in zip(batched, reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_full_scheduled_sampling_feeds_the_previous_argmax():
    speller = make_speller().double()  # float64, as above: the comparison must not see rounding
    memory = make_memory(speller, dtype=torch.float64)
    tokens_in = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 0]])
    logits, _ = speller(memory, tokens_in, sampling_probability=1.0)

    state = speller.initial_state(memory)
    tokens = tokens_in[:, 0]
    for step in range(4):
        step_logits, state = speller.step(tokens, state, memory)
        torch.testing.assert_close(logits[:, step], step_logits, rtol=0, atol=1e-12)
        tokens = step_logits.argmax(-1)
    with pytest.raises(ValueError, match="sampling_probability"):
        speller(memory, tokens_in, sampling_probability=1.5)


def test_reordering_the_state_reorders_the_step():
    speller = make_speller(num_layers=2)
    memory = make_memory(speller, lens=(4, 4, 4))
    state = speller.initial_state(memory)
    _, state = speller.step(torch.tensor([1, 1, 1]), state, memory)
    _, state = speller.step(torch.tensor([3, 4, 5]), state, memory)
    order = torch.tensor([2, 0, 0])
    reordered = SpellerState(*(field.index_select(0, order) for field in state))
    tokens = torch.tensor([6, 7, 8])
    logits, _ = speller.step(tokens, state, memory)
    memory_reordered = type(memory)(*(field.index_select(0, order) for field in memory))
    logits_reordered, _ = speller.step(tokens[order], reordered, memory_reordered)
    torch.testing.assert_close(logits_reordered, logits[order])


def test_a_decoding_window_is_an_argument_of_the_step():
    """``attention_window`` restricts only the call it is passed to; the speller and its
    attention keep no decoding state."""
    speller = make_speller().eval()
    memory = make_memory(speller, lens=(5, 5))
    state = speller.initial_state(memory)  # all weight on frame 0, so the median is 0
    tokens = torch.tensor([1, 1])
    _, windowed = speller.step(tokens, state, memory, attention_window=(0, 1))
    assert torch.all(windowed.alignment[:, 2:] == 0) and torch.all(windowed.alignment[:, :2] > 0)
    _, free = speller.step(tokens, state, memory)
    assert torch.all(free.alignment > 0)
    assert not hasattr(speller.attention, "decode_window")
