"""Stage 1 of the TIMIT recipe: train/dev/core-test manifests of 61-phone transcripts.

    python recipes/timit/prepare.py --root /data/TIMIT --out data/timit

Reads the LDC layout (TRAIN/DR1/FCJF0/SI1027.WAV + .PHN, any letter case; NIST SPHERE audio),
leaves out the SA sentences, and writes train.jsonl (462 speakers), dev.jsonl (the 50-speaker
development set) and test.jsonl (the 24-speaker core test set); see asr/corpora/timit.py.
"""

from asr.corpora.timit import main

if __name__ == "__main__":
    raise SystemExit(main())
