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
