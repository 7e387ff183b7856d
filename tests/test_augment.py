import math

import pytest
import torch

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.masking import pad_mask

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _generator(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _waveforms(lens: list[int], seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    waveforms = torch.randn(len(lens), max(lens), generator=_generator(seed)) * 0.1
    waveform_lens = torch.tensor(lens)
    waveforms = waveforms.masked_fill(pad_mask(waveform_lens, max(lens)), 0.0)
    return waveforms.to(device), waveform_lens.to(device)


def _features(lens: list[int], num_bins: int = 20, seed: int = 0) -> tuple[torch.Tensor, ...]:
    features = torch.randn(len(lens), max(lens), num_bins, generator=_generator(seed)) + 3.0
    feature_lens = torch.tensor(lens)
    padding = pad_mask(feature_lens, max(lens)).unsqueeze(2)
    return features.masked_fill(padding, 0.0), feature_lens


@pytest.mark.parametrize("device", DEVICES)
def test_waveform_augment_is_deterministic_given_the_seed(device):
    augment = WaveformAugment(noise_probability=1.0)
    waveforms, lens = _waveforms([3000, 2000, 1000, 500], device=device)
    first = augment(waveforms, lens, _generator(7, device))
    again = augment(waveforms, lens, _generator(7, device))
    other = augment(waveforms, lens, _generator(8, device))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert first[0].shape != other[0].shape or not torch.equal(first[0], other[0])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_lengths_and_padding(factor):
    augment = WaveformAugment(speed_factors=(factor,), gain_db=0.0, noise_probability=0.0)
    lens = [3000, 1234, 1]
    waveforms, waveform_lens = _waveforms(lens)
    output, output_lens = augment(waveforms, waveform_lens, _generator(0))
    assert output_lens.tolist() == [math.ceil(length / factor - 1e-9) for length in lens]
    assert output.size(1) == math.ceil(max(lens) / factor - 1e-9)
    assert output[pad_mask(output_lens, output.size(1))].eq(0).all()
    # Each utterance gets the same resampling as it would alone.
    for row, length in enumerate(lens):
        alone, alone_lens = augment(
            waveforms[row : row + 1, :length], waveform_lens[row : row + 1], _generator(0)
        )
        new_length = alone_lens.item()
        torch.testing.assert_close(output[row, :new_length], alone[0, :new_length])


def test_mixed_speed_factors_choose_per_utterance():
    augment = WaveformAugment(speed_factors=(0.9, 1.0, 1.1), gain_db=0.0, noise_probability=0.0)
    waveforms, lens = _waveforms([1800] * 16)
    output, output_lens = augment(waveforms, lens, _generator(3))
    assert set(output_lens.tolist()) == {2000, 1800, 1637}  # 1800/0.9, 1800, ceil(1800/1.1)
    assert output.size(1) == 2000
    unchanged = output_lens == 1800
    assert torch.equal(output[unchanged, :1800], waveforms[unchanged])


def test_noise_reaches_the_drawn_snr_on_real_samples_only():
    augment = WaveformAugment(
        speed_factors=(1.0,), gain_db=0.0, noise_probability=1.0, noise_snr_db=(20.0, 20.0)
    )
    waveforms, lens = _waveforms([4000, 2500, 1000])
    noisy, noisy_lens = augment(waveforms, lens, _generator(5))
    assert torch.equal(noisy_lens, lens)
    noise = noisy - waveforms
    padding = pad_mask(lens, 4000)
    assert noise[padding].eq(0).all()
    for row, length in enumerate(lens.tolist()):
        snr = 10 * math.log10(
            waveforms[row, :length].square().sum() / noise[row, :length].square().sum()
        )
        assert snr == pytest.approx(20.0, abs=1e-3)


def test_gain_is_one_factor_per_utterance_within_the_range():
    augment = WaveformAugment(speed_factors=(1.0,), gain_db=6.0, noise_probability=0.0)
    waveforms, lens = _waveforms([1000, 1000, 1000, 1000], seed=1)
    output, _ = augment(waveforms, lens, _generator(2))
    ratios = output / waveforms
    assert torch.allclose(ratios, ratios[:, :1], rtol=1e-5)
    gains_db = 20 * ratios[:, 0].log10()
    assert gains_db.abs().max() <= 6.0 + 1e-4
    assert gains_db.std() > 0.1  # drawn per utterance


def test_disabled_waveform_augment_is_identity():
    augment = WaveformAugment(speed_factors=(1.0,), gain_db=0.0, noise_probability=0.0)
    waveforms, lens = _waveforms([500, 300])
    output, output_lens = augment(waveforms, lens, _generator(0))
    assert torch.equal(output, waveforms) and torch.equal(output_lens, lens)


def test_waveform_augment_rejects_bad_arguments():
    with pytest.raises(ValueError):
        WaveformAugment(speed_factors=(0.0,))
    with pytest.raises(ValueError):
        WaveformAugment(noise_snr_db=(30.0, 10.0))


def test_spectrogram_augment_is_deterministic_and_keeps_padding_zero():
    augment = SpectrogramAugment(pitch_shift_semitones=2.0)
    features, lens = _features([200, 120, 7, 0])
    first = augment(features, lens, _generator(4))
    again = augment(features, lens, _generator(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, augment(features, lens, _generator(5)))
    assert first[pad_mask(lens, 200)].eq(0).all()


def test_time_masks_stay_inside_real_frames_and_within_the_ratio():
    augment = SpectrogramAugment(
        freq_masks=0, time_masks=3, time_mask_width=40, time_mask_max_ratio=0.1, eq_db=0.0
    )
    lens = torch.tensor([300, 250, 100, 60, 9, 0] * 4)
    features = torch.ones(len(lens), 300, 5).masked_fill(pad_mask(lens, 300).unsqueeze(2), 0.0)
    output = augment(features, lens, _generator(0))
    masked_frames = output[..., 0] == 0  # (B, T)
    assert torch.equal(output.eq(0).all(2), masked_frames)  # a time mask covers every bin
    real = ~pad_mask(lens, 300)
    masked_real = (masked_frames & real).sum(1)
    limit = torch.clamp((lens * 0.1).floor(), max=40)
    assert (masked_real <= 3 * limit).all()
    assert masked_real[lens == 300].sum() > 0  # masks do happen
    assert masked_real[lens < 10].sum() == 0  # 10% of under 10 frames is no frame


def test_freq_masks_cover_whole_bands():
    augment = SpectrogramAugment(freq_masks=2, freq_mask_width=5, time_masks=0, eq_db=0.0)
    features, lens = _features([50] * 8, num_bins=40)
    output = augment(features, lens, _generator(1))
    masked_bins = output.eq(0).all(1)  # (B, F)
    assert torch.equal(output.eq(0).any(1), masked_bins)
    assert (masked_bins.sum(1) <= 10).all() and masked_bins.any()


def test_equalisation_is_a_smooth_bounded_curve_in_log_power():
    augment = SpectrogramAugment(freq_masks=0, time_masks=0, eq_db=6.0)
    features, lens = _features([40, 30], num_bins=80)
    difference = augment(features, lens, _generator(2)) - features
    curve = difference[:, 0]  # (B, F)
    real = ~pad_mask(lens, 40)
    torch.testing.assert_close(difference[real], curve.repeat_interleave(lens, dim=0))
    assert curve.abs().max() <= 6.0 * math.log(10) / 10 + 1e-5
    assert curve.diff(dim=1).abs().max() < 0.1  # smooth: a few cosines over 80 bins
    std = torch.full((80,), 2.0)
    scaled = augment(features, lens, _generator(2), feature_std=std) - features
    torch.testing.assert_close(scaled[:, 0], curve / 2.0)


def test_pitch_shift_moves_a_spectral_peak_by_at_most_the_range():
    augment = SpectrogramAugment(freq_masks=0, time_masks=0, eq_db=0.0, pitch_shift_semitones=4.0)
    features = torch.zeros(16, 3, 80)
    features[:, :, 40] = 1.0
    output = augment(features, torch.full((16,), 3), _generator(0))
    peaks = output.argmax(2)  # (B, T)
    assert torch.equal(peaks, peaks[:, :1].expand(16, 3))  # same warp for every frame
    assert (peaks != 40).sum() >= 8
    # Bin 40 is centred near 1.8 kHz; 4 semitones either way lands in bins 35..46.
    assert peaks.min() >= 33 and peaks.max() <= 47
    tiny = SpectrogramAugment(freq_masks=0, time_masks=0, eq_db=0.0, pitch_shift_semitones=1e-6)
    torch.testing.assert_close(tiny(features, torch.full((16,), 3), _generator(0)), features)


def test_disabled_spectrogram_augment_is_identity():
    augment = SpectrogramAugment(freq_masks=0, time_masks=0, eq_db=0.0, time_mask_max_ratio=0.0)
    features, lens = _features([30, 10])
    assert torch.equal(augment(features, lens, _generator(0)), features)
