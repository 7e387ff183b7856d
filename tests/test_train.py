"""End to end: synthesize a handful of utterances, train las_tiny, and transcribe them back."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from asr import CONF_DIR
from asr.checkpoint import load_recognizer, read_checkpoint
from asr.errors import UserError
from asr.evaluate import evaluate
from asr.train import train
from tests.e2e_corpus import make_tiny_corpus
from tests.report_check import check_report

pytestmark = pytest.mark.slow

TINY_TRAINING = [
    "model=las_tiny",
    "augment=none",
    "trainer.max_epochs=20",
    "trainer.progress_bar=false",
    "trainer.plot_utterances=2",
    "optim.warmup_steps=10",
    "optim.optimizer.lr=5e-3",
    "optim.final_lr_ratio=0.3",
    "data.max_batch_size=4",
    # The same number format on every machine (auto is bf16 only on CPUs with native bf16).
    "trainer.precision=fp32",
]


def training_config(corpus: Path, exp_dir: Path, extra=()):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[f"data.corpus_dir={corpus}", f"exp_dir={exp_dir}", *TINY_TRAINING, *extra],
        )


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    texts = make_tiny_corpus(root / "corpus")
    return root, texts


def evaluation_config(root: Path, out_dir: Path, splits: str):
    """`asr evaluate` of the trained fixture's best.pt on ``splits`` (Hydra list syntax)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "evaluate",
            overrides=[
                f"checkpoint={root / 'exp' / 'best.pt'}",
                f"out_dir={out_dir}",
                f"data.corpus_dir={root / 'corpus'}",
                f"splits={splits}",
            ],
        )


@pytest.fixture(scope="session")
def trained(tiny_corpus):
    root, texts = tiny_corpus
    summary = train(training_config(root / "corpus", root / "exp"))
    return root, texts, summary


def test_training_learns_the_utterances(trained):
    root, texts, summary = trained
    assert summary["best_dev_cer"] == 0.0, summary["epochs"][-1]
    exp = root / "exp"
    for name in ("best.pt", "last.pt", "summary.json"):
        assert (exp / name).is_file()
    assert sorted((exp / "alignments").glob("epoch*.png"))
    assert list((exp / "tensorboard").iterdir())
    losses = [e["train_loss"] for e in summary["epochs"]]
    assert losses[-1] < 0.5 * losses[0]


def test_checkpoint_is_self_describing_and_round_trips(trained):
    root, texts, _ = trained
    payload = read_checkpoint(root / "exp" / "best.pt")
    assert {"config", "vocabulary", "recognizer", "las_asr_version", "metrics"} <= set(payload)
    assert "normalizer.mean" in payload["recognizer"]
    recognizer = load_recognizer(root / "exp" / "best.pt")
    again = load_recognizer(root / "exp" / "best.pt")
    from asr.audio import load_audio
    from asr.recognizer import DecodingOptions

    for path, text in texts.items():
        wave = load_audio(path)
        lens = torch.tensor([len(wave)])
        a = recognizer.transcribe_batch(wave[None], lens, DecodingOptions())[0]
        b = again.transcribe_batch(wave[None], lens, DecodingOptions(beam_size=4))[0]
        assert a.text == text
        assert b.text == text


def test_batched_decoding_equals_one_by_one(trained):
    from asr.audio import load_audio
    from asr.recognizer import DecodingOptions

    root, texts, _ = trained
    recognizer = load_recognizer(root / "exp" / "best.pt")
    waves = [load_audio(p) for p in texts]
    lens = torch.tensor([len(w) for w in waves])
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    for options in (DecodingOptions(), DecodingOptions(beam_size=3)):
        together = recognizer.transcribe_batch(batch, lens, options)
        alone = [
            recognizer.transcribe_batch(w[None], lens[i : i + 1], options)[0]
            for i, w in enumerate(waves)
        ]
        assert [t.text for t in together] == [t.text for t in alone]
        for t, a in zip(together, alone, strict=True):
            assert t.score == pytest.approx(a.score, abs=1e-3)


