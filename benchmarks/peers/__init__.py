"""las-asr against a plain PyTorch LAS, SpeechBrain and ESPnet1, side by side on one workload.

Issue #6's workload, every system built to the closest configuration its own API allows:

- **training**: a batch of ``--batch-size`` 16 utterances of random 80-dim features, lengths
  uniform in 400..1200 frames (seed 0), ``frames // 10`` targets each from a 30-symbol
  vocabulary; a listener of 4 bidirectional LSTM layers of 320 units per direction with 8x time
  reduction (the first layer at the frame rate, each later one after a 2x reduction), a speller of
  one 320-unit LSTM layer fed the previous context, location-aware attention of width 320 with 10
  channels and kernel 101 (the issue says 100; las-asr's 'same' convolution needs an odd width,
  and ESPnet and SpeechBrain take the half-width, 50, so all three use 101), token embedding 320,
  Adam; no dropout, CTC, label smoothing or scheduled sampling anywhere. Seconds per
  forward + backward + ``Adam.step`` (median and min-max of ``--train-steps``, after
  ``--warmup`` untimed steps), and seconds of audio (frames x 10 ms) per wall-clock second.
- **decoding**: ``--decode-utterances`` 4 utterances of ``--decode-frames`` 800 frames, batched,
  each system's own greedy and beam search (beam ``--beam-size`` 10), with end-of-sentence held
  back so that every search spells ``--steps`` 100 characters and then ends: 101 speller steps
  (ESPnet: 100, see below; the random models would otherwise stop at once). Real-time factor =
  wall-clock seconds (encoder included) / seconds of audio.
- **number formats** (``--precisions``, default ``fp32,bf16``): every system runs in each, as a
  separate instance with the same initial weights. bf16 runs each training step's forward pass
  and loss, and each search, under ``torch.autocast(device_type, dtype=torch.bfloat16)`` with
  float32 weights, as las-asr's ``trainer.precision=bf16``; the backward pass and ``Adam.step``
  run outside it, as in las-asr's trainer and SpeechBrain's ``Brain``. SpeechBrain's rows use
  SpeechBrain's own option, the ``Brain`` run options ``precision`` / ``eval_precision`` =
  ``bf16``, which wrap its forward passes in exactly this autocast (``speechbrain_peer``'s
  docstring has the source); ESPnet1 has no bfloat16 option (``--train-dtype`` is float16/float64
  casts or apex), so it gets plain autocast (``System.autocast``).
- **interleaved**: every timed repetition runs one step of every system in every format, and a
  large matmul in every format, in a rotating order, so load from other processes falls on all
  of them alike; the table's ratios, las-asr against each peer within one format and bf16
  against fp32 for each system, come from one run.
- **peak memory**: measured on each system's untimed warm-up run alone, as the rise of the
  process's peak resident set size (CPU) or of ``torch.cuda.max_memory_allocated`` (CUDA).

The systems (a peer that is not installed is skipped and listed as such):

- ``las-asr``: ``asr.models.build_model`` (1 BLSTM + 3 pyramidal BLSTM layers, each pyramid
  layer reading frame pairs, 1280 wide), trained through ``LAS.forward``, decoded with
  ``asr.search``.
- ``pytorch``: the same shapes written the plain way (``PlainLAS`` below): padded bidirectional
  ``nn.LSTM`` s (not exact under padding: the backward direction reads the padding first),
  location features as ``Conv1d`` + ``Linear``, an ``LSTMCell`` speller; decoded by
  ``asr.search`` (it offers the speller interface the searches use).
- ``speechbrain`` (``pip install -e '.[bench]'`` or ``pip install speechbrain``): four
  unpacked bidirectional ``speechbrain.nnet.RNN.LSTM`` layers with the same frame-pair
  concatenation between them, ``AttentionalRNNDecoder(rnn_type="lstm", attn_type="location")``,
  a linear output layer, ``nll_loss``; ``S2SRNNGreedySearcher`` / ``S2SRNNBeamSearcher``.
  SpeechBrain's decoder projects the context to the attention width and does not backpropagate
  through the previous alignment.
- ``espnet`` (``pip install --no-deps espnet`` and then ``pip install configargparse torch_complex
  editdistance``; a plain ``pip install espnet`` replaces torch):
  ``espnet.nets.pytorch_backend.e2e_asr.E2E`` with ``etype=blstmp`` (packed BLSTMs, every other
  frame kept after layers 1-3, each layer's output projected to 320), ``atype=location``,
  ``mtlalpha=0``; decoded with its batched beam search ``recognize_batch`` (beam 1 as greedy).
  ESPnet drops hypotheses longer than the encoder output (T' = 100 frames), so it runs 100
  speller steps, one fewer than the others. ``--espnet-train-steps`` 2 timed training steps only:
  its packed LSTMs' backward pass takes about a minute a step on CPU (pytorch/pytorch#149194).
- ``las-asr-baseline`` (opt-in, ``--systems``): las-asr with the listener as it was before
  issue #6's changes, one LSTM call over the padded batch and always oneDNN, for a before/after
  in the same run.

**FLOPs** are counted analytically, on each utterance's real frames and tokens (padding is not
useful work), counting a multiply-add as 2 FLOPs, for the matrix products only:

- LSTM, per direction and time step: ``2 · 4H · (I + H)`` (four gates, input and recurrent
  weights), input width I, hidden width H;
- linear layer, per row: ``2 · I · O``;
- location attention, per speller step over T' encoder frames: query ``2 · H · A``, location
  filters ``2 · T' · K · C``, their projection ``2 · T' · C · A``, energies ``2 · T' · A``,
  context ``2 · T' · D`` (plus ``2 · D · A`` for SpeechBrain's context projection); the keys
  ``2 · T' · D · A`` once per utterance;
- training = 3 x forward (the backward pass computes the gradients of inputs and of weights, each
  a product of the forward's size). Element-wise work, softmax, the loss and Adam are not counted
  (O(activations) and O(parameters), under 1% here).

Achieved GFLOP/s is this count over the step's wall-clock time, and "% of matmul" divides it by
the rate of a 2048 x 2048 x 2048 matmul in the row's own number format (bf16: both operands
bfloat16), timed in the same run with the same threads.
``benchmarks/README.md`` has measured tables; ``python -m benchmarks.peers --help`` the options.
"""

