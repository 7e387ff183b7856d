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


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype, or None for float32. CPU always trains in float32."""
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16
