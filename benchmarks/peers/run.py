"""las-asr against a plain PyTorch LAS, SpeechBrain and ESPnet1, side by side on one workload.

The run: the systems by name, the interleaved timing, and ``main`` (``python -m
benchmarks.peers``); the package docstring describes the workload and what is measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.peers.espnet_peer import ESPnet
from benchmarks.peers.las_asr import LasAsr, LasAsrBaseline
from benchmarks.peers.plain import PlainPyTorch
from benchmarks.peers.report import markdown_tables
from benchmarks.peers.speechbrain_peer import SpeechBrain
from benchmarks.peers.system import System
from benchmarks.peers.timing import interleaved, load_average, matmul_task, progress
from benchmarks.peers.workload import (
    FRAME_SECONDS,
    MATMUL_SIZE,
    PRECISIONS,
    Workload,
    training_batch,
)
from benchmarks.speed import PeakMemory, cpu_name, summary, timed

SYSTEMS = ("las-asr", "pytorch", "speechbrain", "espnet")
INSTALL = {
    "speechbrain": "pip install speechbrain",
    "espnet": "pip install --no-deps espnet; pip install configargparse torch_complex editdistance",
}

SYSTEM_CLASSES: dict[str, type[System]] = {
    "las-asr": LasAsr,
    "las-asr-baseline": LasAsrBaseline,
    "pytorch": PlainPyTorch,
    "speechbrain": SpeechBrain,
    "espnet": ESPnet,
}
PEER_MODULES = {"speechbrain": "speechbrain", "espnet": "espnet"}


def installed(name: str) -> bool:
    module = PEER_MODULES.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Workload()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--phases", default="train,greedy,beam", help="comma-separated subset")
    parser.add_argument(
        "--precisions",
        default=",".join(PRECISIONS),
        help="comma-separated number formats: fp32, bf16 (the forward passes under bfloat16 "
        "autocast, float32 weights, as trainer.precision=bf16)",
    )
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps")
    parser.add_argument(
        "--espnet-train-steps",
        type=int,
        default=2,
        help="timed training steps of ESPnet, whose packed LSTMs take about a minute a step",
    )
    parser.add_argument("--decode-repeats", type=int, default=5, help="timed runs per search")
    for field, value in vars(defaults).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    unknown = set(args.systems.split(",")) - set(SYSTEM_CLASSES)
    if unknown:
        valid = ", ".join(SYSTEM_CLASSES)
        parser.error(f"--systems: unknown {', '.join(sorted(unknown))}; valid: {valid}")
    unknown = set(args.phases.split(",")) - {"train", "greedy", "beam"}
    if unknown:
        parser.error(f"--phases: unknown phase(s) {', '.join(sorted(unknown))}")
    precisions = args.precisions.split(",")
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        valid = ", ".join(PRECISIONS)
        parser.error(
            f"--precisions: unknown format(s) {', '.join(sorted(unknown))}; valid: {valid}"
        )
    if len(set(precisions)) < len(precisions):
        parser.error(f"--precisions: a format is listed twice in {args.precisions}")
    if min(args.train_steps, args.espnet_train_steps, args.decode_repeats) < 1 or args.warmup < 0:
        parser.error("the numbers of timed steps and repeats must be positive, --warmup >= 0")
    if args.location_kernel_size % 2 == 0:
        parser.error("--location-kernel-size must be odd (las-asr's 'same' convolution)")
    return args


def matmul_rates(seconds: dict[str, list[float]], matmuls: dict[str, Callable[[], None]]) -> dict:
    """GFLOP/s of each format's matmul, by format; its times are taken out of ``seconds``."""
    return {
        label.split(" ")[1]: summary(
            [2 * MATMUL_SIZE**3 * task.repeats / s / 1e9 for s in seconds.pop(label)]
        )
        for label, task in matmuls.items()
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    workload = Workload(**{field: getattr(args, field) for field in vars(Workload())})
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    phases, precisions = args.phases.split(","), args.precisions.split(",")
    results: dict = {
        "setup": {
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
            "load_before": load_average(),
            "workload": vars(workload),
            "warmup": args.warmup,
            "train_steps": args.train_steps,
            "decode_repeats": args.decode_repeats,
            "precisions": precisions,
        },
        "skipped": {},
        "systems": {},
    }
    memory = PeakMemory(device)
    results["setup"]["memory_kind"] = memory.kind
    # One instance per system and format, the same weights: each trains with its own Adam.
    systems: dict[tuple[str, str], System] = {}
    for name in args.systems.split(","):
        if not installed(name):
            results["skipped"][name] = f"not installed (`{INSTALL[name]}`)"
            continue
        for precision in precisions:
            torch.manual_seed(workload.seed)
            systems[name, precision] = SYSTEM_CLASSES[name](workload, device)
        model = systems[name, precisions[0]].model
        results["systems"][name] = {"parameters": sum(p.numel() for p in model.parameters())}
        results["systems"][name] |= {precision: {} for precision in precisions}

    matmuls = {f"matmul {p}": matmul_task(device, PRECISIONS[p]) for p in precisions}
    if "train" in phases:
        batch = training_batch(workload)
        audio_seconds = float(batch.lens.sum()) * FRAME_SECONDS
        lens, target_lens = batch.lens.tolist(), batch.target_lens.tolist()
        batch = batch.to(device)
        steps = {}
        for (name, precision), system in systems.items():
            system.model.train()
            optimizer = torch.optim.Adam(system.model.parameters(), lr=1e-4)
            prepared = system.prepare(batch)

            def step(
                system=system, optimizer=optimizer, batch=prepared, precision=precision
            ) -> None:
                optimizer.zero_grad(set_to_none=True)
                with system.autocast(precision):  # the forward pass only, as the trainers do
                    loss = system.loss(batch)
                loss.backward()
                optimizer.step()

            memory.start()
            for _ in range(max(args.warmup, 1)):  # Adam's state exists after one step
                progress(f"{name} {precision} training warm-up: {timed(step, device):.2f} s")
            results["systems"][name][precision]["train_memory"] = memory.stop()
            steps[f"{name} {precision}"] = step
        seconds = interleaved(
            matmuls | steps,
            max(args.train_steps, args.espnet_train_steps),
            device,
            {
                label: args.espnet_train_steps if label.startswith("espnet ") else args.train_steps
                for label in steps
            },
        )
        results["matmul_gflops"] = matmul_rates(seconds, matmuls)
        for (name, precision), system in systems.items():
            flops = 3 * system.forward_flops(lens, target_lens)
            step_seconds = seconds[f"{name} {precision}"]
            results["systems"][name][precision]["train"] = {
                "audio_seconds": audio_seconds,
                "step_seconds": summary(step_seconds),
                "audio_seconds_per_second": summary([audio_seconds / s for s in step_seconds]),
                "steps": len(step_seconds),
                "gflop_per_step": flops / 1e9,
                "gflops": summary([flops / s / 1e9 for s in step_seconds]),
            }

    searches = [phase for phase in ("greedy", "beam") if phase in phases]
    if searches:
        generator = torch.Generator().manual_seed(workload.seed + 1)
        shape = (workload.decode_utterances, workload.decode_frames, workload.features)
        features = torch.randn(shape, generator=generator).to(device)
        lens = torch.full((workload.decode_utterances,), workload.decode_frames, device=device)
        audio_seconds = workload.decode_utterances * workload.decode_frames * FRAME_SECONDS
        tasks = {}
        for (name, precision), system in systems.items():
            system.model.eval()
            for search in searches:
                beam_size = workload.beam_size if search == "beam" else None

                def run(system=system, beam_size=beam_size, precision=precision) -> list[int]:
                    with system.autocast(precision):
                        return system.search(features, lens, beam_size)

                label = f"{name} {precision} {search}"
                memory.start()
                tokens = run()  # warm-up, memory, and a check of the forced length
                results["systems"][name][precision][f"{search}_memory"] = memory.stop()
                progress(f"{label} warm-up done")
                expected = system.forced_tokens(beam_size is not None)
                if not set(tokens) <= expected:
                    raise RuntimeError(f"{label}: {tokens} tokens, expected {expected}")
                tasks[label] = run
        if "train" not in phases:
            tasks |= matmuls
        seconds = interleaved(tasks, args.decode_repeats, device)
        if "train" not in phases:
            results["matmul_gflops"] = matmul_rates(seconds, matmuls)
        for task, task_seconds in seconds.items():
            name, precision, search = task.split(" ")
            results["systems"][name][precision][search] = {
                "audio_seconds": audio_seconds,
                "seconds": summary(task_seconds),
                "real_time_factor": summary([s / audio_seconds for s in task_seconds]),
            }
    results["setup"]["load_after"] = load_average()
    print(markdown_tables(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results
