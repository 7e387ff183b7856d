"""The language model's training loop: an epoch over the training text, dev perplexity, save.

Each epoch streams the training sentences (asr.lm_training.corpus) in length-bucketed batches
through ``CharLSTMLM.loss`` (cross-entropy per output token, ``<eos>`` included), Adam, and
gradient-norm clipping at ``optim.max_grad_norm``. After each epoch (and every
``trainer.dev_every_steps`` steps, for a corpus whose epoch takes hours) the dev text is scored:
perplexity exp(-Σ log p / Σ tokens) over all dev sentences. When dev perplexity does not improve
the learning rate is multiplied by ``optim.plateau_factor`` (the usual RNN-LM schedule, which
needs no count of the steps to come, unknown for a streamed corpus).

Files in the run folder: ``best.pt`` (lowest dev perplexity) and ``last.pt``, both
:func:`asr.checkpoint.save_language_model` files that a search loads alone; ``resume.pt``
(weights, optimizer, position, random state) for ``trainer.resume=true``, also refreshed every
``trainer.checkpoint_minutes``; ``summary.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from asr.checkpoint import save_language_model, save_payload
from asr.config import TrainLMConfig, check_config
from asr.data import read_manifest
from asr.devices import select_device
from asr.errors import UserError
from asr.lm_training.corpus import (
    SentenceSource,
    bucketed_batches,
    collate_sentences,
    is_manifest,
    word_vocabulary,
)
from asr.models.language_model import CharLSTMLM
from asr.text import Vocabulary, vocabulary_from_dict
from asr.training.datasets import build_vocabulary

log = logging.getLogger("asr.train_lm")


def lm_vocabulary(cfg: DictConfig) -> Vocabulary:
    """The acoustic model's vocabulary for the same ``data`` settings (unit, tokens)."""
    utterances = []
    if cfg.data.unit == "phone" and cfg.data.tokens is None:
        # asr train reads a phone set off its training transcripts; the LM must read the same.
        if not is_manifest(cfg.data.train_manifest):
            raise UserError("a phone language model needs data.tokens or data.train_manifest")
        utterances = read_manifest(cfg.data.train_manifest)
    return build_vocabulary(cfg.data, utterances)


def _check_no_held_out_text(train: list[str], dev: list[str], data: DictConfig) -> None:
    """Refuse dev or test text among the training sources: dev perplexity would be flattered."""
    held_out = [*dev, data.get("dev_manifest"), data.get("test_manifest")]
    held = {Path(p).resolve() for p in held_out if p}
    for path in train:
        if Path(path).resolve() in held:
            raise UserError(f"text.train lists {path}, which is dev or test text")


