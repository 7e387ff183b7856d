"""The optimised computations equal the straightforward ones they replaced.

Each reference below is the earlier, literal implementation: the location features as a Conv1d
followed by a Linear (Chorowski et al. 2015, eq. 7-8), the listener's within-length reversal as a
per-element gather, its LSTMs as one call over the whole padded batch (``max_time_segments=1``)
instead of length-sorted time segments, the attention values' gradient accumulated by autograd
step by step, and the beam search's back-pointers against re-scoring each hypothesis by teacher
forcing.
``benchmarks/README.md`` reports the speed of both.
"""

import copy

import pytest
import torch
from torch import Tensor, nn

from asr.models import build_model
from asr.models import listener as listener_module
from asr.models.attention import LocationAwareAttention
from asr.models.listener import Listener, reverse_within_lengths
from asr.models.speller import Speller
from asr.search import beam_search
from asr.text import Vocabulary


def reference_energies(attention: LocationAwareAttention, query, keys, prev_alignment) -> Tensor:
    """wᵀ tanh(W s + V h + b + U (F * α)) (B, 1, T') with F a Conv1d and U a Linear, term by
    term; prev_alignment (B, 1, T')."""
    location = attention.location_conv(prev_alignment)  # (B, C, T')
    location = attention.location_projection(location.transpose(1, 2))  # (B, T', A)
    query = attention.query_projection(query)[:, None, :]  # (B, 1, A)
    return attention.energy(torch.tanh(query + keys + location)).transpose(1, 2)


class ReferenceAttention(LocationAwareAttention):
    """LocationAwareAttention computing its energies the straightforward way, and leaving the
    values' gradient to autograd step by step."""

    context_is_weighted_values = False

    def energies(self, query, keys, prev_alignment):
        return reference_energies(self, query, keys, prev_alignment)


def reference_reverse(x: Tensor, lens: Tensor) -> Tensor:
    time = torch.arange(x.size(1))
    reversed_time = lens[:, None] - 1 - time
    index = torch.where(reversed_time >= 0, reversed_time, time)
    return x.gather(1, index[:, :, None].expand_as(x))


def gradients(output: Tensor, inputs: list[Tensor], seed: int = 0) -> list[Tensor]:
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad((output * weights.to(output.dtype)).sum(), inputs)


@pytest.mark.parametrize(
    "kernel_size, channels, sharpening", [(1, 1, 1.0), (3, 2, 2.0), (7, 5, 1.0), (31, 10, 0.5)]
)
def test_location_energies_equal_conv_then_linear(kernel_size, channels, sharpening):
    torch.manual_seed(0)
    attention = LocationAwareAttention(
        query_size=6,
        key_size=5,
        attention_size=4,
        location_channels=channels,
        location_kernel_size=kernel_size,
        sharpening=sharpening,
    ).double()
    lens = torch.tensor([9, 4, 1])
    pad_mask = torch.arange(9) >= lens[:, None]
    query = torch.randn(3, 6, dtype=torch.double, requires_grad=True)
    keys = torch.randn(3, 9, 4, dtype=torch.double, requires_grad=True)
    scores = torch.randn(3, 9, dtype=torch.double).masked_fill(pad_mask, float("-inf"))
    prev_alignment = torch.softmax(scores, -1)[:, None].requires_grad_()

    fast = attention.energies(query, keys, prev_alignment)
    reference = reference_energies(attention, query, keys, prev_alignment)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-12)
    weights = [p for name, p in attention.named_parameters() if "key_projection" not in name]
    inputs = [query, keys, prev_alignment, *weights]
    for fast_grad, reference_grad in zip(
        gradients(fast, inputs), gradients(reference, inputs), strict=True
    ):
        torch.testing.assert_close(fast_grad, reference_grad, rtol=0, atol=1e-12)


def test_location_energies_in_float32_match_to_float_tolerance():
    torch.manual_seed(0)
    attention = LocationAwareAttention(query_size=16, key_size=12, attention_size=32)
    query, keys = torch.randn(4, 16), torch.randn(4, 50, 32)
    prev_alignment = torch.softmax(torch.randn(4, 1, 50), -1)
    torch.testing.assert_close(
        attention.energies(query, keys, prev_alignment),
        reference_energies(attention, query, keys, prev_alignment),
    )


