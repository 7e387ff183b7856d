"""Every preset composes, and every config key is a constructor argument of the class it builds."""

import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.features import LogMelFilterbank
from asr.models.attention import ATTENTION_TYPES, Attention
from asr.models.las import LAS
from asr.models.listener import Listener
from asr.models.speller import Speller
from asr.recognizer import DecodingOptions, Recognizer
from asr.text import Vocabulary

CONF = Path(__file__).resolve().parent.parent / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
MODEL_SECTIONS = ("features", "model", "attention")
ATTENTIONS = sorted(p.stem for p in (CONF / "attention").glob("*.yaml"))
AUGMENTS = sorted(p.stem for p in (CONF / "augment").glob("*.yaml"))
DECODINGS = sorted(p.stem for p in (CONF / "decoding").glob("*.yaml"))
DATAS = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_train(overrides=()):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def parameters(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def assert_keys_are_arguments(section, cls, where, base=None):
    keys = set(OmegaConf.to_container(section, resolve=False))
    unknown = keys - parameters(cls) - (parameters(base) if base else set())
    assert not unknown, f"{where} keys {sorted(unknown)} are not arguments of {cls.__name__}"


def test_presets_exist():
    assert {"las_tiny", "las_small", "las_base", "las_large"} <= set(MODELS)
    assert {"synth", "librispeech", "timit", "custom"} <= set(DATAS)


@pytest.mark.parametrize("model", MODELS)
def test_model_presets_map_to_constructors(model):
    cfg = compose_train([f"model={model}"])
    assert_keys_are_arguments(cfg.model.listener, Listener, "model.listener")
    assert_keys_are_arguments(cfg.model.speller, Speller, "model.speller")
    las_keys = OmegaConf.to_container(cfg.model)
    las_keys = {k: v for k, v in las_keys.items() if k not in ("listener", "speller")}
    assert set(las_keys) <= parameters(LAS)
    recognizer = Recognizer.from_config(
        OmegaConf.to_container(cfg, resolve=False) | {"features": {"num_mel_bins": 80}},
        Vocabulary(),
    )
    assert recognizer.model.listener.output_size == 2 * cfg.model.listener.hidden_size


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_attention_options_map_to_constructors(attention):
    cfg = compose_train([f"attention={attention}"])
    cls = ATTENTION_TYPES[cfg.attention.type]
    section = OmegaConf.masked_copy(cfg.attention, [k for k in cfg.attention if k != "type"])
    # A score function's own options, then the base class's ways of attending (**attending).
    assert_keys_are_arguments(section, cls, f"attention={attention}", base=Attention)


@pytest.mark.parametrize("augment", AUGMENTS)
def test_augment_options_map_to_constructors(augment):
    cfg = compose_train([f"augment={augment}"])
    if cfg.augment.waveform is not None:
        assert_keys_are_arguments(cfg.augment.waveform, WaveformAugment, "augment.waveform")
    if cfg.augment.spectrogram is not None:
        assert_keys_are_arguments(
            cfg.augment.spectrogram, SpectrogramAugment, "augment.spectrogram"
        )


@pytest.mark.parametrize("decoding", DECODINGS)
def test_decoding_and_features_map_to_constructors(decoding):
    cfg = compose_train([f"decoding={decoding}"])
    assert_keys_are_arguments(cfg.decoding, DecodingOptions, "decoding")
    assert_keys_are_arguments(cfg.features, LogMelFilterbank, "features")


def test_evaluate_config_composes():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["checkpoint=x.pt", "decoding=beam"])
    assert cfg.decoding.beam_size == 10 and list(cfg.splits) == ["test"]


@pytest.mark.parametrize("data", DATAS)
def test_data_configs_have_the_same_keys(data):
    reference = set(compose_train(["data.corpus_dir=x"]).data)
    cfg = compose_train([f"data={data}", "data.corpus_dir=x"])
    assert set(cfg.data) == reference
    assert cfg.data.unit in ("char", "phone")
    assert cfg.data.normalization in ("standard", "none", "timit39")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment):
    cfg = compose_train([f"+experiment={experiment}"])
    OmegaConf.to_container(cfg.model, resolve=True)
    assert cfg.trainer.keep_checkpoints > 0
    assert cfg.data.train_manifest.endswith(".jsonl")


def test_evaluate_takes_the_normalisation_of_the_data():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        timit = compose("evaluate", overrides=["checkpoint=x.pt", "data=timit"])
        mine = compose("evaluate", overrides=["checkpoint=x.pt", "normalization=none"])
    assert timit.normalization == "timit39" and mine.normalization == "none"


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_attention_option_builds_a_model_that_runs(attention):
    # speller.hidden_size = 2 × listener.hidden_size, as dot and scaled_dot require.
    cfg = compose_train(
        [f"attention={attention}", "model=las_tiny", "model.speller.hidden_size=128"]
    )
    sections = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in MODEL_SECTIONS}
    model = Recognizer.from_config(sections, Vocabulary()).model.eval()
    features, lens = torch.randn(2, 40, 80), torch.tensor([40, 23])
    loss = model(features, lens, torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]))
    assert torch.isfinite(loss.loss)


def test_self_attention_option_builds():
    cfg = compose_train(
        ["model=las_tiny", "model.self_attention={type:scaled_dot,num_heads:2,attention_size:32}"]
    )
    sections = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in MODEL_SECTIONS}
    assert Recognizer.from_config(sections, Vocabulary()).model.self_attention is not None
