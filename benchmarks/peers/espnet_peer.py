"""ESPnet1's RNN ``E2E`` on the workload (optional; the package docstring says how to install it);
its modules are imported when the system is built.

ESPnet1 has no bfloat16 option: ``asr_train.py --train-dtype`` casts the model to float16 or
float64, or hands it to NVIDIA apex (``O0``-``O3``, CUDA only). Its bf16 rows run under plain
``torch.autocast`` with bfloat16, as every system without an option of its own
(``System.autocast``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from argparse import Namespace

import torch
from torch import Tensor

from asr.masking import pad_mask
from benchmarks.peers.system import System, linear_flops, location_attention_flops, lstm_flops
from benchmarks.peers.workload import Batch, Workload


class _NoReporter:
    def report(self, *args, **kwargs) -> None:
        pass


class ESPnet(System):
    """ESPnet1's RNN ``E2E`` with ``blstmp`` and location attention (module docstring)."""

    name = "espnet"

    def __init__(self, workload: Workload, device: torch.device) -> None:
        super().__init__(workload, device)
        logging.getLogger().setLevel(logging.ERROR)  # ESPnet logs every decoding step's limits
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Chainer is not installed"
            from espnet.nets.pytorch_backend.e2e_asr import E2E

        w, hidden = workload, workload.hidden_size
        self.vocab = 2 + w.symbols  # 0 blank, the symbols, then <sos>/<eos> = vocab - 1
        self.char_list = ["<blank>", *(f"s{i}" for i in range(w.symbols)), "<eos>"]  # logged
        reduction = "_".join(["1"] + ["2"] * (w.listener_layers - 1) + ["1"])
        args = Namespace(
            etype="blstmp",
            elayers=w.listener_layers,
            eunits=hidden,
            eprojs=hidden,
            subsample=reduction,
            dtype="lstm",
            dlayers=1,
            dunits=hidden,
            atype="location",
            adim=hidden,
            aconv_chans=w.location_channels,
            aconv_filts=w.location_kernel_size // 2,  # ESPnet's width is 2k + 1
            mtlalpha=0.0,
            ctc_type="builtin",
            lsm_weight=0.0,
            lsm_type="",
            dropout_rate=0.0,
            dropout_rate_decoder=0.0,
            sampling_probability=0.0,
            report_cer=False,
            report_wer=False,
            outdir=None,
            sym_space="<space>",
            sym_blank="<blank>",
            train_json=None,
            verbose=0,
        )
        self.model = E2E(w.features, self.vocab, args).to(device)
        # E2E.forward reports its losses to a chainer Reporter, a stub that raises without chainer.
        self.model.reporter = _NoReporter()

    def prepare(self, batch: Batch) -> Batch:
        # Packed sequences need decreasing lengths; ESPnet's loader sorts its batches.
        order = batch.lens.argsort(descending=True, stable=True)
        return Batch(*(tensor[order] for tensor in vars(batch).values()))

    def loss(self, batch: Batch) -> Tensor:
        warnings.filterwarnings("ignore", "Converting a tensor with requires_grad=True")
        targets = (batch.symbols + 1).masked_fill(
            pad_mask(batch.target_lens, batch.symbols.size(1)), -1
        )
        return self.model(batch.features, batch.lens, targets)

    def search(self, features: Tensor, lens: Tensor, beam_size: int | None) -> list[int]:
        reduced = self.workload.reduced(features.size(1))
        recog_args = Namespace(
            beam_size=beam_size or 1,
            penalty=0.0,
            ctc_weight=0.0,
            # maxlen = int(ratio · T') = steps speller steps: ESPnet drops a hypothesis that
            # ends with more tokens than encoder frames (T' = steps here), so it runs one step
            # fewer than the others. minlen = steps - 1 lets hypotheses end only in the last
            # step, with steps - 1 or steps tokens (ESPnet cannot force <eos> there).
            maxlenratio=(self.workload.steps + 0.5) / reduced,
            minlenratio=(self.workload.steps - 0.5) / reduced,
            lm_weight=0.0,
            nbest=1,
        )
        utterances = [
            utterance[: int(length)].cpu().numpy()
            for utterance, length in zip(features, lens, strict=True)
        ]
        with torch.no_grad():
            results = self.model.recognize_batch(utterances, recog_args, self.char_list)
        return [len(nbest[0]["yseq"]) - 2 for nbest in results]  # without <sos> and <eos>

    def forced_tokens(self, beam: bool) -> set[int]:
        return {self.workload.steps - 1, self.workload.steps}

    def encoder_flops(self, frames: int) -> tuple[int, int]:
        w = self.workload
        hidden, total = w.hidden_size, 0
        for layer in range(w.listener_layers):
            width = w.features if layer == 0 else hidden
            total += 2 * lstm_flops(width, hidden, frames)
            if layer < w.listener_layers - 1:
                frames = (frames + 1) // 2  # every other frame kept
            total += linear_flops(2 * hidden, hidden, frames)  # the projection
        return total, frames

    def keys_flops(self, frames: int) -> int:
        return linear_flops(self.workload.hidden_size, self.workload.hidden_size, frames)

    def step_flops(self, frames: int) -> int:
        hidden = self.workload.hidden_size
        return (
            lstm_flops(hidden + hidden, hidden, 1)  # [embedding; previous context]
            + location_attention_flops(self.workload, frames, hidden)
            + linear_flops(hidden, self.vocab, 1)
        )