@pytest.mark.parametrize("shape", [(3, 7, 2), (3, 7), (3, 7, 2, 2)])
def test_reversal_equals_a_gather_forward_and_backward(shape):
    lens = torch.tensor([7, 3, 1])
    x = torch.randn(shape, dtype=torch.double, requires_grad=True)
    fast = reverse_within_lengths(x, lens)
    if len(shape) == 3:  # the gather reference takes (B, T, D)
        reference = reference_reverse(x, lens)
        assert torch.equal(fast, reference)
        assert torch.equal(gradients(fast, [x])[0], gradients(reference, [x])[0])
    assert torch.equal(reverse_within_lengths(fast, lens), x)


def test_reversal_of_a_transposed_view():
    # The backward LSTM's output is a (B, T, H) view of time-major memory.
    lens = torch.tensor([5, 2])
    x = torch.randn(5, 2, 3).transpose(0, 1)
    assert not x.is_contiguous()
    assert torch.equal(reverse_within_lengths(x, lens), reference_reverse(x, lens))


@pytest.mark.parametrize(
    "dtype, lens, rtol, atol",
    [
        (torch.double, [37, 9, 64, 21, 64, 1, 50], 0, 1e-12),  # PyTorch's native LSTM kernels
        (torch.float, [37, 9, 64, 21, 64, 1, 50], 1.3e-6, 1e-5),  # oneDNN's on CPU
        (torch.double, [30, 24, 11], 0, 1e-12),  # already sorted: no reordering
    ],
)
def test_listener_in_time_segments_equals_one_call_over_the_padded_batch(dtype, lens, rtol, atol):
    torch.manual_seed(0)
    fast = Listener(input_size=5, hidden_size=6, num_layers=1, num_pyramid_layers=3).to(dtype)
    reference = copy.deepcopy(fast)
    reference.max_time_segments = 1
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(len(lens), max(lens), 5, generator=generator).to(dtype)
    feature_lens = torch.tensor(lens)
    for b, length in enumerate(lens):
        features[b, length:] = 100.0  # garbage in the padding must not leak
    outputs = []
    for listener in (fast, reference):
        x = features.clone().requires_grad_()
        out = listener(x, feature_lens)
        layers = torch.cat([output.flatten(1) for output, _ in out.layer_outputs], dim=1)
        grads = gradients(layers, [x, *listener.parameters()])
        outputs.append((out, grads))
    (fast_out, fast_grads), (reference_out, reference_grads) = outputs
    assert fast_out.encoded is fast_out.layer_outputs[-1][0]
    for (fast_layer, fast_lens), (reference_layer, reference_lens) in zip(
        fast_out.layer_outputs, reference_out.layer_outputs, strict=True
    ):
        assert torch.equal(fast_lens, reference_lens)
        torch.testing.assert_close(fast_layer, reference_layer, rtol=rtol, atol=atol)
    for fast_grad, reference_grad in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(fast_grad, reference_grad, rtol=rtol, atol=atol)


@pytest.fixture
def native_calls(monkeypatch) -> list[bool]:
    """The ``enabled`` of every ``torch.backends.mkldnn.flags`` call (False: native kernel)."""
    calls = []
    flags = torch.backends.mkldnn.flags

    def recording_flags(enabled, **kwargs):
        calls.append(enabled)
        return flags(enabled, **kwargs)

    monkeypatch.setattr(torch.backends.mkldnn, "flags", recording_flags)
    return calls


@pytest.mark.parametrize("lens", [[40, 40, 40, 40], [40, 31, 17], [40, 3]])
def test_listener_inference_on_the_native_kernel_equals_onednn(lens, native_calls, monkeypatch):
    """Small inference batches run the wide (pyramid) layers on PyTorch's own LSTM kernel."""
    torch.manual_seed(0)
    listener = Listener(input_size=8, hidden_size=16, num_layers=1, num_pyramid_layers=2).eval()
    features = torch.randn(len(lens), max(lens), 8, generator=torch.Generator().manual_seed(1))
    feature_lens = torch.tensor(lens)
    monkeypatch.setattr(listener_module, "native_kernel_is_faster", lambda: True)  # as on Intel
    with torch.inference_mode():
        fast = listener(features, feature_lens)
    assert native_calls and not any(native_calls)  # oneDNN disabled for the pyramid layers
    monkeypatch.setattr(listener_module, "NATIVE_INFERENCE_MAX_BATCH", 0)
    native_calls.clear()
    with torch.inference_mode():
        reference = listener(features, feature_lens)
    assert not native_calls
    for (fast_layer, _), (reference_layer, _) in zip(
        fast.layer_outputs, reference.layer_outputs, strict=True
    ):
        torch.testing.assert_close(fast_layer, reference_layer)
    # Training keeps oneDNN (its backward pass is the fast one).
    listener(features, feature_lens).encoded.sum().backward()
    assert not native_calls


