import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.pin_memory import pin_memory as dataloader_pin_memory

from asr.data import Batch, BucketBatchSampler, Example, Skipped, collate


def test_collate_pads_and_keeps_lengths():
    items = [
        Example("a", torch.ones(5), torch.tensor([3, 4]), "x"),
        Example("b", torch.ones(3), torch.tensor([5, 6, 7]), "y"),
        Skipped("c", "unreadable audio", "bad"),
    ]
    batch = collate(items)
    assert batch.waveforms.shape == (2, 5) and batch.waveforms[1, 3:].eq(0).all()
    assert batch.targets.tolist() == [[3, 4, 0], [5, 6, 7]]
    assert batch.waveform_lens.tolist() == [5, 3] and batch.target_lens.tolist() == [2, 3]
    assert len(collate([items[2]])) == 0


def _batch(with_features: bool) -> Batch:
    # With cached features an example carries no waveform, only its sample count.
    waveform, features = (
        (torch.zeros(0), torch.ones(3, 2)) if with_features else (torch.ones(5), None)
    )
    items = [
        Example("a", waveform, torch.tensor([3, 4]), "x", features, 5),
        Skipped("b", "unreadable audio", "bad"),
    ]
    return collate(items)


@pytest.mark.parametrize("with_features", [False, True])
def test_the_dataloader_pin_path_pins_every_tensor_of_a_batch(monkeypatch, with_features):
    # Pinning needs CUDA; here Tensor.pin_memory is replaced by a copy that records its input,
    # and the DataLoader's own pinning function is called, as its pinning thread calls it.
    pinned = []

    def fake_pin(tensor, device=None):
        pinned.append(tensor)
        return tensor.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    batch = _batch(with_features)
    out = dataloader_pin_memory(batch)
    assert isinstance(out, Batch)
    tensors = [
        batch.waveforms,
        batch.waveform_lens,
        batch.targets,
        batch.target_lens,
        *([batch.features, batch.feature_lens] if with_features else []),
    ]
    assert len(pinned) == len(tensors) and all(p is t for p, t in zip(pinned, tensors, strict=True))
    assert out.ids == batch.ids and out.texts == batch.texts and out.skipped == batch.skipped
    assert torch.equal(out.targets, batch.targets)
    assert (out.features is None) == (not with_features)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_a_pinning_dataloader_yields_pinned_batches():
    items = [Example(str(i), torch.ones(4 + i), torch.tensor([1, 2]), "x") for i in range(4)]
    loader = DataLoader(items, batch_size=2, collate_fn=collate, pin_memory=True)
    for batch in loader:
        assert batch.waveforms.is_pinned() and batch.targets.is_pinned()
        moved = batch.to(torch.device("cuda"))
        assert moved.waveforms.is_cuda and torch.equal(moved.targets.cpu(), batch.targets)


def test_bucket_sampler_respects_budget_covers_everything_and_is_deterministic():
    durations = [float(d) for d in np.random.default_rng(0).uniform(0.5, 6.0, size=200)]
    sampler = BucketBatchSampler(durations, max_batch_seconds=20.0, max_batch_size=8, seed=3)
    batches = sampler.batches(0)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert len(b) <= 8
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 20.0
    assert batches == sampler.batches(0)
    assert batches != sampler.batches(1)
    sampler.set_epoch(0, start_batch=5)
    assert list(sampler) == batches[5:]


def test_sorted_epochs_run_shortest_first_then_shuffle():
    durations = [float(d) for d in np.random.default_rng(1).uniform(0.5, 6.0, size=100)]
    sampler = BucketBatchSampler(durations, 12.0, 8, seed=0, sorted_epochs=1)
    first = sampler.batches(0)
    longest = [max(durations[i] for i in b) for b in first]
    assert longest == sorted(longest)
    second = sampler.batches(1)
    assert [max(durations[i] for i in b) for b in second] != sorted(
        max(durations[i] for i in b) for b in second
    )
