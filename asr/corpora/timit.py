"""TIMIT phone recognition (the benchmark of Chorowski et al. 2015), into JSONL manifests.

The LDC layout (upper or lower case; NIST SPHERE audio named ``.WAV``)::

    TIMIT/TRAIN/DR1/FCJF0/SA1.WAV   SA1.PHN   SA1.WRD   SA1.TXT
    TIMIT/TEST/DR1/FAKS0/SI943.WAV  ...

``prepare`` writes the standard splits, without the two dialect sentences (SA) every speaker
reads:

- ``train``: every TRAIN speaker (462), 3,696 utterances;
- ``dev``: the 50-speaker development set of Halberstadt (1998) from TEST, 400 utterances
  (the list Kaldi's and ESPnet's TIMIT recipes use, ``DEV_SPEAKERS``);
- ``test``: the core test set, 24 speakers from TEST (``CORE_TEST_SPEAKERS``), 192 utterances.

A manifest line's ``text`` is the utterance's 61 TIMIT phones from the ``.PHN`` file, separated
by spaces (the training targets; ``h#`` marks the silence at both ends). ``words`` (from ``.WRD``
or ``.TXT``), ``dialect_region``, ``gender`` and ``sentence`` are kept too.

Scoring folds both sides to the 39 phones of Lee & Hon (1989) with :func:`fold_phones`
(``asr evaluate normalization=timit39``): the closures, ``pau``, ``epi`` and ``h#`` become
``sil``, ``q`` is removed, and 13 other phones fold into another (``FOLD_61_TO_39``). The
phone error rate is the word error rate over those phones.

    python recipes/timit/prepare.py --root /data/TIMIT --out data/timit
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from asr.corpora.preparation import (
    AUDIO_WITHOUT_TRANSCRIPT,
    MALFORMED_LINE,
    MISSING_SPLIT,
    TRANSCRIPT_WITHOUT_AUDIO,
    Problems,
    add_common_arguments,
    check_audio,
    format_summary,
    write_corpus,
)
from asr.data import Utterance
from asr.errors import UserError, reports_user_errors

log = logging.getLogger(__name__)

# The 61 phone labels of the TIMIT transcriptions (timitdic.doc / phoncode.doc).
PHONES_61 = (
    *("b", "d", "g", "p", "t", "k", "dx", "q"),  # stops
    *("bcl", "dcl", "gcl", "pcl", "tcl", "kcl"),  # closures
    *("jh", "ch"),  # affricates
    *("s", "sh", "z", "zh", "f", "th", "v", "dh"),  # fricatives
    *("m", "n", "ng", "em", "en", "eng", "nx"),  # nasals
    *("l", "r", "w", "y", "hh", "hv", "el"),  # semivowels and glides
    *("iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao"),  # vowels
    *("oy", "ow", "uh", "uw", "ux", "er", "ax", "ix", "axr", "ax-h"),
    *("pau", "epi", "h#"),  # others
)

# Lee & Hon (1989), "Speaker-independent phone recognition using hidden Markov models", table:
# 61 -> 39 phones for scoring. Phones not listed fold to themselves; None removes the phone.
FOLD_61_TO_39: dict[str, str | None] = {
    "ao": "aa",
    "ax": "ah",
    "ax-h": "ah",
    "axr": "er",
    "hv": "hh",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n",
    "nx": "n",
    "eng": "ng",
    "zh": "sh",
    "ux": "uw",
    **dict.fromkeys(("pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi"), "sil"),
    "q": None,
}
PHONES_39 = tuple(
    dict.fromkeys(FOLD_61_TO_39.get(p, p) for p in PHONES_61 if FOLD_61_TO_39.get(p, p))
)

# The core test set (TIMIT documentation, testset.doc): 2 men and 1 woman of each dialect region.
CORE_TEST_SPEAKERS = (
    *("mdab0", "mwbt0", "felc0"),  # DR1
    *("mtas1", "mwew0", "fpas0"),  # DR2
    *("mjmp0", "mlnt0", "fpkt0"),  # DR3
    *("mlll0", "mtls0", "fjlm0"),  # DR4
    *("mbpm0", "mklt0", "fnlp0"),  # DR5
    *("mcmj0", "mjdh0", "fmgd0"),  # DR6
    *("mgrt0", "mnjm0", "fdhc0"),  # DR7
    *("mjln0", "mpam0", "fmld0"),  # DR8
)

# The 50-speaker development set (Halberstadt 1998), disjoint from the core test set.
DEV_SPEAKERS = (
    *("faks0", "fdac1", "fjem0", "mgwt0", "mjar0", "mmdb1", "mmdm2", "mpdf0", "fcmh0", "fkms0"),
    *("mbdg0", "mbwm0", "mcsh0", "fadg0", "fdms0", "fedw0", "mgjf0", "mglb0", "mrtk0", "mtaa0"),
    *("mtdt0", "mthc0", "mwjg0", "fnmr0", "frew0", "fsem0", "mbns0", "mmjr0", "mdls0", "mdlf0"),
    *("mdvc0", "mers0", "fmah0", "fdrw0", "mrcs0", "mrjm4", "fcal1", "mmwh0", "fjsj0", "majc0"),
    *("mjsw0", "mreb0", "fgjd0", "fjmg0", "mroa0", "mteb0", "mjfc0", "mrjr0", "fmml0", "mrws1"),
)
SPLITS = ("train", "dev", "test")


def fold_phones(text: str) -> str:
    """61-phone transcript -> 39-phone transcript (Lee & Hon 1989), for scoring.

    Unknown tokens are kept as they are, so a hypothesis is never silently emptied.

    >>> fold_phones("h# sh ix hv eh dcl jh ih q pau h#")
    'sil sh ih hh eh sil jh ih sil sil'
    """
    folded = (FOLD_61_TO_39.get(phone, phone) for phone in text.split())
    return " ".join(phone for phone in folded if phone)


def _child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` called ``name`` in any letter case, or None."""
    exact = folder / name
    if exact.exists():
        return exact
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.lower() == name.lower():
            return entry
    return None


