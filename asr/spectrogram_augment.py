"""Spectrogram augmentation: pitch warp, random equalisation and SpecAugment masks on log-mel.

:class:`SpectrogramAugment` maps a padded batch of normalised log-mel (B, T, F) with its lengths
to (B, T, F), every random draw from an explicit ``torch.Generator`` (drawn on
``generator.device``, moved to the data's device); any strength set to 0 turns its part off.
The waveform stage, ``asr.augment.WaveformAugment``, sits above this module: ``asr.augment``
re-exports this class and borrows ``_uniform`` from here, so the two never import in a circle.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from asr.features import hz_to_mel, mel_bin_frequencies
from asr.masking import pad_mask

# Random equalisation is a sum of this many cosines across the mel axis: smooth tilts and bumps.
_EQ_COSINES = 3
_NATS_PER_DB = math.log(10.0) / 10.0  # a power ratio in dB times this is its natural log


def _uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    generator: torch.Generator,
    device: torch.device,
) -> Tensor:
    """Uniform samples in [low, high), drawn on ``generator.device`` and moved to ``device``."""
    values = torch.rand(shape, generator=generator, device=generator.device)
    return (low + (high - low) * values).to(device)


def _random_spans(
    count: int, max_width: Tensor, limit: Tensor, size: int, generator: torch.Generator
) -> Tensor:
    """Masks (B, size), True on ``count`` random spans per row.

    Each span's width is uniform in 0..``max_width`` (B,) and it lies wholly inside
    [0, ``limit``) (B,); spans may overlap.
    """
    batch, device = limit.size(0), limit.device
    widest = torch.minimum(max_width, limit).unsqueeze(1)  # (B, 1)
    widths = (_uniform((batch, count), 0.0, 1.0, generator, device) * (widest + 1)).floor()
    room = limit.unsqueeze(1) - widths + 1  # start positions that keep the span inside
    starts = (_uniform((batch, count), 0.0, 1.0, generator, device) * room).floor()
    positions = torch.arange(size, device=device).view(1, 1, size)
    starts, ends = starts.unsqueeze(2), (starts + widths).unsqueeze(2)  # (B, count, 1)
    return ((positions >= starts) & (positions < ends)).any(dim=1)


class SpectrogramAugment(nn.Module):
    """Pitch shift, random equalisation and SpecAugment masks on normalised log-mel features.

    Per utterance, in this order:

    1. Pitch shift by ``s`` semitones, ``s`` uniform in ±``pitch_shift_semitones``: every
       frequency ``f`` is scaled by ``2^(s/12)`` by linear interpolation along the mel axis (a
       VTLP-style warp, Jaitly & Hinton 2013). Harmonics and formants move together, as
       resampling then restoring the duration would do, and the duration is unchanged. Off by
       default. Interpolating normalised bins is a close approximation: neighbouring bins have
       similar statistics.
    2. Equalisation: a smooth curve across the mel bins, a sum of 3 cosines with random amplitudes,
       at most ``eq_db`` dB in magnitude, added in the log-power domain (a linear filter is
       additive there). Pass the normaliser's ``std`` as ``feature_std`` so it is in true dB.
    3. SpecAugment (Park et al. 2019), masked values set to 0, the normalised mean:
       ``freq_masks`` bands, each of width uniform in 0..``freq_mask_width`` bins; and
       ``time_masks`` spans, each of width uniform in 0..``min(time_mask_width,
       floor(time_mask_max_ratio * length))`` frames, placed wholly inside the real frames.

    Padded frames are 0 on return.

    >>> augment = SpectrogramAugment()
    >>> features = augment(torch.randn(2, 100, 80), torch.tensor([100, 60]), torch.Generator())
    >>> features.shape, bool(features[1, 60:].eq(0).all())
    (torch.Size([2, 100, 80]), True)
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_mask_width: int = 27,
        time_masks: int = 2,
        time_mask_width: int = 40,
        time_mask_max_ratio: float = 0.05,
        eq_db: float = 6.0,
        pitch_shift_semitones: float = 0.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        for name, value in [
            ("freq_masks", freq_masks),
            ("freq_mask_width", freq_mask_width),
            ("time_masks", time_masks),
            ("time_mask_width", time_mask_width),
            ("eq_db", eq_db),
            ("pitch_shift_semitones", pitch_shift_semitones),
        ]:
            if value < 0:
                raise ValueError(f"{name}={value} must be non-negative")
        if not 0.0 <= time_mask_max_ratio <= 1.0:
            raise ValueError(f"time_mask_max_ratio={time_mask_max_ratio} must be in [0, 1]")
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.time_mask_max_ratio = time_mask_max_ratio
        self.eq_db = eq_db
        self.pitch_shift_semitones = pitch_shift_semitones
        self.sample_rate = sample_rate

    def forward(
        self,
        features: Tensor,
        feature_lens: Tensor,
        generator: torch.Generator,
        feature_std: Tensor | None = None,
    ) -> Tensor:
        """Augment a padded batch of normalised log-mel features.

        Args:
            features: (B, T, F) normalised natural-log mel power, 0 on padded frames.
            feature_lens: (B,) number of real frames of each utterance.
            generator: the source of every random draw.
            feature_std: (F,) the normaliser's std in natural-log units, so that ``eq_db`` means
                dB; None treats the features as unscaled log power.

        Returns:
            augmented features (B, T, F), 0 on padded frames.
        """
        if features.dim() != 3:
            raise ValueError(f"features must be (B, T, F), got shape {tuple(features.shape)}")
        batch, num_frames, num_bins = features.shape
        device = features.device
        if self.pitch_shift_semitones > 0:
            features = self._shift_pitch(features, generator)
        if self.eq_db > 0:
            amplitudes = _uniform((batch, _EQ_COSINES, 1), -1.0, 1.0, generator, device)
            orders = torch.arange(1, _EQ_COSINES + 1, device=device).unsqueeze(1)  # (K, 1)
            bins = (torch.arange(num_bins, device=device) + 0.5) / num_bins  # (F,)
            cosines = torch.cos(math.pi * orders * bins)  # (K, F)
            curve = (amplitudes * cosines).sum(dim=1) * (self.eq_db / _EQ_COSINES)  # (B, F) dB
            curve = curve * _NATS_PER_DB
            if feature_std is not None:
                curve = curve / feature_std
            features = features + curve.unsqueeze(1).to(features.dtype)
        masked = pad_mask(feature_lens, num_frames).unsqueeze(2)  # (B, T, 1)
        if self.freq_masks > 0 and self.freq_mask_width > 0:
            all_bins = torch.full((batch,), num_bins, device=device)
            widest = torch.full((batch,), self.freq_mask_width, device=device)
            freq_masked = _random_spans(self.freq_masks, widest, all_bins, num_bins, generator)
            masked = masked | freq_masked.unsqueeze(1)  # (B, 1, F)
        if self.time_masks > 0 and self.time_mask_width > 0 and self.time_mask_max_ratio > 0:
            widest = (feature_lens * self.time_mask_max_ratio).floor().long()
            widest = widest.clamp(max=self.time_mask_width)
            time_masked = _random_spans(
                self.time_masks, widest, feature_lens, num_frames, generator
            )
            masked = masked | time_masked.unsqueeze(2)  # (B, T, 1)
        return features.masked_fill(masked, 0.0)

    def _shift_pitch(self, features: Tensor, generator: torch.Generator) -> Tensor:
        """Scale every frequency by a random 2^(s/12) along the mel axis: (B, T, F) -> (B, T, F)."""
        batch, num_frames, num_bins = features.shape
        device = features.device
        limit = self.pitch_shift_semitones
        semitones = _uniform((batch, 1), -limit, limit, generator, device)
        centres = mel_bin_frequencies(self.sample_rate, num_bins).to(device)  # (F,) Hz
        # The output bin at frequency f takes what the input had at f / 2^(s/12).
        sources = centres / 2.0 ** (semitones / 12.0)  # (B, F) Hz
        # Bin i is centred at mel (i + 1) * mel_step (see mel_bin_frequencies).
        mel_step = hz_to_mel(torch.tensor(self.sample_rate / 2)).item() / (num_bins + 1)
        positions = hz_to_mel(sources) / mel_step - 1.0  # fractional bin index (B, F)
        positions = positions.clamp(0.0, num_bins - 1.0)  # beyond the edges: repeat edge bins
        lower = positions.floor().long()
        upper = (lower + 1).clamp(max=num_bins - 1)
        weight = (positions - lower).unsqueeze(1).to(features.dtype)  # (B, 1, F)
        shape = (batch, num_frames, num_bins)
        below = features.gather(2, lower.unsqueeze(1).expand(shape))
        above = features.gather(2, upper.unsqueeze(1).expand(shape))
        return below + (above - below) * weight
