"""Where las-asr's time goes on issue #6's workload: a breakdown and ``torch.profiler`` tables.

For the training step it times, in wall-clock seconds, the listener's forward, the speller's
forward (teacher forcing, including the loss), the backward pass and ``Adam.step``; for greedy and
beam search the listener, the speller's ``step`` calls and the search's own work. Then it runs the
same once more under ``torch.profiler`` and prints the operators by self CPU time. The workload
and the model are those of ``benchmarks.peers`` (``python -m benchmarks.peers --help`` for the
sizes). From the repository root::

    python -m benchmarks.breakdown --threads 1 --phases train,greedy,beam
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.peers import LasAsr, Workload, load_average, training_batch


class Stopwatch:
    """Accumulated wall-clock seconds per label, around wrapped callables."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, label: str, fn: Callable) -> Callable:
        def timed_fn(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        return timed_fn

    def report(self, total: float) -> str:
        lines = [f"  {'total':<28} {total:8.3f} s"]
        for label, seconds in self.seconds.items():
            lines.append(
                f"  {label:<28} {seconds:8.3f} s  {100 * seconds / total:5.1f}%  "
                f"({self.calls[label]} calls)"
            )
        lines.append(f"  {'rest':<28} {total - sum(self.seconds.values()):8.3f} s")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--phases", default="train,greedy,beam")
    parser.add_argument("--rows", type=int, default=20, help="operators listed per table")
    parser.add_argument("--max-time-segments", type=int, help="override the listener's")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    workload = Workload()
    torch.manual_seed(workload.seed)
    system = LasAsr(workload, torch.device("cpu"))
    model = system.model
    if args.max_time_segments is not None:
        model.listener.max_time_segments = args.max_time_segments
    print(f"{torch.get_num_threads()} threads, load average {load_average()}")

    if "train" in args.phases:
        batch = training_batch(workload)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(watch: Stopwatch | None = None) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = system.loss(batch)
            started = time.perf_counter()
            loss.backward()
            if watch is not None:
                watch.seconds["backward"] += time.perf_counter() - started
                watch.calls["backward"] += 1
            started = time.perf_counter()
            optimizer.step()
            if watch is not None:
                watch.seconds["Adam.step"] += time.perf_counter() - started
                watch.calls["Adam.step"] += 1

        step()  # warm-up
        watch = Stopwatch()
        encode, speller_forward = model.encode, model.speller.forward
        model.encode = watch.wrap("listener forward", encode)
        model.speller.forward = watch.wrap("speller forward", speller_forward)
        started = time.perf_counter()
        step(watch)
        total = time.perf_counter() - started
        model.encode, model.speller.forward = encode, speller_forward
        print(f"\ntraining step, {workload.batch_size} utterances:\n{watch.report(total)}")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))

    model.eval()
    features = torch.randn(
        workload.decode_utterances,
        workload.decode_frames,
        workload.features,
        generator=torch.Generator().manual_seed(workload.seed + 1),
    )
    lens = torch.full((workload.decode_utterances,), workload.decode_frames)
    for search in ("greedy", "beam"):
        if search not in args.phases:
            continue
        beam_size = workload.beam_size if search == "beam" else None
        system.search(features, lens, beam_size)  # warm-up
        watch = Stopwatch()
        encode, speller_step = model.encode, model.speller.step
        model.encode = watch.wrap("listener", encode)
        model.speller.step = watch.wrap("speller step", speller_step)
        started = time.perf_counter()
        system.search(features, lens, beam_size)
        total = time.perf_counter() - started
        model.encode, model.speller.step = encode, speller_step
        print(f"\n{search} search, {workload.decode_utterances} utterances:\n{watch.report(total)}")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            system.search(features, lens, beam_size)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
