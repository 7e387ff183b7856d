"""CTC prefix scores for joint CTC/attention beam search, vectorised over hypotheses.

The CTC prefix score ψ(h) of a label prefix h is the probability, under the CTC head's frame
posteriors, that the labelling of the whole utterance begins with h (Watanabe et al. 2017,
"Hybrid CTC/attention architecture for end-to-end speech recognition", Algorithm 2; the idea of
ESPnet's ``CTCPrefixScoreTH``). With the forward variables of a prefix g over frames t,

    r^n_t(g): the frames 1..t spell g and frame t emits g's last label,
    r^b_t(g): the frames 1..t spell g and frame t emits <blank>,

the extension h = g·c of g by a label c has (x_t(k) the CTC posterior of token k at frame t)

    Φ_t(g, c)  = r^b_t(g) + (0 if c is g's last label else r^n_t(g))   (a repeat needs a blank)
    r^n_t(h)   = (r^n_{t-1}(h) + Φ_{t-1}(g, c)) · x_t(c)
    r^b_t(h)   = (r^b_{t-1}(h) + r^n_{t-1}(h)) · x_t(<blank>)
    ψ(h)       = Σ_t Φ_{t-1}(g, c) · x_t(c)                            (c first emitted at t)
    ψ(g·<eos>) = r^n_T(g) + r^b_T(g)                                  (the whole utterance is g)

all in the log domain here. Time starts at a row "t = 0" before the first frame where the empty
prefix has r^b_0 = 1 and every other prefix has zero, so the first frame needs no special case.
Padded frames (t > lens[b]) get posterior zero for every token: no path continues past its
utterance's end, the sums over t stop at lens[b], and ``<eos>`` reads row lens[b].

One ``score`` call extends all N = B·K hypotheses by C candidates each with one loop over time
(every other step is one tensor operation over (T', N, C)); the hypotheses of a state all hold
the same number of labels (a label-synchronous beam search, as ``asr.search`` runs), which lets
the loop skip the frames too early to hold them.

Joint decoding (Watanabe et al. 2017, one-pass beam search) ranks a hypothesis h by

    α(h) = λ · log ψ(h) + (1 - λ) · log p_att(h | X),

accumulated step by step: extending g by c adds
``(1 - λ) · log p_att(c | g, X) + λ · (log ψ(g·c) - log ψ(g))`` (``CTCPrefixScorer.increments``
gives the bracket). For ``<eos>`` the CTC term is the full-sequence probability p_ctc(g | X).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from asr.text import Vocabulary

NEG_INF = float("-inf")


# exp() of a float below about -87 takes a slow scalar path on CPU (measured: 100x slower per
# element than for -50), and log ψ sums terms spanning hundreds of nats. Terms more than this
# far below the largest are counted as e^-80 of it instead: at most T' · e^-80 (1e-32 for an
# hour of frames) relative, far below float64 rounding.
_NEGLIGIBLE = -80.0


def _logsumexp_over_time(terms: Tensor) -> Tensor:
    """log Σ_t exp(terms[t]) over dim 0 of (L, N, C): (N, C), -inf where every term is."""
    if terms.size(0) == 0:  # no frame left for another label
        return terms.new_full(terms.shape[1:], NEG_INF)
    largest = terms.amax(dim=0)  # (N, C)
    impossible = largest == NEG_INF
    shift = largest.masked_fill(impossible, 0.0)
    total = (terms - shift).clamp_(min=_NEGLIGIBLE).exp_().sum(dim=0)
    return (shift + total.log()).masked_fill(impossible, NEG_INF)


class CTCPrefixState(NamedTuple):
    """Forward variables of N = B·K hypotheses, row n = b·K + k (utterance b, beam k).

    non_blank: (T' + 1, N) log r^n_t of each hypothesis' prefix, row 0 before the first frame.
    blank: (T' + 1, N) log r^b_t.
    scores: (N,) log ψ of each prefix (0 for the empty prefix).
    last_tokens: (N,) each prefix's last label, -1 for the empty prefix.
    length: labels in every prefix of the state (all hypotheses have the same number).
    """

    non_blank: Tensor
    blank: Tensor
    scores: Tensor
    last_tokens: Tensor
    length: int


class CTCPrefixExtensions(NamedTuple):
    """Every hypothesis extended by each of its C candidates, as ``score`` returns them.

    non_blank, blank: (T' + 1, N, C) forward variables of the extended prefixes.
    scores: (N, C) log ψ of the extended prefixes; for ``<eos>`` the full-sequence log p_ctc.
    tokens: (N, C) the candidates.
    """

    non_blank: Tensor
    blank: Tensor
    scores: Tensor
    tokens: Tensor


class CTCPrefixScorer:
    """CTC prefix scores of a batch of utterances; holds only what is constant per utterance.

    Args:
        log_probs: (B, T', V) CTC log-posteriors (log-softmax of the CTC head); T' counts the
            frames of the listener layer the head reads (``LAS.ctc_layer``). Half precision is
            computed in float32; the tensor is detached (the scorer serves the search).
        lens: (B,) real frames per utterance, 1 <= lens[b] <= T'.
        blank_id: the CTC blank.
        eos_id: the end-of-sentence token; its candidates score the full sequence.

    Two frames, each <blank> or token 3 with probability 1/2:

    >>> frame = [0.5, 0.0, 0.0, 0.5]
    >>> log_probs = torch.tensor([[frame, frame]], dtype=torch.float64).log()
    >>> scorer = CTCPrefixScorer(log_probs, torch.tensor([2]))
    >>> state = scorer.initial_state(num_beams=1)
    >>> scores, extensions = scorer.score(state, torch.tensor([[3, 2]]))
    >>> [round(p, 6) for p in scores.exp()[0].tolist()]  # labels begin with 3; no label at all
    [0.75, 0.25]
    """

    def __init__(
        self,
        log_probs: Tensor,
        lens: Tensor,
        blank_id: int = Vocabulary.blank_id,
        eos_id: int = Vocabulary.eos_id,
    ) -> None:
        if log_probs.dim() != 3 or lens.shape != log_probs.shape[:1]:
            raise ValueError(
                f"CTC log_probs must be (B, T', V) with lens (B,), got {tuple(log_probs.shape)} "
                f"and {tuple(lens.shape)}"
            )
        vocab_size = log_probs.size(-1)
        if not (0 <= blank_id < vocab_size and 0 <= eos_id < vocab_size and blank_id != eos_id):
            raise ValueError(f"blank_id {blank_id} and eos_id {eos_id} must be distinct ids < V")
        lens = lens.to(log_probs.device, torch.long)
        if bool(((lens < 1) | (lens > log_probs.size(1))).any()):  # one host sync per search
            raise ValueError(f"CTC lens must be within 1..{log_probs.size(1)} frames")
        dtype = torch.promote_types(log_probs.dtype, torch.float32)
        frames = int(lens.max())  # frames past every utterance's end change nothing: drop them
        padded = torch.arange(frames, device=lens.device) >= lens[:, None]  # (B, T')
        # (T', B, V), time first: the loop over time reads contiguous slices. Padded frames
        # (even NaN ones) become log 0, so no path runs past its utterance's end.
        self.log_probs = (
            log_probs.detach()[:, :frames]
            .to(dtype)
            .masked_fill(padded[..., None], NEG_INF)
            .transpose(0, 1)
            .contiguous()
        )
        self.lens = lens
        self.blank_id = blank_id
        self.eos_id = eos_id

    @property
    def batch_size(self) -> int:
        return self.log_probs.size(1)

    def initial_state(self, num_beams: int) -> CTCPrefixState:
        """The empty prefix for K = ``num_beams`` hypotheses per utterance."""
        if num_beams < 1:
            raise ValueError(f"num_beams must be at least 1, got {num_beams}")
        frames = self.log_probs.size(0)
        # r^b_t(empty) = x_1(blank) ··· x_t(blank), with r^b_0 = 1 before the first frame.
        blank = self.log_probs[:, :, self.blank_id].cumsum(dim=0)  # (T', B)
        blank = torch.cat([blank.new_zeros(1, self.batch_size), blank])  # (T' + 1, B)
        blank = blank.repeat_interleave(num_beams, dim=1)  # (T' + 1, N)
        hypotheses = blank.size(1)
        return CTCPrefixState(
            non_blank=blank.new_full((frames + 1, hypotheses), NEG_INF),
            blank=blank,
            scores=blank.new_zeros(hypotheses),
            last_tokens=torch.full((hypotheses,), -1, dtype=torch.long, device=blank.device),
            length=0,
        )

    def score(
        self, state: CTCPrefixState, candidates: Tensor
    ) -> tuple[Tensor, CTCPrefixExtensions]:
        """Prefix scores of every hypothesis extended by each of its candidates.

        Args:
            state: N hypotheses (``initial_state`` or ``select``).
            candidates: (N, C) token ids to extend each hypothesis with; ``<eos>`` scores the
                full sequence log p_ctc(g | X), ``<blank>`` is never a label and scores -inf.

        Returns:
            scores (N, C) log ψ(g·c), and the extensions' forward variables for ``select``.
        """
        frames, batch = self.log_probs.shape[:2]
        hypotheses, width = candidates.shape
        if hypotheses != state.scores.size(0) or hypotheses % batch != 0:
            raise ValueError(
                f"candidates must be (N, C) for the state's N = {state.scores.size(0)} "
                f"hypotheses, a multiple of B = {batch}; got {tuple(candidates.shape)}"
            )
        beams = hypotheses // batch
        # x_t(c) for every candidate: (T', N, C), gathered per utterance without copying its
        # posteriors K times; x_t(blank) (T', N, 1).
        index = candidates.reshape(1, batch, beams * width).expand(frames, -1, -1)
        emit = self.log_probs.gather(2, index).view(frames, hypotheses, width)
        stay = self.log_probs[:, :, self.blank_id].repeat_interleave(beams, dim=1)[..., None]

        # log Φ over rows 0..T' - 1 (before frames 1..T'): (T', N, C).
        # Φ depends on the candidate only through whether it repeats g's last label: the sum
        # r^b + r^n once per hypothesis (T', N), then chosen per candidate.
        repeat = candidates == state.last_tokens[:, None]  # (N, C)
        either = torch.logaddexp(state.blank[:-1], state.non_blank[:-1])  # (T', N)

        # One buffer per row: (log Φ, log r^n(g·c), log r^b(g·c)), (T' + 1, 3, N, C). Both
        # recursions then read two overlapping pairs of the previous row, (r^n, r^b) and
        # (Φ, r^n), and are one logaddexp and one addition per frame.
        lattice = emit.new_empty((frames + 1, 3, hypotheses, width))
        phi = lattice[:-1, 0]
        torch.where(repeat, state.blank[:-1, :, None], either[:, :, None], out=phi)
        lattice[-1, 0] = NEG_INF  # Φ after the last frame: never read
        lattice[: state.length + 1, 1:] = NEG_INF  # too few frames for g·c (below)
        weights = torch.stack([emit, stay.expand_as(emit)], dim=1)  # (T', 2, N, C)
        # A prefix of `length` labels needs as many frames: r^n_t(g·c) = r^b_t(g·c) = 0 for
        # t <= length, so the recursion and the sum start at frame length + 1 (row length + 1).
        start = state.length
        # Views of every row made once (in C++): indexing inside the loop cost as much as the
        # arithmetic, at the sizes of a beam search step.
        forward, previous_pairs = lattice[:, 1:].unbind(0), lattice[:, :2].unbind(0)
        frame_weights = weights.unbind(0)
        for row in range(start + 1, frames + 1):  # row `row` is frame `row`, weights[row - 1]
            torch.logaddexp(forward[row - 1], previous_pairs[row - 1], out=forward[row])
            forward[row].add_(frame_weights[row - 1])
        scores = _logsumexp_over_time(phi[start:] + emit[start:])  # (N, C); -inf when empty

        # <eos>: the whole utterance spells g, r^n + r^b at its last real frame.
        last = self.lens.repeat_interleave(beams)[None]  # (1, N)
        eos = torch.logaddexp(
            state.non_blank.gather(0, last), state.blank.gather(0, last)
        )  # (1, N)
        scores = torch.where(candidates == self.eos_id, eos.view(-1, 1), scores)
        scores = scores.masked_fill(candidates == self.blank_id, NEG_INF)
        return scores, CTCPrefixExtensions(lattice[:, 1], lattice[:, 2], scores, candidates)

    @staticmethod
    def increments(state: CTCPrefixState, scores: Tensor) -> Tensor:
        """(N, C) log ψ(g·c) - log ψ(g), the CTC term a step adds to the joint score.

        An impossible prefix (log ψ(g) = -inf) gives -inf rather than NaN, so its candidates
        stay impossible instead of poisoning the beam's top-k.
        """
        previous = state.scores[:, None]
        return (scores - previous).masked_fill(previous == NEG_INF, NEG_INF)

    @staticmethod
    def select(
        state: CTCPrefixState,
        extensions: CTCPrefixExtensions,
        rows: Tensor,
        candidate_index: Tensor,
    ) -> CTCPrefixState:
        """The state of the hypotheses the beam kept: row n of the new state is hypothesis
        ``rows[n]`` extended by its candidate ``candidate_index[n]`` (both (N',) long).

        Every kept hypothesis gains one label, so the new state's ``length`` is one more;
        an ``<eos>`` extension ends a hypothesis and is not kept alive.
        """
        width = extensions.tokens.size(1)
        flat = rows * width + candidate_index  # index_select is much faster than [:, rows, c]
        return CTCPrefixState(
            non_blank=extensions.non_blank.flatten(1).index_select(1, flat),
            blank=extensions.blank.flatten(1).index_select(1, flat),
            scores=extensions.scores[rows, candidate_index],
            last_tokens=extensions.tokens[rows, candidate_index],
            length=state.length + 1,
        )
