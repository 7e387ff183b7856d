"""recipes/synth: the decoding sweep's summary, the three-way comparison, and the commands that
run.sh and sweep_decoding.sh give (run with a stand-in `asr` that records them)."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

import asr.config  # noqa: F401  (registers the schemas that conf/*.yaml name)
from asr import CONF_DIR
from asr.recognizer import DecodingOptions

ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT / "recipes" / "synth"
sys.path.insert(0, str(SYNTH))
import compare_decodings  # noqa: E402
import summarize_sweep  # noqa: E402

# Keys of the joint search (issue 12): composed only once DecodingOptions has them.
JOINT_KEYS = ("decoding.ctc_weight", "decoding.lm_weight", "decoding.length_bonus")
_FIELDS = {f.name for f in dataclasses.fields(DecodingOptions)}


def result_row(split, wer, cer, rtf=0.01, **decoding):
    return {"split": split, "wer": wer, "cer": cer, "real_time_factor": rtf, "decoding": decoding}


def write_job(folder: Path, rows) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(rows))


def test_the_sweep_summary_ranks_dev_and_names_the_best(tmp_path):
    base = {"beam_size": 10, "max_length_ratio": 2.0}
    settings = [(0.0, 0.0, 0.30, 0.10), (0.3, 0.2, 0.20, 0.08), (0.3, 0.4, 0.20, 0.07)]
    for job, (ctc, lm, wer, cer) in enumerate(settings):
        dev = result_row("dev", wer, cer, ctc_weight=ctc, lm_weight=lm, **base)
        # A test row, should a job have scored test too, never ranks.
        test = result_row("test", 0.01, 0.01, ctc_weight=ctc, lm_weight=lm, **base)
        write_job(tmp_path / str(job), [dev, test])
    assert summarize_sweep.main([str(tmp_path)]) == 0
    table = (tmp_path / "sweep.md").read_text().splitlines()
    assert (
        table[0] == "| rank | decoding.ctc_weight | decoding.lm_weight | dev WER | dev CER | RTF |"
    )
    ranked = [line.split(" | ")[1:3] for line in table[2:5]]
    assert ranked == [["0.3", "0.4"], ["0.3", "0.2"], ["0.0", "0.0"]]  # WER, then CER
    assert table[-1].endswith("decoding.ctc_weight=0.3 decoding.lm_weight=0.4")
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["overrides"] == ["decoding.ctc_weight=0.3", "decoding.lm_weight=0.4"]
    assert (best["job"], best["wer"], best["split"]) == ("2", 0.20, "dev")


def test_the_sweep_summary_without_results_is_one_line(tmp_path, capsys):
    write_job(tmp_path / "0", [result_row("test", 0.1, 0.1)])
    assert summarize_sweep.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no results.json with a 'dev' row" in err


def test_four_decodings_side_by_side(tmp_path, capsys):
    exp, lm_exp, corpus = tmp_path / "exp", tmp_path / "lm", tmp_path / "corpus"
    word_lm_exp = tmp_path / "word_lm"
    decodings = (
        ("eval_beam", 0.25),
        ("eval_beam_ctc", 0.20),
        ("eval_beam_ctc_lm", 0.05),
        ("eval_beam_ctc_wordlm", 0.03),
    )
    for folder, wer in decodings:
        write_job(exp / folder, [result_row("dev", wer, wer / 2), result_row("test", wer, wer / 3)])
    for folder, perplexity in ((lm_exp, 2.5), (word_lm_exp, 30.0)):
        folder.mkdir()
        (folder / "summary.json").write_text(
            json.dumps({"train_minutes": 2.0, "best_dev_perplexity": perplexity})
        )
    assert compare_decodings.main([str(corpus), str(exp), str(lm_exp), str(word_lm_exp)]) == 0
    out = capsys.readouterr().out
    header = "| split | attention WER / CER | +CTC WER / CER | +CTC+LM WER / CER |"
    assert header + " +CTC+word LM WER / CER |" in out
    assert "| test | 25.00% / 8.33% | 20.00% / 6.67% | 5.00% / 1.67% | 3.00% / 1.00% |" in out
    table = json.loads((exp / "results.json").read_text())
    assert list(table["decodings"]) == ["attention", "+CTC", "+CTC+LM", "+CTC+word LM"]
    assert table["results"]["test"]["wer"] == 0.03 and table["lm_dev_perplexity"] == 2.5
    assert table["word_lm_dev_perplexity"] == 30.0
    # Without the word LM's run (three arguments, as before) the table has three columns.
    (exp / "eval_beam_ctc_wordlm" / "results.json").unlink()
    assert compare_decodings.main([str(corpus), str(exp), str(lm_exp)]) == 0
    assert header + "\n" in capsys.readouterr().out


FAKE_ASR = r'''#!/usr/bin/env python3
"""Stands in for `asr`: records its arguments; writes what the recipes read next."""
import json, os, sys
from pathlib import Path
with open(os.environ["ASR_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\n")
args = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
decoding = {k[len("decoding."):]: v for k, v in args.items() if k.startswith("decoding.")}
splits = args.get("splits", "[test]").strip("[]").split(",")
rows = [{"split": s, "wer": 0.1, "cer": 0.05, "real_time_factor": 0.01, "decoding": decoding}
        for s in splits]
if sys.argv[1] in ("train", "train-lm"):
    run = Path(args["hydra.run.dir"]); run.mkdir(parents=True, exist_ok=True)
    (run / "summary.json").write_text(json.dumps({"train_minutes": 1.0, "epochs": [{}]}))
elif "-m" in sys.argv:
    out = Path(args["hydra.sweep.dir"]) / "0"; out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows))
else:
    out = Path(args["out_dir"]); out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows))
'''


def run_with_fake_asr(tmp_path, script, args=(), env=()):
    """Run a copy of recipes/synth/``script`` in a folder of its own (the script runs from its
    repository root) with a stand-in `asr` and corpus preparation; returns its calls."""
    repo = tmp_path / "repo"
    if not repo.exists():
        (repo / "recipes").mkdir(parents=True)
        subprocess.run(["cp", "-r", str(SYNTH), str(repo / "recipes" / "synth")], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "asr").write_text(FAKE_ASR)
    # `python recipes/synth/prepare.py` makes an empty corpus; any other python is the real one.
    (bin_dir / "python").write_text(
        f'#!/usr/bin/env bash\nif [ "$1" = recipes/synth/prepare.py ]; then mkdir -p "$3"; '
        f'echo "$@" > "$3/prepare_args"; '
        f'echo \'{{"text": "a training sentence"}}\' > "$3/train.jsonl"; '
        f'if [ -n "$FAKE_UNSEEN" ]; then touch "$3/test_unseen_engine.jsonl"; fi; '
        f'exit 0; fi\nexec {shlex.quote(sys.executable)} "$@"\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ASR_CALLS": str(calls)}
    environment.update(env)
    done = subprocess.run(
        ["bash", str(repo / "recipes" / "synth" / script), *args],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
    )
    recorded = (
        [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    )
    return done, recorded


def overrides(call):
    return [a for a in call[1:] if "=" in a]


def compose_call(call):
    """Compose a recorded call's overrides as Hydra would (sweep lists: their first value)."""
    config = {"train": "train", "evaluate": "evaluate", "train-lm": "train_lm"}[call[0]]
    kept = []
    for item in overrides(call):
        key, value = item.split("=", 1)
        if key.startswith("hydra.") or (key in JOINT_KEYS and key.split(".")[1] not in _FIELDS):
            continue
        if "-m" in call and not value.startswith("["):
            value = value.split(",")[0]
        kept.append(f"{key}={value}")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config, overrides=kept)


