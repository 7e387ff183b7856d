"""Attention for the speller: every score function of the classic survey, every way of attending,
and ``build_attention`` to pick one by name.

An attention module is a **score function** (a subclass of ``Attention``) combined with a **way of
attending** (the base class's ``mode``, ``sharpening``, ``smoothing`` and window options), so any
score can be soft, local or hard. Every module is **stateless**: it keeps no tensors between
calls. The speller owns the per-step state (the previous alignment) and passes it in, so beam
search reorders it like any other field, and a batch never leaks into the next one.

The contract every type follows:

- ``project_keys(encoded (B, T', D)) -> keys (B, T', A)``, once per utterance;
- ``initial_alignment(pad_mask (B, T')) -> (B, T')`` (``(B, heads, T')`` with several heads),
  the "previous alignment" of step 0;
- ``forward(query (B, Q), keys, values (B, T', D), pad_mask (B, T'), prev_alignment)
  -> (context (B, D), alignment)``, alignment shaped like ``initial_alignment``'s, every head's
  weights non-negative, summing to 1 over real frames and exactly 0 on padding;
- ``score(query (B, N, Q), keys) -> energies (B, heads, N, T')`` for score functions that do not
  read the previous alignment: the speller asks with N = 1, ``SelfAttention`` with N = T'.

Score functions (``ATTENTION_TYPES``), with s the speller state and h_i a listener frame:

============== ================================================ ===========================
type           energy e_i                                        paper
============== ================================================ ===========================
content        β_t · cos(W s, h_i), β_t = softplus(w_β·s + b)    Graves et al. 2014
additive       vᵀ tanh(W s + V h_i + b)                          Bahdanau et al. 2015
location_base  (W s)_i: positions only, no content               Luong et al. 2015
general        sᵀ W h_i                                          Luong et al. 2015
dot            sᵀ h_i                                            Luong et al. 2015
scaled_dot     sᵀ h_i / √D                                       Vaswani et al. 2017
location       wᵀ tanh(W s + V h_i + U (F * α_{t-1})_i + b)      Chorowski et al. 2015
none           no attention: a fixed context                     Sutskever / Cho et al. 2014
============== ================================================ ===========================

``additive``, ``scaled_dot`` and ``location`` also take ``num_heads`` > 1 (multi-head attention
as in Chiu et al. 2018): each head scores in its own ``attention_size / num_heads`` subspace,
reads its own projection of the values, and an output projection mixes the heads' contexts.

To add a score function, subclass ``Attention``, implement ``project_keys`` and ``energies`` (and
``score`` if it is content-only), and register it in ``ATTENTION_TYPES``; its constructor takes
``query_size`` and ``key_size`` first, its own options next, and passes ``**attending`` to the
base class.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from asr.masking import pad_mask

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

    ``decode_window = (left, right)`` applies the median window at inference only (evaluation
    mode), whatever the mode: it keeps long utterances on track (Chorowski 2015, §3.4). It is a
    setting, not state; ``asr.recognizer`` sets it from the decoding options.

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
        self.decode_window: tuple[int, int] | None = None
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
    ) -> tuple[Tensor, Tensor]:
        """One attention step.

        Args:
            query: (B, Q) speller state s_t.
            keys: (B, T', A) from ``project_keys``.
            values: (B, T', D) listener outputs h.
            pad_mask: (B, T') True on padded frames.
            prev_alignment: α_{t-1}, (B, T') or (B, heads, T'), zero on padding.

        Returns:
            context (B, D) and alignment α_t shaped like ``prev_alignment``, exactly 0 on padding.
        """
        batch, frames = pad_mask.shape
        prev = prev_alignment.view(batch, self.num_heads, frames)
        energies = self.energies(query, keys, prev)  # (B, heads, T')
        alignment = self.normalize(energies, pad_mask, prev, query)
        context = self.read(alignment, values)
        return context, alignment.view_as(prev_alignment)

    def normalize(
        self, energies: Tensor, pad_mask: Tensor, prev_alignment: Tensor, query: Tensor
    ) -> Tensor:
        """Alignment (B, heads, T') from energies (B, heads, T') by this module's way of
        attending; prev_alignment (B, heads, T'), query (B, Q)."""
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
        if self.decode_window is not None and not self.training:
            mask = mask | median_window_mask(prev_alignment, *self.decode_window)

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

    def forward(self, query, keys, values, pad_mask, prev_alignment):
        """The summary context (B, D) and a zero alignment (B, T'); see ``Attention.forward``."""
        half = values.size(-1) // 2
        last = ((~pad_mask).sum(dim=-1) - 1).clamp(min=0)  # (B,) last real frame
        rows = torch.arange(len(values), device=values.device)
        context = torch.cat([values[rows, last, :half], values[:, 0, half:]], dim=-1)
        return context, torch.zeros_like(prev_alignment)


ATTENTION_TYPES: dict[str, type[Attention]] = {
    "content": ContentAttention,
    "additive": AdditiveAttention,
    "location_base": LocationBaseAttention,
    "general": GeneralAttention,
    "dot": DotAttention,
    "scaled_dot": ScaledDotAttention,
    "location": LocationAwareAttention,
    "none": NoAttention,
}


def build_attention(type: str, query_size: int, key_size: int, **kwargs) -> Attention:
    """The attention module registered as ``type`` in ``ATTENTION_TYPES``.

    >>> build_attention("location", query_size=4, key_size=6, attention_size=3).energy
    Linear(in_features=3, out_features=1, bias=False)
    """
    if type not in ATTENTION_TYPES:
        valid = ", ".join(sorted(ATTENTION_TYPES))
        raise ValueError(f"unknown attention type {type!r}; valid types: {valid}")
    return ATTENTION_TYPES[type](query_size=query_size, key_size=key_size, **kwargs)


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
