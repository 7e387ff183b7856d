"""Self-describing checkpoints: one file is enough to transcribe.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dicts, written with
``torch.save`` and read with ``torch.load(weights_only=True)``, which refuses anything else: a
crafted pickle that would run code on load is rejected, never executed.

Keys: ``format`` (this module's format number), ``las_asr_version``, ``config`` (the resolved
training config), ``vocabulary``, ``recognizer`` (state_dict: model weights and normalisation
statistics), ``metrics`` (dev scores at save time), and, for resuming, ``training`` (optimizer,
scheduler, epoch, step, random states).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from asr import __version__
from asr.errors import UserError
from asr.recognizer import Recognizer
from asr.text import Vocabulary

FORMAT = 1


def save_checkpoint(
    path: str | Path,
    recognizer: Recognizer,
    config: Mapping,
    metrics: Mapping | None = None,
    training: Mapping | None = None,
) -> None:
    """Write atomically: a run killed mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "las_asr_version": __version__,
        "config": dict(config),
        "vocabulary": recognizer.vocabulary.to_dict(),
        "recognizer": {k: v.detach().cpu() for k, v in recognizer.state_dict().items()},
        "metrics": dict(metrics or {}),
    }
    if training is not None:
        payload["training"] = dict(training)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dictionary; UserError for a missing, corrupt, unsafe or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is long; the line naming the offending global is the useful part.
        reason = next(
            (line.strip() for line in str(error).splitlines() if "Unsupported global" in line),
            "unsupported content",
        )
        raise UserError(
            f"refusing to load {path}: it holds objects other than tensors and plain data, "
            f"and loading them could run code ({reason})"
        ) from None
    except Exception as error:  # a truncated or foreign file fails in many different ways
        raise UserError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(payload, dict) or "format" not in payload or "recognizer" not in payload:
        raise UserError(f"{path} is not a las-asr checkpoint")
    if payload["format"] != FORMAT:
        raise UserError(
            f"{path} uses checkpoint format {payload['format']} "
            f"(las-asr {payload.get('las_asr_version', '?')}); this las-asr {__version__} "
            f"reads format {FORMAT}"
        )
    return payload


def load_recognizer(path: str | Path, device: str | torch.device = "cpu") -> Recognizer:
    """Rebuild the recognizer (features, normaliser, vocabulary, model) from one file."""
    payload = read_checkpoint(path)
    recognizer = recognizer_from_payload(payload)
    return recognizer.to(device).eval()


def recognizer_from_payload(payload: Mapping) -> Recognizer:
    vocabulary = Vocabulary.from_dict(payload["vocabulary"])
    recognizer = Recognizer.from_config(payload["config"], vocabulary)
    recognizer.load_state_dict(payload["recognizer"])
    return recognizer
