"""The base of every attention module: the ways of attending (soft, local, hard, sharpening,
smoothing, windows) that any score function combines with, and the helpers that read an
alignment (``head_average``, ``median_window_mask``). The score functions subclass ``Attention``
in ``scores.py`` and ``location.py``; the package docstring (``asr.models.attention``) surveys
them and states the contract every type follows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

MODES = ("soft", "local", "hard")
WINDOWS = ("median", "gaussian")


def head_average(alignment: Tensor) -> Tensor:
    """The alignment to show or time words with: (B, T') as is, (B, heads, T') averaged."""
    return alignment if alignment.dim() == 2 else alignment.mean(dim=1)


def median_window_mask(prev_alignment: Tensor, left: int, right: int) -> Tensor:
    """True outside ``[m - left, m + right]``, m being the median frame of ``prev_alignment``.

    Chorowski et al. 2015, §2.3 (windowing): the median of α_{t-1} is the first frame where the
    cumulative weight reaches 1/2. prev_alignment (..., T') -> mask (..., T'). The median is a
    real frame, so the window always keeps at least one.
    """
    median = (prev_alignment.cumsum(dim=-1) < 0.5).sum(dim=-1, keepdim=True)  # (..., 1)
    median = median.clamp(max=prev_alignment.size(-1) - 1)
    offset = torch.arange(prev_alignment.size(-1), device=prev_alignment.device) - median
    return (offset < -left) | (offset > right)


class Attention(nn.Module):
    """Base class: one score function (the subclass) and one way of attending (these options).

    Ways of attending, applied to the energies e (B, heads, T') of any score function:

    - ``mode="soft"``: all real frames, α = softmax(β e) (Bahdanau 2015; global in Luong 2015).
    - ``mode="local"``, ``window="median"``: only frames in ``[m - window_left, m + window_right]``
      around the median m of α_{t-1} (Chorowski 2015, §2.3).
    - ``mode="local"``, ``window="gaussian"``: Luong 2015's local-p (eq. 9-10): a predicted
      position p_t = (L - 1) · σ(v_pᵀ tanh(W_p s_t)) per head, L the utterance's real length,
      frames within ``window_half_width`` (D) of p_t, and a Gaussian of σ = D/2 around it. We add
      the Gaussian's log to the energies before the softmax, so the weights sum to 1 like every
      other mechanism (Luong multiplies after the softmax and does not renormalise, which shrinks
      the context whenever p_t falls between peaks); p_t still gets gradients.
    - ``mode="hard"`` (Xu et al. 2015): exactly one frame. Training samples it with the
      straight-through Gumbel-softmax (Jang et al. 2017): the forward pass uses the one-hot
      sample, the backward pass the gradient of the relaxed softmax((β e + g) / τ). We chose it
      over REINFORCE because the context feeds the cross-entropy directly, so the same loss gives
      a low-variance (if biased) gradient with no reward, baseline or extra sampling; Xu et al.
      needed a moving-average baseline and an entropy bonus to tame REINFORCE's variance.
      Inference takes the argmax.
    - ``sharpening`` β > 0 multiplies the energies (inverse temperature; Chorowski 2015, §2.3).
    - ``smoothing``: α_i = σ(β e_i) / Σ_j σ(β e_j) instead of the softmax (Chorowski 2015 §2.3,
      "smooth focus"), for soft and local modes.

    ``forward``'s ``window = (left, right)`` adds the median window for one call, whatever the
    mode: the searches pass it at decoding time to keep long utterances on track (Chorowski
    2015, §3.4); it is an argument, so the module holds no decoding state.

    Args:
        query_size: Q, width of the speller state s.
        key_size: D, width of the listener outputs h (the values).
        num_heads: number of heads; > 1 adds per-head value projections and an output projection.
        mode: "soft", "local" or "hard".
        sharpening: β.
        smoothing: sigmoid normalisation instead of softmax.
        window: "median" or "gaussian" (mode "local").
        window_left, window_right: median window, in listener frames.
        window_half_width: D of the Gaussian window, in listener frames.
        gumbel_temperature: τ of the hard mode's relaxed sample in training.
    """

    # True when forward's context is Σ_i α_i values_i and values are used for nothing else; the
    # speller then computes the values' gradient once for all steps (``Speller.forward``).
    context_is_weighted_values = True

    def __init__(
        self,
        query_size: int,
        key_size: int,
        num_heads: int = 1,
        mode: str = "soft",
        sharpening: float = 1.0,
        smoothing: bool = False,
        window: str = "median",
        window_left: int = 10,
        window_right: int = 20,
        window_half_width: int = 10,
        gumbel_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if min(query_size, key_size, num_heads) < 1:
            raise ValueError("attention query_size, key_size and num_heads must be positive")
        if key_size % num_heads:
            raise ValueError(f"key_size {key_size} is not divisible by num_heads {num_heads}")
        if mode not in MODES:
            raise ValueError(f"unknown attention mode {mode!r}; valid modes: {', '.join(MODES)}")
        if window not in WINDOWS:
            raise ValueError(f"unknown window {window!r}; valid windows: {', '.join(WINDOWS)}")
        if sharpening <= 0:
            raise ValueError(f"sharpening must be positive, got {sharpening}")
        if min(window_left, window_right) < 0 or window_half_width < 1:
            raise ValueError("window_left/right must be >= 0 and window_half_width >= 1")
        if gumbel_temperature <= 0:
            raise ValueError(f"gumbel_temperature must be positive, got {gumbel_temperature}")
        self.num_heads = num_heads
        self.mode = mode
        self.sharpening = sharpening
        self.smoothing = smoothing
        self.window = window
        self.window_left = window_left
        self.window_right = window_right
        self.window_half_width = window_half_width
        self.gumbel_temperature = gumbel_temperature
        if mode == "local" and window == "gaussian":  # Luong eq. 9: p_t from s_t, per head
            self.position = nn.Sequential(
                nn.Linear(query_size, query_size), nn.Tanh(), nn.Linear(query_size, num_heads)
            )
        if num_heads > 1:  # head h reads W_v^h (Σ_i α_h,i h_i); W_o mixes the heads
            self.context_is_weighted_values = False
            head_size = key_size // num_heads
            self.value_projection = nn.Parameter(
                torch.randn(num_heads, key_size, head_size) / math.sqrt(key_size)
            )
            self.output_projection = nn.Linear(key_size, key_size)

    # -- score function (subclasses) ---------------------------------------------------------

    def project_keys(self, encoded: Tensor) -> Tensor:
        """encoded (B, T', D) -> keys (B, T', A); computed once per utterance."""
        raise NotImplementedError

    def energies(self, query: Tensor, keys: Tensor, prev_alignment: Tensor) -> Tensor:
        """Energies (B, heads, T') before masking: query (B, Q), prev_alignment (B, heads, T')."""
        return self.score(query[:, None, :], keys).squeeze(2)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Content energies of N queries: (B, N, Q), keys (B, T', A) -> (B, heads, N, T')."""
        raise TypeError(f"{type(self).__name__} reads the previous alignment; it has no score()")

    # -- way of attending --------------------------------------------------------------------

    def initial_alignment(self, pad_mask: Tensor) -> Tensor:
        """(B, T') alignment before the first step, (B, heads, T') with several heads: all
        weight on frame 0 (never padding)."""
        dtype = next(self.parameters(), torch.empty(0)).dtype  # float32 without parameters
        alignment = torch.zeros(
            (pad_mask.size(0), self.num_heads, pad_mask.size(1)),
            dtype=dtype,
            device=pad_mask.device,
        )
        alignment[:, :, 0] = 1.0
        return alignment.squeeze(1) if self.num_heads == 1 else alignment

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        pad_mask: Tensor,
        prev_alignment: Tensor,
        window: tuple[int, int] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One attention step.

        Args:
            query: (B, Q) speller state s_t.
            keys: (B, T', A) from ``project_keys``.
            values: (B, T', D) listener outputs h.
            pad_mask: (B, T') True on padded frames.
            prev_alignment: α_{t-1}, (B, T') or (B, heads, T'), zero on padding.
            window: (left, right) listener frames around α_{t-1}'s median that this step may
                read (a decoding-time restriction), or None.

        Returns:
            context (B, D) and alignment α_t shaped like ``prev_alignment``, exactly 0 on padding.
        """
        batch, frames = pad_mask.shape
        prev = prev_alignment.view(batch, self.num_heads, frames)
        energies = self.energies(query, keys, prev)  # (B, heads, T')
        alignment = self.normalize(energies, pad_mask, prev, query, window)
        context = self.read(alignment, values)
        return context, alignment.view_as(prev_alignment)

    def normalize(
        self,
        energies: Tensor,
        pad_mask: Tensor,
        prev_alignment: Tensor,
        query: Tensor,
        window: tuple[int, int] | None = None,
    ) -> Tensor:
        """Alignment (B, heads, T') from energies (B, heads, T') by this module's way of
        attending; prev_alignment (B, heads, T'), query (B, Q), window as in ``forward``."""
        mask = pad_mask[:, None, :]  # (B, 1, T') True where no weight may go
        if self.sharpening != 1.0:
            energies = self.sharpening * energies
        if self.mode == "local" and self.window == "median":
            mask = mask | median_window_mask(prev_alignment, self.window_left, self.window_right)
        elif self.mode == "local":  # Luong's local-p, eq. 9-10
            last = (~pad_mask).sum(dim=-1, keepdim=True) - 1  # (B, 1): L - 1
            position = last * torch.sigmoid(self.position(query))  # p_t (B, heads)
            frames = torch.arange(pad_mask.size(1), device=pad_mask.device, dtype=energies.dtype)
            distance = frames - position[:, :, None]  # (B, heads, T')
            sigma = self.window_half_width / 2
            energies = energies - distance.square() / (2 * sigma**2)
            mask = mask | (distance.abs() > self.window_half_width)
        if window is not None:
            mask = mask | median_window_mask(prev_alignment, *window)

        if self.mode == "hard":
            masked = energies.masked_fill(mask, float("-inf"))
            if not self.training:
                index = masked.argmax(dim=-1, keepdim=True)
                return torch.zeros_like(masked).scatter_(-1, index, 1.0)
            uniform = torch.rand_like(masked).clamp_(min=1e-20)
            gumbel = -torch.log((-torch.log(uniform)).clamp(min=1e-20))  # Gumbel(0, 1) noise
            relaxed = torch.softmax((masked + gumbel) / self.gumbel_temperature, dim=-1)
            sample = torch.zeros_like(relaxed).scatter_(-1, relaxed.argmax(-1, keepdim=True), 1.0)
            return sample + (relaxed - relaxed.detach())  # the sample forward, ∂relaxed backward
        if self.smoothing:
            scores = torch.sigmoid(energies).masked_fill(mask, 0.0)
            return scores / scores.sum(dim=-1, keepdim=True)
        return torch.softmax(energies.masked_fill(mask, float("-inf")), dim=-1)

    def read(self, alignment: Tensor, values: Tensor) -> Tensor:
        """Context (B, D) from alignment (B, heads, T') and values (B, T', D).

        With heads, head h's context is W_v^h Σ_i α_h,i h_i, which equals Σ_i α_h,i W_v^h h_i
        (the projection is linear) without projecting all T' values at every step.
        """
        weighted = torch.bmm(alignment.to(values.dtype), values)  # (B, heads, D)
        if self.num_heads == 1:
            return weighted.squeeze(1)
        heads = torch.einsum("bhd,hde->bhe", weighted, self.value_projection.to(values.dtype))
        return self.output_projection(heads.flatten(1))  # (B, D)
