"""Data-parallel training: the sampler's shards cover every utterance once with equal step
counts, and 2 gloo processes train to the weights 1 process reaches on the same global batch."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.checkpoint import read_checkpoint
from asr.data.batching import BucketBatchSampler, shard_batches
from asr.train import train
from tests.training.conftest import config, overrides


@pytest.mark.parametrize("num_replicas", [1, 2, 3, 4])
def test_every_utterance_once_and_the_same_steps_on_every_rank(num_replicas):
    durations = [random.Random(n).uniform(0.5, 9.0) for n in range(101)]
    for epoch in (0, 1):
        shards = []
        for rank in range(num_replicas):
            sampler = BucketBatchSampler(durations, 20.0, 8, seed=3, num_replicas=num_replicas)
            sampler.rank = rank
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert len({len(shard) for shard in shards}) == 1
        seen = sorted(i for shard in shards for batch in shard for i in batch)
        assert seen == list(range(len(durations)))
        assert all(batch for shard in shards for batch in shard)
        for shard in shards:  # a halved batch is still within the budget
            assert all(max(durations[i] for i in b) * len(b) <= 20.0 for b in shard)


def test_batches_that_cannot_be_dealt_evenly_are_refused():
    with pytest.raises(ValueError, match="3 single-utterance batches cannot be dealt"):
        shard_batches([[0], [1], [2]], 2)


@pytest.mark.slow
def test_two_gloo_processes_reach_the_weights_of_one_with_the_same_global_batch(
    small_corpus, tmp_path
):
    # No randomness inside a step (dropout, augmentation): 2 ranks draw other masks than one
    # process drawing twice. 6 batches of 2: rank r trains batches r, r + 2, r + 4.
    common = ["augment=none", "trainer.max_steps=3", "trainer.checkpoint_every_steps=0"]
    accumulated = [*common, "trainer.accumulate_batches=2"]
    single = train(config(small_corpus, tmp_path / "one", accumulated))
    assert single["epochs"][-1]["step"] == 3

    two = tmp_path / "two"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "asr.cli",
            "train",
            *overrides(small_corpus, two, [*common, "trainer.devices=2", "trainer.device=cpu"]),
            f"hydra.run.dir={two}",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    payload = read_checkpoint(two / "last.pt")
    assert payload["training"]["step"] == 3
    assert len(payload["training"]["random"]) == 2  # each rank's random state
    one, both = read_checkpoint(tmp_path / "one" / "last.pt")["recognizer"], payload["recognizer"]
    for name, expected in one.items():
        # Float32 sums in another order (two half-batch gradients averaged by the all-reduce
        # instead of accumulated in one process) differ by a few ulp a step; Adam's division
        # by sqrt(v) can amplify that for near-zero gradients, hence the absolute floor.
        torch.testing.assert_close(both[name], expected, rtol=1e-4, atol=1e-5, msg=name)
