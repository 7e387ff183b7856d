"""Where a command computes: the device (``auto``, ``cpu``, ``cuda:1``) and the autocast dtype."""

from __future__ import annotations

import torch

from asr.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def select_device(name: str) -> torch.device:
    """``auto`` is cuda when present, else cpu; a CUDA name without CUDA is the user's mistake."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but no CUDA device is available")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles).

    Without them oneDNN still runs bfloat16, by converting to float32 and back, and is slower
    than float32; PyTorch's own ``mkldnn._is_mkldnn_bf16_supported`` says yes to that
    emulation too, so the CPU's feature flags decide (PyTorch reads them with cpuinfo).
    """
    cpu = getattr(torch._C, "_cpu", None)
    if cpu is None:  # a build without the probes: say no rather than guess
        return False
    return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype, or None for float32.

    ``auto`` is bfloat16 on a CUDA device that supports it (else float16) and on a CPU with
    native bfloat16 (``cpu_has_native_bf16``), float32 on other CPUs. Under autocast only the
    listener computes in low precision (``LAS.forward``); on the demo that trained 1.19x faster
    to the same dev CER as float32 (recipes/synth/README.md, "bf16"). ``bf16`` is bfloat16 on
    any device (slower than float32 on a CPU without native bfloat16); ``fp16`` applies to
    CUDA only (CPU autocast has few float16 kernels): on the CPU it is the user's mistake.
    """
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if precision == "fp16":
        raise UserError("precision fp16 runs on CUDA only; use bf16 or fp32 on the CPU")
    if precision == "auto":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16


def precision_name(dtype: torch.dtype | None) -> str:
    """How a log line names an autocast dtype: fp32, bf16 or fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