from benchmarks.peers.espnet_peer import ESPnet
from benchmarks.peers.las_asr import LasAsr, LasAsrBaseline
from benchmarks.peers.plain import PlainLAS, PlainPyTorch
from benchmarks.peers.report import markdown_tables
from benchmarks.peers.run import INSTALL, SYSTEM_CLASSES, SYSTEMS, installed, main, parse_args
from benchmarks.peers.speechbrain_peer import SpeechBrain
from benchmarks.peers.system import System, linear_flops, location_attention_flops, lstm_flops
from benchmarks.peers.timing import interleaved, load_average
from benchmarks.peers.workload import (
    FRAME_SECONDS,
    MATMUL_SIZE,
    PRECISIONS,
    Batch,
    Workload,
    training_batch,
)

__all__ = [
    "ESPnet",
    "FRAME_SECONDS",
    "INSTALL",
    "MATMUL_SIZE",
    "PRECISIONS",
    "SYSTEMS",
    "SYSTEM_CLASSES",
    "Batch",
    "LasAsr",
    "LasAsrBaseline",
    "PlainLAS",
    "PlainPyTorch",
    "SpeechBrain",
    "System",
    "Workload",
    "installed",
    "interleaved",
    "linear_flops",
    "load_average",
    "location_attention_flops",
    "lstm_flops",
    "main",
    "markdown_tables",
    "parse_args",
    "training_batch",
]