def test_run_sh_trains_both_lms_on_train_text_and_decodes_four_ways(tmp_path):
    done, calls = run_with_fake_asr(tmp_path, "run.sh", env={"SIZE": "tiny"})
    assert done.returncode == 0, done.stderr
    assert [c[0] for c in calls] == ["train", "train-lm", "train-lm", *["evaluate"] * 4]
    for call, name in ((calls[1], "char_lstm_small"), (calls[2], "word_lstm_small_joined")):
        assert dict(a.split("=", 1) for a in overrides(call))["hydra.run.dir"] == (
            f"exp/lm_synth_tiny_{name}"
        )
    # The character LM reads the training transcripts, the word LM lm_text.py's text made of
    # them (some joined); never dev or test text.
    assert list(compose_call(calls[1]).text.train) == ["data/synth_tiny_seed0/train.jsonl"]
    assert list(compose_call(calls[2]).text.train) == ["data/synth_tiny_seed0/lm_train.txt"]
    lm_text = (tmp_path / "repo/data/synth_tiny_seed0/lm_train.txt").read_text().splitlines()
    assert set(lm_text) <= {
        "a training sentence",
        "a training sentence a training sentence",
        "a training sentence a training sentence a training sentence",
    }
    assert compose_call(calls[1]).text.unit == "char" and compose_call(calls[2]).text.unit == "word"
    evaluations = [dict(a.split("=", 1) for a in overrides(c)) for c in calls[3:]]
    assert {e["checkpoint"] for e in evaluations} == {"exp/synth_tiny_las_small_location/best.pt"}
    assert all(e["splits"] == "[dev,test]" and e["decoding"] == "beam" for e in evaluations)
    outs = [Path(e["out_dir"]).name for e in evaluations]
    assert outs == ["eval_beam", "eval_beam_ctc", "eval_beam_ctc_lm", "eval_beam_ctc_wordlm"]
    weights = [
        (e["decoding.ctc_weight"], e["decoding.lm_weight"], e.get("lm")) for e in evaluations
    ]
    lm, word_lm = (
        f"exp/lm_synth_tiny_{n}/best.pt" for n in ("char_lstm_small", "word_lstm_small_joined")
    )
    assert weights[:3] == [("0.0", "0.0", None), ("0.3", "0.0", None), ("0.3", "0.4", lm)]
    assert weights[3][0] == "0.3" and weights[3][2] == word_lm
    assert float(evaluations[3]["decoding.oov_penalty"]) < 0
    for call in calls:
        compose_call(call)  # every key the recipe passes exists
    header = "| split | attention WER / CER | +CTC WER / CER | +CTC+LM WER / CER | +CTC+word LM"
    assert header in done.stdout


