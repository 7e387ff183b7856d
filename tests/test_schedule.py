"""The LR schedule (torch's LinearLR then CosineAnnealingLR) follows its documented formula."""

from __future__ import annotations

import math

import pytest
import torch

from asr.schedule import warmup_cosine_schedule

LR = 1.5e-3


def documented(step: int, warmup: int, total: int, final_ratio: float) -> float:
    """asr/schedule.py's formula: linear warm-up to 1, then cosine down to ``final_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=LR)


def lr_per_step(opt, schedule, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return rates


@pytest.mark.parametrize(
    ("warmup", "total", "final_ratio"),
    [(10, 110, 0.1), (1, 40, 0.05), (150, 3000, 0.05), (0, 30, 0.2)],
)
def test_lr_per_step_is_the_documented_formula(warmup, total, final_ratio):
    opt = optimizer()
    rates = lr_per_step(opt, warmup_cosine_schedule(opt, warmup, total, final_ratio), total + 1)
    # float64; torch's cosine is recursive, so rounding adds up over the steps, far below 1e-9.
    for step, rate in enumerate(rates):
        assert abs(rate / LR - documented(step, warmup, total, final_ratio)) < 1e-9, step
    assert rates[max(0, warmup - 1)] == pytest.approx(LR)
    assert rates[total] == pytest.approx(final_ratio * LR)


def test_a_resumed_schedule_continues_where_the_run_stopped():
    opt = optimizer()
    lr_per_step(opt, warmup_cosine_schedule(opt, 10, 110, 0.1), 37)
    state = opt.state_dict()

    resumed = optimizer()
    resumed.load_state_dict(state)  # as asr.training.state.resume does
    schedule = warmup_cosine_schedule(resumed, 10, 110, 0.1, start_step=37)
    for offset, rate in enumerate(lr_per_step(resumed, schedule, 74)):
        assert abs(rate / LR - documented(37 + offset, 10, 110, 0.1)) < 1e-9


def test_a_resumed_run_with_more_steps_stretches_the_decay():
    opt = optimizer()
    lr_per_step(opt, warmup_cosine_schedule(opt, 10, 50, 0.1), 50)
    resumed = optimizer()
    resumed.load_state_dict(opt.state_dict())
    schedule = warmup_cosine_schedule(resumed, 10, 200, 0.1, start_step=50)
    rates = lr_per_step(resumed, schedule, 151)
    for offset, rate in enumerate(rates):
        assert abs(rate / LR - documented(50 + offset, 10, 200, 0.1)) < 1e-9
