"""Every preset composes against the schemas (asr/config.py) and builds what it configures; a
misspelt key or a wrong type fails while composing, naming the key."""

import dataclasses
import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.config import (
    DecodingConfig,
    FeaturesConfig,
    NormalizerConfig,
    SpectrogramAugmentConfig,
    TrainConfig,
    WaveformAugmentConfig,
    check_config,
)
from asr.errors import UserError
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models.attention import ATTENTION_TYPES, Attention
from asr.models.las import LAS
from asr.models.listener import Listener
from asr.models.speller import Speller
from asr.recognizer import DecodingOptions, Recognizer
from asr.text import Vocabulary

CONF = Path(__file__).resolve().parent.parent / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
MODEL_SECTIONS = ("features", "normalizer", "model", "attention")
ATTENTIONS = sorted(p.stem for p in (CONF / "attention").glob("*.yaml"))
AUGMENTS = sorted(p.stem for p in (CONF / "augment").glob("*.yaml"))
DECODINGS = sorted(p.stem for p in (CONF / "decoding").glob("*.yaml"))
DATAS = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_train(overrides=(), config="train", **kwargs):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config, overrides=list(overrides), **kwargs)


def parameters(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def assert_keys_are_arguments(section, cls, where, base=None):
    keys = set(OmegaConf.to_container(section, resolve=False))
    unknown = keys - parameters(cls) - (parameters(base) if base else set())
    assert not unknown, f"{where} keys {sorted(unknown)} are not arguments of {cls.__name__}"


def build_recognizer(cfg) -> Recognizer:
    sections = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in MODEL_SECTIONS}
    return Recognizer.from_config(sections, Vocabulary())


