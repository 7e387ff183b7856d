"""Benchmarks of las-asr, run from the repository root as modules (``python -m
benchmarks.peers``, ``python -m benchmarks.breakdown``); ``benchmarks/README.md`` has the
commands and the measured tables."""
