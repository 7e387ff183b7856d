"""The score functions that read the speller state and the listener outputs only (content,
additive, location_base, general, dot, scaled_dot), and ``none``, the fixed-context baseline.
Location-aware attention, which also reads the previous alignment, is in ``location.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from asr.models.attention.base import Attention


class ContentAttention(Attention):
    """Content-based addressing (Graves et al. 2014, "Neural Turing Machines", §3.3.1, eq. 5-6):
    e_i = β_t · cos(W s_t, h_i), with the key strength β_t = softplus(w_β · s_t + b) > 0 emitted
    by the speller state, so the model learns how sharply to focus at each step.

    The cosine lies in [-1, 1], so β_t alone sets how peaked the weights can be; its bias starts at
    ``initial_strength`` (softplus⁻¹), since β ≈ 0.7 would begin almost uniform.
    """

    def __init__(
        self, query_size: int, key_size: int, initial_strength: float = 5.0, **attending
    ) -> None:
        super().__init__(query_size, key_size, **attending)
        if self.num_heads != 1:
            raise ValueError(
                "content attention has one head; num_heads > 1 is for additive, "
                "scaled_dot and location"
            )
        if initial_strength <= 0:
            raise ValueError(f"initial_strength must be positive, got {initial_strength}")
        self.query_projection = nn.Linear(query_size, key_size, bias=False)  # W
        self.strength = nn.Linear(query_size, 1)  # w_β, b
        with torch.no_grad():
            self.strength.bias.fill_(math.log(math.expm1(initial_strength)))

    def project_keys(self, encoded: Tensor) -> Tensor:
        """h_i / ‖h_i‖, (B, T', D)."""
        return nn.functional.normalize(encoded, dim=-1)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        direction = nn.functional.normalize(self.query_projection(query), dim=-1)  # (B, N, D)
        strength = nn.functional.softplus(self.strength(query))  # β_t (B, N, 1)
        return (strength * direction @ keys.transpose(1, 2))[:, None]  # (B, 1, N, T')


class AdditiveAttention(Attention):
    """Additive attention (Bahdanau et al. 2015, eq. 6 and appendix A.1.2):
    e_i = vᵀ tanh(W s + V h_i + b), with V h_i + b projected once per utterance.

    Args:
        attention_size: A, width of the tanh layer (split evenly across heads).
    """

    def __init__(
        self, query_size: int, key_size: int, attention_size: int = 128, **attending
    ) -> None:
        super().__init__(query_size, key_size, **attending)
        if attention_size < 1 or attention_size % self.num_heads:
            raise ValueError(
                f"attention_size {attention_size} must be positive and divisible by num_heads "
                f"{self.num_heads}"
            )
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W
        self.key_projection = nn.Linear(key_size, attention_size)  # V and b
        self.energy = nn.Linear(attention_size // self.num_heads, self.num_heads, bias=False)

    def project_keys(self, encoded: Tensor) -> Tensor:
        return self.key_projection(encoded)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        heads = self.num_heads
        batch, frames, size = keys.shape
        queries = self.query_projection(query)  # (B, N, A)
        hidden = keys.view(batch, 1, frames, heads, -1) + queries.view(
            batch, -1, 1, heads, size // heads
        )
        return torch.einsum("bntha,ha->bhnt", hidden.tanh(), self.energy.weight)


class LocationBaseAttention(Attention):
    """Location-based attention (Luong et al. 2015, §3.1): α = softmax(W s), one score per input
    position from the speller state alone, with no look at the listener outputs.

    W has one row per position, so it needs a maximum source length (``max_source_length``
    listener frames). Shorter utterances use their first frames' scores and mask the rest;
    frames beyond ``max_source_length`` **receive no weight at all**: the model cannot listen to
    them. That limit is this mechanism's nature, and the concatenated-utterance test shows it.
    """

    # The keys carry no information here, so the values' one-shot gradient (which rides on the
    # keys' backward pass in ``Speller.forward``) would never run: let autograd do it per step.
    context_is_weighted_values = False

    def __init__(
        self, query_size: int, key_size: int, max_source_length: int = 512, **attending
    ) -> None:
        super().__init__(query_size, key_size, **attending)
        if self.num_heads != 1:
            raise ValueError("location_base attention has one head")
        if max_source_length < 1:
            raise ValueError(f"max_source_length must be positive, got {max_source_length}")
        self.max_source_length = max_source_length
        self.position_scores = nn.Linear(query_size, max_source_length)  # W

    def project_keys(self, encoded: Tensor) -> Tensor:
        """The keys are unused: the scores depend on positions only."""
        return encoded

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        frames = keys.size(1)
        energies = self.position_scores(query)[:, None, :, :frames]  # (B, 1, N, ≤ T')
        missing = frames - energies.size(-1)  # frames past max_source_length: never attended
        return nn.functional.pad(energies, (0, missing), value=float("-inf"))


class GeneralAttention(Attention):
    """General (bilinear) attention (Luong et al. 2015, eq. 8): e_i = sᵀ W h_i, with W h_i
    projected once per utterance."""

    def __init__(self, query_size: int, key_size: int, **attending) -> None:
        super().__init__(query_size, key_size, **attending)
        if self.num_heads != 1:
            raise ValueError("general attention has one head")
        self.key_projection = nn.Linear(key_size, query_size, bias=False)  # W

    def project_keys(self, encoded: Tensor) -> Tensor:
        return self.key_projection(encoded)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return (query @ keys.transpose(1, 2))[:, None]


class DotAttention(Attention):
    """Dot-product attention (Luong et al. 2015, eq. 8): e_i = sᵀ h_i. No parameters, so the
    speller state and the listener outputs must have the same width (``speller.hidden_size`` =
    2 × ``listener.hidden_size``)."""

    scale = False

    def __init__(self, query_size: int, key_size: int, **attending) -> None:
        super().__init__(query_size, key_size, **attending)
        if self.num_heads == 1 and query_size != key_size:
            name = "scaled_dot" if self.scale else "dot"
            raise ValueError(
                f"{name} attention needs the speller's hidden_size ({query_size}) to equal the "
                f"listener's output size ({key_size}, twice listener.hidden_size)"
            )

    def project_keys(self, encoded: Tensor) -> Tensor:
        return encoded

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        energies = (query @ keys.transpose(1, 2))[:, None]  # (B, 1, N, T')
        return energies / math.sqrt(keys.size(-1)) if self.scale else energies


class ScaledDotAttention(DotAttention):
    """Scaled dot-product attention (Vaswani et al. 2017, eq. 1): e_i = sᵀ h_i / √D, which keeps
    the softmax out of saturation as D grows. With ``num_heads`` > 1 it is multi-head attention
    (§3.2.2): s and h are projected to ``attention_size`` and split into heads of width
    d = attention_size / heads, each scored as (W_q^h s)ᵀ (W_k^h h_i) / √d.
    """

    scale = True

    def __init__(
        self, query_size: int, key_size: int, attention_size: int = 128, **attending
    ) -> None:
        super().__init__(query_size, key_size, **attending)
        if self.num_heads > 1:
            if attention_size < 1 or attention_size % self.num_heads:
                raise ValueError(
                    f"attention_size {attention_size} must be positive and divisible by "
                    f"num_heads {self.num_heads}"
                )
            self.query_projection = nn.Linear(query_size, attention_size, bias=False)
            self.key_projection = nn.Linear(key_size, attention_size, bias=False)

    def project_keys(self, encoded: Tensor) -> Tensor:
        return encoded if self.num_heads == 1 else self.key_projection(encoded)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        if self.num_heads == 1:
            return super().score(query, keys)
        batch, frames, size = keys.shape
        head_size = size // self.num_heads
        queries = self.query_projection(query).view(batch, -1, self.num_heads, head_size)
        keys = keys.view(batch, frames, self.num_heads, head_size)
        return torch.einsum("bnhd,bthd->bhnt", queries, keys) / math.sqrt(head_size)


class NoAttention(Attention):
    """No attention: the sequence-to-sequence baseline (Sutskever et al. 2014; Cho et al. 2014)
    whose speller sees one fixed-length summary of the whole utterance at every step, the
    listener's final states [→h_L; ←h_1] (the forward direction's last real frame and the
    backward direction's first). This is the bottleneck attention was invented to remove.

    The returned "alignment" is all zeros: nothing is attended, so plots show nothing and word
    times are meaningless.
    """

    context_is_weighted_values = False

    def __init__(self, query_size: int, key_size: int, **attending) -> None:
        super().__init__(query_size, key_size, **attending)
        if key_size % 2:
            raise ValueError(f"no-attention needs a bidirectional listener output, got {key_size}")

    def project_keys(self, encoded: Tensor) -> Tensor:
        return encoded

    def initial_alignment(self, pad_mask: Tensor) -> Tensor:
        return torch.zeros(pad_mask.shape, device=pad_mask.device)

    def forward(self, query, keys, values, pad_mask, prev_alignment, window=None):
        """The summary context (B, D) and a zero alignment (B, T'); see ``Attention.forward``
        (there is no alignment to window)."""
        half = values.size(-1) // 2
        last = ((~pad_mask).sum(dim=-1) - 1).clamp(min=0)  # (B,) last real frame
        rows = torch.arange(len(values), device=values.device)
        context = torch.cat([values[rows, last, :half], values[:, 0, half:]], dim=-1)
        return context, torch.zeros_like(prev_alignment)
