"""``python -m asr.cli``: the ``asr`` command."""

import sys

from asr.cli import main

if __name__ == "__main__":  # importing the module (as the doctest runner does) runs nothing
    sys.exit(main())