@pytest.mark.parametrize(
    ("schema", "cls"),
    [
        (FeaturesConfig, LogMelFilterbank),
        (WaveformAugmentConfig, WaveformAugment),
        (SpectrogramAugmentConfig, SpectrogramAugment),
        (DecodingConfig, DecodingOptions),
    ],
)
def test_schemas_follow_their_constructors(schema, cls):
    """NeMo style: each config dataclass has exactly the constructor's arguments and defaults."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    assert set(fields) == parameters(cls)
    defaults = OmegaConf.to_container(OmegaConf.structured(schema))
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name != "self":
            expected = parameter.default
            assert defaults[name] == (list(expected) if isinstance(expected, tuple) else expected)


def test_normalizer_presets_map_to_the_normalizer():
    """The normalizer group holds GlobalNormalizer's arguments but its width (the filterbank's);
    a config from before the group (no ``normalizer`` section, as in old checkpoints) builds
    the plain global normaliser, the default."""
    fields = {f.name for f in dataclasses.fields(NormalizerConfig)}
    assert fields == parameters(GlobalNormalizer) - {"num_features"}
    plain = build_recognizer(compose_train()).normalizer
    assert not plain.subtract_utterance_mean
    centred = build_recognizer(compose_train(["normalizer=utterance_mean"])).normalizer
    assert centred.subtract_utterance_mean and centred.num_features == 80
    cfg = compose_train()
    old = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in MODEL_SECTIONS}
    del old["normalizer"]
    assert not Recognizer.from_config(old, Vocabulary()).normalizer.subtract_utterance_mean
    with pytest.raises(UserError, match="subtract_mean"):
        Recognizer.from_config({**old, "normalizer": {"subtract_mean": True}}, Vocabulary())


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.max_epoch=3", "trainer.max_epoch"),
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("trainer.resume=maybe", "trainer.resume"),
        ("data.max_batch_seconds=lots", "data.max_batch_seconds"),
        ("optim.warmup_step=10", "optim.warmup_step"),
        ("features.hop=10", "features.hop"),
        ("normalizer.subtract_utterance_mean=often", "normalizer.subtract_utterance_mean"),
        ("augment.spectrogram.freq_masks=two", "augment.spectrogram.freq_masks"),
        ("decoding.beam=4", "decoding.beam"),
        ("decoding.beam_size=wide", "decoding.beam_size"),
        ("seed=zero", "seed"),
    ],
)
def test_a_misspelt_key_or_a_wrong_type_fails_while_composing(override, key):
    with pytest.raises(Exception) as error:
        compose_train([override])
    cause = error.value.__cause__
    message = f"{error.value} {cause if cause is not None else ''}"
    assert key in message


def test_a_key_added_with_plus_is_refused_by_training_in_one_line():
    cfg = compose_train(["+trainer.max_epoch=3", "exp_dir=exp"])  # Hydra lets + add keys
    with pytest.raises(UserError, match=r"^bad configuration: .*max_epoch.*trainer.max_epoch\)$"):
        check_config(cfg, TrainConfig)
    check_config(compose_train(["exp_dir=exp"]), TrainConfig)  # every preset key is known


def test_evaluate_keys_are_checked_too():
    with pytest.raises(Exception, match="batch_sizes"):
        compose_train(["checkpoint=x.pt", "batch_sizes=4"], config="evaluate")
    with pytest.raises(Exception, match="max_utterance_seconds"):
        compose_train(["checkpoint=x.pt", "max_utterance_seconds=long"], config="evaluate")


@pytest.mark.parametrize("data", DATAS)
def test_every_data_preset_composes_complete(data):
    cfg = compose_train([f"data={data}", "data.corpus_dir=corpus", "exp_dir=exp"])
    check_config(cfg)  # nothing left ??? once the corpus is named
    assert Path(cfg.data.train_manifest).is_relative_to("corpus")


@pytest.mark.parametrize("model", MODELS)
def test_model_presets_build_a_recognizer_from_constructor_arguments(model):
    cfg = compose_train([f"model={model}"])
    assert_keys_are_arguments(cfg.model.listener, Listener, "model.listener")
    assert_keys_are_arguments(cfg.model.speller, Speller, "model.speller")
    las_keys = OmegaConf.to_container(cfg.model)
    las_keys = {k: v for k, v in las_keys.items() if k not in ("listener", "speller")}
    assert set(las_keys) <= parameters(LAS)
    recognizer = build_recognizer(cfg)
    assert recognizer.model.listener.output_size == 2 * cfg.model.listener.hidden_size


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_attention_options_map_to_constructors(attention):
    cfg = compose_train([f"attention={attention}"])
    cls = ATTENTION_TYPES[cfg.attention.type]
    section = OmegaConf.masked_copy(cfg.attention, [k for k in cfg.attention if k != "type"])
    # A score function's own options, then the base class's ways of attending (**attending).
    assert_keys_are_arguments(section, cls, f"attention={attention}", base=Attention)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_attention_option_builds_a_model_that_runs(attention):
    # speller.hidden_size = 2 × listener.hidden_size, as dot and scaled_dot require.
    cfg = compose_train(
        [f"attention={attention}", "model=las_tiny", "model.speller.hidden_size=128"]
    )
    model = build_recognizer(cfg).model.eval()
    features, lens = torch.randn(2, 40, 80), torch.tensor([40, 23])
    loss = model(features, lens, torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]))
    assert torch.isfinite(loss.loss)


def test_self_attention_option_builds():
    cfg = compose_train(
        ["model=las_tiny", "model.self_attention={type:scaled_dot,num_heads:2,attention_size:32}"]
    )
    assert build_recognizer(cfg).model.self_attention is not None


@pytest.mark.parametrize("augment", AUGMENTS)
def test_augment_presets_build_their_augmenters(augment):
    cfg = compose_train([f"augment={augment}"])
    for name, cls in (("waveform", WaveformAugment), ("spectrogram", SpectrogramAugment)):
        section = cfg.augment[name]
        if section is not None:
            assert isinstance(cls(**OmegaConf.to_container(section, resolve=True)), cls)


@pytest.mark.parametrize("experiment", [*EXPERIMENTS, None])
def test_composed_configs_build_the_model_and_the_optimizer(experiment):
    cfg = compose_train([f"+experiment={experiment}"] if experiment else [])
    model = build_recognizer(cfg).model
    optimizer = instantiate(cfg.optim.optimizer, params=model.parameters(), _convert_="all")
    assert optimizer.param_groups[0]["lr"] == cfg.optim.optimizer.lr
    LogMelFilterbank(**cfg.features)


@pytest.mark.parametrize("decoding", DECODINGS)
def test_decoding_presets_build_options_and_leave_the_batch_alone(decoding):
    train_cfg = compose_train([f"decoding={decoding}"])
    eval_cfg = compose_train(["checkpoint=x.pt", f"decoding={decoding}"], config="evaluate")
    for cfg in (train_cfg, eval_cfg):
        assert DecodingOptions.from_config(cfg.decoding) == DecodingOptions.from_config(
            train_cfg.decoding
        )
    # Loader settings are not decoding options: choosing a search keeps the batch.
    greedy = compose_train(["checkpoint=x.pt", "decoding=greedy"], config="evaluate")
    assert eval_cfg.batch_size == greedy.batch_size
    assert train_cfg.trainer.dev_batch_size == compose_train().trainer.dev_batch_size


def test_evaluate_takes_the_normalisation_of_the_data():
    timit = compose_train(["checkpoint=x.pt", "data=timit"], config="evaluate")
    mine = compose_train(["checkpoint=x.pt", "normalization=none"], config="evaluate")
    assert timit.normalization == "timit39" and mine.normalization == "none"


@pytest.mark.parametrize("attention", ["location", "additive"])
def test_the_run_directory_names_the_attention(attention):
    cfg = compose_train([f"attention={attention}", "model=las_tiny"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # what @hydra.main does before resolving
    assert cfg.hydra.run.dir == f"exp/synth_las_tiny_{attention}"
    assert cfg.hydra.sweep.dir == f"multirun/synth_las_tiny_{attention}"
