"""decode_dataset: the one loop over a dataset, on the recognizer's one decoding path."""

from __future__ import annotations

import pytest
import torch

from asr.checkpoint import read_checkpoint, recognizer_from_payload
from asr.data import SkipCounter, UtteranceDataset, read_manifest
from asr.decoding import TOO_LONG, decode_dataset
from asr.recognizer import DecodingOptions
from tests.transcribe_fixtures import tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny"))


def test_too_long_utterances_are_skipped_and_counted_and_the_rest_decoded(model):
    recognizer = recognizer_from_payload(read_checkpoint(model.checkpoint), model.checkpoint)
    utterances = read_manifest(model.corpus / "test.jsonl")
    dataset = UtteranceDataset(utterances, recognizer.vocabulary, encode_text=False)
    limit = sorted(u.duration for u in utterances)[len(utterances) // 2]
    too_long = {u.id for u in utterances if u.duration > limit}
    assert 0 < len(too_long) < len(utterances)

    skips = SkipCounter()
    options = DecodingOptions()
    results = decode_dataset(
        recognizer,
        dataset,
        options,
        torch.device("cpu"),
        skips,
        4,
        progress=False,
        max_seconds=limit,
    )
    assert dict(skips.counts) == {TOO_LONG: len(too_long)}
    assert {r.id for r in results} == {u.id for u in utterances} - too_long
    assert all(r.hypothesis == r.reference for r in results)  # the tiny model knows them
    for r in results:  # the result carries the search's hypothesis: text, log-probs, alignment
        assert r.transcript.text == r.hypothesis
        assert r.transcript.score == pytest.approx(float(r.transcript.log_probs.sum()), abs=1e-4)

    everything = decode_dataset(
        recognizer, dataset, options, torch.device("cpu"), SkipCounter(), 4, progress=False
    )
    assert len(everything) == len(utterances)


def evaluate_config(model, out_dir, *overrides, lm=None):
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from asr import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"checkpoint={model.checkpoint}",
                f"data.corpus_dir={model.corpus}",
                "splits=[test]",
                f"out_dir={out_dir}",
                *overrides,
            ],
        )
    with open_dict(cfg):  # `lm` joins the evaluate schema with the LM training
        cfg.lm = None if lm is None else str(lm)
    return cfg


def test_evaluate_decodes_with_the_lm_and_writes_nbest(model, tmp_path):
    from asr.checkpoint import save_language_model
    from asr.errors import UserError
    from asr.evaluate import evaluate
    from asr.models.language_model import CharLSTMLM

    vocabulary = recognizer_from_payload(read_checkpoint(model.checkpoint)).vocabulary
    torch.manual_seed(0)
    save_language_model(tmp_path / "lm.pt", CharLSTMLM(len(vocabulary), 8, 16, 1), vocabulary)
    joint = [
        "decoding=joint",
        "decoding.beam_size=3",
        "decoding.nbest=3",
        "decoding.lm_weight=0.05",
    ]
    with pytest.raises(UserError, match="need a language model"):
        evaluate(evaluate_config(model, tmp_path / "no_lm", *joint))

    (row,) = evaluate(evaluate_config(model, tmp_path / "eval", *joint, lm=tmp_path / "lm.pt"))
    assert row["lm"] == str(tmp_path / "lm.pt") and row["decoding"]["ctc_weight"] == 0.3
    assert row["wer"] == 0.0  # the tiny model knows its sentences; a weak LM does not hurt
    hypotheses = dict(
        line.split(" ", 1) for line in (tmp_path / "eval/test/hyp.txt").read_text().splitlines()
    )
    header, *lines = (tmp_path / "eval/test/nbest.txt").read_text().splitlines()
    assert header.split("\t") == ["utt-id", "rank", "score", "attention", "ctc", "lm", "text"]
    ranks: dict[str, list[int]] = {}
    for line in lines:
        utterance, rank, score, attention, ctc, lm, text = line.split("\t")
        ranks.setdefault(utterance, []).append(int(rank))
        assert all(float(value) <= 1e-9 for value in (attention, ctc, lm))
        if rank == "1":
            assert text == hypotheses[utterance]
    assert set(ranks) == set(hypotheses)
    assert all(r == list(range(1, len(r) + 1)) and len(r) <= 3 for r in ranks.values())
    assert not (tmp_path / "no_lm" / "test" / "nbest.txt").exists()


@pytest.mark.parametrize("beam_size", [1, 4])
def test_bf16_decoding_spells_the_same_and_returns_float32(model, beam_size):
    recognizer = recognizer_from_payload(read_checkpoint(model.checkpoint), model.checkpoint)
    utterances = read_manifest(model.corpus / "test.jsonl")
    dataset = UtteranceDataset(utterances, recognizer.vocabulary, encode_text=False)
    results = {}
    for precision in ("fp32", "bf16"):
        options = DecodingOptions(beam_size=beam_size, nbest=beam_size, precision=precision)
        results[precision] = decode_dataset(
            recognizer, dataset, options, torch.device("cpu"), SkipCounter(), 4, progress=False
        )
    assert [r.hypothesis for r in results["bf16"]] == [r.hypothesis for r in results["fp32"]]
    for r in results["bf16"]:
        for h in [r.transcript, *r.transcript.nbest]:
            assert h.log_probs.dtype == h.alignment.dtype == torch.float32


def test_an_unknown_decoding_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be fp32 or bf16"):
        DecodingOptions(precision="fp16")
