"""Devices and number formats: which autocast dtype each trainer.precision gives, and where."""

from __future__ import annotations

import pytest
import torch

from asr import devices
from asr.devices import autocast_dtype, precision_name
from asr.errors import UserError

CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_on_cpus_that_multiply_it_in_hardware(native, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert autocast_dtype("auto", CPU) == (torch.bfloat16 if native else None)


@pytest.mark.parametrize("native", [True, False])
def test_explicit_formats_on_the_cpu_do_not_depend_on_the_probe(native, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) == torch.bfloat16


def test_fp16_on_the_cpu_and_unknown_names_are_one_clear_error():
    with pytest.raises(UserError, match="fp16 runs on CUDA only"):
        autocast_dtype("fp16", CPU)
    with pytest.raises(UserError, match="must be auto, fp32, bf16 or fp16"):
        autocast_dtype("half", CPU)


def test_the_probe_agrees_with_the_cpu_flags_linux_reports():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = [line for line in cpuinfo if line.startswith("flags")]
    except OSError:
        lines = []
    if not lines:
        pytest.skip("no x86 CPU flags in /proc/cpuinfo on this system")
    flags = lines[0].split()
    expected = "avx512_bf16" in flags or "amx_bf16" in flags or "amx_tile" in flags
    assert devices.cpu_has_native_bf16() == expected


def test_precision_names():
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == [
        "fp32",
        "bf16",
        "fp16",
    ]
