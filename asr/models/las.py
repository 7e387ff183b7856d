"""LAS: listener + speller, trained with label-smoothed cross-entropy and an optional CTC loss.

The joint loss follows Kim, Hori and Watanabe (2017), "Joint CTC-attention based end-to-end
speech recognition using multi-task learning": loss = (1 - w) · attention + w · CTC. The CTC head
may read any listener layer (``ctc_layer``): at 80 ms a frame, fast speech can have more
characters than frames, which CTC cannot align, while a layer at 40 ms still can.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.masking import pad_mask
from asr.models.attention import SelfAttention
from asr.models.listener import Listener, ListenerOutput
from asr.models.speller import Speller
from asr.text import Vocabulary


class LossOutput(NamedTuple):
    """Training losses of a batch.

    loss: () the joint loss to minimise.
    attention_loss: () label-smoothed cross-entropy per real output token (characters + ``<eos>``).
    ctc_loss: () CTC loss per utterance normalised by its target length, or None without CTC.
    num_tokens: () number of real output tokens, to weight the attention loss across batches.
    """

    loss: Tensor
    attention_loss: Tensor
    ctc_loss: Tensor | None
    num_tokens: Tensor


def in_float32(listened: ListenerOutput) -> ListenerOutput:
    """The listener output with every tensor at least float32 (a bf16 listener's, cast)."""

    def full(x: Tensor) -> Tensor:
        return x.to(torch.promote_types(x.dtype, torch.float32))

    return listened._replace(
        encoded=full(listened.encoded),
        layer_outputs=tuple((full(out), lens) for out, lens in listened.layer_outputs),
    )


class LAS(nn.Module):
    """Listen, Attend and Spell (Chan et al. 2016) with an optional CTC head.

    Args:
        listener: the encoder.
        speller: the attention decoder; its ``vocab_size`` is the CTC head's too.
        ctc_weight: w in [0, 1]; 0 builds no CTC head.
        ctc_layer: index into the listener's ``layer_outputs`` read by the CTC head (-1 = top).
        label_smoothing: label smoothing of the attention cross-entropy.
        sampling_probability: scheduled-sampling probability used in training mode (evaluation
            mode always feeds the ground truth).
        self_attention: an optional self-attention layer over the listener's top output; the
            speller attends to its output, the CTC head still reads ``listener.layer_outputs``.
    """

    def __init__(
        self,
        listener: Listener,
        speller: Speller,
        ctc_weight: float = 0.3,
        ctc_layer: int = -1,
        label_smoothing: float = 0.1,
        sampling_probability: float = 0.1,
        self_attention: SelfAttention | None = None,
    ) -> None:
        super().__init__()
        num_layers = len(listener.layers)
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        if not -num_layers <= ctc_layer < num_layers:
            raise ValueError(
                f"ctc_layer {ctc_layer} is out of range for a listener of {num_layers} layers"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0.0 <= sampling_probability <= 1.0:
            raise ValueError(f"sampling_probability must be in [0, 1], got {sampling_probability}")
        if speller.encoder_size != listener.output_size:
            raise ValueError(
                f"speller encoder_size {speller.encoder_size} does not match the listener's "
                f"output size {listener.output_size}"
            )
        self.listener = listener
        self.self_attention = self_attention
        self.speller = speller
        self.ctc_weight = ctc_weight
        self.ctc_layer = ctc_layer
        self.label_smoothing = label_smoothing
        self.sampling_probability = sampling_probability
        self.ctc_head = (
            nn.Linear(listener.output_size, speller.vocab_size) if ctc_weight > 0 else None
        )
        self.ctc_loss = nn.CTCLoss(blank=Vocabulary.blank_id, zero_infinity=True)

    def encode(self, features: Tensor, feature_lens: Tensor) -> ListenerOutput:
        """Run the listener (and self-attention): features (B, T, F), feature_lens (B,)."""
        return self.attend_within(self.listener(features, feature_lens))

    def attend_within(self, listened: ListenerOutput) -> ListenerOutput:
        """The listener output with ``encoded`` passed through the self-attention layer, if any."""
        if self.self_attention is None:
            return listened
        return listened._replace(
            encoded=self.self_attention(listened.encoded, listened.encoded_lens)
        )

    def forward(
        self, features: Tensor, feature_lens: Tensor, targets: Tensor, target_lens: Tensor
    ) -> LossOutput:
        """Losses of a batch.

        Args:
            features: (B, T, F) padded features.
            feature_lens: (B,) real frames per utterance.
            targets: (B, U) character ids padded with 0, no ``<sos>``/``<eos>``.
            target_lens: (B,) characters per utterance.
        """
        target_lens = target_lens.to(targets.device)
        listened = self.encode(features, feature_lens)
        # Under autocast only the listener computes in low precision; the speller, attention and
        # losses run in float32. With the whole model in bfloat16 (CPU autocast: every matmul,
        # the attention energies and softmax, the output layer) attention had not aligned after
        # 2 demo epochs (dev CER 274%, float32: 51%); with the speller alone in float32 it had
        # (43%). recipes/synth/README.md, "bf16".
        with torch.autocast(features.device.type, enabled=False):
            listened = in_float32(listened)
            memory = self.speller.memory(listened.encoded, listened.encoded_lens)

            # Speller input "<sos> y_1 … y_U" and output "y_1 … y_U <eos>", both (B, U + 1).
            batch = targets.size(0)
            sos = targets.new_full((batch, 1), Vocabulary.sos_id)
            tokens_in = torch.cat([sos, targets], dim=1)
            tokens_out = torch.cat([targets, targets.new_zeros(batch, 1)], dim=1)
            tokens_out = tokens_out.scatter(1, target_lens[:, None], Vocabulary.eos_id)
            real = ~pad_mask(target_lens + 1, tokens_out.size(1))  # (B, U + 1)

            sampling = self.sampling_probability if self.training else 0.0
            logits, _ = self.speller(memory, tokens_in, sampling)  # (B, U + 1, V)
            token_losses = nn.functional.cross_entropy(
                logits.transpose(1, 2),  # float32 or wider: autocast is off here
                tokens_out,
                reduction="none",
                label_smoothing=self.label_smoothing,
            )  # (B, U + 1)
            num_tokens = real.sum()
            attention_loss = (token_losses * real).sum() / num_tokens

            if self.ctc_head is None:
                return LossOutput(attention_loss, attention_loss, None, num_tokens)
            log_probs, ctc_lens = self.ctc_log_probs(listened)
            # nn.CTCLoss "mean": each utterance's loss divided by its target length, then averaged.
            ctc_loss = self.ctc_loss(log_probs.transpose(0, 1), targets, ctc_lens, target_lens)
            loss = (1.0 - self.ctc_weight) * attention_loss + self.ctc_weight * ctc_loss
            return LossOutput(loss, attention_loss, ctc_loss, num_tokens)

    def ctc_log_probs(self, listened: ListenerOutput) -> tuple[Tensor, Tensor]:
        """The CTC head's log-posteriors: the training loss and the joint search both read them.

        Args:
            listened: the listener output of a batch (``encode``).

        Returns:
            log_probs (B, T_c, V) (at least float32; padded frames arbitrary) over the frames of
            listener layer ``ctc_layer``, and their lengths (B,).

        Raises:
            ValueError: the model was built without a CTC head (``ctc_weight=0``).
        """
        if self.ctc_head is None:
            raise ValueError("this model has no CTC head (it was trained with ctc_weight=0)")
        ctc_input, ctc_lens = listened.layer_outputs[self.ctc_layer]
        ctc_logits = self.ctc_head(ctc_input)  # (B, T_c, V)
        ctc_logits = ctc_logits.to(torch.promote_types(ctc_logits.dtype, torch.float32))
        return ctc_logits.log_softmax(dim=-1), ctc_lens
