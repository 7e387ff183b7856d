"""Batches: collation of examples into padded tensors, and length-bucketed batch sampling."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Sampler

from asr.data.dataset import Example
from asr.data.skips import Skipped


@dataclass
class Batch:
    ids: list[str]
    texts: list[str]
    waveforms: torch.Tensor  # (B, S) zero-padded; (B, 0) when ``features`` are given
    waveform_lens: torch.Tensor  # (B,) samples of each utterance's audio
    targets: torch.Tensor  # (B, U) padded with the blank id 0
    target_lens: torch.Tensor  # (B,)
    skipped: list[Skipped] = field(default_factory=list)
    features: torch.Tensor | None = None  # (B, T, F) raw log-mel from a feature cache
    feature_lens: torch.Tensor | None = None  # (B,)

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device) -> Batch:
        """A copy on ``device``; from pinned memory the copy runs asynchronously."""
        return self._map(lambda tensor: tensor.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """A copy with every tensor in page-locked memory.

        ``DataLoader(pin_memory=True)`` calls this on each batch (in its pinning thread), so that
        ``to(device)`` copies to the GPU without blocking while the previous step computes.
        """
        return self._map(torch.Tensor.pin_memory)

    def _map(self, function) -> Batch:
        def apply(tensor):
            return None if tensor is None else function(tensor)

        return Batch(
            self.ids,
            self.texts,
            apply(self.waveforms),
            apply(self.waveform_lens),
            apply(self.targets),
            apply(self.target_lens),
            self.skipped,
            apply(self.features),
            apply(self.feature_lens),
        )


def collate(items: Sequence[Example | Skipped]) -> Batch:
    """Pad examples into a Batch; skipped ones travel in ``Batch.skipped`` (B may be 0)."""
    examples = [item for item in items if isinstance(item, Example)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    waveform_lens = torch.tensor([ex.num_samples or len(ex.waveform) for ex in examples])
    target_lens = torch.tensor([len(ex.tokens) for ex in examples])
    with_features = bool(examples) and all(ex.features is not None for ex in examples)
    max_samples = int(waveform_lens.max()) if examples and not with_features else 0
    max_tokens = int(target_lens.max()) if examples else 0
    waveforms = torch.zeros(len(examples), max_samples)
    targets = torch.zeros(len(examples), max(max_tokens, 1), dtype=torch.long)
    for i, ex in enumerate(examples):
        waveforms[i, : len(ex.waveform)] = ex.waveform
        targets[i, : len(ex.tokens)] = ex.tokens
    features = feature_lens = None
    if with_features:
        feature_lens = torch.tensor([len(ex.features) for ex in examples])
        width = examples[0].features.size(1)
        features = torch.zeros(len(examples), int(feature_lens.max()), width)
        for i, ex in enumerate(examples):
            features[i, : len(ex.features)] = ex.features
    return Batch(
        [ex.id for ex in examples],
        [ex.text for ex in examples],
        waveforms,
        waveform_lens,
        targets,
        target_lens,
        skipped,
        features,
        feature_lens,
    )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar duration, at most ``max_batch_seconds`` of padded audio each.

    Sorting by duration cuts padding (a padded frame costs as much as a real one in a dense
    LSTM); utterances are shuffled within buckets and batches are shuffled, so every epoch
    differs. The order of epoch ``e`` depends only on ``seed`` and ``e``, which is what lets a
    resumed run skip the batches it already trained on.

    The first ``sorted_epochs`` epochs go from the shortest batch to the longest instead
    (SortaGrad, Amodei et al. 2016): attention learns to align on short utterances first, which
    makes an attention model converge in far fewer updates.

    With ``num_replicas`` processes (data-parallel training) each ``rank`` iterates its shard of
    the epoch's batches (:func:`shard_batches`): the same number of batches on every rank, every
    utterance on exactly one of them.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        max_batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        sorted_epochs: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if max_batch_seconds <= 0 or max_batch_size <= 0:
            raise ValueError("max_batch_seconds and max_batch_size must be positive")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_replicas, self.rank = num_replicas, rank
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.sorted_epochs = sorted_epochs
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches of epoch ``epoch`` (all of them in a single process)."""
        every = self.global_batches(epoch)
        if self.num_replicas == 1:
            return every
        return shard_batches(every, self.num_replicas)[self.rank]

    def global_batches(self, epoch: int) -> list[list[int]]:
        """The epoch's batches over the whole training set, before sharding."""
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(range(len(self.durations)))
        shuffle = self.shuffle and epoch >= self.sorted_epochs
        if shuffle:
            # Jitter durations by ±10% before sorting, so bucket membership changes per epoch.
            keys = {i: self.durations[i] * rng.uniform(0.9, 1.1) for i in order}
        else:
            keys = {i: self.durations[i] for i in order}
        order.sort(key=keys.__getitem__)
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for i in order:
            longest_if_added = max(longest, self.durations[i])
            too_long = longest_if_added * (len(current) + 1) > self.max_batch_seconds
            if current and (too_long or len(current) >= self.max_batch_size):
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        if shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)[self.start_batch :]

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.start_batch)


def shard_batches(batches: Sequence[list[int]], num_replicas: int) -> list[list[list[int]]]:
    """Deal ``batches`` round-robin to ``num_replicas`` ranks, each getting as many.

    Data-parallel steps need the same number of batches on every rank, and an epoch should see
    every utterance once. When the count does not divide evenly, the batch with the most
    utterances (the first of them, in epoch order) is halved in place, and again, until it
    does: nothing is dropped or repeated, and a halved batch is still within the budget. Ranks
    deal from the same list, so every rank computes every rank's shard alike.

    >>> shard_batches([[0, 1, 2, 3], [4, 5], [6]], 2)
    [[[0, 1], [4, 5]], [[2, 3], [6]]]
    """
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
    batches = [list(b) for b in batches]
    while len(batches) % num_replicas:
        widest = max(range(len(batches)), key=lambda i: (len(batches[i]), -i))
        batch = batches[widest]
        if len(batch) < 2:  # only single-utterance batches are left: no even split exists
            raise ValueError(
                f"{sum(len(b) for b in batches)} single-utterance batches cannot be dealt "
                f"evenly to {num_replicas} ranks"
            )
        half = (len(batch) + 1) // 2
        batches[widest : widest + 1] = [batch[:half], batch[half:]]
    return [batches[rank::num_replicas] for rank in range(num_replicas)]
