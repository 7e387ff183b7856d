"""Energy VAD: pauses found at any level and noise, segments bounded, streaming equals whole."""

from __future__ import annotations

import numpy as np
import pytest

from asr.vad import (
    EnergyMeter,
    VadOptions,
    cut_segments,
    find_segments,
    frame_energies,
    plan_segments,
    quietest_point,
)

RATE = 16000


def burst(seconds: float, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """Speech-like sound: a noise carrier under a 4 Hz syllable envelope that never falls silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (level * envelope * rng.standard_normal(t.shape)).clip(-1, 1).astype(np.float32)


def silence(seconds: float, noise_db: float | None = None, seed: int = 1) -> np.ndarray:
    samples = np.zeros(int(seconds * RATE), dtype=np.float32)
    if noise_db is not None:
        rng = np.random.default_rng(seed)
        samples += (10 ** (noise_db / 20) * rng.standard_normal(samples.shape)).astype(np.float32)
    return samples


def seconds(spans):
    return [(round(s / RATE, 2), round(e / RATE, 2)) for s, e in spans]


def test_energy_meter_in_blocks_equals_all_at_once():
    audio = burst(3.335)
    meter = EnergyMeter(RATE)
    rng = np.random.default_rng(0)
    position = 0
    while position < len(audio):
        size = int(rng.integers(1, 5000))
        meter.add(audio[position : position + size])
        position += size
    np.testing.assert_allclose(meter.energies(), frame_energies(audio, RATE), atol=1e-4)
    assert len(meter.energies()) == 334  # 333 whole frames and the partial last one


@pytest.mark.parametrize("noise_db", [None, -70.0, -45.0])
def test_silence_only_has_no_segments(noise_db):
    assert find_segments(silence(5.0, noise_db), RATE) == []
    assert find_segments(np.zeros(0, dtype=np.float32), RATE) == []


@pytest.mark.parametrize("level", [0.01, 0.1, 0.8])
@pytest.mark.parametrize("noise_db", [None, -60.0])
def test_utterances_between_pauses_are_found_at_any_level(level, noise_db):
    audio = np.concatenate(
        [silence(1.0), burst(2.0, level), silence(1.5), burst(1.0, level, seed=3), silence(0.5)]
    )
    if noise_db is not None:
        audio = audio + silence(len(audio) / RATE, noise_db)
    spans = find_segments(audio, RATE, VadOptions(padding_seconds=0.15))
    # Speech at 1-3 s and 4.5-5.5 s, each with 0.15 s of context either side.
    found = [t for span in seconds(spans) for t in span]
    assert found == pytest.approx([0.85, 3.15, 4.35, 5.65], abs=0.03)


def test_short_pauses_join_long_pauses_split():
    options = VadOptions(min_pause_seconds=0.3)
    short = np.concatenate([burst(1.0), silence(0.2), burst(1.0, seed=5)])
    long = np.concatenate([burst(1.0), silence(0.4), burst(1.0, seed=5)])
    assert len(find_segments(short, RATE, options)) == 1
    assert len(find_segments(long, RATE, options)) == 2


def test_padding_never_overlaps_neighbours():
    audio = np.concatenate([burst(1.0), silence(0.32), burst(1.0, seed=2)])
    spans = find_segments(audio, RATE, VadOptions(padding_seconds=0.5))
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]
    assert spans[0][0] == 0 and spans[1][1] == len(audio)


def test_clicks_are_dropped():
    audio = np.concatenate([silence(1.0), burst(0.03), silence(1.0)])
    assert find_segments(audio, RATE) == []


def test_continuous_speech_is_cut_at_its_quietest_points_below_the_maximum():
    # 65 s without a pause, with a 60 ms dip (20 dB down, not silent) every 7 s.
    audio = burst(65.0)
    dips = [7.0 * k for k in range(1, 10)]
    for dip in dips:
        audio[int(dip * RATE) : int((dip + 0.06) * RATE)] *= 0.1
    options = VadOptions(max_segment_seconds=10.0)
    spans = find_segments(audio, RATE, options)
    lengths = [(e - s) / RATE for s, e in spans]
    assert max(lengths) <= 10.0
    assert spans[0][0] == 0 and spans[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # no gaps
    for _, end in spans[:-1]:  # every cut on a dip
        assert min(abs(end / RATE - dip) for dip in dips) < 0.1


def test_spans_are_ordered_bounded_and_disjoint_on_random_audio():
    rng = np.random.default_rng(7)
    pieces = []
    for i in range(40):
        pieces.append(burst(float(rng.uniform(0.05, 30.0)), float(rng.uniform(0.01, 0.9)), i))
        pieces.append(silence(float(rng.uniform(0.0, 1.5)), -60.0, seed=i))
    audio = np.concatenate(pieces)
    options = VadOptions(max_segment_seconds=12.0)
    spans = find_segments(audio, RATE, options)
    assert spans
    for (start, end), following in zip(spans, spans[1:] + [(len(audio), len(audio))], strict=True):
        assert 0 <= start < end <= following[0]
        assert end - start <= 12.0 * RATE


@pytest.mark.parametrize("block", [1000, 16000, 99991])
def test_cut_segments_from_a_stream_equals_slicing(block):
    audio = np.concatenate([silence(1.0), burst(3.0), silence(2.0), burst(1.0, seed=4)])
    spans = find_segments(audio, RATE)
    blocks = (audio[i : i + block] for i in range(0, len(audio), block))
    pieces = list(cut_segments(blocks, spans))
    assert [(s, e) for s, e, _ in pieces] == spans
    for start, end, samples in pieces:
        np.testing.assert_array_equal(samples, audio[start:end])


def test_cut_segments_when_the_stream_ends_early():
    audio = burst(2.0)
    pieces = list(cut_segments([audio[:20000]], [(1000, 5000), (15000, 25000), (30000, 31000)]))
    assert [(s, e) for s, e, _ in pieces] == [(1000, 5000), (15000, 20000)]


def test_plan_segments_matches_find_segments():
    audio = np.concatenate([silence(0.5), burst(2.0), silence(1.0)])
    energies = frame_energies(audio, RATE)
    assert plan_segments(energies, len(audio), RATE) == find_segments(audio, RATE)


def test_quietest_point_is_in_the_middle_third():
    audio = np.concatenate([burst(1.0), silence(0.1, -40), burst(1.0, seed=2)])
    cut = quietest_point(audio, RATE)
    assert 1.0 * RATE <= cut <= 1.1 * RATE
    assert quietest_point(burst(0.5), RATE) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_segment_seconds": 0.5}, {"min_pause_seconds": -1}, {"threshold_ratio": 1.0}],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        VadOptions(**kwargs)


def test_less_than_a_pause_at_the_file_edges_belongs_to_the_segment():
    options = VadOptions(min_pause_seconds=0.3, padding_seconds=0.02)
    close = np.concatenate([silence(0.1), burst(1.0), silence(0.2)])
    assert find_segments(close, RATE, options) == [(0, len(close))]
    far = np.concatenate([silence(0.5), burst(1.0), silence(0.5)])
    assert seconds(find_segments(far, RATE, options)) == [(0.48, 1.52)]
