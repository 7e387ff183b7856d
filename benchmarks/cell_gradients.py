"""The speller's LSTM weight gradients once per batch against once per step, side by side.

``Speller.forward`` runs its LSTM cells through ``TeacherForcedCells``, which forms each cell
weight's gradient as one product over all teacher-forced steps; ``nn.LSTMCell`` (what ``step``
runs in search) adds U rank-B products instead. This times one training step of a model preset
(forward + backward + Adam, the listener under bf16 autocast where ``--precision bf16``) both
ways on the same model and batch, alternating step by step so a busy machine slows both alike,
and prints the medians::

    python -m benchmarks.cell_gradients --threads 2 --rounds 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from omegaconf import OmegaConf

from asr import CONF_DIR
from asr.models import build_model
from asr.models import speller as speller_module

SHAPES = ((13, 310, 62), (9, 450, 80))  # utterances, 10 ms frames, characters: demo-like batches


def training_batch(batch: int, frames: int, characters: int, vocab: int = 32):
    """Random features (B, T, 80) with lengths, and targets (B, U) with lengths."""
    generator = torch.Generator().manual_seed(1)
    feature_lens = torch.randint(int(frames * 0.8), frames + 1, (batch,), generator=generator)
    target_lens = torch.randint(
        int(characters * 0.8), characters + 1, (batch,), generator=generator
    )
    feature_lens[0], target_lens[0] = frames, characters
    features = torch.randn(batch, frames, 80, generator=generator)
    targets = torch.randint(4, vocab, (batch, characters), generator=generator)
    return features, feature_lens, targets, target_lens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="las_small", help="conf/model/<name>.yaml")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--rounds", type=int, default=8, help="timed steps of each way")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = OmegaConf.load(CONF_DIR / "model" / f"{args.model}.yaml")
    cfg.attention = OmegaConf.load(CONF_DIR / "attention" / "location.yaml")
    model = build_model(cfg, vocab_size=32, input_size=80).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    deferred = speller_module.TeacherForcedCells

    def step(batch, once_per_batch: bool) -> float:
        speller_module.TeacherForcedCells = deferred if once_per_batch else (lambda cells: None)
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(*batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    threads = torch.get_num_threads()
    print(f"{args.model}, {threads} threads, {args.precision}, medians of {args.rounds}")
    print("| batch (B × frames, characters) | per step (nn.LSTMCell) | once per batch | speed-up |")
    print("|---|---|---|---|")
    try:
        for shape in SHAPES:
            batch = training_batch(*shape)
            times: dict[bool, list[float]] = {False: [], True: []}
            for way in times:  # warm-up
                step(batch, way)
            for _ in range(args.rounds):
                for way in times:
                    times[way].append(step(batch, way))
            per_step, per_batch = (statistics.median(times[way]) for way in (False, True))
            print(
                f"| {shape[0]} × {shape[1]}, {shape[2]} | {per_step:.3f} s | {per_batch:.3f} s | "
                f"{per_step / per_batch:.2f}x |"
            )
    finally:
        speller_module.TeacherForcedCells = deferred


if __name__ == "__main__":
    main()
