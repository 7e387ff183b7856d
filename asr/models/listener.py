"""The listener: a BLSTM encoder whose top layers halve time (LAS, Chan et al. 2016, §3.1).

Each bidirectional layer runs two dense, padded ``nn.LSTM`` s instead of a ``PackedSequence``:
on CPU the packed LSTM's backward pass is quadratic in the sequence length
(pytorch/pytorch#149194), about 40 s against 0.5 s for 1000 frames. Dense padding is still exact:

- the forward direction reads real frames before any padding, so real outputs never see it;
- the backward direction reverses every sequence *within its own length* (a per-row gather),
  runs a forward LSTM and reverses back, so it too reads all real frames before the padding;
- every layer zeroes its padded outputs, so the next layer and the pyramid's frame pairing
  (an odd last frame meets a zero frame) see exactly what a batch of one would.

A padded batch therefore gives each utterance the same outputs and gradients as running it alone.

Padding still costs time: a batch of 16 utterances of 400-1200 frames is 28% padding, and every
LSTM runs over the longest one. The listener therefore sorts the batch by length and runs each
LSTM in a few time segments (``time_segments``), each on the utterances still running; the
state of those utterances carries over from one segment to the next, so the result is the same
as one call over the padded batch (``max_time_segments=1``), which tests check.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.masking import pad_mask


class ListenerOutput(NamedTuple):
    """What the listener hands to the speller and the CTC head.

    encoded: (B, T', 2H) top-layer outputs, padded frames zeroed.
    encoded_lens: (B,) number of real frames in ``encoded``.
    layer_outputs: ``(output (B, T_l, 2H), lens (B,))`` per layer, bottom first; the last one is
        ``(encoded, encoded_lens)``.
    """

    encoded: Tensor
    encoded_lens: Tensor
    layer_outputs: tuple[tuple[Tensor, Tensor], ...]


def reverse_within_lengths(x: Tensor, lens: Tensor) -> Tensor:
    """Reverse each row of ``x`` (B, T, D) within its first ``lens[b]`` frames; padding stays put.

    The permutation is its own inverse, so applying it twice gives ``x`` back.
    """
    batch, frames = x.shape[:2]
    time = torch.arange(frames, device=x.device)
    reversed_time = lens[:, None] - 1 - time  # (B, T)
    index = torch.where(reversed_time >= 0, reversed_time, time)  # padding maps to itself
    # Whole frames copied by one index_select over the (B·T) rows: 1.4-3x faster forward and
    # backward than a gather that reads an index per element.
    rows = index + frames * torch.arange(batch, device=x.device)[:, None]  # (B, T) flat rows
    return x.reshape(batch * frames, -1).index_select(0, rows.view(-1)).view(x.shape)


Segment = tuple[int, int, int]  # (start frame, end frame, utterances that run in it)


def time_segments(lens: list[int], max_segments: int) -> list[Segment]:
    """Time segments that skip most padding, for lengths sorted in decreasing order.

    Segment ``(start, end, rows)`` runs the first ``rows`` utterances, those longer than
    ``start``, over frames ``start:end``; the segments cover ``0:max(lens)``. The boundaries are
    the ones, among the utterances' lengths, that minimise the frames computed (padding
    included) with at most ``max_segments`` segments (dynamic programming over the boundaries).

    >>> time_segments([9, 8, 3, 2], max_segments=2)
    [(0, 3, 4), (3, 9, 2)]
    """
    if any(a < b for a, b in zip(lens, lens[1:], strict=False)):
        raise ValueError(f"time_segments needs lengths in decreasing order, got {lens}")
    total = lens[0]
    starts = sorted({0, *(length for length in lens if length < total)})
    rows = [sum(length > start for length in lens) for start in starts]
    ends = [*starts[1:], total]

    # best[i]: (frames computed, segments) covering starts[i]:total with the number of segments
    # allowed so far; best[len(starts)] is the empty rest.
    best: list[tuple[float, list[Segment]]] = [(math.inf, [])] * len(starts) + [(0, [])]
    for _ in range(max_segments):
        extended = []
        for i, start in enumerate(starts):
            options = []
            for j in range(i, len(starts)):  # starts[i]:ends[j], then the rest one fewer
                rest_frames, rest = best[j + 1]
                frames = rows[i] * (ends[j] - start) + rest_frames
                options.append((frames, 1 + len(rest), [(start, ends[j], rows[i]), *rest]))
            frames, _, segments = min(options, key=lambda option: option[:2])
            extended.append((frames, segments))
        best = [*extended, (0, [])]
    return best[0][1]


# Inference batches of at most this many utterances run wide-input LSTMs on PyTorch's own CPU
# kernel instead of oneDNN's (``run_lstm``).
NATIVE_INFERENCE_MAX_BATCH = 8


@functools.cache
def native_kernel_is_faster() -> bool:
    """Whether PyTorch's own CPU LSTM beats oneDNN's for small float32 inference batches here.

    Measured on two CPUs: on an Intel Xeon (AVX-512, 2026-11-25) it was 1.3-3.4x faster; on an
    AMD EPYC (Zen 4, 2026-12-04) slower, batched greedy decoding of benchmarks.peers' workload
    taking RTF 0.0139 with it against 0.0113 without. So it is used on Intel CPUs only.
    """
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.split(":")[-1].strip() == "GenuineIntel" for line in cpuinfo)
    except OSError:
        return False


def run_lstm(
    lstm: nn.LSTM, x: Tensor, state: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """``lstm(x, state)``, on the faster CPU kernel for small inference batches.

    oneDNN's CPU LSTM (PyTorch's default) reads its input weights again at every time step when
    it runs more than one utterance. With inputs wider than the hidden size (the pyramid layers:
    frame pairs of 2H each) those weights outgrow the cache, and for 2-8 utterances without
    gradients PyTorch's native kernel, which projects every frame's input in one matmul first,
    was 1.3-3.4x faster on an Intel CPU (benchmarks/README.md); from about 16 utterances, and for
    training, oneDNN is as fast or faster. The two kernels agree to float rounding. On an AMD
    CPU (``native_kernel_is_faster``) and in bfloat16 (the native kernel has no bfloat16 fast
    path: greedy decoding under autocast was 3.9x slower with it) oneDNN always runs.
    """
    if (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and 1 < x.size(0) <= NATIVE_INFERENCE_MAX_BATCH
        and x.size(-1) > lstm.hidden_size
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and native_kernel_is_faster()
    ):
        with warnings.catch_warnings():
            # flags() also sets oneDNN's TF32 switch, which warns that it is for Intel GPUs.
            warnings.filterwarnings("ignore", "TF32 acceleration on top of oneDNN")
            with torch.backends.mkldnn.flags(enabled=False):
                return lstm(x, state)
    return lstm(x, state)


def lstm_in_segments(lstm: nn.LSTM, x: Tensor, segments: list[Segment] | None) -> Tensor:
    """``lstm(x)`` for x (B, T, D) whose utterances are sorted by decreasing length, run segment
    by segment on the utterances still running (``time_segments``); None is one call.

    Returns (B, T, H); frames that no segment computed (padding) are zero.
    """
    if segments is None:
        return run_lstm(lstm, x)[0]
    outputs, state = [], None
    # Split in time first: the backward pass then concatenates one gradient per segment instead
    # of filling an x-sized zero tensor for each (what slicing x[:rows, start:end] costs). A
    # batch padded past its longest utterance leaves frames no segment covers: all padding.
    sizes = [end - start for start, end, _ in segments]
    uncovered = x.size(1) - sum(sizes)
    chunks = x.split([*sizes, uncovered] if uncovered else sizes, dim=1)
    for (_, _, rows), chunk in zip(segments, chunks, strict=False):
        if state is not None:  # the first `rows` utterances carry on; the others have ended
            state = (state[0][:, :rows], state[1][:, :rows])
        out, state = run_lstm(lstm, chunk[:rows], state)  # (rows, end - start, H)
        outputs.append(nn.functional.pad(out, (0, 0, 0, 0, 0, x.size(0) - rows)))
    out = torch.cat(outputs, dim=1)
    return nn.functional.pad(out, (0, 0, 0, uncovered)) if uncovered else out


class BidirectionalLSTM(nn.Module):
    """One BLSTM layer, exact under padding without ``PackedSequence`` (module docstring)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor, lens: Tensor, segments: list[Segment] | None = None) -> Tensor:
        """x (B, T, D_in) with padded frames zeroed, lens (B,) -> (B, T, 2H), padding zeroed.

        ``segments`` (from ``time_segments``, for utterances sorted by decreasing length) runs
        each direction segment by segment; None runs it over the whole padded batch.
        """
        forward_out = lstm_in_segments(self.forward_lstm, x, segments)  # (B, T, H)
        # Reversed within lengths, every utterance's real frames still come first.
        backward_in = reverse_within_lengths(x, lens)
        backward_out = lstm_in_segments(self.backward_lstm, backward_in, segments)
        backward_out = reverse_within_lengths(backward_out, lens)  # (B, T, H)
        out = torch.cat([forward_out, backward_out], dim=-1)  # (B, T, 2H), a new tensor
        return out.masked_fill_(pad_mask(lens, x.size(1))[:, :, None], 0.0)  # in place