@pytest.mark.parametrize("case", ["not faster here", "bf16 autocast"])
def test_listener_inference_keeps_onednn_where_the_native_kernel_is_slower(
    case, native_calls, monkeypatch
):
    torch.manual_seed(0)
    listener = Listener(input_size=8, hidden_size=16, num_layers=1, num_pyramid_layers=2).eval()
    features, feature_lens = torch.randn(3, 40, 8), torch.tensor([40, 31, 17])
    faster = case == "bf16 autocast"
    monkeypatch.setattr(listener_module, "native_kernel_is_faster", lambda: faster)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=faster):
        out = listener(features, feature_lens)
    assert not native_calls
    assert out.encoded.dtype == (torch.bfloat16 if faster else torch.float32)


def test_las_losses_and_gradients_equal_the_reference_attention():
    config = {
        "listener": {"hidden_size": 6, "num_layers": 1, "num_pyramid_layers": 2},
        "speller": {"embedding_size": 4, "hidden_size": 7, "num_layers": 2},
        "attention": {
            "type": "location",
            "attention_size": 5,
            "location_channels": 3,
            "location_kernel_size": 5,
            "sharpening": 1.5,
        },
        "ctc_weight": 0.3,
        "sampling_probability": 0.0,
    }
    torch.manual_seed(0)
    model = build_model(config, vocab_size=12, input_size=8).double().eval()
    reference = copy.deepcopy(model)
    fast_attention = reference.speller.attention
    reference.speller.attention = ReferenceAttention(
        query_size=7, key_size=12, **{k: v for k, v in config["attention"].items() if k != "type"}
    ).double()
    reference.speller.attention.load_state_dict(fast_attention.state_dict())

    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 23, 8, generator=generator, dtype=torch.double)
    feature_lens = torch.tensor([23, 17, 9])
    targets = torch.randint(3, 12, (3, 6), generator=generator)
    target_lens = torch.tensor([6, 4, 2])
    targets = targets.masked_fill(torch.arange(6) >= target_lens[:, None], 0)

    fast_out = model(features, feature_lens, targets, target_lens)
    reference_out = reference(features, feature_lens, targets, target_lens)
    torch.testing.assert_close(fast_out.loss, reference_out.loss, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast_out.ctc_loss, reference_out.ctc_loss, rtol=0, atol=1e-12)
    fast_out.loss.backward()
    reference_out.loss.backward()
    for (name, fast_param), reference_param in zip(
        model.named_parameters(), reference.parameters(), strict=True
    ):
        torch.testing.assert_close(fast_param.grad, reference_param.grad, rtol=0, atol=1e-12)
        assert fast_param.grad.abs().sum() > 0, name


def test_fast_attention_has_the_same_parameters_as_before():
    # Checkpoints store these names: the faster math must not rename or reshape them.
    attention = LocationAwareAttention(query_size=3, key_size=5, attention_size=4)
    shapes = {name: tuple(p.shape) for name, p in attention.named_parameters()}
    assert shapes == {
        "query_projection.weight": (4, 3),
        "key_projection.weight": (4, 5),
        "key_projection.bias": (4,),
        "location_conv.weight": (10, 1, 31),
        "location_projection.weight": (4, 10),
        "energy.weight": (1, 4),
    }
    assert isinstance(attention.location_conv, nn.Conv1d)


def test_beam_backtrace_matches_teacher_forcing_the_hypotheses():
    """Every beam hypothesis's alignment and score equal a teacher-forced pass over its tokens."""
    torch.manual_seed(0)
    config = {
        "listener": {"hidden_size": 8, "num_layers": 1, "num_pyramid_layers": 1},
        "speller": {"embedding_size": 4, "hidden_size": 8},
        "attention": {"type": "location", "attention_size": 6, "location_kernel_size": 3},
    }
    model = build_model(config, vocab_size=10, input_size=6).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(2.0)  # a decisive random model: varied lengths and tokens
    features = torch.randn(2, 12, 6, dtype=torch.double, generator=torch.Generator().manual_seed(3))
    feature_lens = torch.tensor([12, 7])
    results = beam_search(model, features, feature_lens, beam_size=3)
    assert max(len(h.tokens) for hypotheses in results for h in hypotheses) >= 3
    with torch.no_grad():
        listened = model.encode(features, feature_lens)
        for b, hypotheses in enumerate(results):
            frames = int(listened.encoded_lens[b])
            memory = model.speller.memory(
                listened.encoded[b : b + 1, :frames], listened.encoded_lens[b : b + 1]
            )
            for hypothesis in hypotheses:
                tokens_in = torch.tensor([[Vocabulary.sos_id, *hypothesis.tokens]])
                logits, alignments = model.speller(memory, tokens_in)
                torch.testing.assert_close(hypothesis.alignment, alignments[0])
                logits[..., [Vocabulary.blank_id, Vocabulary.sos_id]] = float("-inf")
                emitted = torch.tensor([*hypothesis.tokens, Vocabulary.eos_id])
                score = logits[0].log_softmax(-1).gather(1, emitted[:, None]).sum()
                assert hypothesis.score == pytest.approx(float(score), abs=1e-9)


