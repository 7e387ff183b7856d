"""Acoustic features: log-mel filterbank energies and their global mean/variance normalisation.

Frames are cut without centring (Kaldi-style): frame ``t`` covers samples
``[t * hop, t * hop + window)``, so an utterance of ``S`` samples has
``1 + (S - window) // hop`` frames when ``S >= window`` and none otherwise. A frame therefore only
sees real samples, which makes a padded batch equal to its utterances computed one by one.
Each utterance's DC offset (mean over its real samples) is removed first; the spectrum is the
n_fft-point FFT of the Hann-windowed frame, and the mel filters are HTK-scale triangles over
0 .. sample_rate / 2 (``torchaudio.functional.melscale_fbanks``).

Pipeline: waveform (B, S) -> :class:`LogMelFilterbank` -> (B, T, F) -> :class:`GlobalNormalizer`.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from asr.masking import pad_mask


def hz_to_mel(frequencies: Tensor) -> Tensor:
    """HTK mel scale, the one the filterbank uses: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * torch.log10(1.0 + frequencies / 700.0)


def mel_to_hz(mels: Tensor) -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def mel_bin_frequencies(sample_rate: int, num_mel_bins: int) -> Tensor:
    """Centre frequency in Hz of each filterbank bin (F,), equally spaced in mel over 0..sr/2.

    >>> mel_bin_frequencies(16000, 80).shape
    torch.Size([80])
    """
    mel_max = hz_to_mel(torch.tensor(sample_rate / 2))
    return mel_to_hz(torch.linspace(0.0, float(mel_max), num_mel_bins + 2)[1:-1])


