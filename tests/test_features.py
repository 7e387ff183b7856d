import math

import pytest
import torch

from asr.features import GlobalNormalizer, LogMelFilterbank
from asr.masking import pad_mask

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize(
    ("num_samples", "expected"), [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98)]
)
def test_num_frames_formula(num_samples, expected):
    fbank = LogMelFilterbank()
    assert fbank.num_frames(torch.tensor([num_samples])).tolist() == [expected]
    features, frame_lens = fbank(torch.randn(1, num_samples), torch.tensor([num_samples]))
    assert features.shape == (1, expected, 80)
    assert frame_lens.tolist() == [expected]


def test_window_and_hop_follow_the_arguments():
    fbank = LogMelFilterbank(sample_rate=8000, num_mel_bins=40, window_ms=32.0, hop_ms=16.0)
    assert (fbank.window_length, fbank.hop_length) == (256, 128)
    assert fbank.num_frames(torch.tensor([256 + 3 * 128 + 5])).tolist() == [4]
    with pytest.raises(ValueError):
        LogMelFilterbank(window_ms=40.0, n_fft=512)  # a 640-sample window needs n_fft >= 640


@pytest.mark.parametrize("device", DEVICES)
def test_batch_equals_one_by_one_and_padding_is_zero(device):
    fbank = LogMelFilterbank().to(device)
    generator = torch.Generator().manual_seed(0)
    lens = [4000, 2345, 400, 100]
    # Padding filled with noise, not zeros: it must not reach any real frame.
    waveforms = torch.randn(len(lens), max(lens), generator=generator).to(device)
    features, frame_lens = fbank(waveforms, torch.tensor(lens, device=device))
    assert frame_lens.tolist() == [23, 13, 1, 0]
    assert features.shape == (4, 23, 80)
    for row, (length, frames) in enumerate(zip(lens, frame_lens.tolist(), strict=True)):
        alone, _ = fbank(waveforms[row : row + 1, :length], torch.tensor([length], device=device))
        torch.testing.assert_close(features[row, :frames], alone[0], atol=1e-4, rtol=1e-4)
        assert features[row, frames:].eq(0).all()


def test_a_tone_peaks_in_its_mel_bin():
    fbank = LogMelFilterbank()
    time = torch.arange(16000) / 16000
    tone = torch.sin(2 * math.pi * 1000.0 * time).unsqueeze(0)
    power, _ = fbank.power(tone, torch.tensor([16000]))
    peak_bin = power.mean(dim=1).argmax().item()
    # HTK mel: 1 kHz is mel 1000; bins are spaced 2840 / 81 mel apart, bin i centred at (i+1).
    mel_max = 2595 * math.log10(1 + 8000 / 700)
    assert abs(peak_bin - (1000 / (mel_max / 81) - 1)) <= 1
    log_mel, _ = fbank(tone, torch.tensor([16000]))
    torch.testing.assert_close(log_mel, power.clamp(min=1e-10).log())


def _fit(normalizer, batches):
    for features, lens in batches:
        normalizer.accumulate(features, lens)
    normalizer.finalize()


def _batches():
    generator = torch.Generator().manual_seed(1)
    offsets, scales = torch.linspace(-20, 5, 4), torch.linspace(0.5, 3, 4)
    batches = []
    for lens in ([30, 17, 5], [25, 0]):
        features = torch.randn(len(lens), max(lens), 4, generator=generator) * scales + offsets
        # Padded frames carry garbage: accumulate must skip them.
        features = features.masked_fill(pad_mask(torch.tensor(lens), max(lens))[..., None], 1e6)
        batches.append((features, torch.tensor(lens)))
    return batches