def make_speller(num_layers: int) -> Speller:
    torch.manual_seed(0)
    attention = LocationAwareAttention(7, 6, attention_size=5, location_kernel_size=3)
    return Speller(9, 6, attention, embedding_size=4, hidden_size=7, num_layers=num_layers).double()


def speller_outputs(speller: Speller, deferred: bool, sampling: float = 0.0):
    """Teacher-forced logits and alignments, and the values (encoder outputs) they read."""
    speller.attention.context_is_weighted_values = deferred
    lens = torch.tensor([6, 4])
    encoded = torch.randn(2, 6, 6, dtype=torch.double, generator=torch.Generator().manual_seed(2))
    values = encoded.masked_fill((torch.arange(6) >= lens[:, None])[..., None], 0.0)
    values.requires_grad_()
    tokens_in = torch.tensor([[1, 4, 5, 6, 7], [1, 7, 3, 8, 0]])
    torch.manual_seed(1)  # the same scheduled-sampling draws
    logits, alignments = speller(speller.memory(values, lens), tokens_in, sampling)
    return logits, alignments, values


@pytest.mark.parametrize("num_layers, sampling", [(1, 0.0), (2, 0.5)])
@pytest.mark.parametrize("loss_steps", [5, 2])
def test_values_gradient_once_for_all_steps_equals_step_by_step(num_layers, sampling, loss_steps):
    """Speller.forward's deferred values gradient equals autograd's per-step accumulation."""
    speller = make_speller(num_layers)
    results = []
    for deferred in (True, False):
        logits, alignments, values = speller_outputs(speller, deferred, sampling)
        # loss_steps=2: the later steps' contexts never reach the loss.
        weights = torch.randn(2, 5, 9 + 6, dtype=torch.double)[:, :loss_steps]
        outputs = torch.cat([logits, alignments], dim=-1)[:, :loss_steps]
        loss = (outputs * weights).sum()
        results.append((logits, torch.autograd.grad(loss, [values, *speller.parameters()])))
    (fast_logits, fast_grads), (reference_logits, reference_grads) = results
    # Bitwise: the forward pass is the same computation either way (_ValuesGradient is the
    # identity going forward); only the backward differs, hence the tolerance below.
    assert torch.equal(fast_logits, reference_logits)
    for fast_grad, reference_grad in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(fast_grad, reference_grad, rtol=0, atol=1e-12)
    assert fast_grads[0].abs().sum() > 0


def test_values_gradient_of_a_second_backward_pass_forgets_the_first():
    speller = make_speller(1)
    logits, alignments, values = speller_outputs(speller, deferred=True)
    weights = torch.randn(alignments.shape, dtype=torch.double)
    # A first pass that records every step's ∂L/∂c_t but never needs the values' gradient...
    lstm_weight = speller.cells[0].weight_hh
    torch.autograd.grad(logits.sum(), [lstm_weight], retain_graph=True)
    # ... must not leak into a second pass that never reaches the last step's context.
    (second,) = torch.autograd.grad((alignments * weights).sum(), [values])
    _, alignments, values = speller_outputs(speller, deferred=False)
    (reference,) = torch.autograd.grad((alignments * weights).sum(), [values])
    torch.testing.assert_close(second, reference, rtol=0, atol=1e-12)


def test_values_gradient_is_left_to_autograd_without_gradients():
    speller = make_speller(1)
    encoded, lens = torch.randn(2, 6, 6, dtype=torch.double), torch.tensor([6, 6])
    tokens_in = torch.tensor([[1, 4, 5], [1, 7, 3]])
    with torch.no_grad():
        logits, _ = speller(speller.memory(encoded, lens), tokens_in)
    reference, _ = speller(speller.memory(encoded, lens), tokens_in)  # encoded needs no grad
    # Bitwise: with no values gradient to defer, both calls run the same operations.
    assert torch.equal(logits, reference.detach())
