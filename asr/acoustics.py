"""Acoustic simulation for ``asr.augment.WaveformAugment``: rooms, other talkers, telephones.

Clean synthetic speech is nothing like a recording: a microphone hears the room, other people,
the channel. Each function here takes a padded batch (B, S) with its lengths (B,), a probability
that an utterance gets the effect, and an explicit ``torch.Generator`` (the same seed gives the
same batch); it keeps lengths, leaves padding at zero, and returns unchanged the rows it did not
pick. All run on the batch's device in a few FFTs, cheap enough to apply on the fly.

- :func:`reverberate`: a synthetic room impulse response per utterance, Gaussian noise under an
  exponential decay reaching -60 dB at the drawn RT60 (Sabine's reverberation time), plus a
  direct path at a drawn direct-to-reverberant ratio (DRR), the statistical model of late
  reverberation (Polack 1988) that image-method RIRs also approach after their first echoes.
- :func:`add_babble`: other utterances of the same batch, shifted in time, at a drawn SNR: real
  speech-shaped noise at no cost (the "babble" of cocktail-party corpora).
- :func:`telephone`: the 300-3,400 Hz band of a telephone channel (ITU-T G.712) and its G.711
  mu-law codec at 8 bits.
- :func:`add_dc`: a constant offset, as cheap sound cards and microphones add.

Vocal-tract-length perturbation (Jaitly and Hinton 2013) is ``SpectrogramAugment``'s
``pitch_shift_semitones``, a warp of the mel frequency axis.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor

from asr.masking import pad_mask

MAX_RIR_SECONDS = 0.5  # the tail after this is below -60 dB for RT60 <= 0.5 s, small after
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU_LAW_CHANNELS = 256  # G.711: 8 bits a sample
_DECAY_60_DB = math.log(1000.0)  # amplitude falls by 1000 (60 dB) over one RT60


def _draw(shape, low: float, high: float, generator: torch.Generator, device) -> Tensor:
    values = torch.rand(shape, generator=generator, device=generator.device)
    return (low + (high - low) * values).to(device)


def _picked(batch: int, probability: float, generator: torch.Generator, device) -> Tensor:
    """(B,) bool: which utterances get the effect."""
    return _draw((batch,), 0.0, 1.0, generator, device) < probability


def _fft_length(length: int) -> int:
    return 1 << max(length - 1, 0).bit_length()


def _power(waveforms: Tensor, valid: Tensor, lens: Tensor) -> Tensor:
    """(B,) mean power of the real samples."""
    return (waveforms * valid).square().sum(dim=1) / lens.clamp(min=1).to(waveforms.dtype)


def room_impulse_responses(
    rt60_seconds: Tensor, drr_db: Tensor, sample_rate: int, generator: torch.Generator
) -> Tensor:
    """(B, L) impulse responses: a unit direct path at tap 0, then decaying Gaussian noise.

    ``rt60_seconds`` and ``drr_db`` are (B,). The reverberant part r[n] = g * N(0, 1) *
    exp(-ln(1000) n / (RT60 fs)) starts after 1 ms and is scaled so that 1 / sum(r^2) equals the
    DRR as a power ratio.
    """
    batch, device = rt60_seconds.size(0), rt60_seconds.device
    length = int(min(MAX_RIR_SECONDS, float(rt60_seconds.max())) * sample_rate) + 1
    taps = torch.arange(length, device=device, dtype=torch.float32)
    decay = torch.exp(-_DECAY_60_DB * taps / (rt60_seconds.unsqueeze(1) * sample_rate))
    noise = torch.randn((batch, length), generator=generator, device=generator.device).to(device)
    tail = noise * decay
    tail[:, : max(1, sample_rate // 1000)] = 0.0  # the first reflection comes a little later
    tail_energy = tail.square().sum(dim=1, keepdim=True).clamp(min=1e-12)
    target = 10.0 ** (-drr_db.unsqueeze(1) / 10.0)  # reverberant energy / direct energy
    responses = tail * (target / tail_energy).sqrt()
    responses[:, 0] = 1.0
    return responses


def reverberate(
    waveforms: Tensor,
    lens: Tensor,
    generator: torch.Generator,
    probability: float,
    rt60_seconds: tuple[float, float],
    drr_db: tuple[float, float],
    sample_rate: int,
) -> Tensor:
    """Convolve picked utterances with drawn rooms, keeping each one's length and power.

    (B, S) -> (B, S). The tail past the utterance's end is cut, as a recording of the same
    length would.
    """
    batch, num_samples = waveforms.shape
    device = waveforms.device
    picked = _picked(batch, probability, generator, device)
    rt60 = _draw((batch,), *rt60_seconds, generator, device)
    drr = _draw((batch,), *drr_db, generator, device)
    if not bool(picked.any()):
        return waveforms
    rows = picked.nonzero().squeeze(1)
    responses = room_impulse_responses(rt60[rows], drr[rows], sample_rate, generator)
    valid = ~pad_mask(lens, num_samples)
    dry = (waveforms.index_select(0, rows) * valid[rows]).float()
    n = _fft_length(num_samples + responses.size(1))
    wet = torch.fft.irfft(torch.fft.rfft(dry, n=n) * torch.fft.rfft(responses, n=n), n=n)
    wet = wet[:, :num_samples] * valid[rows]
    gain = (
        _power(dry, valid[rows], lens[rows]) / _power(wet, valid[rows], lens[rows]).clamp(min=1e-12)
    ).sqrt()
    output = waveforms.clone()
    output[rows] = (wet * gain.unsqueeze(1)).to(waveforms.dtype)
    return output


def add_babble(
    waveforms: Tensor,
    lens: Tensor,
    generator: torch.Generator,
    probability: float,
    snr_db: tuple[float, float],
) -> Tensor:
    """Add another utterance of the batch, circularly shifted in time, at a drawn SNR.

    (B, S) -> (B, S). The talker is row (i + k) mod B for a drawn k in 1..B-1, so nobody
    babbles over themselves; a batch of one is returned as it is.
    """
    batch, num_samples = waveforms.shape
    device = waveforms.device
    picked = _picked(batch, probability, generator, device)
    snr = _draw((batch,), *snr_db, generator, device)
    offset = torch.randint(1, max(2, batch), (1,), generator=generator, device=generator.device)
    shifts = _draw((batch,), 0.0, 1.0, generator, device)
    if batch < 2 or not bool(picked.any()):
        return waveforms
    valid = ~pad_mask(lens, num_samples)
    clean = waveforms.float() * valid
    talkers = torch.roll(clean, shifts=int(offset), dims=0)
    talker_lens = torch.roll(lens, shifts=int(offset), dims=0)
    # Shift each talker by a drawn fraction of its own length, wrapping inside its real samples.
    positions = torch.arange(num_samples, device=device).unsqueeze(0)  # (1, S)
    span = talker_lens.clamp(min=1).unsqueeze(1)
    start = (shifts.unsqueeze(1) * span).long()
    index = (positions + start) % span
    babble = torch.gather(talkers, 1, index) * valid
    scale = (
        _power(clean, valid, lens)
        / (_power(babble, valid, lens).clamp(min=1e-12) * 10.0 ** (snr / 10.0))
    ).sqrt() * picked
    return waveforms + (babble * scale.unsqueeze(1)).to(waveforms.dtype)


def telephone(
    waveforms: Tensor,
    lens: Tensor,
    generator: torch.Generator,
    probability: float,
    sample_rate: int,
) -> Tensor:
    """The picked utterances through a 300-3,400 Hz channel and a mu-law codec: (B, S) -> (B, S).

    The band is an FFT mask (an ideal band-pass, what an 8 kHz round trip and the line's
    high-pass do together); the codec quantises to ``MU_LAW_CHANNELS`` mu-law levels after
    scaling the peak to 0.9, then restores the level.
    """
    batch, num_samples = waveforms.shape
    device = waveforms.device
    picked = _picked(batch, probability, generator, device)
    if not bool(picked.any()):
        return waveforms
    rows = picked.nonzero().squeeze(1)
    valid = ~pad_mask(lens, num_samples)[rows]
    audio = waveforms.index_select(0, rows).float() * valid
    n = _fft_length(num_samples)
    frequencies = torch.fft.rfftfreq(n, d=1.0 / sample_rate, device=device)
    band = (frequencies >= TELEPHONE_BAND_HZ[0]) & (frequencies <= TELEPHONE_BAND_HZ[1])
    audio = torch.fft.irfft(torch.fft.rfft(audio, n=n) * band, n=n)[:, :num_samples]
    peak = audio.abs().amax(dim=1, keepdim=True).clamp(min=1e-6) / 0.9
    codes = torchaudio.functional.mu_law_encoding(audio / peak, MU_LAW_CHANNELS)
    audio = torchaudio.functional.mu_law_decoding(codes, MU_LAW_CHANNELS) * peak * valid
    output = waveforms.clone()
    output[rows] = audio.to(waveforms.dtype)
    return output


def add_dc(waveforms: Tensor, lens: Tensor, generator: torch.Generator, offset: float) -> Tensor:
    """Add a constant uniform in [-offset, offset] to each utterance's real samples."""
    batch, num_samples = waveforms.shape
    dc = _draw((batch, 1), -offset, offset, generator, waveforms.device)
    return waveforms + (dc * ~pad_mask(lens, num_samples)).to(waveforms.dtype)
