"""Attention-alignment figures: where the speller looked while it emitted each character."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def plot_alignments(items: Sequence[tuple[str, object]], path: str | Path) -> Path:
    """One panel per utterance: listener frames across, emitted characters down.

    ``items`` are ``(title, result)`` pairs where ``result.transcript.alignment`` (or
    ``result.alignment``) is a (U+1, T') tensor and ``result.hypothesis`` (or ``.text``) its text.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(items), 1, figsize=(8, 2.6 * len(items)), squeeze=False)
    for ax, (title, result) in zip(axes[:, 0], items, strict=True):
        transcript = getattr(result, "transcript", result)
        alignment = transcript.alignment.float().numpy()
        text = getattr(result, "hypothesis", getattr(transcript, "text", ""))
        ax.imshow(alignment, aspect="auto", origin="lower", cmap="viridis", vmin=0.0)
        ax.set_title(f"{title}: {text}"[:110], fontsize=8)
        ax.set_xlabel("listener frame")
        ax.set_ylabel("output character")
        labels = list(text) + ["</s>"]
        if len(labels) == alignment.shape[0] and len(labels) <= 80:
            ax.set_yticks(range(len(labels)))
            ax.set_yticklabels(labels, fontsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_alignment_grid(
    items: Sequence[tuple[str, object]], path: str | Path, columns: int = 4
) -> Path:
    """The same utterance under several models: one small panel per ``(title, transcript)``.

    ``transcript.alignment`` is a (U+1, T') tensor and ``transcript.text`` its text; an
    all-zero alignment (no attention) is drawn blank. Panels share the colour scale [0, 1].
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = -(-len(items) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(items) :]:
        ax.axis("off")
    for ax, (title, transcript) in zip(axes.flat, items, strict=False):
        ax.imshow(
            transcript.alignment.float().numpy(),
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        ax.set_title(f"{title}\n{transcript.text}"[:90], fontsize=7)
        ax.set_xlabel("listener frame", fontsize=6)
        ax.set_ylabel("output character", fontsize=6)
        ax.tick_params(labelsize=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