class LogMelFilterbank(nn.Module):
    """Natural-log mel filterbank energies, 25 ms Hann windows every 10 ms by default.

    :meth:`power` gives the mel power and :meth:`log` its floored log, so that augmentation can
    work in the power domain between the two; ``forward`` is both.

    The filterbank and window are non-persistent buffers: they follow ``.to(device)`` but stay out
    of checkpoints, which only need the constructor arguments.

    >>> fbank = LogMelFilterbank()
    >>> features, frame_lens = fbank(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> features.shape, frame_lens.tolist()
    (torch.Size([2, 98, 80]), [98, 48])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_mel_bins: int = 80,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_fft: int = 512,
        floor: float = 1e-10,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.window_length = round(sample_rate * window_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_fft = n_fft
        self.floor = floor
        if self.window_length < 1 or self.hop_length < 1:
            raise ValueError(f"window_ms={window_ms} and hop_ms={hop_ms} must be at least a sample")
        if n_fft < self.window_length:
            raise ValueError(
                f"n_fft={n_fft} is shorter than the {self.window_length}-sample window"
            )
        if not 0 < num_mel_bins <= n_fft // 2 + 1:
            raise ValueError(f"num_mel_bins={num_mel_bins} must be in 1..{n_fft // 2 + 1}")
        if floor <= 0:
            raise ValueError(f"floor={floor} must be positive")
        self.register_buffer("window", torch.hann_window(self.window_length), persistent=False)
        mel_filters = torchaudio.functional.melscale_fbanks(
            n_freqs=n_fft // 2 + 1,
            f_min=0.0,
            f_max=sample_rate / 2,
            n_mels=num_mel_bins,
            sample_rate=sample_rate,
            norm=None,
            mel_scale="htk",
        )  # (n_fft/2+1, F)
        self.register_buffer("mel_filters", mel_filters, persistent=False)

    def num_frames(self, num_samples: Tensor) -> Tensor:
        """Frame count for each length: ``1 + (S - window) // hop`` for ``S >= window``, else 0."""
        frames = torch.div(num_samples - self.window_length, self.hop_length, rounding_mode="floor")
        return (frames + 1).clamp(min=0)

    def power(self, waveforms: Tensor, waveform_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Mel filterbank power.

        Args:
            waveforms: (B, S) float audio; samples beyond ``waveform_lens`` are ignored.
            waveform_lens: (B,) number of real samples of each utterance.

        Returns:
            power (B, T, F) with zeros on padded frames, and ``frame_lens`` (B,).
        """
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be (B, S), got shape {tuple(waveforms.shape)}")
        num_samples = waveforms.size(1)
        frame_lens = self.num_frames(waveform_lens)
        total_frames = max(0, 1 + (num_samples - self.window_length) // self.hop_length)
        batch = waveforms.size(0)
        if total_frames == 0:
            empty = waveforms.new_zeros(batch, 0, self.num_mel_bins, dtype=torch.float32)
            return empty, frame_lens
        # Float32 even under autocast: half precision overflows on loud frames (power > 65504).
        with torch.autocast(waveforms.device.type, enabled=False):
            waveforms = waveforms.float().masked_fill(pad_mask(waveform_lens, num_samples), 0.0)
            # Remove each utterance's DC offset (real recordings often carry one) over its real
            # samples only, so padding cannot change it.
            dc_offset = waveforms.sum(dim=1, keepdim=True) / waveform_lens.clamp(min=1).unsqueeze(1)
            waveforms = waveforms - dc_offset
            # torch.stft centres a shorter window inside each n_fft frame; padding both ends by
            # the difference puts frame t's window on samples [t * hop, t * hop + window).
            left = (self.n_fft - self.window_length) // 2
            right = self.n_fft - self.window_length - left
            spectrum = torch.stft(
                nn.functional.pad(waveforms, (left, right)),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.window_length,
                window=self.window,
                center=False,
                return_complex=True,
            )  # (B, n_fft/2+1, T)
            spectrum_power = spectrum.real.square() + spectrum.imag.square()
            mel_power = spectrum_power.transpose(1, 2) @ self.mel_filters  # (B, T, F)
        padding = pad_mask(frame_lens, total_frames)
        return mel_power.masked_fill(padding.unsqueeze(-1), 0.0), frame_lens

    def forward(self, waveforms: Tensor, waveform_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Log-mel features (B, T, F), natural log of the power, zeros on padded frames.

        Args:
            waveforms: (B, S) float audio.
            waveform_lens: (B,) number of real samples of each utterance.

        Returns:
            features (B, T, F) and ``frame_lens`` (B,).
        """
        mel_power, frame_lens = self.power(waveforms, waveform_lens)
        return self.log(mel_power, frame_lens), frame_lens

    def log(self, mel_power: Tensor, frame_lens: Tensor) -> Tensor:
        """Natural log of mel power (B, T, F), floored at ``floor``; padded frames stay 0."""
        padding = pad_mask(frame_lens, mel_power.size(1))
        log_power = mel_power.clamp(min=self.floor).log()
        return log_power.masked_fill(padding.unsqueeze(-1), 0.0)


class GlobalNormalizer(nn.Module):
    """Global per-feature mean/variance normalisation with statistics from the training split.

    Statistics are summed in float64 by :meth:`accumulate` over any number of batches, then turned
    into ``mean`` and ``std`` by :meth:`finalize`. All of it lives in buffers, so the fitted
    statistics travel in the model's ``state_dict``. Before fitting it is the identity.

    With ``subtract_utterance_mean`` every utterance's own mean log-mel vector (over its real
    frames) is removed first, in :meth:`accumulate` and :meth:`forward` alike: cepstral mean
    normalisation (Atal 1974; Furui 1981) in the log-mel domain. A fixed linear channel (a
    microphone, a room's colouring, a synthesizer's spectral tilt) multiplies each mel band's
    power by a constant, which adds a constant to that band's log; the utterance mean removes
    it, so the global statistics then only scale what is left.

    One mean over a whole recording fits one speaker and channel. Where a recording holds
    several (voices taking turns, input joined from several utterances), ``mean_window_frames``
    = W > 0 removes instead the mean of the W frames centred on each frame (Kaldi's sliding
    CMN, centred), clipped to the utterance: frames farther than W / 2 from a change of
    channel are centred as if the rest were not there, and an utterance of at most W / 2
    frames is centred on its whole mean as before.

    Args:
        num_features: F, the filterbank's bins.
        subtract_utterance_mean: remove each utterance's mean vector before the global
            statistics (``normalizer=utterance_mean``).
        mean_window_frames: W, the frames of the sliding mean (0: the whole utterance;
            ``normalizer=sliding_mean``).

    >>> normalizer = GlobalNormalizer(num_features=2)
    >>> normalizer.accumulate(torch.tensor([[[1.0, 0.0], [3.0, 4.0]]]), torch.tensor([2]))
    >>> normalizer.finalize()
    >>> normalizer.mean.tolist(), normalizer.std.tolist()
    ([2.0, 2.0], [1.0, 2.0])
    """

    def __init__(
        self,
        num_features: int = 80,
        subtract_utterance_mean: bool = False,
        mean_window_frames: int = 0,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features={num_features} must be positive")
        if mean_window_frames < 0:
            raise ValueError(f"mean_window_frames={mean_window_frames} must not be negative")
        self.num_features = num_features
        self.subtract_utterance_mean = bool(subtract_utterance_mean)
        self.mean_window_frames = int(mean_window_frames)
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("feature_sum", torch.zeros(num_features, dtype=torch.float64))
        self.register_buffer("feature_square_sum", torch.zeros(num_features, dtype=torch.float64))

    @torch.no_grad()
    def accumulate(self, features: Tensor, feature_lens: Tensor) -> None:
        """Add the real frames of ``features`` (B, T, F) to the running float64 sums."""
        valid = ~pad_mask(feature_lens, features.size(1))  # (B, T)
        frames = self._centred(features.to(torch.float64), feature_lens) * valid.unsqueeze(-1)
        self.feature_sum += frames.sum(dim=(0, 1))
        self.feature_square_sum += frames.square().sum(dim=(0, 1))
        self.count += valid.sum()

    @torch.no_grad()
    def finalize(self) -> None:
        """Set ``mean`` and ``std`` (floored at 1e-5) from the accumulated sums."""
        if not self.count > 0:
            raise ValueError("GlobalNormalizer.finalize() needs accumulate() on some frames first")
        mean = self.feature_sum / self.count
        variance = (self.feature_square_sum / self.count - mean.square()).clamp(min=0.0)
        self.mean.copy_(mean)
        self.std.copy_(variance.sqrt().clamp(min=1e-5))

    def forward(self, features: Tensor, feature_lens: Tensor) -> Tensor:
        """Normalised features (B, T, F): ``(x - mean) / std`` on real frames, 0 on padding
        (``x`` less its utterance's mean with ``subtract_utterance_mean``)."""
        normalized = (self._centred(features, feature_lens) - self.mean) / self.std
        padding = pad_mask(feature_lens, features.size(1))
        return normalized.masked_fill(padding.unsqueeze(-1), 0.0)

    def _centred(self, features: Tensor, feature_lens: Tensor) -> Tensor:
        """``features`` (B, T, F) less each utterance's mean over its real frames, when
        ``subtract_utterance_mean``; unchanged otherwise. Padding never enters the mean, so a
        batch gives what its utterances give one by one."""
        if not self.subtract_utterance_mean:
            return features
        lens = feature_lens.to(features.device)
        frames = features.size(1)
        valid = ~pad_mask(lens, frames)  # (B, T)
        real = features * valid.unsqueeze(-1)
        if self.mean_window_frames == 0 or self.mean_window_frames >= 2 * frames:
            totals = real.sum(dim=1, keepdim=True)  # (B, 1, F)
            counts = lens.clamp(min=1).to(features.dtype)[:, None, None]
            return features - totals / counts
        # Window [t - W/2, t - W/2 + W) clipped to the utterance, as differences of prefix sums
        # (float64: an hour of frames would lose the float32 sums' last digits).
        width, half = self.mean_window_frames, self.mean_window_frames // 2
        prefix = nn.functional.pad(real.to(torch.float64).cumsum(dim=1), (0, 0, 1, 0))
        steps = torch.arange(frames, device=features.device)
        start = (steps - half).clamp(min=0).expand(len(lens), -1)  # (B, T)
        end = torch.minimum((steps - half + width).clamp(max=frames), lens[:, None])
        start = torch.minimum(start, end)  # padded frames: an empty window
        index = lambda bound: bound.unsqueeze(-1).expand(-1, -1, features.size(2))  # noqa: E731
        sums = prefix.gather(1, index(end)) - prefix.gather(1, index(start))
        counts = (end - start).clamp(min=1).unsqueeze(-1)
        return features - (sums / counts).to(features.dtype)
