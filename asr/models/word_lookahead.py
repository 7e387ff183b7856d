"""A word language model seen through characters: look-ahead scores for a character search.

The speller spells characters; a word LSTM LM (:class:`asr.models.language_model.CharLSTMLM`
over a :class:`asr.text.WordVocabulary`) predicts whole words. Hori, Cho & Watanabe (2018,
"End-to-end speech recognition with word-based RNN language models", §3.2) join them with a
prefix tree of the LM's words: after the word prefix s of the current word, character c gets

    p(c | s, h) = P(words starting s·c | h) / P(words starting s | h)

and a space (or ``<eos>``) after a whole word w = s gets P(w | h) / P(words starting s | h), h
being the words before. Over a whole in-lexicon word the characters multiply to P(w | h), so
the character search sees the word LM's probabilities and spells only words the LM knows,
unless the acoustic evidence pays ``oov_penalty`` (a log-probability) to leave the tree: a
prefix no word starts with is spelled on, free, until the next space, where the word LM reads
``<unk>`` (the open-vocabulary mode of the paper).

Everything is vectorised over the N rows of a beam search. Words are sorted by spelling, so the
words below every tree node are one contiguous range of that order, and a node's probability is
a difference of two entries of the cumulative sum of the LM's distribution in that order (the
state keeps the cumulative sum, float64, per row); a step gathers those for every row and
character at once, and only the rows that just finished a word run the LSTM.

The state (:class:`LookaheadState`) is batch-first like the character LM's, so the search
reorders it with ``index_select(0, ...)`` on every field.

With ``sentence_restarts`` the LM may also end a sentence after any word and start the next one,
for input that holds several sentences (long segments, utterances joined): the next word's
probability is the mixture

    P'(v | h) = P(v | h) + P(</s> | h) · P(v | <s>)

(the lookahead reads P' through the same cumulative sums, which are linear in the
distribution), and when the word is complete the LSTM goes on from whichever branch gave it
more probability: from h, or from a fresh ``<s>`` (a Viterbi choice of the sentence boundary).
An LM trained on single sentences otherwise scores the second sentence of a segment as a
continuation of the first: on the demo's 3 test utterances joined the word LM's WER rose from
9.9% to 18.9% (benchmarks/README.md, "Long input").
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from asr.models.language_model import CharLSTMLM, LMState
from asr.text import SPECIAL_TOKENS, Vocabulary, WordVocabulary

# Probabilities below this are treated as this (a node whose words all have ~0 probability).
_TINY = 1e-30
# ESPnet's look-ahead LM gives characters that leave the tree probability 1e-10.
DEFAULT_OOV_PENALTY = math.log(1e-10)


def checked_oov_penalty(oov_penalty: float) -> float:
    """``oov_penalty`` as a float; ValueError unless it is a log-probability (<= 0)."""
    if oov_penalty > 0:
        raise ValueError(f"oov_penalty is a log-probability (<= 0), got {oov_penalty}")
    return float(oov_penalty)


class LookaheadState(NamedTuple):
    """The look-ahead LM's state after a step; every field is batch-first.

    hidden, cell: (N, L, H) the word LSTM's states after the words finished so far.
    cumulative: (N, W + 1) float64: 0, then the cumulative sum of P(w | words so far) over the
        tree's W words in spelling order.
    node: (N,) the tree node of the current word's prefix (0: the root, at a word start), -1
        once the prefix has left the tree.
    sentence_end: (N,) float64 P(</s> | words so far), the weight of a new sentence in
        ``cumulative`` (0 without ``sentence_restarts``).
    """

    hidden: Tensor
    cell: Tensor
    cumulative: Tensor
    node: Tensor
    sentence_end: Tensor


class LexiconTree(nn.Module):
    """The prefix tree of a word list, as tables on the device (buffers).

    Args:
        words: the words, each spelled by ``characters`` (others must be left out by the caller).
        characters: the character vocabulary (V tokens).

    Tables over the M nodes (node 0 is the empty prefix): ``low``/``high`` (M,) the range of
    words (in ``order``) below the node; ``word`` (M,) the position of the word that ends there,
    or -1; ``child`` (M, V) the node after each character, or -1. ``order`` (W,) lists the
    positions of ``words`` in spelling order.
    """

    def __init__(self, words: list[str], characters: Vocabulary) -> None:
        super().__init__()
        order = sorted(range(len(words)), key=lambda i: words[i])
        ids = {token: i for i, token in enumerate(characters.tokens)}
        nodes = {"": 0}
        low, high, word_at, child = [0], [len(words)], [-1], [[-1] * len(characters)]
        for rank, index in enumerate(order):
            word = words[index]
            for end in range(1, len(word) + 1):
                prefix = word[:end]
                node = nodes.get(prefix)
                if node is None:
                    node = nodes[prefix] = len(low)
                    low.append(rank)
                    high.append(rank)
                    word_at.append(-1)
                    child.append([-1] * len(characters))
                    parent = nodes[word[: end - 1]]
                    child[parent][ids[word[end - 1]]] = node
                high[node] = rank + 1
            word_at[nodes[word]] = rank
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        self.register_buffer("low", torch.tensor(low), persistent=False)
        self.register_buffer("high", torch.tensor(high), persistent=False)
        self.register_buffer("word", torch.tensor(word_at), persistent=False)
        self.register_buffer("child", torch.tensor(child), persistent=False)

    @property
    def num_nodes(self) -> int:
        return self.low.numel()


class LookaheadWordLM(nn.Module):
    """A word LM that scores characters, for shallow fusion in the character beam search.

    It has the character LM's interface (``vocab_size``, ``initial_state``, ``step``,
    ``log_likelihood``), so :class:`asr.search.scorers.StepScorer` and N-best rescoring use it
    as they use :class:`CharLSTMLM`.

    Args:
        word_lm: the word LSTM LM, in eval mode.
        words: its vocabulary.
        characters: the acoustic model's character vocabulary; a word it cannot spell is left
            out of the tree (the speller cannot spell it either).
        oov_penalty: the log-probability of a character that leaves the tree, and of ending a
            word at a prefix that is no word (<= 0).
        sentence_restarts: let a sentence end after any word and another begin (see the module
            docstring), for input with several sentences.
    """

    def __init__(
        self,
        word_lm: CharLSTMLM,
        words: WordVocabulary,
        characters: Vocabulary,
        oov_penalty: float = DEFAULT_OOV_PENALTY,
        sentence_restarts: bool = False,
    ) -> None:
        super().__init__()
        if characters.unit != "char":
            raise ValueError("a word language model fuses with a character vocabulary only")
        if word_lm.vocab_size != len(words):
            raise ValueError(
                f"the word LM predicts {word_lm.vocab_size} tokens, its vocabulary has {len(words)}"
            )
        self.oov_penalty = checked_oov_penalty(oov_penalty)
        self.sentence_restarts = bool(sentence_restarts)
        self.word_lm = word_lm
        self.words = words
        self.characters = characters
        self.vocab_size = len(characters)
        self.space_id = characters.tokens.index(" ")
        spelled = [w for w in words.words if not characters.unknown_characters(w)]
        self.tree = LexiconTree(spelled, characters)
        # The LM id of each tree word, in the tree's spelling order.
        lm_ids = torch.tensor([words.id(w) for w in spelled], dtype=torch.long)
        self.register_buffer("lm_ids", lm_ids[self.tree.order], persistent=False)
        # Characters that move within a word (not space, not the special tokens).
        is_letter = torch.ones(len(characters), dtype=torch.bool)
        is_letter[: len(SPECIAL_TOKENS)] = False
        is_letter[self.space_id] = False
        self.register_buffer("is_letter", is_letter, persistent=False)

    def with_options(self, oov_penalty: float, sentence_restarts: bool) -> LookaheadWordLM:
        """The same LM and tree with other search options (shares every tensor)."""
        other = copy.copy(self)  # a shallow copy: the same submodules and buffers
        other.oov_penalty = checked_oov_penalty(oov_penalty)
        other.sentence_restarts = bool(sentence_restarts)
        return other

    def _cumulative(self, log_probs: Tensor) -> Tensor:
        """(N, W + 1) float64 cumulative word probabilities in tree order, from (N, V_w)."""
        probs = log_probs.double().exp()[:, self.lm_ids]
        return torch.nn.functional.pad(probs.cumsum(dim=-1), (1, 0))

    def _sentence_start(self, device: torch.device | str) -> tuple[Tensor, LMState]:
        """log P(first word | <s>) (1, V_w) and the word LSTM's state after ``<s>``."""
        sos = torch.full((1,), Vocabulary.sos_id, dtype=torch.long, device=device)
        return self.word_lm.step(sos, self.word_lm.initial_state(1, device))

    def initial_state(self, batch_size: int, device: torch.device | str | None = None):
        """The state before the first character, for N = ``batch_size`` rows."""
        device = device if device is not None else self.lm_ids.device
        log_probs, after = self._sentence_start(device)
        return LookaheadState(
            hidden=after.hidden.expand(batch_size, -1, -1).contiguous(),
            cell=after.cell.expand(batch_size, -1, -1).contiguous(),
            cumulative=self._cumulative(log_probs).expand(batch_size, -1).contiguous(),
            node=torch.zeros(batch_size, dtype=torch.long, device=device),
            sentence_end=torch.zeros(batch_size, dtype=torch.float64, device=device),
        )

    @staticmethod
    def _mass(cumulative: Tensor, low: Tensor, high: Tensor) -> Tensor:
        """P(the words at positions low … high - 1 of the tree's order): (N, C) from (N, C)."""
        return cumulative.gather(1, high) - cumulative.gather(1, low)

    def _range_probs(self, cumulative: Tensor, nodes: Tensor) -> Tensor:
        """P(words below ``nodes``): ``nodes`` (N, C) valid node ids, result (N, C) float64."""
        return self._mass(cumulative, self.tree.low[nodes], self.tree.high[nodes])

    def step(self, tokens: Tensor, state: LookaheadState) -> tuple[Tensor, LookaheadState]:
        """One character further.

        Args:
            tokens: (N,) the characters just fed (``<sos>`` at the first step).
            state: the state after the previous step.

        Returns:
            log-probabilities (N, V) of the next character (at least float32), and the new
            state.
        """
        hidden, cell, cumulative, node, sentence_end = state
        space = tokens == self.space_id
        if bool(space.any()):  # the rows that finished a word move the word LSTM on
            rows = space.nonzero().squeeze(1)
            ended = node[rows]
            position = self.tree.word[ended.clamp_min(0)]
            in_tree = (ended >= 0) & (position >= 0)
            word_ids = torch.where(
                in_tree, self.lm_ids[position.clamp_min(0)], WordVocabulary.unk_id
            )
            before = LMState(hidden[rows], cell[rows])
            if self.sentence_restarts:
                start_log_probs, start = self._sentence_start(hidden.device)
                # The finished word v's two shares of P'(v | h): a new sentence's
                # P(</s> | h) P(v | <s>), and the rest, P(v | h). The larger one decides where
                # the LSTM goes on from (an <unk> goes on from h).
                at = position.clamp_min(0)[:, None]
                mixed = self._mass(cumulative[rows], at, at + 1)[:, 0]
                restart = sentence_end[rows] * start_log_probs[0, word_ids].double().exp()
                new_sentence = (in_tree & (restart > mixed - restart))[:, None, None]
                before = LMState(
                    torch.where(new_sentence, start.hidden.to(hidden.dtype), before.hidden),
                    torch.where(new_sentence, start.cell.to(cell.dtype), before.cell),
                )
            log_probs, after = self.word_lm.step(word_ids, before)
            hidden = hidden.index_copy(0, rows, after.hidden.to(hidden.dtype))
            cell = cell.index_copy(0, rows, after.cell.to(cell.dtype))
            next_words = self._cumulative(log_probs)
            if self.sentence_restarts:
                ends = log_probs[:, WordVocabulary.eos_id].double().exp()  # P(</s> | h v)
                next_words = next_words + ends[:, None] * self._cumulative(start_log_probs)
                sentence_end = sentence_end.index_copy(0, rows, ends)
            cumulative = cumulative.index_copy(0, rows, next_words)
            node = node.masked_fill(space, 0)
        letter = self.is_letter[tokens]
        moved = self.tree.child[node.clamp_min(0), tokens]
        node = torch.where(letter, torch.where(node >= 0, moved, -1), node)

        inside = node >= 0
        at = node.clamp_min(0)
        # At a word start the whole distribution is the reference (<unk> and </s> included), so
        # the characters of an in-tree word multiply to exactly P(w | h).
        node_prob = self._range_probs(cumulative, at[:, None]).clamp_min(_TINY)  # (N, 1)
        node_prob = node_prob.masked_fill(at[:, None] == 0, 1.0)
        children = self.tree.child[at]  # (N, V)
        child_prob = self._range_probs(cumulative, children.clamp_min(0))
        log_probs = torch.where(
            children >= 0,
            child_prob.clamp_min(_TINY).log() - node_prob.log(),
            self.oov_penalty,
        )
        position = self.tree.word[at][:, None]  # (N, 1) the word ending here, or -1
        word_prob = self._mass(cumulative, position.clamp_min(0), position.clamp_min(0) + 1)
        ending = torch.where(
            position >= 0,
            word_prob.clamp_min(_TINY).log() - node_prob.log(),
            self.oov_penalty,
        )  # (N, 1)
        log_probs[:, self.space_id] = ending[:, 0]
        log_probs[:, Vocabulary.eos_id] = ending[:, 0]
        log_probs = torch.where(inside[:, None], log_probs, 0.0)  # outside the tree: spelled free
        dtype = torch.promote_types(hidden.dtype, torch.float32)  # as the character LM's
        return log_probs.to(dtype), LookaheadState(hidden, cell, cumulative, node, sentence_end)

    def word_ids(self, tokens: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """Character sentences (B, U) with lengths (B,) as word ids (B, U_w) and lengths (B,)."""
        sentences = [
            self.words.encode(self.characters.decode(row[:n].tolist()))
            for row, n in zip(tokens, lens.tolist(), strict=True)
        ]
        word_lens = torch.tensor([len(s) for s in sentences], device=tokens.device)
        ids = torch.zeros(len(sentences), max(1, int(word_lens.max())), dtype=torch.long)
        for row, sentence in enumerate(sentences):
            ids[row, : len(sentence)] = torch.tensor(sentence, dtype=torch.long)
        return ids.to(tokens.device), word_lens

    def log_likelihood(self, tokens: Tensor, lens: Tensor) -> Tensor:
        """(B,) the word LM's log p(words </s>) of character sentences (N-best rescoring).

        Args: as :meth:`CharLSTMLM.log_likelihood`, in characters.
        """
        ids, word_lens = self.word_ids(tokens, lens)
        return self.word_lm.log_likelihood(ids, word_lens)