class LMTrainer:
    """One run of ``asr train-lm``: ``LMTrainer(cfg).fit()`` returns the run's summary."""

    def __init__(self, cfg: DictConfig) -> None:
        check_config(cfg, TrainLMConfig)
        self.cfg, text = cfg, cfg.text
        self.exp_dir = Path(cfg.exp_dir)
        self.device = select_device(cfg.trainer.device)
        torch.manual_seed(cfg.seed)
        train_paths, dev_paths = list(text.train), list(text.dev)
        _check_no_held_out_text(train_paths, dev_paths, cfg.data)
        self.vocabulary = lm_vocabulary(cfg)  # the acoustic model's characters
        if text.unit == "word":
            self.vocabulary = word_vocabulary(train_paths, self.vocabulary, text.min_word_count)
            log.info("word language model: %d words", len(self.vocabulary.words))
        elif text.unit != "char":
            raise UserError(f"text.unit must be char or word, got {text.unit!r}")
        self.train_text = SentenceSource(
            train_paths, self.vocabulary, text.max_sentences, text.max_sentence_tokens
        )
        dev_source = SentenceSource(dev_paths, self.vocabulary, None, text.max_sentence_tokens)
        self.dev_sentences = list(dev_source)  # dev text is small: kept for every scoring
        self.dev_counts = dev_source.counts
        if not self.dev_sentences:
            raise UserError(f"no usable dev sentence in {', '.join(dev_paths)}")
        lm = OmegaConf.to_container(cfg.language_model, resolve=True)
        try:
            self.model = CharLSTMLM(vocab_size=len(self.vocabulary), **lm).to(self.device)
        except ValueError as error:
            raise UserError(f"language_model: {error}") from None
        self.optimizer = instantiate(
            cfg.optim.optimizer, params=self.model.parameters(), _convert_="all"
        )
        self.config = OmegaConf.to_container(cfg, resolve=True)
        # Where the run stands; train_text: the training text's counts once a pass has read it.
        self.progress = {
            "epoch": 0,
            "batch_in_epoch": 0,
            "step": 0,
            "best": math.inf,
            "train_minutes": 0.0,
            "train_text": None,
        }
        self.history: list[dict] = []
        resume_path = self.exp_dir / "resume.pt"
        if cfg.trainer.resume and resume_path.is_file():
            self._resume(resume_path)
        elif cfg.trainer.resume:
            log.info("no checkpoint at %s: starting a new run", resume_path)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.minutes_before = self.progress["train_minutes"]  # of the runs this one resumes

    def batches(self, epoch: int):
        """The epoch's batches, the same for the same seed and epoch (so a resume can skip)."""
        text = self.cfg.text
        rng = random.Random(self.cfg.seed * 100_003 + epoch)
        return bucketed_batches(
            self.train_text, text.max_batch_tokens, text.max_batch_size, text.buffer_sentences, rng
        )

    def fit(self) -> dict:
        """Train the remaining epochs; returns the summary also written to ``summary.json``."""
        trainer = self.cfg.trainer
        log.info(
            "language model: %d parameters on %s; dev text: %s",
            sum(p.numel() for p in self.model.parameters()),
            self.device,
            self.dev_counts.summary(),
        )
        self.started = time.monotonic()
        stopped = False
        for epoch in range(self.progress["epoch"], trainer.max_epochs):
            stopped = self.train_epoch(epoch)
            if stopped:
                break
        if not (self.exp_dir / "best.pt").is_file():  # no dev pass ran (max_steps=0)
            self.validate({})
        return self.summary(stopped)

    def train_epoch(self, epoch: int) -> bool:
        """Train ``epoch`` from the saved position; True if ``trainer.max_steps`` stopped it."""
        trainer, optim = self.cfg.trainer, self.cfg.optim
        skip = self.progress["batch_in_epoch"] if epoch == self.progress["epoch"] else 0
        self.model.train()
        loss_sum, token_count, stopped = 0.0, 0, False
        wall, last_save = time.monotonic(), time.monotonic()
        bar = tqdm(
            desc=f"lm epoch {epoch + 1}/{trainer.max_epochs}",
            unit="batch",
            disable=not trainer.progress_bar,
            dynamic_ncols=True,
        )
        for index, batch in enumerate(self.batches(epoch)):
            if index < skip:
                continue  # trained on before the run was interrupted
            if trainer.max_steps is not None and self.progress["step"] >= trainer.max_steps:
                stopped = True
                break
            tokens, lens = (t.to(self.device) for t in collate_sentences(batch))
            loss, num_tokens = self.model.loss(tokens, lens)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), optim.max_grad_norm)
            self.optimizer.step()
            self.progress["step"] += 1
            self.progress["batch_in_epoch"] = index + 1
            loss_sum += float(loss.detach()) * int(num_tokens)
            token_count += int(num_tokens)
            rate = token_count / max(1e-9, time.monotonic() - wall)
            bar.update()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", tokens_per_s=f"{rate:.0f}")
            step = self.progress["step"]
            if trainer.dev_every_steps and step % trainer.dev_every_steps == 0:
                self.validate(self._record(epoch, loss_sum, token_count, rate))
                self.model.train()
            minutes = trainer.checkpoint_minutes
            if minutes and time.monotonic() - last_save > 60 * minutes:
                self.save_resume()
                last_save = time.monotonic()
        bar.close()
        counts = self.train_text.counts
        if counts is not None and self.progress["train_text"] is None and not stopped:
            log.info("training text: %s", counts.summary())
            self.progress["train_text"] = {
                "sentences": counts.sentences,
                "tokens": counts.tokens,
                "skipped": dict(counts.skipped),
            }
        if token_count == 0 and stopped:
            return True  # trainer.max_steps was already reached: nothing new to score
        if token_count == 0 and not skip:
            raise UserError(
                f"no usable training sentence in {', '.join(map(str, self.train_text.paths))}"
            )
        record = self._record(epoch, loss_sum, token_count, rate if token_count else 0.0)
        if not stopped:
            self.progress.update(epoch=epoch + 1, batch_in_epoch=0)
        self.validate(record)
        return stopped

    def _record(self, epoch: int, loss_sum: float, tokens: int, rate: float) -> dict:
        loss = loss_sum / max(1, tokens)
        return {
            "epoch": epoch + 1,
            "step": self.progress["step"],
            "train_loss": loss,
            "train_perplexity": math.exp(loss) if tokens else None,
            "tokens_per_second": rate,
            "lr": self.optimizer.param_groups[0]["lr"],
        }

    @torch.no_grad()
    def dev_loss(self) -> float:
        """Mean dev loss in nats per output token (its exp is the dev perplexity)."""
        self.model.eval()
        total, tokens = 0.0, 0
        sentences = self.dev_sentences
        budget = self.cfg.text.max_batch_tokens  # no gradients kept: larger batches fit
        for batch in bucketed_batches(sentences, 4 * budget, 256, len(sentences)):
            ids, lens = (t.to(self.device) for t in collate_sentences(batch))
            total -= float(self.model.log_likelihood(ids, lens).double().sum())
            tokens += int((lens + 1).sum())
        return total / tokens

    def validate(self, record: dict) -> None:
        """Score dev; log; save best.pt (if better), last.pt and resume.pt; decay the LR on a
        plateau."""
        loss = self.dev_loss()
        minutes = (time.monotonic() - self.started) / 60  # dev passes included: the run's time
        self.progress["train_minutes"] = self.minutes_before + minutes
        record = {**record, "dev_loss": loss, "dev_perplexity": math.exp(loss)}
        improved = loss < self.progress["best"]
        if improved:
            self.progress["best"] = loss
        elif record.get("step"):
            for group in self.optimizer.param_groups:
                group["lr"] *= self.cfg.optim.plateau_factor
        self.history = [h for h in self.history if h.get("step") != record.get("step")] + [record]
        log.info(
            "lm epoch %s step %s: train perplexity %s, dev perplexity %.3f (best %.3f), "
            "%.0f tokens/s, lr %.2e",
            record.get("epoch", "-"),
            record.get("step", 0),
            f"{record['train_perplexity']:.3f}" if record.get("train_perplexity") else "-",
            record["dev_perplexity"],
            math.exp(self.progress["best"]),
            record.get("tokens_per_second") or 0.0,
            self.optimizer.param_groups[0]["lr"],
        )
        metrics = {k: v for k, v in record.items() if v is not None}
        for name in ("best.pt", "last.pt") if improved else ("last.pt",):
            path = self.exp_dir / name
            save_language_model(path, self.model, self.vocabulary, self.config, metrics)
        self.save_resume()

    def save_resume(self) -> None:
        """``resume.pt``: what continuing from the current position (``progress``) needs."""
        save_payload(
            self.exp_dir / "resume.pt",
            {
                "kind": "language_model_training",
                "vocabulary": self.vocabulary.to_dict(),
                "model": self.model.hyperparameters(),
                "weights": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "progress": dict(self.progress),
                "history": self.history,
                "torch_random": torch.get_rng_state(),
            },
        )

    def _resume(self, path: Path) -> None:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if vocabulary_from_dict(payload["vocabulary"]) != self.vocabulary:
            raise UserError(
                f"{path} was trained with another vocabulary (data.unit, data.tokens, text.unit)"
            )
        if payload["model"] != self.model.hyperparameters():
            raise UserError(
                f"{path} holds another language model size than the language_model settings"
            )
        self.model.load_state_dict(payload["weights"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.progress = dict(payload["progress"])
        self.history = list(payload["history"])
        torch.set_rng_state(payload["torch_random"])
        log.info(
            "resuming from %s: epoch %d, batch %d, step %d",
            path,
            self.progress["epoch"] + 1,
            self.progress["batch_in_epoch"],
            self.progress["step"],
        )

    def summary(self, stopped: bool) -> dict:
        counts = self.progress["train_text"] or {}
        summary = {
            "exp_dir": str(self.exp_dir),
            "device": str(self.device),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "epochs": self.history,
            "best_dev_perplexity": math.exp(self.progress["best"]),
            "train_sentences": counts.get("sentences"),
            "train_tokens": counts.get("tokens"),
            "train_skipped": counts.get("skipped", {}),
            "dev_sentences": self.dev_counts.sentences,
            "dev_skipped": dict(self.dev_counts.skipped),
            "stopped_by_max_steps": stopped,
            "train_minutes": self.progress["train_minutes"],
        }
        (self.exp_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("language model done: best dev perplexity %.3f", summary["best_dev_perplexity"])
        return summary


def train_language_model(cfg: DictConfig) -> dict:
    """Train as ``cfg`` says; returns the summary also written to ``<exp_dir>/summary.json``."""
    return LMTrainer(cfg).fit()
