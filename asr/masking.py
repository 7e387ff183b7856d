"""Padding masks: the one place the library turns lengths into masks.

Every padded tensor in las-asr travels with its lengths ``*_lens`` (B,); ``pad_mask`` is True
on the positions past each length, the convention used throughout (STYLE.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


def pad_mask(lens: Tensor, max_len: int) -> Tensor:
    """(B, max_len) bool, True at positions at or beyond each length (frames, samples, tokens).

    >>> pad_mask(torch.tensor([1, 3]), 3).tolist()
    [[False, True, True], [False, False, False]]
    """
    return torch.arange(max_len, device=lens.device) >= lens[:, None]
