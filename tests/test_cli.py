"""`asr score` and `asr info`, and one-line errors for a user's mistakes."""

import json
import logging

import pytest

from asr.cli import main


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_score_counts_substitutions_deletions_insertions(tmp_path, capsys):
    ref = write(tmp_path / "ref.txt", ["u1 the cat sat", "u2 good morning"])
    hyp = write(tmp_path / "hyp.txt", ["u1 the bat sat down", "u2 morning"])
    assert main(["score", str(ref), str(hyp), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    words = scores["words"]
    # u1: cat->bat (S), +down (I); u2: -good (D). 3 errors over 5 reference words.
    assert (words["substitutions"], words["deletions"], words["insertions"]) == (1, 1, 1)
    assert scores["wer"] == pytest.approx(3 / 5)


def test_score_normalises_both_sides_and_prints_a_summary(tmp_path, capsys):
    ref = write(tmp_path / "ref.txt", ["a Hello, World!"])
    hyp = write(tmp_path / "hyp.txt", ["a hello world"])
    assert main(["score", str(ref), str(hyp)]) == 0
    out = capsys.readouterr().out
    assert "WER 0.00%" in out and "CER 0.00%" in out


def test_score_missing_hypotheses_count_as_deletions(tmp_path, capsys):
    ref = write(tmp_path / "ref.txt", ["u1 one two", "u2 three"])
    hyp = write(tmp_path / "hyp.txt", ["u1 one two"])
    assert main(["score", str(ref), str(hyp), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["words"]["deletions"] == 1
    assert "no hypothesis" in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "{tmp}/nope.txt", "{tmp}/hyp.txt"], "nope.txt"),
        (["info", "{tmp}/nope.pt"], "checkpoint not found"),
        (["info", "{tmp}/hyp.txt"], "cannot read checkpoint"),
    ],
)
def test_user_mistakes_are_one_line_with_exit_status_2(tmp_path, capsys, args, message):
    write(tmp_path / "hyp.txt", ["u1 x"])
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(tmp=tmp_path) for a in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_compute_commands_choose_the_thread_wait_policy_first(tmp_path, monkeypatch, caplog):
    """asr train/evaluate/transcribe choose the OpenMP policy (asr/cpu.py) and say so at debug
    level only (the console stays quiet); score does not measure the CPU at all."""
    calls = []

    def choose():
        calls.append(True)
        return "other processes keep 1.5 CPU cores busy: ..."

    monkeypatch.setattr("asr.cli.choose_omp_wait_policy", choose)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SystemExit):
        main(["transcribe", "--model", str(tmp_path / "nope.pt"), str(tmp_path / "a.wav")])
    assert calls == [True]
    said = [r for r in caplog.records if "1.5 CPU cores busy" in r.getMessage()]
    assert said and all(r.levelno == logging.DEBUG for r in said)

    ref = write(tmp_path / "ref.txt", ["u1 x"])
    assert main(["score", str(ref), str(ref)]) == 0
    assert calls == [True]