def concatenate_frame_pairs(x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
    """The pyramid's input (LAS eq. 5): frames 2i and 2i+1 concatenated, halving time.

    x (B, T, D) with padded frames zeroed, lens (B,) -> (B, ceil(T/2), 2D), ceil(lens/2). An odd
    last real frame is paired with a zero frame (the zeroed padding, or the frame added here).
    """
    batch, time, width = x.shape
    if time % 2:
        x = nn.functional.pad(x, (0, 0, 0, 1))
    return x.reshape(batch, (time + 1) // 2, 2 * width), (lens + 1) // 2


class Listener(nn.Module):
    """``num_layers`` BLSTM layers, then ``num_pyramid_layers`` pyramidal BLSTM layers.

    Each pyramidal layer halves time (LAS eq. 5), so 3 of them reduce 10 ms frames to 80 ms.

    Args:
        input_size: feature width F (80 log-mel bins).
        hidden_size: H, the width of each direction; outputs are 2H wide.
        num_layers: plain BLSTM layers at the bottom, at full frame rate.
        num_pyramid_layers: pyramidal BLSTM layers on top.
        dropout: dropout between layers (not on the top layer's output).
        max_time_segments: run every LSTM in at most this many time segments, each on the
            utterances still running (module docstring); 1 runs it over the padded batch. The
            outputs are the same; with dropout, the random masks fall on the sorted batch.

    >>> listener = Listener(input_size=8, hidden_size=4, num_layers=1, num_pyramid_layers=2)
    >>> out = listener(torch.randn(2, 9, 8), torch.tensor([9, 5]))
    >>> tuple(out.encoded.shape), out.encoded_lens.tolist()
    ((2, 3, 8), [3, 2])
    """

    def __init__(
        self,
        input_size: int = 80,
        hidden_size: int = 256,
        num_layers: int = 1,
        num_pyramid_layers: int = 3,
        dropout: float = 0.0,
        max_time_segments: int = 4,
    ) -> None:
        super().__init__()
        if max_time_segments < 1:
            raise ValueError(
                f"listener max_time_segments must be positive, got {max_time_segments}"
            )
        if input_size < 1 or hidden_size < 1:
            raise ValueError(
                f"listener input_size and hidden_size must be positive, "
                f"got {input_size} and {hidden_size}"
            )
        if num_layers < 0 or num_pyramid_layers < 0 or num_layers + num_pyramid_layers < 1:
            raise ValueError(
                f"listener needs at least one layer and no negative counts, got num_layers="
                f"{num_layers}, num_pyramid_layers={num_pyramid_layers}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"listener dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_pyramid_layers = num_pyramid_layers
        self.output_size = 2 * hidden_size
        self.max_time_segments = max_time_segments

        self.is_pyramid = [False] * num_layers + [True] * num_pyramid_layers
        layers = []
        width = input_size
        for pyramid in self.is_pyramid:
            layers.append(BidirectionalLSTM(2 * width if pyramid else width, hidden_size))
            width = self.output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)

    def output_lengths(self, feature_lens: Tensor) -> Tensor:
        """Encoder lengths T' (B,) for feature lengths (B,): ceil-halved once per pyramid layer."""
        lens = feature_lens
        for _ in range(self.num_pyramid_layers):
            lens = (lens + 1) // 2
        return lens

    def forward(self, features: Tensor, feature_lens: Tensor) -> ListenerOutput:
        """Encode padded features.

        Args:
            features: (B, T, F); values on padded frames are ignored.
            feature_lens: (B,) real frames per utterance, at least 1.

        Returns:
            ListenerOutput with ``encoded`` (B, T', 2H), T' = ceil(T / 2**num_pyramid_layers).
        """
        lens = feature_lens.to(features.device)
        x = features.masked_fill(pad_mask(lens, features.size(1))[:, :, None], 0.0)
        order = host_lens = None
        if self.max_time_segments > 1:  # sort by decreasing length, for time_segments
            host_lens = feature_lens.tolist()  # one read of the lengths per batch
            ranking = sorted(range(len(host_lens)), key=lambda b: -host_lens[b])
            host_lens = [host_lens[b] for b in ranking]
            if ranking != sorted(ranking):
                order = torch.tensor(ranking, device=x.device)
                x, lens = x.index_select(0, order), lens.index_select(0, order)
        layer_outputs = []
        for index, (layer, pyramid) in enumerate(zip(self.layers, self.is_pyramid, strict=True)):
            if index > 0:
                x = self.dropout(x)  # dropout between layers; dropped-out padding stays zero
            if pyramid:
                x, lens = concatenate_frame_pairs(x, lens)  # (B, T_l / 2, 2 * D)
            segments = None
            if host_lens is not None:
                host_lens = [(length + 1) // 2 for length in host_lens] if pyramid else host_lens
                segments = time_segments(host_lens, self.max_time_segments)
            x = layer(x, lens, segments)  # (B, T_l, 2H), padding zeroed
            layer_outputs.append((x, lens))
        if order is not None:  # back to the caller's order
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(len(order), device=order.device)
            layer_outputs = [
                (output.index_select(0, inverse), output_lens.index_select(0, inverse))
                for output, output_lens in layer_outputs
            ]
            x, lens = layer_outputs[-1]
        return ListenerOutput(x, lens, tuple(layer_outputs))
