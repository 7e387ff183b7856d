"""What augmentation costs training: audio seconds per second of a full step under each
``conf/augment`` preset, measured side by side in one run.

    python benchmarks/augment.py --augments none,default,acoustic --threads 2

Every step starts from waveforms, as ``asr/training/loop.py`` does: waveform augmentation,
log-mel, normalisation, spectrogram augmentation, then the model's forward + backward + Adam
step. The presets take turns step by step (one round = one step of each), so a busy machine
slows them alike; the table gives each preset's median and its ratio to the first. Inputs are
random waveforms (the cost of rooms, babble and codecs does not depend on what is said) of
``--min-frames``..``--max-frames`` 10 ms frames.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import asr.config  # noqa: F401  (registers the schemas that conf/*.yaml name)
from asr.augment import SpectrogramAugment, WaveformAugment
from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.models import build_model
from asr.text import Vocabulary
from benchmarks.speed import CONF_DIR, NUM_FEATURES, load_model_config, timed, training_batch


def load_augment(name: str) -> tuple[WaveformAugment | None, SpectrogramAugment | None]:
    """conf/augment/<name>.yaml composed as ``asr train augment=<name>`` composes it."""
    path = CONF_DIR / "augment" / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SystemExit(f"augment.py: no {path}; choose from {', '.join(valid)}")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"augment={name}", "exp_dir=unused"])
    augment = OmegaConf.to_container(cfg.augment, resolve=True)
    waveform, spectrogram = augment.get("waveform"), augment.get("spectrogram")
    return (
        WaveformAugment(**waveform) if waveform else None,
        SpectrogramAugment(**spectrogram) if spectrogram else None,
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--augments", default="none,default,acoustic")
    parser.add_argument("--model", default="las_small")
    parser.add_argument("--attention", default="location")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-frames", type=int, default=200)
    parser.add_argument("--max-frames", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=8, help="timed steps of each preset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = args.augments.split(",")
    presets = {name: load_augment(name) for name in names}
    torch.manual_seed(args.seed)
    config = load_model_config(args.model, args.attention)
    model = build_model(config, vocab_size=len(Vocabulary()), input_size=NUM_FEATURES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    batch = training_batch(args, generator)
    filterbank = LogMelFilterbank()
    waveform_lens = (batch["lens"] - 1) * filterbank.hop_length + filterbank.window_length
    waveforms = 0.1 * torch.randn(args.batch_size, int(waveform_lens.max()), generator=generator)
    waveforms = waveforms.masked_fill(torch.arange(waveforms.size(1)) >= waveform_lens[:, None], 0)
    normalizer = GlobalNormalizer(NUM_FEATURES)
    normalizer.accumulate(*filterbank(waveforms, waveform_lens))
    normalizer.finalize()
    audio_seconds = float(waveform_lens.sum()) / 16000
    augment_generator = torch.Generator().manual_seed(args.seed)

    def step(name: str) -> None:
        waveform_augment, spectrogram_augment = presets[name]
        with torch.no_grad():
            wave, lens = waveforms, waveform_lens
            if waveform_augment is not None:
                wave, lens = waveform_augment(wave, lens, augment_generator)
            feats, feat_lens = filterbank(wave, lens)
            feats = normalizer(feats, feat_lens)
            if spectrogram_augment is not None:
                feats = spectrogram_augment(feats, feat_lens, augment_generator, normalizer.std)
        targets, target_lens = batch["targets"], batch["target_lens"]
        target_lens = torch.minimum(target_lens, (feat_lens // 10).clamp(min=1))
        optimizer.zero_grad(set_to_none=True)
        model(feats, feat_lens, targets[:, : int(target_lens.max())], target_lens).loss.backward()
        optimizer.step()

    device = torch.device("cpu")
    load_before = os.getloadavg()[0]
    for name in names:  # warm-up
        step(name)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            seconds[name].append(timed(lambda name=name: step(name), device))
    rates = {name: statistics.median(audio_seconds / s for s in seconds[name]) for name in names}
    first = names[0]
    print(
        f"{args.model}, batch {args.batch_size} x {args.min_frames}-{args.max_frames} frames, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds, load {load_before:.2f} -> "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(f"| augment | audio s/s (median) | vs {first} |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {rates[name]:.1f} | {rates[name] / rates[first]:.2f} |")
    results = {"setup": vars(args) | {"json": None}, "audio_seconds_per_second": rates}
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


if __name__ == "__main__":
    main()
