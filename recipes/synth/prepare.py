"""Stage 1 of the synth recipe: synthesise the everyday-English corpus with espeak-ng.

    python recipes/synth/prepare.py --out data/synth_small_seed0 --size small --seed 0 --workers 2

Writes 16 kHz WAV files, {train,dev,test}.jsonl manifests and corpus.json under --out; a second
run with the same arguments reuses the corpus. See asr/corpora/synthetic.py for the details.
"""

from asr.corpora.synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