def test_evaluate_writes_reports_that_match_a_recomputation(trained):
    root, _, _ = trained
    rows = evaluate(evaluation_config(root, root / "eval", "[dev,test]"))
    assert [r["split"] for r in rows] == ["dev", "test"]
    for split in ("dev", "test"):
        folder = root / "eval" / split
        hyp = (folder / "hyp.txt").read_text()
        ref = (folder / "ref.txt").read_text()
        assert hyp == ref  # the model learnt these utterances exactly
        assert json.loads((folder / "scores.json").read_text())["wer"] == 0.0
    assert "| test |" in (root / "eval" / "results.md").read_text()
    check_report(root / "eval", ["dev", "test"])


def test_evaluate_split_without_a_manifest_is_one_clear_error(trained, tmp_path):
    root, _, _ = trained
    cfg = evaluation_config(root, tmp_path, "[test,dev-other]")
    with pytest.raises(UserError, match="no manifest for split 'dev-other'.*dev-other.jsonl"):
        evaluate(cfg)


def test_resume_continues_from_the_last_checkpoint(trained, tmp_path):
    root, _, _ = trained
    first = train(training_config(root / "corpus", tmp_path, ["trainer.max_steps=12"]))
    assert first["epochs"][-1]["step"] == 12
    resumed = train(
        training_config(root / "corpus", tmp_path, ["trainer.max_epochs=3", "trainer.resume=true"])
    )
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3]
    assert resumed["epochs"][-1]["step"] == 30  # 10 batches an epoch, nothing trained twice
    # The schedule continued, re-planned for 30 steps: the last step ends on lr · final_lr_ratio.
    groups = read_checkpoint(tmp_path / "last.pt")["training"]["optimizer"]["param_groups"]
    assert math.isclose(groups[0]["lr"], 5e-3 * 0.3, rel_tol=1e-9)


def test_missing_required_key_is_one_clear_error(tmp_path):
    cfg = training_config(tmp_path, tmp_path / "exp", ["data.train_manifest=???"])
    with pytest.raises(UserError, match="missing required config key.*data.train_manifest"):
        train(cfg)


def run_asr(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "asr.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def user_error_line(stderr: str) -> str:
    """The one ``asr: ...`` line of a user's mistake. Other lines the environment may add to a
    subprocess's stderr (a library's warning, the OpenMP runtime) are not counted; a traceback
    or a second error line fails."""
    assert "Traceback" not in stderr, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("asr: ")]
    return line


def test_cli_train_unknown_key_is_one_line(tmp_path):
    result = run_asr("train", "trainer.epochz=3")
    assert result.returncode == 2
    assert user_error_line(result.stderr) and "trainer.epochz" in user_error_line(result.stderr)


def test_cli_train_wrong_type_is_one_line():
    result = run_asr("train", "trainer.max_epochs=abc")
    assert result.returncode == 2
    assert "trainer.max_epochs" in user_error_line(result.stderr)


def test_cli_train_missing_manifest_is_one_line(tmp_path):
    result = run_asr("train", f"data.corpus_dir={tmp_path}", f"hydra.run.dir={tmp_path}/exp")
    assert result.returncode == 2, result.stderr
    assert "manifest not found" in result.stderr and "Traceback" not in result.stderr


def test_bad_training_utterances_are_skipped_and_counted(trained, tmp_path, caplog):
    root, _, _ = trained
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = [json.loads(line) for line in (root / "corpus" / "dev.jsonl").read_text().splitlines()]
    for entry in good:
        entry["audio"] = str(root / "corpus" / entry["audio"])
    (corpus / "broken.wav").write_text("not audio at all")
    bad = [
        {"id": "broken", "audio": "broken.wav", "duration": 1.0, "text": "hello"},
        {"id": "missing", "audio": "missing.wav", "duration": 1.0, "text": "hello"},
        {"id": "digits", "audio": good[0]["audio"], "duration": 1.0, "text": "route 66"},
    ]
    lines = "".join(json.dumps(e) + "\n" for e in good + bad)
    for split in ("train", "dev"):
        (corpus / f"{split}.jsonl").write_text(lines)
    with caplog.at_level(logging.INFO, logger="asr"):
        summary = train(training_config(corpus, tmp_path / "exp", ["trainer.max_epochs=1"]))
    assert summary["skipped"] == {"unreadable audio": 2, "text outside vocabulary": 1}
    assert summary["epochs"][0]["step"] >= 1
    # The run's log says which OpenMP wait policy and how many threads it ran with.
    assert f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}" in caplog.text
    assert f"{torch.get_num_threads()} threads" in caplog.text


