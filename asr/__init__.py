"""las-asr: Listen, Attend and Spell speech recognition built around attention.

``from asr import Transcriber`` is the Python API (:mod:`asr.transcriber`); it is imported on
first use, so ``import asr`` stays light (no torch).
"""

from pathlib import Path

__version__ = "0.1.0"

# The Hydra config tree (conf/ at the repository root; las-asr is installed editable from a
# checkout, as `make setup` does).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

_LAZY = {"Transcriber": "asr.transcriber", "Transcription": "asr.transcription"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
