import pytest
import torch
from omegaconf import OmegaConf

from asr.models import LAS, build_model
from asr.text import Vocabulary

VOCAB, FEATURES = 12, 6


def model_config(**overrides):
    config = {
        "listener": {"hidden_size": 4, "num_layers": 1, "num_pyramid_layers": 2},
        "speller": {"embedding_size": 3, "hidden_size": 5},
        "attention": {
            "type": "location",
            "attention_size": 4,
            "location_channels": 2,
            "location_kernel_size": 3,
        },
        "ctc_weight": 0.3,
        "ctc_layer": -1,
        "label_smoothing": 0.1,
        "sampling_probability": 0.0,
    }
    return config | overrides


def make_model(**overrides) -> LAS:
    torch.manual_seed(0)
    return build_model(model_config(**overrides), vocab_size=VOCAB, input_size=FEATURES)


def make_batch(feature_lens=(13, 9, 5), target_lens=(4, 2, 3), seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(feature_lens), max(feature_lens), FEATURES, generator=generator)
    targets = torch.randint(3, VOCAB, (len(target_lens), max(target_lens)), generator=generator)
    for b, (frames, length) in enumerate(zip(feature_lens, target_lens, strict=True)):
        features[b, frames:] = 50.0  # garbage padding must not matter
        targets[b, length:] = 0
    return features, torch.tensor(feature_lens), targets, torch.tensor(target_lens)


@pytest.mark.parametrize("ctc_layer", [-1, 1])
def test_loss_is_finite_and_reaches_every_parameter(ctc_layer):
    model = make_model(ctc_layer=ctc_layer, sampling_probability=0.5)
    out = model(*make_batch())
    assert torch.isfinite(out.loss) and out.ctc_loss is not None
    assert out.num_tokens.item() == (4 + 2 + 3) + 3  # characters + one <eos> each
    torch.testing.assert_close(out.loss, 0.7 * out.attention_loss + 0.3 * out.ctc_loss)
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_without_ctc_there_is_no_head():
    model = make_model(ctc_weight=0.0)
    assert model.ctc_head is None
    out = model(*make_batch())
    assert out.ctc_loss is None and torch.equal(out.loss, out.attention_loss)


def test_attention_loss_targets_are_sos_shifted_with_eos():
    model = make_model(label_smoothing=0.0).eval()
    features, feature_lens, targets, target_lens = make_batch(feature_lens=(9,), target_lens=(3,))
    out = model(features, feature_lens, targets, target_lens)
    listened = model.encode(features, feature_lens)
    memory = model.speller.memory(listened.encoded, listened.encoded_lens)
    sos, eos = Vocabulary.sos_id, Vocabulary.eos_id
    logits, _ = model.speller(memory, torch.cat([torch.tensor([[sos]]), targets], 1))
    expected = torch.nn.functional.cross_entropy(
        logits[0], torch.cat([targets[0], torch.tensor([eos])])
    )
    torch.testing.assert_close(out.attention_loss, expected)


def test_padded_batch_loss_equals_weighted_singles():
    model = make_model().double()
    features, feature_lens, targets, target_lens = make_batch()
    features = features.double()
    batch = model(features, feature_lens, targets, target_lens)
    singles = [
        model(
            features[b : b + 1, : feature_lens[b]],
            feature_lens[b : b + 1],
            targets[b : b + 1, : target_lens[b]],
            target_lens[b : b + 1],
        )
        for b in range(3)
    ]
    tokens = torch.stack([single.num_tokens for single in singles]).double()
    attention = torch.stack([single.attention_loss for single in singles])
    ctc = torch.stack([single.ctc_loss for single in singles])
    # Attention loss is a mean over tokens, CTC a mean over utterances.
    torch.testing.assert_close(batch.attention_loss, (attention * tokens).sum() / tokens.sum())
    torch.testing.assert_close(batch.ctc_loss, ctc.mean())


def test_eval_mode_feeds_the_ground_truth():
    model = make_model(sampling_probability=1.0).eval()
    reference = make_model(sampling_probability=0.0).eval()
    batch = make_batch()
    torch.testing.assert_close(model(*batch).loss, reference(*batch).loss)


def test_build_model_from_dict_and_dictconfig():
    model = make_model()
    assert model.listener.output_size == 8 and model.speller.hidden_size == 5
    assert model.speller.vocab_size == VOCAB and model.ctc_head.out_features == VOCAB
    assert model.ctc_weight == 0.3 and model.label_smoothing == 0.1
    from_omegaconf = build_model(
        OmegaConf.create(model_config(ctc_weight=0.5)), vocab_size=VOCAB, input_size=FEATURES
    )
    assert from_omegaconf.ctc_weight == 0.5
    defaults = build_model({"attention": {"type": "location"}}, vocab_size=VOCAB, input_size=80)
    assert defaults.listener.output_size == 512 and defaults.speller.hidden_size == 256


def test_build_model_rejects_bad_configs():
    with pytest.raises(ValueError, match="unknown model config key.*ctc_wieght"):
        build_model(model_config(ctc_wieght=0.3), vocab_size=VOCAB, input_size=FEATURES)
    with pytest.raises(ValueError, match="needs a 'type'"):
        build_model(model_config(attention={}), vocab_size=VOCAB, input_size=FEATURES)
    with pytest.raises(ValueError, match="ctc_layer 3 is out of range"):
        build_model(model_config(ctc_layer=3), vocab_size=VOCAB, input_size=FEATURES)


def test_under_bf16_autocast_only_the_listener_computes_in_bf16():
    model = make_model()
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            dtypes[name] = getattr(out, "encoded", out).dtype

        return hook

    model.listener.register_forward_hook(record("listener"))
    model.speller.output.register_forward_hook(record("speller output"))
    model.speller.attention.register_forward_hook(record("attention"))
    model.ctc_head.register_forward_hook(record("ctc head"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*make_batch())
    assert dtypes == {
        "listener": torch.bfloat16,
        "speller output": torch.float32,
        "attention": torch.float32,
        "ctc head": torch.float32,
    }
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