def test_accumulation_steps_once_per_group_and_epoch_checkpoints_are_kept(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    summary = train(
        training_config(
            root / "corpus",
            tmp_path,
            ["trainer.max_epochs=3", "trainer.accumulate_batches=3", "trainer.keep_checkpoints=1"],
        )
    )
    # 10 batches an epoch in groups of 3: steps after batches 3, 6, 9 and the last one.
    assert [e["step"] for e in summary["epochs"]] == [4, 8, 12]
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch*.pt"))
    best_epoch = min(summary["epochs"], key=lambda e: (e["dev_cer"], e["epoch"]))["epoch"]
    assert kept == sorted({"epoch003.pt", f"epoch{best_epoch:03d}.pt"})
    assert summary["selected_by"] == "dev_cer"
    assert summary["best_dev_error"] == summary["best_dev_cer"]


def test_bf16_training_on_the_cpu_learns_and_keeps_float32_weights(
    tiny_corpus, tmp_path, caplog, monkeypatch
):
    root, _ = tiny_corpus
    monkeypatch.setattr("asr.training.loop.cpu_has_native_bf16", lambda: False)
    extra = ["trainer.max_epochs=6", "trainer.precision=bf16", "trainer.device=cpu"]
    with caplog.at_level(logging.INFO, logger="asr.train"):
        summary = train(training_config(root / "corpus", tmp_path, extra))
    assert "bf16 (trainer.precision=bf16)" in caplog.text
    assert "without native bfloat16" in caplog.text  # said once, as a warning
    losses = [e["train_loss"] for e in summary["epochs"]]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.7 * losses[0], losses
    state = read_checkpoint(tmp_path / "last.pt")["recognizer"]
    weights = [t for name, t in state.items() if name.startswith("model.")]
    assert weights
    assert {t.dtype for t in weights} == {torch.float32}


def test_cached_features_train_and_are_written_once(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    cache = tmp_path / "features"
    # Two data-loading workers share the cache folder.
    extra = ["trainer.max_epochs=2", f"data.feature_cache_dir={cache}", "data.num_workers=2"]
    summary = train(training_config(root / "corpus", tmp_path / "exp", extra))
    assert [e["step"] for e in summary["epochs"]] == [10, 20]
    # 40 training lines name 4 audio files: one cache file each.
    assert len(list(cache.rglob("*.pt"))) == 4


def test_feature_cache_with_waveform_augmentation_is_refused(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    extra = ["augment=default", f"data.feature_cache_dir={tmp_path}"]
    with pytest.raises(UserError, match="augment.waveform=null"):
        train(training_config(root / "corpus", tmp_path / "exp", extra))


def corpus_with_dev(tmp_path: Path, root: Path, dev_entries: list[dict]) -> Path:
    """The tiny corpus's training split (absolute audio paths) with ``dev_entries`` as dev."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    train_lines = (root / "corpus" / "train.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in train_lines]
    for entry in entries:
        entry["audio"] = str(root / "corpus" / entry["audio"])
    (corpus / "train.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (corpus / "dev.jsonl").write_text("".join(json.dumps(e) + "\n" for e in dev_entries))
    return corpus


def test_a_dev_set_with_no_usable_utterance_is_refused(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    spelled_wrong = [{"id": "d1", "audio": "x.wav", "duration": 1.0, "text": "route 66"}]
    corpus = corpus_with_dev(tmp_path, root, spelled_wrong)
    with pytest.raises(UserError, match=r"^no usable dev utterances in .*dev.jsonl \(1 "):
        train(training_config(corpus, tmp_path / "exp"))


def test_a_dev_set_that_cannot_be_decoded_is_refused_before_best_pt(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    unreadable = [
        {"id": f"d{i}", "audio": f"missing{i}.wav", "duration": 1.0, "text": "hello"}
        for i in range(2)
    ]
    corpus = corpus_with_dev(tmp_path, root, unreadable)
    exp = tmp_path / "exp"
    with pytest.raises(UserError, match="none of the 2 dev utterances could be decoded"):
        train(training_config(corpus, exp, ["trainer.max_steps=1"]))
    assert not (exp / "best.pt").exists()  # no epoch was selected by a 0% over nothing


def write_split(folder: Path, name: str, entries: list[dict]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_evaluate_counts_skipped_utterances_and_refuses_an_empty_split(trained, tmp_path):
    root, _, _ = trained
    good = [json.loads(line) for line in (root / "corpus" / "dev.jsonl").read_text().splitlines()]
    for entry in good:
        entry["audio"] = str(root / "corpus" / entry["audio"])
    (tmp_path / "broken.wav").write_text("not audio at all")
    broken = {"id": "broken", "audio": str(tmp_path / "broken.wav"), "duration": 1.0, "text": "a"}
    mixed = write_split(tmp_path, "mixed", [*good, broken])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"checkpoint={root / 'exp' / 'best.pt'}",
                f"out_dir={tmp_path / 'eval'}",
                f"+data.mixed_manifest={mixed}",
                "splits=[mixed]",
            ],
        )
    (row,) = evaluate(cfg)
    assert row["utterances"] == len(good) and row["skipped"] == {"unreadable audio": 1}
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "| split | utterances | skipped |" in table
    assert f"| mixed | {len(good)} | 1 |" in table
    check_report(tmp_path / "eval", ["mixed"])

    write_split(tmp_path, "mixed", [broken])
    with pytest.raises(UserError, match=r"^split 'mixed': no usable utterance in .*mixed.jsonl"):
        evaluate(cfg)


def test_evaluate_skips_and_counts_long_utterances_and_bad_manifest_lines(trained, tmp_path):
    """Issue 16: an utterance over ``max_utterance_seconds`` is not decoded whole (its attention
    over every frame would not fit in memory for an hour) and a malformed manifest line is not
    fatal; both are counted in the results, and every other utterance is scored."""
    root, _, _ = trained
    good = [json.loads(line) for line in (root / "corpus" / "dev.jsonl").read_text().splitlines()]
    for entry in good:
        entry["audio"] = str(root / "corpus" / entry["audio"])
    limit = sorted(entry["duration"] for entry in good)[len(good) // 2]
    too_long = sum(entry["duration"] > limit for entry in good)
    manifest = write_split(tmp_path, "long", good)
    with manifest.open("a") as out:
        out.write('{"id": "no-text", "audio": "x.wav", "duration": 1.0, "text": null}\n')
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"checkpoint={root / 'exp' / 'best.pt'}",
                f"out_dir={tmp_path / 'eval'}",
                f"+data.long_manifest={manifest}",
                "splits=[long]",
                f"max_utterance_seconds={limit}",
            ],
        )
    (row,) = evaluate(cfg)
    assert 0 < too_long < len(good)
    assert row["utterances"] == len(good) - too_long
    assert row["skipped"] == {"too long to decode whole": too_long, "bad manifest line": 1}


def test_dev_decoding_that_needs_a_language_model_is_refused_before_training(tiny_corpus, tmp_path):
    """Training's dev pass has no language model: decoding=joint (lm_weight > 0) is one line at
    set-up, not a failure after the first epoch."""
    root, _ = tiny_corpus
    exp = tmp_path / "exp"
    with pytest.raises(UserError, match=r"^decoding.lm_weight=0.4 .* need a language model"):
        train(training_config(root / "corpus", exp, ["decoding=joint"]))
    assert not (exp / "last.pt").exists()
