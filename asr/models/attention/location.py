"""Content + location attention (Chorowski et al. 2015): the score function that also reads
the previous alignment, through a convolution over it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.models.attention.base import Attention


class LocationAwareAttention(Attention):
    """Content + location attention (Chorowski et al. 2015, "Attention-Based Models for Speech
    Recognition", §2.1-2.3), with the query being the speller state s_t as in LAS.

    Energies (eq. 8), with location features from the previous alignment (eq. 7)::

        f_t   = F * α_{t-1}                                    (Conv1d, 'same' padding)
        e_t,i = wᵀ tanh(W s_t + V h_i + U f_t,i + b)

    With heads, head h convolves its own α^h_{t-1} with its own filters F_h and has its own W_h,
    V_h, w_h in ``attention_size / heads`` dimensions; U is shared by the heads.

    Args:
        attention_size: A, width of the energy MLP (split across heads).
        location_channels: number of convolution filters in F (per head).
        location_kernel_size: odd width of F in listener frames.
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attention_size: int = 128,
        location_channels: int = 10,
        location_kernel_size: int = 31,
        **attending,
    ) -> None:
        super().__init__(query_size, key_size, **attending)
        heads = self.num_heads
        if min(attention_size, location_channels) < 1 or attention_size % heads:
            raise ValueError(
                "attention_size and location_channels must be positive, attention_size "
                f"divisible by num_heads {heads}"
            )
        if location_kernel_size < 1 or location_kernel_size % 2 == 0:
            raise ValueError(
                f"location_kernel_size must be a positive odd number, got {location_kernel_size}"
            )
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W
        self.key_projection = nn.Linear(key_size, attention_size)  # V and b
        self.location_conv = nn.Conv1d(  # F, one group of filters per head
            heads,
            heads * location_channels,
            location_kernel_size,
            padding="same",
            bias=False,
            groups=heads,
        )
        head_size = attention_size // heads
        self.location_projection = nn.Linear(location_channels, head_size, bias=False)  # U
        self.energy = nn.Linear(head_size, heads, bias=False)  # w per head

    def project_keys(self, encoded: Tensor) -> Tensor:
        """V h_i + b for every frame: (B, T', D) -> (B, T', A)."""
        return self.key_projection(encoded)

    def energies(self, query: Tensor, keys: Tensor, prev_alignment: Tensor) -> Tensor:
        """Energies e_t (B, heads, T') (eq. 7-8); prev_alignment (B, heads, T')."""
        # f_t = F * α_{t-1} as a matmul over sliding windows of α, the same cross-correlation
        # as ``location_conv`` (zero 'same' padding) without Conv1d's per-call overhead and
        # (B, C, T') layout; this runs once per output character.
        kernel = self.location_conv.kernel_size[0]
        heads = self.num_heads
        padded = nn.functional.pad(prev_alignment, (kernel // 2, kernel // 2))
        windows = padded.unfold(-1, kernel, 1)  # (B, heads, T', K): α_{t-1} around each frame
        filters = self.location_conv.weight.view(heads, -1, kernel)  # (heads, C, K)
        if heads == 1:
            location = windows.squeeze(1) @ filters[0].t()  # f_t: (B, T', C)
            hidden = keys + self.query_projection(query)[:, None, :]  # W s + V h_i + b
            # + U f_t,i, accumulated in place: one (B, T', A) tensor per step instead of three.
            # (.to() matters only under autocast, where the weight stays float32.)
            projection = self.location_projection.weight.t().to(hidden.dtype)  # (C, A)
            hidden = hidden.baddbmm_(
                location.to(hidden.dtype), projection.expand(len(hidden), -1, -1)
            )
            return self.energy(hidden.tanh_()).transpose(1, 2)  # (B, 1, T')
        batch, frames, size = keys.shape
        location = torch.einsum("bhtk,hck->bhtc", windows, filters)  # (B, heads, T', C)
        hidden = (
            keys.view(batch, frames, heads, -1).transpose(1, 2)  # (B, heads, T', A/heads)
            + self.query_projection(query).view(batch, heads, 1, -1)
            + self.location_projection(location)
        )
        return torch.einsum("bhta,ha->bht", hidden.tanh(), self.energy.weight)
