"""Training throughput, decoding real-time factor and peak memory of a model preset.

Everything runs on synthetic inputs with a fixed seed, so two runs differ only by the machine:

- **training**: one forward + backward + Adam step on a batch of ``--batch-size`` utterances whose
  lengths are uniform in ``--min-frames``..``--max-frames`` (10 ms frames), each with
  ``frames // 10`` random characters; the median of ``--train-steps`` steps after ``--warmup``
  steps, in seconds of audio per wall-clock second. ``--with-frontend`` starts every step from
  random waveforms instead of features: waveform augmentation, log-mel, normalisation and
  spectrogram augmentation run inside the timed step, as in ``asr/training/loop.py``.
- **decoding**: greedy and beam search on ``--decode-utterances`` utterances of
  ``--decode-frames`` frames, real-time factor = wall-clock seconds / seconds of audio. The random
  model would emit ``<eos>`` at once, so both length limits are set to exactly ``--steps``
  characters (``asr.search`` counts them per encoder frame): every search runs ``--steps`` + 1
  speller steps, the last one forced to ``<eos>``.
- **peak memory** of each phase: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the process's
  peak resident set size (Linux ``VmHWM``, reset before each phase through
  ``/proc/self/clear_refs``), both as the peak and as its rise over the phase's starting point.
  Where the peak cannot be reset, the column is the process's lifetime peak (``ru_maxrss``).

Audio seconds are frames × 10 ms. Run ``python benchmarks/speed.py --help`` for the options;
``benchmarks/README.md`` has measured tables.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models import LAS, build_model
from asr.search import beam_search, greedy_search
from asr.text import SPECIAL_TOKENS, Vocabulary

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
NUM_FEATURES = 80
FRAME_SECONDS = 0.01
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="las_small", help="conf/model/<name>.yaml")
    parser.add_argument("--attention", default="location", help="conf/attention/<name>.yaml")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phases", default="train,greedy,beam", help="comma-separated subset")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-frames", type=int, default=400)
    parser.add_argument("--max-frames", type=int, default=1200)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--with-frontend", action="store_true", help="time augmentation + log-mel")
    parser.add_argument("--decode-utterances", type=int, default=4)
    parser.add_argument("--decode-frames", type=int, default=800)
    parser.add_argument("--steps", type=int, default=100, help="characters each search spells")
    parser.add_argument("--beam-size", type=int, default=10)
    parser.add_argument("--decode-repeats", type=int, default=3, help="timed runs per search")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="bf16: every phase under torch.autocast (float32 weights), as trainer.precision=bf16",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    unknown = set(args.phases.split(",")) - {"train", "greedy", "beam"}
    if unknown:
        parser.error(f"--phases: unknown phase(s) {', '.join(sorted(unknown))}")
    if not 1 <= args.min_frames <= args.max_frames:
        parser.error("--min-frames must be at least 1 and at most --max-frames")
    if args.train_steps < 1 or args.decode_repeats < 1 or args.steps < 1:
        parser.error("--train-steps, --decode-repeats and --steps must be positive")
    return args


def load_model_config(model: str, attention: str) -> dict:
    """conf/model/<model>.yaml with conf/attention/<attention>.yaml as its ``attention``."""
    paths = [CONF_DIR / "model" / f"{model}.yaml", CONF_DIR / "attention" / f"{attention}.yaml"]
    for path in paths:
        if not path.is_file():
            valid = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise SystemExit(f"speed.py: no {path}; choose one of {', '.join(valid)}")
    config = OmegaConf.to_container(OmegaConf.load(paths[0]), resolve=True)
    config["attention"] = OmegaConf.to_container(OmegaConf.load(paths[1]), resolve=True)
    return config


def _release_free_heap() -> None:
    """Hand glibc's free heap pages back to the OS, so RSS counts live memory (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cpu_name() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return match.group(1).strip() if match else platform.machine()


