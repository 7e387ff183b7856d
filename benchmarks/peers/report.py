"""The Markdown tables of a run's results (``benchmarks/README.md`` shows them)."""

from __future__ import annotations

from benchmarks.peers.workload import MATMUL_SIZE


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


def markdown_tables(results: dict) -> str:
    setup, systems = results["setup"], results["systems"]
    lines = [
        f"{setup['device_name']}, {setup['threads']} threads (OMP_WAIT_POLICY "
        f"{setup['omp_wait_policy']}), torch {setup['torch']}; load average "
        f"{setup['load_before']} before, {setup['load_after']} after."
    ]
    if "matmul_gflops" in results:
        rate = results["matmul_gflops"]
        lines[0] += (
            f" float32 matmul ({MATMUL_SIZE}³) in the same run: {rate['median']:.0f} GFLOP/s "
            f"({rate['min']:.0f}–{rate['max']:.0f})."
        )
    reference = systems.get("las-asr", {})
    if any("train" in entry for entry in systems.values()):
        matmul = results["matmul_gflops"]["median"]
        lines += [
            "",
            "| training | s / step (min–max) | n | audio s / s | las-asr faster by | "
            "GFLOP / step | GFLOP/s | % of matmul | memory |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        ours = reference.get("train", {}).get("audio_seconds_per_second", {}).get("median")
        for name, entry in systems.items():
            if "train" not in entry:
                continue
            train = entry["train"]
            step, rate = train["step_seconds"], train["audio_seconds_per_second"]["median"]
            gflops = train["gflops"]["median"]
            lines.append(
                f"| {name} | {step['median']:.2f} ({step['min']:.2f}–{step['max']:.2f}) | "
                f"{train['steps']} | {rate:.1f} | {_ratio(name, ours, rate)} | "
                f"{train['gflop_per_step']:.3g} | {gflops:.3g} | {100 * gflops / matmul:.0f}% | "
                f"{_memory(entry.get('train_memory'))} |"
            )
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} | | | | | | | |")
    searches = [s for s in ("greedy", "beam") if any(s in e for e in systems.values())]
    if searches:
        beam = setup["workload"]["beam_size"]
        labels = {"greedy": "greedy", "beam": f"beam {beam}"}
        header = "| decoding |"
        for search in searches:
            header += f" {labels[search]} RTF (min–max) | las-asr faster by | memory |"
        lines += ["", header, "|---" * (1 + 3 * len(searches)) + "|"]
        for name, entry in systems.items():
            row = f"| {name} |"
            for search in searches:
                if search not in entry:
                    row += " — | — | — |"
                    continue
                rtf = entry[search]["real_time_factor"]
                ours = reference.get(search, {}).get("real_time_factor", {}).get("median")
                row += (
                    f" {rtf['median']:.4f} ({rtf['min']:.4f}–{rtf['max']:.4f}) | "
                    f"{_ratio(name, rtf['median'], ours)} | "
                    f"{_memory(entry.get(f'{search}_memory'))} |"
                )
            lines.append(row)
        for name, why in results["skipped"].items():
            lines.append(f"| {name} | {why} |" + " |" * (3 * len(searches) - 1))
    return "\n".join(lines)
