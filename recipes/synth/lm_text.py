"""Write the demo word LM's training text: the training transcripts, and some of them joined.

    python recipes/synth/lm_text.py data/synth_small_seed0/train.jsonl data/.../lm_train.txt \\
        [--joined 1500] [--seed 0]

An LM that only ever saw one sentence at a time scores the start of a second sentence badly:
on the demo's LM a sentence's log-likelihood falls from -0.99 to -1.34 nats a character when
another sentence comes before it (benchmarks/README.md, "Long input"). Decoding several sentences
in one go (long segments, 3 utterances joined) then loses 8 WER points with the LM. Lines of 2-3
training transcripts joined teach the LM that one sentence may follow another. Only the training
split's text is used: dev and test text never reach the LM. 1500 such lines (a quarter of the
6000 transcripts) scored better on dev than 6000, which repeat each transcript 2.5 more times
an epoch and overfit (recipes/synth/README.md, "Long input").
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def joined_lines(sentences: list[str], count: int, seed: int) -> list[str]:
    """``count`` lines of 2 or 3 sentences drawn at random (with ``seed``), joined by spaces.

    >>> joined_lines(["a b", "c", "d e"], 2, seed=0)
    ['d e c a b', 'c d e a b']
    """
    rng = random.Random(seed)
    return [" ".join(rng.choices(sentences, k=rng.choice((2, 3)))) for _ in range(count)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="the training manifest (.jsonl)")
    parser.add_argument("out", type=Path, help="the text file to write, one line a sentence")
    parser.add_argument("--joined", type=int, default=1500, help="lines of 2-3 sentences joined")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with args.manifest.open(encoding="utf-8") as lines:
        sentences = [json.loads(line)["text"] for line in lines if line.strip()]
    if not sentences:
        raise SystemExit(f"{args.manifest}: no transcripts")
    text = sentences + joined_lines(sentences, args.joined, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    partial.write_text("\n".join(text) + "\n", encoding="utf-8")
    partial.replace(args.out)  # a killed run never leaves half a file under the final name
    print(f"{args.out}: {len(sentences)} training sentences and {args.joined} joined lines")


if __name__ == "__main__":
    main()
