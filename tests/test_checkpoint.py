"""Checkpoint averaging (``asr average``) and checkpoints of phone models."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from asr import CONF_DIR
from asr.checkpoint import (
    average_checkpoints,
    checkpoint_summary,
    load_recognizer,
    read_checkpoint,
    save_checkpoint,
    select_checkpoints,
)
from asr.cli import main
from asr.config import register_configs
from asr.errors import UserError
from asr.recognizer import Recognizer
from asr.text import Vocabulary


def tiny_config() -> dict:
    register_configs()  # conf/train.yaml's first default is the schema asr/config.py stores
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=las_tiny", "exp_dir=unused"])
    return OmegaConf.to_container(cfg, resolve=True)


def write_epochs(folder, dev_cers, vocabulary=None):
    """One checkpoint per epoch with weights filled with the epoch number; returns the states."""
    config = tiny_config()
    states = []
    for epoch, dev_cer in enumerate(dev_cers, start=1):
        recognizer = Recognizer.from_config(config, vocabulary or Vocabulary())
        with torch.no_grad():
            for parameter in recognizer.parameters():
                parameter.fill_(float(epoch))
        metrics = {"epoch": epoch, "dev_cer": dev_cer, "selected_by": "dev_cer"}
        save_checkpoint(folder / f"epoch{epoch:03d}.pt", recognizer, config, metrics)
        states.append(recognizer.state_dict())
    return states


def test_average_is_the_mean_of_the_weights(tmp_path):
    write_epochs(tmp_path / "checkpoints", [0.5, 0.2, 0.3, 0.4])
    last = select_checkpoints(tmp_path, 3, "last")
    assert [p.name for p in last] == ["epoch002.pt", "epoch003.pt", "epoch004.pt"]
    best = select_checkpoints(tmp_path, 2, "best")
    assert [p.name for p in best] == ["epoch002.pt", "epoch003.pt"]
    payload = average_checkpoints(last)
    weight = payload["recognizer"]["model.speller.embedding.weight"]
    assert torch.allclose(weight, torch.full_like(weight, 3.0))
    assert "training" not in payload
    assert payload["metrics"]["averaged_from"] == ["epoch002.pt", "epoch003.pt", "epoch004.pt"]


def test_asr_average_writes_a_loadable_checkpoint(tmp_path, capsys):
    write_epochs(tmp_path / "checkpoints", [0.5, 0.2, 0.3])
    assert main(["average", str(tmp_path), "--best", "2"]) == 0
    out = tmp_path / "average_best2.pt"
    assert "epoch002.pt, epoch003.pt" in capsys.readouterr().out
    recognizer = load_recognizer(out)
    weight = recognizer.model.speller.embedding.weight
    assert torch.allclose(weight, torch.full_like(weight, 2.5))


@pytest.mark.parametrize(
    "args, message",
    [
        (["{run}", "--last", "9"], "holds 3 epoch checkpoint"),
        (["{run}"], "give --last N or --best N"),
        (["{run}/checkpoints/epoch001.pt"], "give --out PATH"),
    ],
)
def test_asr_average_mistakes_are_one_line(tmp_path, capsys, args, message):
    write_epochs(tmp_path / "checkpoints", [0.5, 0.2, 0.3])
    with pytest.raises(SystemExit) as exit_info:
        main(["average", *[a.format(run=tmp_path) for a in args]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_checkpoints_of_different_models_are_not_averaged(tmp_path):
    write_epochs(tmp_path / "a", [0.1])
    write_epochs(tmp_path / "b", [0.1], Vocabulary(["x", "y"], unit="phone"))
    with pytest.raises(UserError, match="not a checkpoint of the same model"):
        average_checkpoints([tmp_path / "a" / "epoch001.pt", tmp_path / "b" / "epoch001.pt"])


def test_phone_checkpoint_keeps_its_vocabulary(tmp_path):
    phones = Vocabulary(["h#", "sh", "iy"], unit="phone")
    write_epochs(tmp_path, [0.1], phones)
    payload = read_checkpoint(tmp_path / "epoch001.pt")
    assert payload["vocabulary"] == {"unit": "phone", "phones": ["h#", "sh", "iy"]}
    assert load_recognizer(tmp_path / "epoch001.pt").vocabulary == phones
    summary = checkpoint_summary(payload)
    assert summary["unit"] == "phone" and summary["vocabulary"][-3:] == ["h#", "sh", "iy"]


def test_utterance_mean_normalisation_travels_in_the_checkpoint(tmp_path):
    config = tiny_config()
    config["normalizer"] = {"subtract_utterance_mean": True}
    recognizer = Recognizer.from_config(config, Vocabulary())
    recognizer.normalizer.accumulate(torch.randn(2, 50, 80), torch.tensor([50, 30]))
    recognizer.normalizer.finalize()
    save_checkpoint(tmp_path / "best.pt", recognizer, config, {"epoch": 1})
    loaded = load_recognizer(tmp_path / "best.pt")
    assert loaded.normalizer.subtract_utterance_mean
    features, lens = torch.randn(2, 40, 80), torch.tensor([40, 25])
    assert torch.equal(loaded.normalizer(features, lens), recognizer.normalizer(features, lens))
    summary = checkpoint_summary(read_checkpoint(tmp_path / "best.pt"))
    assert summary["normalizer"] == {"subtract_utterance_mean": True}


def test_a_language_model_checkpoint_rebuilds_the_same_model(tmp_path):
    from asr.checkpoint import load_language_model, save_language_model
    from asr.models.language_model import CharLSTMLM

    vocabulary = Vocabulary()
    model = CharLSTMLM(len(vocabulary), embedding_size=8, hidden_size=16, num_layers=2).double()
    save_language_model(tmp_path / "lm.pt", model, vocabulary, metrics={"dev_perplexity": 3.5})
    loaded, loaded_vocabulary = load_language_model(tmp_path / "lm.pt")
    assert loaded_vocabulary == vocabulary and not loaded.training
    tokens = torch.tensor([[1, 5, 6, 7]])
    expected = model.eval()(tokens, torch.tensor([4]))
    torch.testing.assert_close(loaded.double()(tokens, torch.tensor([4])), expected)


def test_language_and_acoustic_checkpoints_are_not_confused(tmp_path):
    from asr.checkpoint import load_language_model, save_language_model
    from asr.models.language_model import CharLSTMLM

    write_epochs(tmp_path, [0.5])
    with pytest.raises(UserError, match="is an acoustic model checkpoint, not a language model"):
        load_language_model(tmp_path / "epoch001.pt")
    save_language_model(tmp_path / "lm.pt", CharLSTMLM(31, 4, 8, 1), Vocabulary())
    with pytest.raises(UserError, match="is a language model checkpoint, not an acoustic model"):
        read_checkpoint(tmp_path / "lm.pt")
