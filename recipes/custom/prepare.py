"""Stage 1 of the custom-corpus recipe: manifests from Kaldi data directories or tables.

    python recipes/custom/prepare.py --out data/mine kaldi train=kaldi/data/train dev=... test=...
    python recipes/custom/prepare.py --out data/mine table train=train.csv dev=dev.tsv test=...

Kaldi: wav.scp, text, optional segments and utt2spk (wav.scp commands run only with
--run-commands). Tables: JSONL, CSV or TSV with an audio path and a text column, optional id,
speaker, duration, offset/start and end. See asr/corpora/kaldi.py and asr/corpora/custom.py.
"""

from asr.corpora.custom import main

if __name__ == "__main__":
    raise SystemExit(main())
