"""Long input (issue 12): the 3x concatenation benchmark and the long-file benchmark's options."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from benchmarks import concat, long_audio
from tests.transcribe_fixtures import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny"))


def test_joined_utterances_keep_every_sample_text_and_gap():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (5, 3, 4)]
    rows = [{"wave": w, "text": t} for w, t in zip(waves, ["a b", "c", "d e f"], strict=True)]
    groups = concat.group_consecutive(rows + rows[:2], 3)  # the 2 left over are dropped
    assert [[r["text"] for r in g] for g in groups] == [["a b", "c", "d e f"]] * 1
    wave, text = concat.join_utterances([r["wave"] for r in groups[0]], ["a b", "c", "d e f"], 2)
    assert text == "a b c d e f"
    assert wave.shape == (5 + 2 + 3 + 2 + 4,)
    np.testing.assert_array_equal(wave[:5], waves[0])
    np.testing.assert_array_equal(wave[5:7], 0.0)
    np.testing.assert_array_equal(wave[7:10], waves[1])
    np.testing.assert_array_equal(wave[12:], waves[2])
    assert concat.join_utterances(waves, ["x"] * 3, 0)[0].shape == (12,)


def test_failures_find_loops_early_stops_and_forced_ends():
    def hyp(text, reached_limit=False):
        return SimpleNamespace(text=text, reached_limit=reached_limit, tokens=list(text))

    reference = "we go to the park on friday"
    counts = concat.failures(
        [reference] * 4,
        [
            hyp(reference),
            hyp("we go we go we go we go to the park", reached_limit=True),
            hyp("we go"),
            hyp("we go to the park on friday on friday on friday on friday"),
        ],
    )
    assert counts == {"loops": 2, "too_long": 2, "early_stops": 1, "max_length_ends": 1}
    # A repetition the reference has is not a loop.
    assert concat.failures(["no no no no"], [hyp("no no no no")])["loops"] == 0


def test_concat_benchmark_reports_each_decoding_and_gap(model, tmp_path):
    out = tmp_path / "concat.json"
    table = concat.main(
        [
            "--model",
            str(model.checkpoint),
            "--manifest",
            str(model.corpus / "test.jsonl"),
            "--utterances",
            "7",
            "--decodings",
            "greedy",
            "joint_no_lm",
            "--gaps",
            "0",
            "0.3",
            "--json",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == table
    assert [(row["decoding"], row["gap_seconds"]) for row in table] == [
        ("greedy", 0.0),
        ("greedy", 0.3),
        ("joint_no_lm", 0.0),
        ("joint_no_lm", 0.3),
    ]
    for row in table:
        assert (row["utterances"], row["joined"]) == (6, 2)
        assert 0 <= row["joined_max_length_ends"] <= row["joined"]
    # The tiny model knows its sentences: one by one, it recognises them.
    assert table[0]["wer_single"] < 10.0


def test_the_long_file_benchmark_passes_a_decoding_config_to_the_search(model, spy_search):
    args = long_audio.parse_args(
        ["--model", str(model.checkpoint), "--manifest", "unused", "--decoding", "joint_no_lm"]
    )
    transcriber = long_audio.build_transcriber(args)
    expected = yaml.safe_load((concat.CONF / "joint_no_lm.yaml").read_text())
    options = transcriber.options
    assert options.beam_size == expected["beam_size"]
    assert options.ctc_weight == expected["ctc_weight"] > 0
    window = expected["attention_window"]
    assert options.attention_window == (None if window is None else tuple(window))
    passed = spy_search("beam_search")
    transcriber.transcribe(next(iter(model.texts)))
    assert passed, "the beam search was not used"
    for kwargs in passed:
        assert kwargs["ctc_weight"] == expected["ctc_weight"]
        assert kwargs["beam_size"] == expected["beam_size"]
        assert kwargs["attention_window"] == options.attention_window
    # --beam-size wins over the config's.
    args = long_audio.parse_args([*vars_to_argv(args), "--beam-size", "3"])
    assert long_audio.build_transcriber(args).options.beam_size == 3


def vars_to_argv(args) -> list[str]:
    return ["--model", args.model, "--manifest", str(args.manifest), "--decoding", args.decoding]


def test_three_sentences_decoded_whole_stay_within_the_length_limit(model):
    """Three of the tiny model's sentences joined into one input and decoded whole with the
    joint config: at most ``max_length_ratio`` characters a listener frame, and a hypothesis
    that reached the limit says so. (las_tiny, trained on single sentences, stops early on this
    input; the demo's las_small does not: benchmarks/README.md.)"""
    from asr.audio import load_audio
    from asr.checkpoint import read_checkpoint, recognizer_from_payload

    recognizer = recognizer_from_payload(read_checkpoint(model.checkpoint)).eval()
    options = concat.decoding_options("joint_no_lm", beam_size=4)
    paths = list(model.texts)[:3]
    wave, _ = concat.join_utterances(
        [load_audio(p, recognizer.sample_rate).numpy() for p in paths],
        [model.texts[p] for p in paths],
        int(0.2 * recognizer.sample_rate),
    )
    (hypothesis,) = concat.decode(recognizer, [wave], options, None, batch_size=1)
    frames = hypothesis.alignment.shape[1]  # T' of the joined input
    assert 0 < len(hypothesis.tokens) <= options.max_length_ratio * frames
    assert hypothesis.reached_limit == (len(hypothesis.tokens) >= frames)  # CTC: one a frame


def test_decoding_keys_can_be_set_for_every_decoding():
    options = concat.decoding_options(
        "joint_word_lm", beam_size=3, overrides=["sentence_restarts=false", "lm_weight=0.2"]
    )
    assert (options.beam_size, options.sentence_restarts, options.lm_weight) == (3, False, 0.2)
    assert concat.decoding_options("joint_word_lm", None).sentence_restarts is True
    for bad in ("no_such_key=1", "lm_weight"):
        with pytest.raises(SystemExit, match="KEY=VALUE"):
            concat.decoding_options("joint_word_lm", None, [bad])
