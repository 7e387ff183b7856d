"""The ``asr`` command.

    asr train [key=value ...]            train (Hydra overrides; -m for sweeps)
    asr evaluate checkpoint=CKPT [...]   decode and score splits (Hydra overrides)
    asr train-lm [key=value ...]         train a character language model (Hydra overrides)
    asr transcribe --model CKPT IN...    transcribe files, folders, globs (docs/transcribe.md)
    asr score REF HYP                    WER/CER of Kaldi-style transcript files
    asr average RUN --last N|--best N    average the weights of a run's epoch checkpoints
    asr info CKPT                        what a checkpoint holds

A user's mistake (a missing file, an unknown config key, an unreadable checkpoint) is reported
as one line on stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from asr import CONF_DIR
from asr.cli import tools, transcribe
from asr.cpu import choose_omp_wait_policy
from asr.errors import exit_with_message, reports_user_errors

# The commands that are Hydra applications, and the config (conf/*.yaml) each composes.
_HYDRA_CONFIGS = {"train": "train", "evaluate": "evaluate", "train-lm": "train_lm"}


def _check_overrides(config_name: str, overrides: list[str]) -> None:
    """Compose the config once so an unknown or malformed key fails in one line, before Hydra."""
    if any(arg in ("-m", "--multirun") or arg.startswith("-") for arg in overrides):
        return  # sweeps and Hydra flags: Hydra reports its own errors
    from hydra import compose, initialize_config_dir

    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            compose(config_name, overrides=plain)
    except Exception as error:  # Hydra and OmegaConf raise many types; all mean a bad override
        parts = [str(error)]
        if error.__cause__ is not None:
            parts.append(str(error.__cause__))
        text = " ".join(" ".join(parts).split())
        text = text.split(" full_key:")[0]
        exit_with_message(f"bad configuration: {text}")


def _run_hydra(entry, config_name: str, argv: list[str]) -> None:
    _check_overrides(config_name, argv)
    sys.argv = [f"asr {config_name}", *argv]
    entry()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model (Hydra overrides follow)", add_help=False)
    sub.add_parser("evaluate", help="decode and score splits (Hydra overrides)", add_help=False)
    sub.add_parser("train-lm", help="train a language model (Hydra overrides)", add_help=False)
    transcribe.add_parser(sub)
    tools.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if argv and argv[0] in ("train", "evaluate", "train-lm", "transcribe"):
        # Before torch loads: it reads the policy once, when it starts its threads (asr/cpu.py).
        # Debug level: a diagnostic of the machine's load must not add a line to every command's
        # output (a user's mistake stays one line); training writes the policy into its log.
        choice = choose_omp_wait_policy()
        if choice is not None:
            logging.getLogger("asr").debug(choice)
    if argv and argv[0] in _HYDRA_CONFIGS:
        if argv[0] == "train":
            from asr.train import main as entry
        elif argv[0] == "evaluate":
            from asr.evaluate import main as entry
        else:
            from asr.lm_training import main as entry
        _run_hydra(entry, _HYDRA_CONFIGS[argv[0]], argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    return reports_user_errors(args.func)(args)