def find_root(path: str | Path) -> Path:
    """The folder holding TRAIN and TEST: ``path`` itself or its ``TIMIT`` child (any case)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"TIMIT folder not found: {path}")
    for candidate in (path, _child(path, "timit")):
        if candidate is not None and (_child(candidate, "train") or _child(candidate, "test")):
            return candidate
    raise UserError(f"no TRAIN or TEST folder in {path}: is it a TIMIT copy?")


def read_phones(path: Path, problems: Problems) -> list[str] | None:
    """The phones of a ``.PHN`` file (``start end phone`` lines), or None after a problem."""
    phones = []
    for number, line in enumerate(path.read_text(encoding="ascii", errors="replace").split("\n")):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            problems.add(MALFORMED_LINE, f"{path}:{number + 1}: expected 'start end phone'")
            return None
        if parts[2] not in PHONES_61:
            problems.add(MALFORMED_LINE, f"{path}:{number + 1}: unknown phone {parts[2]!r}")
            return None
        phones.append(parts[2])
    if not phones:
        problems.add(MALFORMED_LINE, f"{path}: no phones")
        return None
    return phones


def read_words(stem: Path) -> str:
    """The sentence from ``.WRD`` (one word a line) or ``.TXT`` (``start end text``), or ""."""
    wrd = _child(stem.parent, stem.name + ".wrd")
    if wrd is not None:
        return " ".join(line.split()[2] for line in wrd.read_text().splitlines() if line.split())
    txt = _child(stem.parent, stem.name + ".txt")
    if txt is not None:
        parts = txt.read_text().split(maxsplit=2)
        return parts[2].strip() if len(parts) == 3 else ""
    return ""


def read_part(part_dir: Path, problems: Problems) -> list[Utterance]:
    """Every SI and SX utterance of TRAIN or TEST (durations still unknown)."""
    utterances = []
    for speaker_dir in sorted(p for p in part_dir.glob("*/*") if p.is_dir()):
        dialect, speaker = speaker_dir.parent.name.lower(), speaker_dir.name.lower()
        files: dict[str, dict[str, Path]] = {}
        for path in speaker_dir.iterdir():
            stem, _, suffix = path.name.lower().partition(".")
            if suffix in ("wav", "phn"):
                files.setdefault(stem, {})[suffix] = path
        for sentence, found in sorted(files.items()):
            if sentence.startswith("sa"):
                continue  # the dialect sentences: excluded from the standard training and tests
            if "phn" not in found:
                problems.add(AUDIO_WITHOUT_TRANSCRIPT, f"{found['wav']} has no .PHN file")
                continue
            if "wav" not in found:
                problems.add(TRANSCRIPT_WITHOUT_AUDIO, f"{found['phn']} has no .WAV file")
                continue
            phones = read_phones(found["phn"], problems)
            if phones is None:
                continue
            utterances.append(
                Utterance(
                    id=f"{speaker}_{sentence}",
                    audio=found["wav"].resolve(),
                    duration=float("nan"),
                    text=" ".join(phones),
                    speaker=speaker,
                    extra={
                        "words": read_words(found["phn"].with_suffix("")),
                        "dialect_region": dialect,
                        "gender": speaker[0],
                        "sentence": sentence,
                    },
                )
            )
    return utterances


def prepare(root: str | Path, out_dir: str | Path, verify: bool = True, workers: int = 1) -> dict:
    """Write ``train``, ``dev`` and ``test`` (core) manifests; returns the ``prepare.json``."""
    root = find_root(root)
    problems = Problems()
    parts: dict[str, list[Utterance]] = {}
    for part in ("train", "test"):
        folder = _child(root, part)
        if folder is None or not folder.is_dir():
            needed = "train" if part == "train" else "dev and test"
            problems.add(MISSING_SPLIT, f"no {part.upper()} folder in {root}: no {needed} split")
            continue
        log.info("reading %s", folder)
        utterances = read_part(folder, problems)
        parts[part] = check_audio(utterances, problems, verify=verify, workers=workers)
    splits: dict[str, list[Utterance]] = {}
    if "train" in parts:
        splits["train"] = parts["train"]
    if "test" in parts:
        splits["dev"] = [u for u in parts["test"] if u.speaker in DEV_SPEAKERS]
        splits["test"] = [u for u in parts["test"] if u.speaker in CORE_TEST_SPEAKERS]
    settings = {"verified_audio": verify, "phones": "61 (scored as 39 with timit39)"}
    return write_corpus(out_dir, "timit", root, splits, problems, settings)


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recipes/timit/prepare.py",
        description="Write train/dev/core-test JSONL manifests (61 phones) for a TIMIT copy.",
    )
    parser.add_argument("--root", required=True, help="TIMIT folder (holding TRAIN and TEST)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = prepare(args.root, args.out, verify=args.verify, workers=args.workers or 1)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
