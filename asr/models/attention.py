"""Attention mechanisms for the speller, and ``build_attention`` to pick one by name.

Every attention module is **stateless**: it keeps no tensors between calls. The speller owns
the per-step state (the previous alignment) and passes it in, so beam search can reorder that
state like any other field, and a batch never leaks into the next one.

The contract every type follows (see ``Attention``):

- ``project_keys(encoded (B, T', D_k)) -> keys (B, T', A)``, once per utterance;
- ``initial_alignment(pad_mask (B, T')) -> (B, T')``, the "previous alignment" of step 0;
- ``forward(query (B, Q), keys, values (B, T', D_k), pad_mask, prev_alignment)
  -> (context (B, D_k), alignment (B, T'))``, with alignment weights exactly 0 on padding.

To add a type, subclass ``Attention`` and register it in ``ATTENTION_TYPES``; its constructor
takes ``query_size`` and ``key_size`` first, and the rest are config keys with defaults. A type
whose context is exactly ``Σ_i α_i values_i`` (values used for nothing else) may set
``context_is_weighted_values = True``: the speller then computes the values' gradient once for
all training steps instead of once per step (``Speller.forward``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    """Base class of the stateless attention modules (the contract is in the module docstring)."""

    # True when forward's context is Σ_i α_i values_i and values are used for nothing else.
    context_is_weighted_values = False

    def project_keys(self, encoded: Tensor) -> Tensor:
        """encoded (B, T', D_k) -> keys (B, T', A); computed once per utterance."""
        raise NotImplementedError

    def initial_alignment(self, pad_mask: Tensor) -> Tensor:
        """(B, T') alignment before the first step: all weight on frame 0 (never padding)."""
        dtype = next(self.parameters(), torch.empty(0)).dtype  # float32 without parameters
        alignment = torch.zeros(pad_mask.shape, dtype=dtype, device=pad_mask.device)
        alignment[:, 0] = 1.0
        return alignment


class LocationAwareAttention(Attention):
    """Content + location attention (Chorowski et al. 2015, "Attention-Based Models for Speech
    Recognition", §2.1-2.3), with the query being the speller state s_i as in LAS.

    Energies (eq. 8), with location features from the previous alignment (eq. 7)::

        f_t   = F * α_{t-1}                                    (Conv1d, 'same' padding)
        e_t,i = β · wᵀ tanh(W s_t + V h_i + U f_t,i + b)

    then α_t = softmax(e_t) over real frames (eq. 6 with sharpening β, §2.3), or with
    ``smoothing`` α_t,i = σ(e_t,i) / Σ_j σ(e_t,j) (Chorowski's smooth focus, §2.3).

    Args:
        query_size: Q, width of the speller state s.
        key_size: D_k, width of the encoder outputs h.
        attention_size: A, width of the energy MLP.
        location_channels: number of convolution filters in F.
        location_kernel_size: odd width of F in encoder frames.
        sharpening: inverse temperature β (> 0) multiplying the energies.
        smoothing: sigmoid-normalised weights instead of softmax.
    """

    context_is_weighted_values = True

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attention_size: int = 128,
        location_channels: int = 10,
        location_kernel_size: int = 31,
        sharpening: float = 1.0,
        smoothing: bool = False,
    ) -> None:
        super().__init__()
        if min(query_size, key_size, attention_size, location_channels) < 1:
            raise ValueError(
                "attention query_size, key_size, attention_size and location_channels must be "
                "positive"
            )
        if location_kernel_size < 1 or location_kernel_size % 2 == 0:
            raise ValueError(
                f"location_kernel_size must be a positive odd number, got {location_kernel_size}"
            )
        if sharpening <= 0:
            raise ValueError(f"sharpening must be positive, got {sharpening}")
        self.sharpening = sharpening
        self.smoothing = smoothing
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W
        self.key_projection = nn.Linear(key_size, attention_size)  # V and b
        self.location_conv = nn.Conv1d(  # F
            1, location_channels, location_kernel_size, padding="same", bias=False
        )
        self.location_projection = nn.Linear(location_channels, attention_size, bias=False)  # U
        self.energy = nn.Linear(attention_size, 1, bias=False)  # w

    def project_keys(self, encoded: Tensor) -> Tensor:
        """V h_i + b for every frame: (B, T', D_k) -> (B, T', A)."""
        return self.key_projection(encoded)

    def energies(self, query: Tensor, keys: Tensor, prev_alignment: Tensor) -> Tensor:
        """Sharpened energies β e_t (B, T') before masking and normalisation (eq. 7-8).

        query (B, Q), keys (B, T', A) from ``project_keys``, prev_alignment (B, T').
        """
        # f_t = F * α_{t-1} as a matmul over sliding windows of α, the same cross-correlation
        # as ``location_conv`` (zero 'same' padding) without Conv1d's per-call overhead and
        # (B, C, T') layout; this runs once per output character.
        kernel = self.location_conv.kernel_size[0]
        padded = nn.functional.pad(prev_alignment, (kernel // 2, kernel // 2))
        windows = padded.unfold(1, kernel, 1)  # (B, T', K): α_{t-1} around each frame
        location = windows @ self.location_conv.weight.view(-1, kernel).t()  # f_t: (B, T', C)
        hidden = keys + self.query_projection(query)[:, None, :]  # W s_t + V h_i + b: (B, T', A)
        # + U f_t,i, accumulated in place: one (B, T', A) tensor per step instead of three.
        # (.to() matters only under autocast, where the weight stays float32.)
        projection = self.location_projection.weight.t().to(hidden.dtype)  # (C, A)
        hidden = hidden.baddbmm_(location.to(hidden.dtype), projection.expand(len(hidden), -1, -1))
        energies = self.energy(hidden.tanh_()).squeeze(-1)  # (B, T')
        return energies if self.sharpening == 1.0 else self.sharpening * energies

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        pad_mask: Tensor,
        prev_alignment: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """One attention step.

        Args:
            query: (B, Q) speller state s_t.
            keys: (B, T', A) from ``project_keys``.
            values: (B, T', D_k) encoder outputs h.
            pad_mask: (B, T') True on padded frames.
            prev_alignment: (B, T') α_{t-1}, zero on padding.

        Returns:
            context (B, D_k) = Σ_i α_t,i h_i, and alignment α_t (B, T'), exactly 0 on padding.
        """
        energies = self.energies(query, keys, prev_alignment)
        if self.smoothing:
            # Smooth focus (§2.3): sigmoid scores, normalised over real frames only.
            scores = torch.sigmoid(energies).masked_fill(pad_mask, 0.0)
            alignment = scores / scores.sum(dim=-1, keepdim=True)
        else:
            alignment = torch.softmax(energies.masked_fill(pad_mask, float("-inf")), dim=-1)
        context = torch.bmm(alignment[:, None, :], values).squeeze(1)  # (B, D_k)
        return context, alignment


ATTENTION_TYPES: dict[str, type[Attention]] = {
    "location": LocationAwareAttention,
}


def build_attention(type: str, query_size: int, key_size: int, **kwargs) -> nn.Module:
    """The attention module registered as ``type`` in ``ATTENTION_TYPES``.

    >>> build_attention("location", query_size=4, key_size=6, attention_size=3).energy
    Linear(in_features=3, out_features=1, bias=False)
    """
    if type not in ATTENTION_TYPES:
        valid = ", ".join(sorted(ATTENTION_TYPES))
        raise ValueError(f"unknown attention type {type!r}; valid types: {valid}")
    return ATTENTION_TYPES[type](query_size=query_size, key_size=key_size, **kwargs)
