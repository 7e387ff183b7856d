"""The table of a decoding sweep (recipes/synth/sweep_decoding.sh): one row a job, best first.

    python recipes/synth/summarize_sweep.py SWEEP_DIR [--split dev]

Reads every ``results.json`` under SWEEP_DIR (one a job of ``asr evaluate -m``), takes the row
of ``--split`` (dev: weights are chosen on dev, never on test), and writes
``SWEEP_DIR/sweep.md``: the decoding keys that differ between jobs, WER, CER and real-time
factor, sorted by WER (then CER, then speed), and the best settings named as the overrides
that reproduce them. ``SWEEP_DIR/best.json`` holds those overrides for a script to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_jobs(sweep_dir: Path, split: str) -> list[dict]:
    """[{"job", "decoding", "wer", "cer", "rtf"}] of each job's row for ``split``."""
    jobs = []
    for path in sorted(sweep_dir.rglob("results.json")):
        rows = [row for row in json.loads(path.read_text()) if row.get("split") == split]
        if rows:
            row = rows[0]
            jobs.append(
                {
                    "job": str(path.parent.relative_to(sweep_dir)),
                    "decoding": row.get("decoding", {}),
                    "wer": row["wer"],
                    "cer": row["cer"],
                    "rtf": row.get("real_time_factor"),
                }
            )
    return jobs


def _shown(value) -> str:
    return (
        json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
    )


def summarize(sweep_dir: Path, split: str = "dev") -> tuple[str, dict]:
    """The Markdown table and the best job's settings; ValueError when no job scored ``split``."""
    jobs = read_jobs(sweep_dir, split)
    if not jobs:
        raise ValueError(f"no results.json with a {split!r} row under {sweep_dir}")
    keys = sorted({key for job in jobs for key in job["decoding"]})
    varied = [k for k in keys if len({_shown(job["decoding"].get(k)) for job in jobs}) > 1]
    jobs.sort(key=lambda j: (j["wer"], j["cer"], j["rtf"] if j["rtf"] is not None else 0.0))
    header = ["rank", *(f"decoding.{k}" for k in varied), f"{split} WER", f"{split} CER", "RTF"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, job in enumerate(jobs, start=1):
        cells = [str(rank), *(_shown(job["decoding"].get(k)) for k in varied)]
        rtf = f"{job['rtf']:.4f}" if job["rtf"] is not None else "-"
        cells += [f"{100 * job['wer']:.2f}%", f"{100 * job['cer']:.2f}%", rtf]
        lines.append("| " + " | ".join(cells) + " |")
    best = jobs[0]
    overrides = [f"decoding.{k}={_shown(best['decoding'].get(k))}" for k in varied]
    named = " ".join(overrides) or "(every job decoded alike)"
    lines += [
        "",
        f"Best on {split} (job {best['job']}, WER {100 * best['wer']:.2f}%, "
        f"CER {100 * best['cer']:.2f}%): {named}",
    ]
    chosen = {"split": split, "job": best["job"], "wer": best["wer"], "cer": best["cer"]}
    chosen["overrides"] = overrides
    chosen["decoding"] = best["decoding"]
    return "\n".join(lines) + "\n", chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--split", default="dev", help="the split ranked (default: dev)")
    args = parser.parse_args(argv)
    try:
        table, best = summarize(args.sweep_dir, args.split)
    except ValueError as error:
        print(f"summarize_sweep: error: {error}", file=sys.stderr)
        return 2
    (args.sweep_dir / "sweep.md").write_text(table)
    (args.sweep_dir / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    print(table, end="")
    print(f"written to {args.sweep_dir / 'sweep.md'} and best.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
