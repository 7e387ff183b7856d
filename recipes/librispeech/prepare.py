"""Stage 1 of the LibriSpeech recipe: manifests for an extracted LibriSpeech copy.

    python recipes/librispeech/prepare.py --root /data/LibriSpeech --out data/librispeech

Writes <out>/<split>.jsonl for each of the seven official splits found (train-960.jsonl too when
all three training splits are there) and <out>/prepare.json; see asr/corpora/librispeech.py.
"""

from asr.corpora.librispeech import main

if __name__ == "__main__":
    raise SystemExit(main())