class PeakMemory:
    """Peak memory of a code region: CUDA allocator on CUDA, resident set size on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            self.kind = "CUDA max_memory_allocated"
        elif self._reset_rss_peak():
            self.kind = "peak RSS (VmHWM, reset per phase)"
        else:
            self.kind = "lifetime peak RSS (ru_maxrss)"

    @staticmethod
    def _reset_rss_peak() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
            return True
        except OSError:
            return False

    @staticmethod
    def _status_bytes(field: str) -> int:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
        return int(match.group(1)) * 1024

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
        elif self.kind.startswith("peak RSS"):
            _release_free_heap()
            self._reset_rss_peak()
            self.baseline = self._status_bytes("VmRSS")
        else:
            self.baseline = None  # a lifetime peak has no per-phase baseline

    def stop(self) -> dict:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.baseline is not None:
            peak = self._status_bytes("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        rise = None if self.baseline is None else peak - self.baseline
        return {"peak_mib": peak / MIB, "rise_mib": None if rise is None else rise / MIB}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, waiting for the device before and after."""
    synchronize(device)
    started = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - started


def autocast(args: argparse.Namespace, device: torch.device):
    """bf16 autocast on ``device`` for ``--precision bf16``, else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def training_batch(args: argparse.Namespace, generator: torch.Generator) -> dict:
    """Random frame lengths, features (B, T, F) and targets of ``frames // 10`` characters."""
    lens = torch.randint(
        args.min_frames, args.max_frames + 1, (args.batch_size,), generator=generator
    )
    features = torch.randn(args.batch_size, int(lens.max()), NUM_FEATURES, generator=generator)
    target_lens = (lens // 10).clamp(min=1)
    targets = torch.randint(  # characters only: ids after the special tokens
        len(SPECIAL_TOKENS),
        len(Vocabulary()),
        (args.batch_size, int(target_lens.max())),
        generator=generator,
    )
    targets = targets.masked_fill(torch.arange(targets.size(1)) >= target_lens[:, None], 0)
    return {"lens": lens, "features": features, "targets": targets, "target_lens": target_lens}


def benchmark_training(
    args: argparse.Namespace, model: LAS, device: torch.device, memory: PeakMemory
) -> dict:
    generator = torch.Generator().manual_seed(args.seed)
    batch = training_batch(args, generator)
    lens = batch["lens"].to(device)
    features = batch["features"].to(device)
    targets, target_lens = batch["targets"].to(device), batch["target_lens"].to(device)
    audio_seconds = float(batch["lens"].sum()) * FRAME_SECONDS

    if args.with_frontend:
        # Waveforms that the filterbank turns into exactly ``lens`` frames.
        filterbank = LogMelFilterbank().to(device)
        waveform_lens = (lens - 1) * filterbank.hop_length + filterbank.window_length
        waveforms = 0.1 * torch.randn(
            args.batch_size, int(waveform_lens.max()), generator=generator
        ).to(device)
        waveform_augment = WaveformAugment().to(device)
        spectrogram_augment = SpectrogramAugment()
        normalizer = GlobalNormalizer(NUM_FEATURES).to(device)
        normalizer.accumulate(*filterbank(waveforms, waveform_lens))
        normalizer.finalize()
        augment_generator = torch.Generator(device=device).manual_seed(args.seed)

        def inputs() -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                wave, wave_lens = waveform_augment(waveforms, waveform_lens, augment_generator)
                feats, feat_lens = filterbank(wave, wave_lens)
                feats = normalizer(feats, feat_lens)
                feats = spectrogram_augment(feats, feat_lens, augment_generator, normalizer.std)
            return feats, feat_lens
    else:

        def inputs() -> tuple[torch.Tensor, torch.Tensor]:
            return features, lens

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        feats, feat_lens = inputs()
        optimizer.zero_grad(set_to_none=True)
        with autocast(args, device):
            loss = model(feats, feat_lens, targets, target_lens).loss
        loss.backward()
        optimizer.step()

    memory.start()
    for _ in range(args.warmup):
        step()
    seconds = [timed(step, device) for _ in range(args.train_steps)]
    return {
        "audio_seconds": audio_seconds,
        "step_seconds": summary(seconds),
        "audio_seconds_per_second": summary([audio_seconds / s for s in seconds]),
        "memory": memory.stop(),
    }


def benchmark_decoding(
    args: argparse.Namespace, model: LAS, device: torch.device, memory: PeakMemory, beam: bool
) -> dict:
    generator = torch.Generator().manual_seed(args.seed + 1)
    shape = (args.decode_utterances, args.decode_frames, NUM_FEATURES)
    features = torch.randn(shape, generator=generator).to(device)
    lens = torch.full((args.decode_utterances,), args.decode_frames, device=device)
    encoder_frames = int(model.listener.output_lengths(lens)[0])
    # floor(T' * ratio) == steps exactly: the +0.5 keeps float rounding away from the boundary.
    ratio = (args.steps + 0.5) / encoder_frames
    limits = {"min_length_ratio": ratio, "max_length_ratio": ratio}
    if beam:

        def search() -> list:
            with autocast(args, device):
                results = beam_search(model, features, lens, beam_size=args.beam_size, **limits)
            return [hypotheses[0] for hypotheses in results]
    else:

        def search() -> list:
            with autocast(args, device):
                return greedy_search(model, features, lens, **limits)

    model.eval()
    memory.start()
    lengths = {len(hypothesis.tokens) for hypothesis in search()}  # warm-up, and a check
    if lengths != {args.steps}:
        raise RuntimeError(f"expected {args.steps} characters per hypothesis, got {lengths}")
    seconds = [timed(search, device) for _ in range(args.decode_repeats)]
    audio_seconds = args.decode_utterances * args.decode_frames * FRAME_SECONDS
    return {
        "audio_seconds": audio_seconds,
        "encoder_frames": encoder_frames,
        "speller_steps": args.steps + 1,
        "seconds": summary(seconds),
        "real_time_factor": summary([s / audio_seconds for s in seconds]),
        "memory": memory.stop(),
    }


def format_memory(memory: dict) -> str:
    if memory["rise_mib"] is None:
        return f"{memory['peak_mib']:,.0f} MiB (lifetime)"
    return f"{memory['peak_mib']:,.0f} MiB (+{memory['rise_mib']:,.0f})"


def markdown_table(results: dict) -> str:
    setup = results["setup"]
    lines = [
        f"`{setup['model']}` + `{setup['attention']}` attention, {setup['parameters']:,} "
        f"parameters, {setup['precision']}, on {setup['device_name']} ({setup['threads']} "
        f"threads), torch "
        f"{setup['torch']}; load average {setup['load_before']} before, "
        f"{setup['load_after']} after; peak memory is {setup['memory_kind']} (rise over the "
        "phase's start)",
        "",
        "| benchmark | input | median | min–max | peak memory |",
        "|---|---|---|---|---|",
    ]
    if "train" in results:
        train = results["train"]
        rate, step = train["audio_seconds_per_second"], train["step_seconds"]
        frontend = " + frontend" if setup["with_frontend"] else ""
        lines.append(
            f"| training step{frontend} (audio s / s) | {setup['batch_size']} utts × "
            f"{setup['min_frames']}–{setup['max_frames']} frames ({train['audio_seconds']:.1f} s) "
            f"| **{rate['median']:.2f}** ({step['median']:.2f} s/step) | "
            f"{rate['min']:.2f}–{rate['max']:.2f} | {format_memory(train['memory'])} |"
        )
    for name, label in [("greedy", "greedy"), ("beam", f"beam {setup['beam_size']}")]:
        if name not in results:
            continue
        decode = results[name]
        rtf, seconds = decode["real_time_factor"], decode["seconds"]
        lines.append(
            f"| {label} decoding (RTF) | {setup['decode_utterances']} utts × "
            f"{setup['decode_frames']} frames, {decode['speller_steps']} steps | "
            f"**{rtf['median']:.4f}** ({seconds['median']:.2f} s) | "
            f"{rtf['min']:.4f}–{rtf['max']:.4f} | {format_memory(decode['memory'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("speed.py: --device cuda, but torch sees no CUDA device")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())

    torch.manual_seed(args.seed)
    config = load_model_config(args.model, args.attention)
    model = build_model(config, vocab_size=len(Vocabulary()), input_size=NUM_FEATURES).to(device)
    memory = PeakMemory(device)
    phases = args.phases.split(",")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    results: dict = {
        "setup": {
            **{key: value for key, value in vars(args).items() if key != "json"},
            "device_name": device_name,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "memory_kind": memory.kind,
            "load_before": load_before,
        }
    }
    if "train" in phases:
        results["train"] = benchmark_training(args, model, device, memory)
    for name in ("greedy", "beam"):
        if name in phases:
            results[name] = benchmark_decoding(args, model, device, memory, beam=name == "beam")
    results["setup"]["load_after"] = " ".join(f"{value:.2f}" for value in os.getloadavg())

    print(markdown_table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


if __name__ == "__main__":
    main()