def test_run_sh_with_other_engines_trains_apart_and_scores_the_unseen_split(tmp_path):
    env = {"SIZE": "tiny", "ENGINES": "espeak,piper", "AUGMENT": "acoustic", "FAKE_UNSEEN": "1"}
    done, calls = run_with_fake_asr(tmp_path, "run.sh", env=env)
    assert done.returncode == 0, done.stderr
    corpus = "data/synth_tiny_seed0_espeak_piper"
    prepare = (tmp_path / "repo" / corpus / "prepare_args").read_text().split()
    assert prepare[prepare.index("--engines") + 1] == "espeak,piper"
    assert prepare[prepare.index("--unseen-engine") + 1] == "auto"
    train = dict(a.split("=", 1) for a in overrides(calls[0]))
    assert train["augment"] == "acoustic" and train["data.corpus_dir"] == corpus
    assert train["hydra.run.dir"] == "exp/synth_tiny_las_small_location_espeak_piper_acoustic"
    evaluations = [dict(a.split("=", 1) for a in overrides(c)) for c in calls if c[0] == "evaluate"]
    assert len(evaluations) == 4
    assert all(e["splits"] == "[dev,test,test_unseen_engine]" for e in evaluations)
    compose_call(calls[0])


def test_the_sweep_scores_dev_only_over_the_grid(tmp_path):
    done, calls = run_with_fake_asr(
        tmp_path, "sweep_decoding.sh", ["exp/run/best.pt", "exp/lm/best.pt", "batch_size=8"]
    )
    assert done.returncode == 0, done.stderr
    (call,) = calls
    given = dict(a.split("=", 1) for a in overrides(call))
    assert call[:2] == ["evaluate", "-m"] and given["splits"] == "[dev]"
    assert given["decoding.ctc_weight"] == "0.3,0.5" and given["decoding.lm_weight"] == "0.2,0.4"
    assert given["lm"] == "exp/lm/best.pt" and given["hydra.sweep.dir"] == "exp/run/sweep_decoding"
    compose_call(call)
    assert (tmp_path / "repo/exp/run/sweep_decoding/sweep.md").is_file()
    assert "Best on dev" in done.stdout


def test_the_wide_sweep_and_a_test_split_refused(tmp_path):
    done, calls = run_with_fake_asr(
        tmp_path, "sweep_decoding.sh", ["r/best.pt", "none"], env={"GRID": "wide"}
    )
    given = dict(a.split("=", 1) for a in overrides(calls[0]))
    assert given["decoding.length_bonus"] == "0.0,0.5,1.0" and given["decoding.lm_weight"] == "0.0"
    assert "lm" not in given
    (tmp_path / "calls.jsonl").unlink()
    refused = subprocess.run(
        ["bash", str(tmp_path / "repo/recipes/synth/sweep_decoding.sh"), "r/best.pt", "none"]
        + ["splits=[test]"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "dev only" in refused.stderr