def test_normalizer_makes_fitted_data_zero_mean_unit_variance():
    normalizer = GlobalNormalizer(num_features=4)
    batches = _batches()
    _fit(normalizer, batches)
    real = []
    for features, lens in batches:
        normalized = normalizer(features, lens)
        padding = pad_mask(lens, features.size(1))
        assert normalized[padding].eq(0).all()
        real.append(normalized[~padding])
    real = torch.cat(real).double()
    assert normalizer.count.item() == 77
    torch.testing.assert_close(real.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(real.std(0, correction=0), torch.ones(4, dtype=torch.float64))


def test_normalizer_state_dict_round_trip():
    normalizer = GlobalNormalizer(num_features=4)
    _fit(normalizer, _batches())
    restored = GlobalNormalizer(num_features=4)
    features, lens = _batches()[0]
    assert torch.equal(restored(features, lens)[0, :5], features[0, :5])  # unfitted: identity
    restored.load_state_dict(normalizer.state_dict())
    assert torch.equal(restored(features, lens), normalizer(features, lens))
    assert set(normalizer.state_dict()) >= {"mean", "std", "count"}


def test_normalizer_std_floor_and_unfitted_finalize():
    normalizer = GlobalNormalizer(num_features=2)
    with pytest.raises(ValueError):
        normalizer.finalize()
    normalizer.accumulate(torch.full((1, 3, 2), 7.0), torch.tensor([3]))
    normalizer.finalize()
    assert normalizer.std.tolist() == pytest.approx([1e-5, 1e-5])


def test_utterance_mean_removes_a_fixed_channel_and_ignores_padding():
    """A fixed filter adds a constant per bin to log-mel: with subtract_utterance_mean the
    normalised features do not see it, a batch equals its utterances one by one, padding stays
    0, and the fitted statistics are those of the centred features."""
    batches = _batches()
    centred = GlobalNormalizer(num_features=4, subtract_utterance_mean=True)
    _fit(centred, batches)
    plain = GlobalNormalizer(num_features=4)
    _fit(plain, batches)
    assert not torch.allclose(centred.mean, plain.mean, atol=1e-3)
    features, lens = batches[0]
    channel = torch.tensor([3.0, -2.0, 0.5, 7.0])
    padding = pad_mask(lens, features.size(1))
    coloured = (features + channel).masked_fill(padding[..., None], -5.0)
    normalized = centred(features, lens)
    torch.testing.assert_close(centred(coloured, lens), normalized, atol=1e-4, rtol=1e-4)
    assert normalized[padding].eq(0).all()
    for b, length in enumerate(lens.tolist()):
        alone = centred(features[b : b + 1, :length], lens[b : b + 1])
        torch.testing.assert_close(alone[0], normalized[b, :length], atol=1e-5, rtol=1e-5)
        if length:
            assert normalized[b, :length].mean(0).abs().max() < 1e-4 / centred.std.min()
    # Without it the channel stays in the features.
    assert not torch.allclose(plain(coloured, lens), plain(features, lens), atol=1e-1)
    # An utterance without frames is zeros, not NaN.
    empty = centred(torch.zeros(1, 3, 4), torch.tensor([0]))
    assert empty.eq(0).all()


def test_sliding_mean_centres_each_part_of_a_recording_on_its_own_channel():
    """Two parts with different fixed channels, joined: with a 40-frame sliding mean, every
    frame more than 20 frames from the join (and the ends) is what it is without any channel;
    a batch equals its utterances one by one; short input is the whole-utterance mean."""
    generator = torch.Generator().manual_seed(5)
    clean = torch.randn(1, 200, 4, generator=generator)
    channels = torch.cat(
        [torch.full((100, 4), 3.0), torch.tensor([-2.0, 1.0, 5.0, 0.0]).expand(100, 4)]
    )
    sliding = GlobalNormalizer(num_features=4, subtract_utterance_mean=True, mean_window_frames=40)
    lens = torch.tensor([200])
    joined, alone = sliding(clean + channels, lens), sliding(clean, lens)
    inside = torch.cat([torch.arange(20, 80), torch.arange(120, 180)])
    torch.testing.assert_close(joined[0, inside], alone[0, inside], atol=1e-4, rtol=1e-4)
    whole = GlobalNormalizer(num_features=4, subtract_utterance_mean=True)
    assert (whole(clean + channels, lens) - whole(clean, lens))[0, inside].abs().max() > 1.0
    # Batched with padding, each utterance as alone; padding stays 0.
    batch, batch_lens = torch.randn(3, 120, 4, generator=generator), torch.tensor([120, 57, 15])
    normalized = sliding(batch, batch_lens)
    for b, length in enumerate(batch_lens.tolist()):
        one = sliding(batch[b : b + 1, :length], batch_lens[b : b + 1])
        torch.testing.assert_close(one[0], normalized[b, :length], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(normalized[b, length:], torch.zeros_like(normalized[b, length:]))
    # 15 frames, at most W / 2: the whole utterance's mean.
    torch.testing.assert_close(
        normalized[2, :15], whole(batch[2:3, :15], batch_lens[2:3])[0], atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ValueError, match="mean_window_frames"):
        GlobalNormalizer(num_features=4, mean_window_frames=-1)


def test_a_constant_offset_does_not_change_the_features():
    fbank = LogMelFilterbank()
    waveforms = torch.randn(2, 3000, generator=torch.Generator().manual_seed(3))
    lens = torch.tensor([3000, 2000])
    shifted = waveforms + 0.5
    shifted[1, 2000:] = -7.0  # padding differs too
    torch.testing.assert_close(
        fbank(shifted, lens)[0], fbank(waveforms, lens)[0], atol=1e-3, rtol=1e-3
    )
