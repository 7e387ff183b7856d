"""The learning-rate schedule: linear warm-up, then cosine decay (torch.optim.lr_scheduler).

Per optimizer step ``s`` of ``total_steps`` with ``warmup_steps`` = W, the LR is ``lr`` times

    (s + 1) / W                                              for s < W
    r + (1 - r) · (1 + cos(π · (s - W) / (total_steps - W))) / 2   after, r = final_lr_ratio

so it reaches ``lr`` at the last warm-up step and ``r · lr`` at the last step (Loshchilov &
Hutter 2017, SGDR, without restarts).
"""

from __future__ import annotations

import warnings

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine_schedule(
    optimizer: Optimizer,
    warmup_steps: int,
    total_steps: int,
    final_lr_ratio: float,
    start_step: int = 0,
) -> LRScheduler:
    """The schedule above, stepped once per optimizer step, positioned at ``start_step``.

    A resumed run passes the steps already taken: the schedule is replayed to there for the
    run's ``total_steps`` now (a longer ``trainer.max_epochs`` stretches the decay, as planned
    afresh), from each group's ``initial_lr`` when the optimizer state has one.
    """
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be 0 (no warm-up) or more, got {warmup_steps}")
    if len({group.get("initial_lr", group["lr"]) for group in optimizer.param_groups}) != 1:
        raise ValueError("the schedule's floor (eta_min) is one LR: use one LR for all groups")
    for group in optimizer.param_groups:
        group["lr"] = group.setdefault("initial_lr", group["lr"])
    base_lr = optimizer.param_groups[0]["initial_lr"]
    decay = CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=final_lr_ratio * base_lr
    )
    schedule: LRScheduler = decay
    if warmup_steps > 0:
        warmup = LinearLR(
            optimizer,
            start_factor=1.0 / warmup_steps,
            end_factor=1.0,
            total_iters=max(1, warmup_steps - 1),  # factor 1 at step W - 1
        )
        schedule = SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
    with warnings.catch_warnings():  # replaying without optimizer steps is the point here
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler", UserWarning)
        for _ in range(start_step):
            schedule.step()
    return schedule
