"""las-asr: Listen, Attend and Spell speech recognition built around attention."""

from pathlib import Path

__version__ = "0.1.0"

# The Hydra config tree (conf/ at the repository root; las-asr is installed editable from a
# checkout, as `make setup` does).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
