"""The Markdown tables of a run's results (``benchmarks/README.md`` shows them): one row per
system and number format, each compared with las-asr and the matmul of its own format, then each
system's bf16 throughput against its fp32 throughput."""

from __future__ import annotations

from benchmarks.peers.workload import MATMUL_SIZE

FORMAT_NAMES = {"fp32": "float32", "bf16": "bfloat16"}


def _memory(entry: dict | None) -> str:
    if entry is None:
        return "—"
    if entry["rise_mib"] is None:
        return f"{entry['peak_mib']:,.0f} MiB (lifetime peak)"
    return f"+{entry['rise_mib']:,.0f} MiB"


def _ratio(name: str, numerator: float | None, denominator: float | None) -> str:
    if name == "las-asr" or not numerator or not denominator:
        return "—"
    return f"{numerator / denominator:.2f}×"


def _median(runs: dict, phase: str, field: str) -> float | None:
    return runs.get(phase, {}).get(field, {}).get("median")


def _throughput(runs: dict, phase: str) -> float | None:
    """Audio seconds per wall-clock second of one phase (1 / RTF for a search)."""
    if phase == "train":
        return _median(runs, "train", "audio_seconds_per_second")
    rtf = _median(runs, phase, "real_time_factor")
    return 1 / rtf if rtf else None


def markdown_tables(results: dict) -> str:
    setup, systems = results["setup"], results["systems"]
    precisions = setup["precisions"]
    lines = [
        f"{setup['device_name']}, {setup['threads']} threads (OMP_WAIT_POLICY "
        f"{setup['omp_wait_policy']}), torch {setup['torch']}; load average "
        f"{setup['load_before']} before, {setup['load_after']} after."
    ]
    if "matmul_gflops" in results:
        rates = ", ".join(
            f"{FORMAT_NAMES[precision]} {rate['median']:.0f} GFLOP/s "
            f"({rate['min']:.0f}–{rate['max']:.0f})"
            for precision, rate in results["matmul_gflops"].items()
        )
        lines[0] += f" Matmul ({MATMUL_SIZE}³) in the same run: {rates}."
    reference = systems.get("las-asr", {})
    phases = [
        phase
        for phase in ("train", "greedy", "beam")
        if any(phase in entry[precision] for entry in systems.values() for precision in precisions)
    ]
    if "train" in phases:
        lines += [
            "",
            "| training | format | s / step (min–max) | n | audio s / s | las-asr faster by | "
            "GFLOP / step | GFLOP/s | % of matmul | memory |",
            "|---" * 10 + "|",
        ]
        for precision in precisions:
            matmul = results["matmul_gflops"][precision]["median"]
            ours = _throughput(reference.get(precision, {}), "train")
            for name, entry in systems.items():
                runs = entry[precision]
                if "train" not in runs:
                    continue
                train = runs["train"]
                step, rate = train["step_seconds"], train["audio_seconds_per_second"]["median"]
                gflops = train["gflops"]["median"]
                lines.append(
                    f"| {name} | {precision} | {step['median']:.2f} ({step['min']:.2f}–"
                    f"{step['max']:.2f}) | {train['steps']} | {rate:.1f} | "
                    f"{_ratio(name, ours, rate)} | {train['gflop_per_step']:.3g} | "
                    f"{gflops:.3g} | {100 * gflops / matmul:.0f}% | "
                    f"{_memory(runs.get('train_memory'))} |"
                )
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} |" + " |" * 8)
    beam = setup["workload"]["beam_size"]
    labels = {"train": "training", "greedy": "greedy", "beam": f"beam {beam}"}
    searches = [phase for phase in phases if phase != "train"]
    if searches:
        header = "| decoding | format |"
        for search in searches:
            header += f" {labels[search]} RTF (min–max) | las-asr faster by | memory |"
        lines += ["", header, "|---" * (2 + 3 * len(searches)) + "|"]
        for precision in precisions:
            for name, entry in systems.items():
                runs, row = entry[precision], f"| {name} | {precision} |"
                for search in searches:
                    if search not in runs:
                        row += " — | — | — |"
                        continue
                    rtf = runs[search]["real_time_factor"]
                    ours = _median(reference.get(precision, {}), search, "real_time_factor")
                    row += (
                        f" {rtf['median']:.4f} ({rtf['min']:.4f}–{rtf['max']:.4f}) | "
                        f"{_ratio(name, rtf['median'], ours)} | "
                        f"{_memory(runs.get(f'{search}_memory'))} |"
                    )
                lines.append(row)
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} |" + " |" * (3 * len(searches)))
    if {"fp32", "bf16"} <= set(precisions) and phases:
        lines += [
            "",
            "| bf16 / fp32 throughput | " + " | ".join(labels[phase] for phase in phases) + " |",
            "|---" * (1 + len(phases)) + "|",
        ]
        for name, entry in systems.items():
            cells = []
            for phase in phases:
                bf16, fp32 = _throughput(entry["bf16"], phase), _throughput(entry["fp32"], phase)
                cells.append(f"{bf16 / fp32:.2f}×" if bf16 and fp32 else "—")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
