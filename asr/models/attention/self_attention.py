"""Self-attention over the listener output, built on any content score function."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.models.attention.registry import ATTENTION_TYPES, build_attention


class SelfAttention(nn.Module):
    """Self-attention over the listener output (Vaswani et al. 2017, §3.2; Cheng et al. 2016):
    every frame attends to every real frame of the same utterance, and
    y = LayerNorm(h + W_o Attention(h, h, W_v h)) with padded frames zeroed.

    Any content score function works (``type``: scaled_dot by default, dot, general, additive,
    content, location_base); ``location`` reads a previous alignment a single pass does not have.

    Args:
        size: D, width of the listener output.
        type: score function name in ``ATTENTION_TYPES``.
        num_heads: heads (multi-head needs a type that supports them: additive, scaled_dot).
        dropout: dropout on the attention output before the residual.
        **score_options: the score function's own options, e.g. ``attention_size``.
    """

    def __init__(
        self,
        size: int,
        type: str = "scaled_dot",
        num_heads: int = 1,
        dropout: float = 0.0,
        **score_options,
    ) -> None:
        super().__init__()
        if type in ("location", "none"):
            raise ValueError(
                f"self-attention needs a content score function, not {type!r}; valid: "
                + ", ".join(sorted(set(ATTENTION_TYPES) - {"location", "none"}))
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"self-attention dropout must be in [0, 1), got {dropout}")
        self.scorer = build_attention(type, size, size, num_heads=num_heads, **score_options)
        if num_heads > 1:  # the speller's per-head value reading; ours is W_v below
            del self.scorer.value_projection, self.scorer.output_projection
        self.num_heads = num_heads
        self.value_projection = nn.Linear(size, size)  # W_v
        self.output_projection = nn.Linear(size, size)  # W_o
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(size)

    def forward(self, x: Tensor, lens: Tensor) -> Tensor:
        """x (B, T', D) with padding zeroed, lens (B,) -> (B, T', D), padding zeroed."""
        batch, frames, size = x.shape
        padding = pad_mask(lens.to(x.device), frames)
        energies = self.scorer.score(x, self.scorer.project_keys(x))  # (B, heads, T', T')
        weights = torch.softmax(energies.masked_fill(padding[:, None, None], float("-inf")), -1)
        values = self.value_projection(x).view(batch, frames, self.num_heads, -1).transpose(1, 2)
        attended = (weights @ values).transpose(1, 2).reshape(batch, frames, size)
        out = self.norm(x + self.dropout(self.output_projection(attended)))
        return out.masked_fill(padding[:, :, None], 0.0)
