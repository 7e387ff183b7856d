"""Self-describing checkpoints: one file is enough to transcribe.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dicts, written with
``torch.save`` and read with ``torch.load(weights_only=True)``, which refuses anything else: a
crafted pickle that would run code on load is rejected, never executed.

Keys: ``format`` (this module's format number), ``las_asr_version``, ``config`` (the resolved
training config), ``vocabulary``, ``recognizer`` (state_dict: model weights and normalisation
statistics), ``metrics`` (dev scores at save time), and, for resuming, ``training`` (optimizer,
scheduler, epoch, step, random states).

A language model checkpoint (:func:`save_language_model`) is laid out the same way, with
``kind: language_model``, the model's constructor arguments under ``model`` and its weights
under ``language_model`` instead of ``recognizer``: one file is enough to fuse it in a search.

Averaging (``asr average``): :func:`average_checkpoints` averages the weights of several
checkpoints of one run (the last or the best N epochs that ``trainer.keep_checkpoints`` kept,
:func:`select_checkpoints`), which usually scores better than any one of them.

Compatibility: ``format`` says how the file is laid out, ``las_asr_version`` which model code
wrote it. A file of another format is refused, and so is one from a newer release line than
this one (a newer major version, or a newer minor version while the major is 0): it may build
modules this las-asr does not have. Either way the message names both versions.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from asr import __version__
from asr.errors import UserError
from asr.models.language_model import CharLSTMLM
from asr.recognizer import Recognizer
from asr.text import Vocabulary, WordVocabulary, vocabulary_from_dict

FORMAT = 1
RECOGNIZER, LANGUAGE_MODEL = "recognizer", "language_model"  # the two kinds of checkpoint
_WEIGHTS_KEY = {RECOGNIZER: "recognizer", LANGUAGE_MODEL: "language_model"}


def save_checkpoint(
    path: str | Path,
    recognizer: Recognizer,
    config: Mapping,
    metrics: Mapping | None = None,
    training: Mapping | None = None,
) -> None:
    """Write atomically: a run killed mid-write leaves the previous file intact."""
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
    save_payload(path, payload)


def read_checkpoint(path: str | Path, kind: str = RECOGNIZER) -> dict:
    """The checkpoint's dictionary; UserError for a missing, corrupt, unsafe or foreign file,
    or for one of another ``kind`` (an acoustic model where a language model is wanted, or the
    reverse)."""
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
    if not isinstance(payload, dict) or "format" not in payload:
        raise UserError(f"{path} is not a las-asr checkpoint")
    found = payload.get("kind", RECOGNIZER)  # acoustic model files predate the key
    if found != kind or _WEIGHTS_KEY[kind] not in payload:
        what = {RECOGNIZER: "an acoustic model", LANGUAGE_MODEL: "a language model"}
        raise UserError(
            f"{path} is {what.get(found, 'not a las-asr')} checkpoint, not {what[kind]} one"
        )
    if payload["format"] != FORMAT:
        raise UserError(
            f"{path} uses checkpoint format {payload['format']} "
            f"(las-asr {payload.get('las_asr_version', '?')}); this las-asr {__version__} "
            f"reads format {FORMAT}"
        )
    version = payload.get("las_asr_version")
    if not isinstance(version, str) or _release_line(version) is None:
        raise UserError(f"{path} does not record which las-asr version wrote it")
    if not is_compatible_version(version):
        raise UserError(
            f"{path} was written by las-asr {version}, newer than this las-asr {__version__}; "
            f"upgrade las-asr to {'.'.join(map(str, _release_line(version)))} or later to load it"
        )
    return payload


def _release_line(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version such as ``0.1.0`` or ``1.2.0.dev3``; None if unparsable."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def is_compatible_version(version: str, current: str = __version__) -> bool:
    """Whether this las-asr (``current``) can build a model written by las-asr ``version``.

    Older releases are read; a newer major version is not, nor (semantic versioning's rule for
    0.x) a newer minor version while the major is 0.

    >>> is_compatible_version("0.1.0", "0.1.5"), is_compatible_version("0.2.0", "0.1.5")
    (True, False)
    >>> is_compatible_version("1.4.0", "1.2.0"), is_compatible_version("2.0.0", "1.9.0")
    (True, False)
    """
    saved, ours = _release_line(version), _release_line(current)
    if saved is None or ours is None:
        return False
    if saved[0] != ours[0]:
        return saved[0] < ours[0]
    return saved[0] > 0 or saved[1] <= ours[1]


def load_recognizer(path: str | Path, device: str | torch.device = "cpu") -> Recognizer:
    """Rebuild the recognizer (features, normaliser, vocabulary, model) from one file."""
    payload = read_checkpoint(path)
    recognizer = recognizer_from_payload(payload, path)
    return recognizer.to(device).eval()


def recognizer_from_payload(payload: Mapping, path: str | Path = "checkpoint") -> Recognizer:
    """The recognizer a checkpoint's dictionary describes; UserError when it cannot be built."""
    try:
        vocabulary = Vocabulary.from_dict(payload["vocabulary"])
        recognizer = Recognizer.from_config(payload["config"], vocabulary)
        recognizer.load_state_dict(payload["recognizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise UserError(
            f"cannot rebuild the model in {path} (written by las-asr "
            f"{payload.get('las_asr_version', '?')}, this is {__version__}): {first_line}"
        ) from None
    return recognizer


def checkpoint_summary(payload: Mapping) -> dict:
    """What a checkpoint holds, as plain data: versions, architecture and sizes, vocabulary,
    training data, metrics at save time. Used by ``asr info``."""
    config = payload.get("config") or {}
    state = payload["recognizer"]
    parameters: dict[str, int] = {}
    for name, tensor in state.items():
        if name.startswith("model."):
            part = name.split(".")[1]  # listener, speller, ctc_head
            parameters[part] = parameters.get(part, 0) + tensor.numel()
    features = config.get("features") or {}
    frames = float(state["normalizer.count"]) if "normalizer.count" in state else 0.0
    hop_seconds = float(features.get("hop_ms", 10.0)) / 1000
    data = config.get("data") or {}
    training = payload.get("training")
    return {
        "las_asr_version": payload.get("las_asr_version"),
        "format": payload.get("format"),
        "parameters": {"total": sum(parameters.values()), **parameters},
        "model": config.get("model"),
        "attention": config.get("attention"),
        "features": features,
        "normalizer": config.get("normalizer")
        or {"subtract_utterance_mean": False, "mean_window_frames": 0},
        "vocabulary": list(Vocabulary.from_dict(payload["vocabulary"]).tokens),
        "unit": payload["vocabulary"].get("unit", "char"),
        "training_data": {
            "train_manifest": data.get("train_manifest"),
            "dev_manifest": data.get("dev_manifest"),
            "utterance_seconds": [data.get("min_duration"), data.get("max_duration")],
            # The normaliser's statistics count every training frame once.
            "hours": round(frames * hop_seconds / 3600, 3),
        },
        "decoding": config.get("decoding"),
        "metrics": dict(payload.get("metrics") or {}),
        "resumable": None
        if training is None
        else {
            "epoch": training.get("epoch"),
            "step": training.get("step"),
        },
    }


def select_checkpoints(folder: str | Path, count: int, by: str = "last") -> list[Path]:
    """The ``count`` epoch checkpoints (``epochNNN.pt``) of ``folder`` to average.

    ``by="last"``: the latest epochs; ``by="best"``: the lowest dev error, by the metric each
    checkpoint names in ``metrics["selected_by"]`` (dev CER, or dev PER for phones). ``folder``
    is a run's folder or its ``checkpoints/`` folder.
    """
    folder = Path(folder)
    if (folder / "checkpoints").is_dir():
        folder = folder / "checkpoints"
    paths = sorted(folder.glob("epoch*.pt"))
    if count < 1:
        raise UserError(f"the number of checkpoints to average must be at least 1, got {count}")
    if len(paths) < count:
        raise UserError(
            f"{folder} holds {len(paths)} epoch checkpoint(s), fewer than {count}: train with "
            f"trainer.keep_checkpoints={count} or more"
        )
    if by == "last":
        return paths[-count:]
    if by != "best":
        raise ValueError(f"by must be 'last' or 'best', not {by!r}")

    def dev_error(path: Path) -> float:
        metrics = read_checkpoint(path).get("metrics") or {}
        return float(metrics.get(metrics.get("selected_by", "dev_cer"), math.inf))

    return sorted(sorted(paths, key=dev_error)[:count])


def average_checkpoints(paths: Sequence[str | Path]) -> dict:
    """A checkpoint whose weights are the mean of ``paths``' weights (same run, same model).

    Floating-point tensors are averaged in float64; other tensors (counters) come from the last
    file. The result has the last file's config and vocabulary and no training state.
    """
    if not paths:
        raise UserError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    first = None
    payload: dict = {}
    for path in paths:
        payload = read_checkpoint(path)
        state = payload["recognizer"]
        if first is None:
            first = payload
        elif set(state) != set(first["recognizer"]) or payload["vocabulary"] != first["vocabulary"]:
            raise UserError(f"{path} is not a checkpoint of the same model as {paths[0]}")
        for name, tensor in state.items():
            if tensor.is_floating_point():
                if tensor.shape != first["recognizer"][name].shape:
                    raise UserError(f"{path}: {name} has another shape than in {paths[0]}")
                total[name] = total.get(name, 0) + tensor.double()
            else:
                total[name] = tensor
    averaged = {
        name: (value / len(paths)).to(payload["recognizer"][name].dtype)
        if payload["recognizer"][name].is_floating_point()
        else value
        for name, value in total.items()
    }
    return {
        **{k: v for k, v in payload.items() if k != "training"},
        "recognizer": averaged,
        "metrics": {"averaged_from": [str(Path(p).name) for p in paths]},
    }


def save_language_model(
    path: str | Path,
    model: CharLSTMLM,
    vocabulary: Vocabulary | WordVocabulary,
    config: Mapping | None = None,
    metrics: Mapping | None = None,
) -> None:
    """Write a character or word LM: weights, constructor arguments, vocabulary, config and
    metrics."""
    save_payload(
        path,
        {
            "format": FORMAT,
            "kind": LANGUAGE_MODEL,
            "las_asr_version": __version__,
            "model": model.hyperparameters(),
            "vocabulary": vocabulary.to_dict(),
            "language_model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": dict(config or {}),
            "metrics": dict(metrics or {}),
        },
    )


def load_language_model(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[CharLSTMLM, Vocabulary | WordVocabulary]:
    """The LM of a :func:`save_language_model` file, in eval mode on ``device``, and its
    vocabulary: characters (a search must check they are the acoustic model's) or words
    (``Recognizer.check_language_model`` fuses those through a prefix tree). UserError for a
    file that is missing, unsafe, foreign, or an acoustic model checkpoint."""
    payload = read_checkpoint(path, kind=LANGUAGE_MODEL)
    try:
        model = CharLSTMLM(**payload["model"])
        model.load_state_dict(payload["language_model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        raise UserError(f"{path}: not a usable language model checkpoint ({error})") from None
    return model.to(device).eval(), vocabulary_from_dict(payload["vocabulary"])


def save_payload(path: str | Path, payload: Mapping) -> None:
    """Write a checkpoint dictionary atomically (as :func:`save_checkpoint` does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file in the same folder (os.replace is atomic only within one file system),
    # flushed to disk before the rename and the rename itself flushed with the folder: after a
    # kill or a power cut the path holds either the old file or the whole new one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            torch.save(dict(payload), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new link) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
