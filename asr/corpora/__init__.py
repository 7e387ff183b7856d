"""Corpus builders: each writes audio and JSONL manifests in the format of docs/design.md.

``synthetic`` makes the project's own corpus from ``sentences`` (an everyday-English grammar
over the word lists in ``lexicon/``) spoken by espeak-ng voices (``asr.synthesis``).
"""
