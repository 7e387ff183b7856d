"""Manifests, the utterance dataset, length-bucketed batching and collation.

=============  =================================================================================
``manifest``   :class:`Utterance`, reading and writing JSONL manifests, ``validate`` (filters)
``skips``      :class:`Skipped` records and the :class:`SkipCounter` that logs and counts them
``dataset``    :class:`UtteranceDataset` (audio read, text encoded) and the :class:`FeatureCache`
``batching``   :class:`Batch`, ``collate`` and the length-bucketed :class:`BucketBatchSampler`
=============  =================================================================================

Bad data never stops a job, and nothing bad is trained on: ``read_manifest`` type-checks every
field and skips a bad line (or a repeated id); ``validate`` drops utterances whose text the
vocabulary cannot spell, whose duration (from the manifest, else the audio header) is out of
bounds or whose length in tokens is impossible for that duration; the dataset returns a
``Skipped`` record for audio that cannot be read or is truncated, which ``collate`` carries in
``Batch.skipped`` (so it reaches the main process even from data-loading workers). Every skip is
logged once, naming the manifest line or the utterance, and counted by reason in a
``SkipCounter`` so the run's summary can report it.
"""

from asr.audio import truncated_wav
from asr.data.batching import Batch, BucketBatchSampler, collate
from asr.data.dataset import (
    Example,
    FeatureCache,
    TruncatedAudio,
    UtteranceDataset,
)
from asr.data.manifest import (
    BAD_LINE,
    DUPLICATE_ID,
    REQUIRED_KEYS,
    Utterance,
    read_manifest,
    validate,
    write_manifest,
)
from asr.data.skips import SkipCounter, Skipped

__all__ = [
    "BAD_LINE",
    "DUPLICATE_ID",
    "REQUIRED_KEYS",
    "Batch",
    "BucketBatchSampler",
    "Example",
    "FeatureCache",
    "SkipCounter",
    "Skipped",
    "TruncatedAudio",
    "Utterance",
    "UtteranceDataset",
    "collate",
    "read_manifest",
    "truncated_wav",
    "validate",
    "write_manifest",
]
