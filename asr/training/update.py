"""Optimizer updates: batches' losses → accumulated gradients → one clipped step, or a skip.

A group of ``trainer.accumulate_batches`` batches makes one update. Each batch's mean loss runs
backward divided by the group size, so the group's gradient is that of one larger batch; under
DDP the gradients are averaged across ranks only on the group's last batch. The update clips the
gradient norm to ``optim.max_grad_norm``, then steps the optimizer, the AMP scaler and the LR
schedule. It is skipped instead, its gradients dropped and the reason counted in
:class:`~asr.training.state.Progress`, when a batch's loss or the gradient norm is not finite or
a batch ran out of memory; every rank skips together, and ``trainer.max_bad_steps`` non-finite
skips in a row stop the run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from asr import distributed
from asr.errors import UserError
from asr.models.las import LossOutput
from asr.training.state import NON_FINITE, OUT_OF_MEMORY, Progress


class Updater:
    """Turns batches into optimizer updates for ``model``, counting skipped ones in ``progress``.

    ``train_model`` is the module the batches run through (``model`` itself, or its DDP wrapper);
    ``amp_dtype`` is the autocast dtype, None for full precision.
    """

    def __init__(
        self,
        model: nn.Module,
        train_model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        progress: Progress,
        context: distributed.Context,
        amp_dtype: torch.dtype | None,
        accumulate_batches: int,
        max_grad_norm: float,
        max_bad_steps: int,
    ) -> None:
        self.model, self.train_model = model, train_model
        self.optimizer, self.scaler, self.scheduler = optimizer, scaler, scheduler
        self.progress, self.context, self.amp_dtype = progress, context, amp_dtype
        self.accumulate_batches = accumulate_batches
        self.max_grad_norm = max_grad_norm
        self.max_bad_steps = max_bad_steps
        self.group_fault: str | None = None  # why the pending gradients cannot be used

    def forward(self, features, feature_lens, targets, target_lens) -> LossOutput:
        """The model's losses on one batch: (B, T, F) features, (B, U) targets."""
        device_type = self.context.device.type
        autocast = (
            torch.autocast(device_type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        )
        with autocast:
            return self.train_model(features, feature_lens, targets, target_lens)

    def backward(
        self, losses_of_batch: Callable[[], LossOutput], sync: bool, batch_in_words: str
    ) -> LossOutput | None:
        """Run ``losses_of_batch()`` and its backward, scaled for accumulation; returns the
        losses, or None for a batch that ran out of memory (skipped, with its group's update).

        ``sync=False`` (a batch inside an accumulation group) keeps DDP from averaging the
        gradients across ranks until the group's last batch. ``batch_in_words`` describes the
        batch in the out-of-memory message of a multi-process run.
        """
        no_sync = self.train_model.no_sync if self.context.is_distributed and not sync else None
        try:
            with no_sync() if no_sync else nullcontext():
                losses = losses_of_batch()
                # Each batch's loss is a mean; dividing by the accumulation count makes the
                # accumulated gradient their mean, the gradient of one larger batch.
                self.scaler.scale(losses.loss / self.accumulate_batches).backward()
        except torch.OutOfMemoryError:
            if self.context.is_distributed:  # the other ranks wait in the all-reduce for good
                raise UserError(
                    f"out of memory on rank {self.context.rank} with {batch_in_words}: "
                    f"lower data.max_batch_seconds"
                ) from None
            self.group_fault = OUT_OF_MEMORY
            if self.context.device.type == "cuda":
                torch.cuda.empty_cache()
            return None
        if not torch.isfinite(losses.loss.detach()):
            self.group_fault = self.group_fault or NON_FINITE
        return losses

    def step(self) -> Tensor | None:
        """Clip, step and schedule on the accumulated gradients; returns their norm, or None
        where the update was skipped (a non-finite loss or gradient, an out-of-memory batch)."""
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        fault = self.group_fault
        # An fp16 scaler overflowing is its normal way to find its scale: it skips the step
        # itself. Otherwise a non-finite gradient norm means the update would ruin the weights.
        if fault is None and not self.scaler.is_enabled() and not torch.isfinite(grad_norm):
            fault = NON_FINITE
        (bad,) = distributed.any_rank([fault is not None], self.context)
        self.group_fault = None
        if bad:
            self.skip(fault or NON_FINITE)
            return None
        self.progress.bad_in_a_row = 0
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        return grad_norm

    def skip(self, reason: str) -> None:
        """Drop the accumulated gradients; count; stop after trainer.max_bad_steps in a row."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.update()  # unscale_ was called: the scaler expects an update
        self.progress.count_skipped(reason, self.max_bad_steps)
