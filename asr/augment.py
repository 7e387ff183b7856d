"""Data augmentation, so a model trained on a few synthetic voices generalises to other voices.

Two stages, both batch-in/batch-out with lengths and every random draw from an explicit
``torch.Generator`` (the same seed gives the same batch):

- :class:`WaveformAugment` on raw audio (B, S): speed perturbation, additive coloured noise, gain.
- :class:`SpectrogramAugment` on normalised log-mel (B, T, F): pitch shift (frequency warp),
  random equalisation, SpecAugment frequency and time masks.

Random numbers are drawn on ``generator.device`` and moved to the data's device, so pass a
generator on the same device as the batch to avoid copies. Any strength set to 0 turns its part off.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn

from asr import acoustics
from asr.features import hz_to_mel, mel_bin_frequencies
from asr.masking import pad_mask

# Noise below this is sub-audible rumble that a microphone's high-pass removes; left in, brown
# noise would spend most of its SNR budget there.
_NOISE_LOW_CUTOFF_HZ = 50.0
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


def _next_fast_fft_length(length: int) -> int:
    """Smallest ``2^a 3^b 5^c >= length``: an FFT size that is fast on CPU and CUDA alike."""
    best = 1 << max(length - 1, 0).bit_length()
    power_of_5 = 1
    while power_of_5 < best:
        candidate = power_of_5
        while candidate < best:
            size = candidate
            while size < length:
                size *= 2
            best = min(best, size)
            candidate *= 3
        power_of_5 *= 5
    return best


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


class WaveformAugment(nn.Module):
    """Speed perturbation, additive coloured noise and random gain on a padded batch of audio.

    Per utterance, in this order:

    1. Speed (Ko et al. 2015): a factor drawn uniformly from ``speed_factors``; the audio is
       resampled from ``sample_rate * factor`` to ``sample_rate``, so tempo and pitch both change
       and the length becomes ``ceil(S / factor)``. Utterances sharing a factor are resampled
       together (one ``torchaudio.functional.resample`` call per distinct factor). Factors should
       be simple ratios (0.9 = 9/10) so the polyphase filter stays small.
    2. Noise, with probability ``noise_probability``: Gaussian noise with power spectrum
       ``1/f^beta``, ``beta`` uniform in [0, 2] (0 white, 1 pink, 2 brown), nothing below 50 Hz,
       scaled to an SNR uniform in ``noise_snr_db`` relative to the utterance's own power over its
       real samples; padding gets no noise.
    3. Gain uniform in [-gain_db, +gain_db] dB.

    Acoustic simulation (``asr.acoustics``, all off by default), each with its probability:
    a synthetic room (RT60 and direct-to-reverberant ratio drawn from ``rt60_seconds`` and
    ``drr_db``) after speed; another utterance of the batch as babble (``babble_snr_db``) before
    the noise; a telephone band and mu-law codec after it; a DC offset up to ``dc_offset`` last.

    Drawing the speed factors moves them to the host (a sync if ``generator`` is on CUDA).

    >>> augment = WaveformAugment(speed_factors=(0.9,), noise_probability=0.0, gain_db=0.0)
    >>> waveforms, lens = augment(torch.randn(2, 900), torch.tensor([900, 450]), torch.Generator())
    >>> waveforms.shape, lens.tolist()
    (torch.Size([2, 1000]), [1000, 500])
    """

    def __init__(
        self,
        speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1),
        gain_db: float = 6.0,
        noise_probability: float = 0.5,
        noise_snr_db: tuple[float, float] = (10.0, 40.0),
        sample_rate: int = 16000,
        reverb_probability: float = 0.0,
        rt60_seconds: tuple[float, float] = (0.2, 0.8),
        drr_db: tuple[float, float] = (-3.0, 12.0),
        babble_probability: float = 0.0,
        babble_snr_db: tuple[float, float] = (5.0, 25.0),
        telephone_probability: float = 0.0,
        dc_offset: float = 0.0,
    ) -> None:
        super().__init__()
        for name in ("reverb_probability", "babble_probability", "telephone_probability"):
            if not 0.0 <= locals()[name] <= 1.0:
                raise ValueError(f"{name}={locals()[name]} must be in [0, 1]")
        for name in ("rt60_seconds", "drr_db", "babble_snr_db"):
            if len(locals()[name]) != 2 or locals()[name][0] > locals()[name][1]:
                raise ValueError(f"{name}={locals()[name]} must be (low, high) with low <= high")
        if rt60_seconds[0] <= 0 or dc_offset < 0:
            raise ValueError("rt60_seconds must be positive and dc_offset non-negative")
        self.reverb_probability = float(reverb_probability)
        self.rt60_seconds = (float(rt60_seconds[0]), float(rt60_seconds[1]))
        self.drr_db = (float(drr_db[0]), float(drr_db[1]))
        self.babble_probability = float(babble_probability)
        self.babble_snr_db = (float(babble_snr_db[0]), float(babble_snr_db[1]))
        self.telephone_probability = float(telephone_probability)
        self.dc_offset = float(dc_offset)
        if not speed_factors or any(factor <= 0 for factor in speed_factors):
            raise ValueError(f"speed_factors={speed_factors} must be positive and not empty")
        if gain_db < 0:
            raise ValueError(f"gain_db={gain_db} must be non-negative")
        if not 0.0 <= noise_probability <= 1.0:
            raise ValueError(f"noise_probability={noise_probability} must be in [0, 1]")
        if len(noise_snr_db) != 2 or noise_snr_db[0] > noise_snr_db[1]:
            raise ValueError(f"noise_snr_db={noise_snr_db} must be (low, high) with low <= high")
        self.speed_factors = tuple(float(factor) for factor in speed_factors)
        self.gain_db = float(gain_db)
        self.noise_probability = float(noise_probability)
        self.noise_snr_db = (float(noise_snr_db[0]), float(noise_snr_db[1]))
        self.sample_rate = sample_rate
        # factor -> (orig_freq, new_freq) reduced by their gcd, as the resampler will use them.
        self._resample_ratios = {}
        for factor in set(self.speed_factors):
            orig_freq = round(sample_rate * factor)
            divisor = math.gcd(orig_freq, sample_rate)
            self._resample_ratios[factor] = (orig_freq // divisor, sample_rate // divisor)

    def forward(
        self, waveforms: Tensor, waveform_lens: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Augment a padded batch.

        Args:
            waveforms: (B, S) float audio, padded.
            waveform_lens: (B,) number of real samples of each utterance.
            generator: the source of every random draw.

        Returns:
            waveforms (B, S') and their lengths (B,); S' = S unless speed perturbation changed it.
            Samples beyond the new lengths are 0 when speed perturbation ran.
        """
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be (B, S), got shape {tuple(waveforms.shape)}")
        if any(factor != 1.0 for factor in self.speed_factors):
            waveforms, waveform_lens = self._perturb_speed(waveforms, waveform_lens, generator)
        lens, rate = waveform_lens, self.sample_rate
        if self.reverb_probability > 0:
            waveforms = acoustics.reverberate(
                waveforms, lens, generator, self.reverb_probability, self.rt60_seconds,
                self.drr_db, rate,
            )  # fmt: skip
        if self.babble_probability > 0:
            waveforms = acoustics.add_babble(
                waveforms, lens, generator, self.babble_probability, self.babble_snr_db
            )
        if self.noise_probability > 0:
            waveforms = self._add_noise(waveforms, waveform_lens, generator)
        if self.telephone_probability > 0:
            waveforms = acoustics.telephone(
                waveforms, lens, generator, self.telephone_probability, rate
            )
        if self.gain_db > 0:
            batch, device = waveforms.size(0), waveforms.device
            gain_db = _uniform((batch,), -self.gain_db, self.gain_db, generator, device)
            waveforms = waveforms * (10.0 ** (gain_db / 20.0)).to(waveforms.dtype).unsqueeze(1)
        if self.dc_offset > 0:
            waveforms = acoustics.add_dc(waveforms, lens, generator, self.dc_offset)
        return waveforms, waveform_lens

    def _perturb_speed(
        self, waveforms: Tensor, waveform_lens: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Resample each utterance by its drawn factor: (B, S) -> (B, ceil(S / min factor))."""
        batch, num_samples = waveforms.shape
        device = waveforms.device
        choice = torch.randint(
            len(self.speed_factors), (batch,), generator=generator, device=generator.device
        ).cpu()
        factors = torch.tensor(self.speed_factors)[choice]  # (B,) on the host
        # Zero the padding: the resampling filter reaches a few samples past each utterance's end,
        # where an utterance alone would see zeros.
        waveforms = waveforms.masked_fill(pad_mask(waveform_lens, num_samples), 0.0)
        groups = []  # (indices on device, resampled group (G, S_group), orig_freq, new_freq)
        for factor, (orig_freq, new_freq) in sorted(self._resample_ratios.items()):
            indices = torch.nonzero(factors == factor).squeeze(1)
            if indices.numel() == 0:
                continue
            indices = indices.to(device)
            group = waveforms.index_select(0, indices)
            if orig_freq != new_freq:
                group = torchaudio.functional.resample(group, orig_freq, new_freq)
            groups.append((indices, group, orig_freq, new_freq))
        output = waveforms.new_zeros(batch, max(group.size(1) for _, group, _, _ in groups))
        output_lens = waveform_lens.clone()
        for indices, group, orig_freq, new_freq in groups:
            output[indices, : group.size(1)] = group
            # The resampler's own length rule, ceil(S * new / orig), applied to the real lengths.
            group_lens = waveform_lens.index_select(0, indices)
            output_lens[indices] = torch.div(
                group_lens * new_freq + orig_freq - 1, orig_freq, rounding_mode="floor"
            )
        output = output.masked_fill(pad_mask(output_lens, output.size(1)), 0.0)
        return output, output_lens

    def _add_noise(
        self, waveforms: Tensor, waveform_lens: Tensor, generator: torch.Generator
    ) -> Tensor:
        """Add 1/f^beta noise at a random SNR to a random subset of utterances: (B, S) -> (B, S)."""
        batch, num_samples = waveforms.shape
        device = waveforms.device
        applied = _uniform((batch,), 0.0, 1.0, generator, device) < self.noise_probability
        snr_db = _uniform((batch,), *self.noise_snr_db, generator, device)
        exponent = _uniform((batch, 1), 0.0, 2.0, generator, device)  # power spectrum 1/f^beta
        # Shape Gaussian noise in the frequency domain, one irfft for the batch: amplitude
        # (f / 50 Hz)^(-beta/2) above 50 Hz, none below.
        fft_length = _next_fast_fft_length(num_samples)
        spectrum = torch.randn(
            (batch, fft_length // 2 + 1),
            generator=generator,
            device=generator.device,
            dtype=torch.complex64,
        ).to(device)
        frequencies = torch.fft.rfftfreq(fft_length, d=1.0 / self.sample_rate, device=device)
        log_relative = (frequencies / _NOISE_LOW_CUTOFF_HZ).clamp(min=1.0).log()  # (S_fft/2+1,)
        shaping = torch.exp(-exponent / 2 * log_relative)  # (B, S_fft/2+1); exp beats pow here
        shaping[:, : math.ceil(_NOISE_LOW_CUTOFF_HZ * fft_length / self.sample_rate)] = 0.0
        noise = torch.fft.irfft(spectrum * shaping, n=fft_length)[:, :num_samples]  # (B, S)
        valid = ~pad_mask(waveform_lens, num_samples)
        noise = noise * valid
        num_real = waveform_lens.clamp(min=1).to(noise.dtype)
        signal_power = (waveforms.float() * valid).square().sum(dim=1) / num_real
        noise_power = noise.square().sum(dim=1) / num_real
        # Scale so that signal_power / (scale^2 * noise_power) = 10^(snr/10).
        scale = (signal_power / (noise_power.clamp(min=1e-20) * 10.0 ** (snr_db / 10.0))).sqrt()
        scale = scale * applied
        return waveforms + (noise * scale.unsqueeze(1)).to(waveforms.dtype)


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
