"""The project's own corpus: everyday English sentences spoken by espeak-ng voices.

``build_corpus(out_dir, size)`` writes::

    out_dir/wav/{train,dev,test}/<id>.wav   16 kHz mono 16-bit PCM
    out_dir/{train,dev,test}.jsonl          one utterance a line (see docs/design.md)
    out_dir/corpus.json                     parameters and statistics

Each manifest line holds ``id``, ``audio`` (relative to ``out_dir``), ``duration`` (seconds),
``text`` (normalised transcript), ``speaker`` (the voice's name) and ``words`` (each word with
its start time in seconds, from espeak's word events).

Which voice says which sentence is planned in ``asr.corpora.plan``: every English accent of
the bundled espeak data crossed with a set of voice variants; dev and test are spoken by
(accent, variant) pairs that never occur in train, so they measure unseen voices. No sentence
appears in two splits, and each sentence is spoken by one or two voices. This module renders
the plan: synthesis in parallel, manifests, statistics and the cache.

The corpus is a pure function of ``size`` and ``seed``: rebuilding gives identical files. A
second call with the same parameters finds ``corpus.json`` and returns at once.

Run ``python -m asr.corpora.synthetic --out data/synth --size small``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from asr.corpora import engines as extra_engines
from asr.corpora.plan import (  # noqa: F401  (DIGITS, generate_digit_strings: re-exported)
    DIGITS,
    SPLITS,
    TEXTS,
    VARIANTS,
    generate_digit_strings,
    plan_utterances,
    voice_splits,
)
from asr.errors import UserError
from asr.flite import FliteVoice
from asr.synthesis import EspeakSynthesizer, Voice

# Changing how the corpus is made (voices, grammar, lexicon, audio processing) must change this
# string, so that cached corpora are rebuilt.
VERSION = "synthetic-1"
SAMPLE_RATE = 16000

# Utterances per split, and how many (pitch, rate, range) settings each (accent, variant) pair
# gets. "small" is the CPU demo (about 5 hours of training audio); medium and large are for a
# GPU. Dev and test grow more slowly than train: they only need to measure, and decoding costs.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"train": 60, "dev": 10, "test": 10, "settings_per_pair": 1},
    "small": {"train": 6000, "dev": 300, "test": 500, "settings_per_pair": 1},
    "medium": {"train": 24000, "dev": 600, "test": 1000, "settings_per_pair": 2},
    "large": {"train": 120000, "dev": 1500, "test": 2500, "settings_per_pair": 3},
}


def build_corpus(
    out_dir: str | os.PathLike,
    size: str = "small",
    seed: int = 0,
    num_workers: int = 2,
    text: str = "sentences",
    engines: tuple[str, ...] = ("espeak",),
    unseen_engine: str | None = None,
) -> dict:
    """Synthesise the corpus of ``size`` into ``out_dir`` and return its summary (corpus.json).

    Reuses an existing corpus built with the same parameters. ``num_workers`` processes
    synthesise in parallel (1: in this process); the result does not depend on it. ``text``
    picks what is said: "sentences" (everyday English, the default) or "digits". ``engines``
    adds piper or flite voices to every split and ``unseen_engine`` writes the
    ``test_unseen_engine`` split (``asr.corpora.engines``); with the defaults the corpus is
    espeak-ng's alone.
    """
    engines = tuple(engines)
    extra_engines.check_engines(engines, unseen_engine)
    for engine in engines:
        if (reason := extra_engines.unavailable(engine)) is not None:
            raise UserError(reason)
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if text not in TEXTS:
        raise ValueError(f"text must be one of {', '.join(TEXTS)}, got {text!r}")
    out_dir = Path(out_dir)
    synthesizer = EspeakSynthesizer()
    accents = synthesizer.english_languages()
    variants = [variant for variant in VARIANTS if variant in synthesizer.variants()]
    params = {
        "size": size,
        "seed": seed,
        "sizes": SIZES[size],
        "sample_rate": SAMPLE_RATE,
        "accents": accents,
        "variants": variants,
        "espeak_version": synthesizer.version(),
    }
    if text != "sentences":  # so that corpora built before these options still match
        params["text"] = text
    if engines != ("espeak",):
        params["engines"] = list(engines)
    voices = voice_splits(accents, variants, SIZES[size]["settings_per_pair"], seed)
    plan = plan_utterances(SIZES[size], voices, seed, text)
    plan = extra_engines.add_engines(plan, engines, seed)
    summary = _cached_summary(out_dir, params)
    if summary is not None:
        print(f"reusing corpus at {out_dir}")
    else:
        summary = _build(out_dir, params, voices, plan, num_workers, seed)
    if unseen_engine is not None:
        test_sentences = list(dict.fromkeys(sentence for _, sentence, _ in plan["test"]))
        unseen = extra_engines.build_unseen_split(
            out_dir, unseen_engine, size, seed, test_sentences
        )
        if unseen is not None:
            summary = {**summary, extra_engines.UNSEEN_SPLIT: unseen}
    return summary


def _build(out_dir: Path, params: dict, voices: dict, plan: dict, num_workers: int, seed: int):
    started = time.perf_counter()
    for split in SPLITS:
        shutil.rmtree(out_dir / "wav" / split, ignore_errors=True)
        (out_dir / "wav" / split).mkdir(parents=True)
    jobs = [  # espeak's and flite's utterances, one a job
        (str(out_dir), split, utterance_id, sentence, voice)
        for split in SPLITS
        for utterance_id, sentence, voice in plan[split]
        if isinstance(voice, (Voice, FliteVoice))
    ]
    for split in SPLITS:  # piper's utterances, in groups that share one seeded session
        jobs.extend(extra_engines.piper_jobs(str(out_dir), split, plan[split], seed))
    records: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for results in _synthesize_all(jobs, num_workers):
        for split, record in results:
            records[split].append(record)
    for split in SPLITS:  # in plan order (ids count up), whichever engine spoke them
        records[split].sort(key=lambda record: record["id"])
    for split in SPLITS:
        _write_jsonl(out_dir / f"{split}.jsonl", records[split])

    summary = {
        "version": VERSION,
        "params": params,
        **_statistics(records, voices),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    temporary = out_dir / "corpus.json.tmp"
    temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    temporary.replace(out_dir / "corpus.json")  # last: a corpus with corpus.json is complete
    return summary


def _cached_summary(out_dir: Path, params: dict) -> dict | None:
    """The summary of a complete corpus in ``out_dir`` built with ``params``, else None."""
    try:
        summary = json.loads((out_dir / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("version") != VERSION or summary.get("params") != params:
        return None
    if not all((out_dir / f"{split}.jsonl").is_file() for split in SPLITS):
        return None
    return summary


def _synthesize_all(jobs: list[tuple], num_workers: int) -> Iterator[list[tuple[str, dict]]]:
    """(split, manifest record) pairs of every job, in job order, with a progress bar."""
    from tqdm import tqdm

    progress = tqdm(total=len(jobs), unit="utt", desc="synthesising", smoothing=0.1)
    if num_workers <= 1:
        results: Iterable = map(_synthesize_job, jobs)
        pool = None
    else:
        # spawn: each worker starts clean and loads its own espeak-ng (no state shared by fork).
        pool = multiprocessing.get_context("spawn").Pool(num_workers, initializer=_init_worker)
        results = pool.imap(_synthesize_job, jobs, chunksize=16)
    try:
        for result in results:
            progress.update()
            yield result
        if pool is not None:
            pool.close()  # let the workers exit normally and clean up after themselves
            pool.join()
    finally:
        progress.close()
        if pool is not None:
            pool.terminate()
            pool.join()


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    EspeakSynthesizer()


def _synthesize_job(job: tuple) -> list[tuple[str, dict]]:
    if len(job) == 4:  # a group of piper utterances
        return extra_engines.synthesize_group(job)
    out_dir, split, utterance_id, sentence, voice = job
    if isinstance(voice, FliteVoice):
        return extra_engines.synthesize_flite(*job)
    result = EspeakSynthesizer().synthesize(sentence, voice, sample_rate=SAMPLE_RATE)
    return [(split, extra_engines.write_utterance(*job[:4], voice.name, result))]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    temporary = path.with_suffix(".jsonl.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    temporary.replace(path)


def _statistics(records: dict[str, list[dict]], voices: dict[str, list[Voice]]) -> dict:
    """Per-split counts, vocabulary size and the test out-of-vocabulary rate."""
    splits = {}
    vocabularies = {}
    for split in SPLITS:
        tokens = [word for record in records[split] for word in record["text"].split()]
        vocabularies[split] = set(tokens)
        splits[split] = {
            "utterances": len(records[split]),
            "hours": round(sum(record["duration"] for record in records[split]) / 3600, 3),
            "mean_seconds": round(
                sum(record["duration"] for record in records[split]) / max(1, len(records[split])),
                2,
            ),
            "voices": len({record["speaker"] for record in records[split]}),
            "sentences": len({record["text"] for record in records[split]}),
            "words": len(tokens),
            "vocabulary": len(vocabularies[split]),
        }
    test_tokens = [word for record in records["test"] for word in record["text"].split()]
    unseen = sum(word not in vocabularies["train"] for word in test_tokens)
    return {
        "splits": splits,
        "voices_in_grid": {split: len(voices[split]) for split in SPLITS},
        "vocabulary_size": len(set().union(*vocabularies.values())),
        "train_vocabulary_size": len(vocabularies["train"]),
        "test_oov_rate": round(unseen / max(1, len(test_tokens)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: build the corpus and print its summary."""
    parser = argparse.ArgumentParser(
        prog="python -m asr.corpora.synthetic",
        description="Synthesise the everyday-English corpus with espeak-ng voices.",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", default="small", choices=list(SIZES), help="corpus size")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--text", default="sentences", choices=TEXTS, help="what is said")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="synthesis processes (default: 2, or 1 on a one-core machine)",
    )
    parser.add_argument(
        "--engines", default="espeak", help="engines of every split, e.g. espeak,piper,flite"
    )
    parser.add_argument(
        "--unseen-engine",
        default=None,
        choices=[*extra_engines.ENGINES[1:], "auto", "none"],
        help="also write test_unseen_engine spoken by this engine (skipped if not installed); "
        "auto: the first installed engine of flite, piper that training does not use",
    )
    args = parser.parse_args(argv)
    engines = tuple(args.engines.split(","))
    unseen_engine = None if args.unseen_engine == "none" else args.unseen_engine
    print(extra_engines.found_line())
    if unseen_engine == "auto":
        unseen_engine = extra_engines.pick_unseen(engines)
        left_out = unseen_engine or "none (no installed engine is left out of training)"
        print(f"unseen engine: {left_out}")
    try:
        summary = build_corpus(
            args.out,
            size=args.size,
            seed=args.seed,
            num_workers=args.workers,
            text=args.text,
            engines=engines,
            unseen_engine=unseen_engine,
        )
    except (UserError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    print(_format_summary(summary))
    return 0


def _format_summary(summary: dict) -> str:
    lines = [f"{'split':<6} {'utts':>7} {'hours':>7} {'mean s':>7} {'voices':>7} {'vocab':>6}"]
    for split, stats in summary["splits"].items():
        lines.append(
            f"{split:<6} {stats['utterances']:>7} {stats['hours']:>7.2f} "
            f"{stats['mean_seconds']:>7.2f} {stats['voices']:>7} {stats['vocabulary']:>6}"
        )
    lines.append(
        f"vocabulary {summary['vocabulary_size']} words, test OOV rate "
        f"{100 * summary['test_oov_rate']:.1f}%, built in {summary['build_seconds']} s"
    )
    if (unseen := summary.get(extra_engines.UNSEEN_SPLIT)) is not None:
        lines.append(
            f"{extra_engines.UNSEEN_SPLIT}: {unseen['utterances']} utterances, "
            f"{unseen['hours']:.2f} h, engine {unseen['params']['engine']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
