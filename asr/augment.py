"""Data augmentation, so a model trained on a few synthetic voices generalises to other voices.

Two stages, both batch-in/batch-out with lengths and every random draw from an explicit
``torch.Generator`` (the same seed gives the same batch):

- :class:`WaveformAugment` (here) on raw audio (B, S): speed perturbation, additive coloured
  noise, gain, and the acoustic simulation of ``asr.acoustics``.
- :class:`SpectrogramAugment` (``asr.spectrogram_augment``, re-exported here) on normalised
  log-mel (B, T, F): pitch shift (frequency warp), random equalisation, SpecAugment masks.

Random numbers are drawn on ``generator.device`` and moved to the data's device, so pass a
generator on the same device as the batch to avoid copies. Any strength set to 0 turns its part off.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn

from asr import acoustics
from asr.masking import pad_mask
from asr.spectrogram_augment import SpectrogramAugment, _uniform

__all__ = ["SpectrogramAugment", "WaveformAugment"]

# Noise below this is sub-audible rumble that a microphone's high-pass removes; left in, brown
# noise would spend most of its SNR budget there.
_NOISE_LOW_CUTOFF_HZ = 50.0


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
