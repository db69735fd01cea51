"""One token/label stream for both backends: tokenise SFT pairs, pack them, emit fixed-shape batches.

Both the JAX (Tunix) and the PyTorch backend consume exactly these ``TokenBatch`` arrays, so
they train on identical ids and loss masks (tested on a golden example).

Conventions (the same as Tunix's ``PeftTrainer`` default loss):

* ``loss_mask[b, t] == 1`` means ``input_ids[b, t]`` is a trained *target*: it is predicted
  from position ``t - 1``. Prompt tokens and padding are 0; the completion (reasoning,
  answer) and its closing EOS are 1. The loss is therefore
  ``CE(logits[:, :-1], input_ids[:, 1:])`` weighted by ``loss_mask[:, 1:]``.
* Several short examples may share a row (packing). ``segment_ids`` numbers them 1, 2, ...
  (0 is padding) and ``positions`` restarts at 0 for each, so attention never crosses an
  example and rotary positions are those of an unpacked example. A segment always starts
  with a prompt token (mask 0), so no loss is ever taken across a segment boundary.
* Every batch has the same shape ``[batch_size, seq_len]``: one JAX compile, no ragged tail
  (the last batch is padded with empty rows, which carry no loss).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    prompt_ids: list[int]  # rendered prompt, with BOS when the tokenizer adds one
    completion_ids: list[int]  # rendered completion followed by EOS

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


@dataclass(frozen=True)
class TokenBatch:
    input_ids: np.ndarray  # [B, T] int32, pad_id on padding
    loss_mask: np.ndarray  # [B, T] int32, 1 where input_ids[b, t] is a trained target
    positions: np.ndarray  # [B, T] int32, restarts at 0 in each packed example (0 on padding)
    segment_ids: np.ndarray  # [B, T] int32, 1..k per packed example in the row, 0 on padding

    @property
    def n_target_tokens(self) -> int:
        return int(self.loss_mask.sum())

    @property
    def n_real_tokens(self) -> int:
        """Non-pad tokens: what throughput is counted in."""
        return int((self.segment_ids > 0).sum())

    def attention_mask_3d(self) -> np.ndarray:
        """[B, T, T] bool: causal and within the same packed example (what Tunix models take)."""
        seg = self.segment_ids
        same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] > 0)
        causal = np.tril(np.ones((seg.shape[1], seg.shape[1]), dtype=bool))
        return same & causal[None]


@dataclass(frozen=True)
class TokenizeStats:
    n_examples: int  # pairs offered
    n_kept: int  # pairs that fit seq_len
    n_too_long: int  # pairs dropped: prompt + completion + EOS > seq_len (or an empty prompt)


def tokenize_pairs(
    tokenizer, pairs: Iterable[tuple[str, str]], *, seq_len: int  # noqa: ANN001  (a transformers tokenizer)
) -> tuple[list[TokenizedExample], TokenizeStats]:
    """Tokenise (prompt, completion) pairs; pairs longer than ``seq_len`` are dropped and counted.

    Dropping rather than truncating: a truncated completion teaches the model to stop
    mid-reasoning without an answer, which is worse than not seeing the example.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token: completions could never be taught to stop")
    kept: list[TokenizedExample] = []
    n = 0
    for prompt, completion in pairs:
        n += 1
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos]
        # An empty prompt (possible without BOS) would let a packed segment start on a trained
        # token, i.e. a loss across the segment boundary: such pairs are dropped too.
        if p and len(p) + len(c) <= seq_len:
            kept.append(TokenizedExample(list(p), list(c)))
    return kept, TokenizeStats(n_examples=n, n_kept=len(kept), n_too_long=n - len(kept))


def pack_rows(examples: Sequence[TokenizedExample], seq_len: int, *, pack: bool = True) -> list[list[int]]:
    """Assign examples to rows (indices into ``examples``), first fit in the given order.

    First fit keeps the order nearly intact (a row is filled by later examples only when
    they fit), so a seeded shuffle upstream still decides what the model sees when.
    """
    rows: list[list[int]] = []
    free: list[int] = []
    for i, ex in enumerate(examples):
        n = len(ex)
        if n > seq_len:
            raise ValueError(f"example {i} has {n} tokens, more than seq_len={seq_len}; tokenize_pairs drops those")
        placed = False
        if pack:
            for r, room in enumerate(free):
                if n <= room:
                    rows[r].append(i)
                    free[r] -= n
                    placed = True
                    break
        if not placed:
            rows.append([i])
            free.append(seq_len - n)
    return rows


def make_batch(
    examples: Sequence[TokenizedExample], rows: Sequence[Sequence[int]], *, batch_size: int, seq_len: int, pad_id: int
) -> TokenBatch:
    """Lay out ``rows`` (at most ``batch_size``) as one fixed-shape batch."""
    if len(rows) > batch_size:
        raise ValueError(f"{len(rows)} rows do not fit a batch of {batch_size}")
    ids = np.full((batch_size, seq_len), pad_id, dtype=np.int32)
    mask = np.zeros((batch_size, seq_len), dtype=np.int32)
    pos = np.zeros((batch_size, seq_len), dtype=np.int32)
    seg = np.zeros((batch_size, seq_len), dtype=np.int32)
    for b, row in enumerate(rows):
        t = 0
        for s, i in enumerate(row, start=1):
            ex = examples[i]
            n_p, n = len(ex.prompt_ids), len(ex)
            ids[b, t : t + n_p] = ex.prompt_ids
            ids[b, t + n_p : t + n] = ex.completion_ids
            mask[b, t + n_p : t + n] = 1
            pos[b, t : t + n] = np.arange(n)
            seg[b, t : t + n] = s
            t += n
    return TokenBatch(ids, mask, pos, seg)


def iter_batches(
    examples: Sequence[TokenizedExample],
    *,
    batch_size: int,
    seq_len: int,
    pad_id: int,
    pack: bool = True,
) -> Iterator[TokenBatch]:
    """All examples once, packed into rows and grouped into fixed-shape batches."""
    rows = pack_rows(examples, seq_len, pack=pack)
    for start in range(0, len(rows), batch_size):
        yield make_batch(examples, rows[start : start + batch_size], batch_size=batch_size, seq_len=seq_len,
                         pad_id=pad_id)


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: a permutation fixed by (seed, epoch), so resume replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def training_batches(
    examples: Sequence[TokenizedExample],
    *,
    batch_size: int,
    seq_len: int,
    pad_id: int,
    seed: int,
    pack: bool = True,
    start_step: int = 0,
) -> Iterator[TokenBatch]:
    """An endless stream of batches, epoch after epoch, each epoch in its own seeded order.

    ``start_step`` skips that many batches without building them: a resumed run sees exactly
    the batches the uninterrupted run would have seen from that step on.
    """
    if not examples:
        raise ValueError("no training examples (all were longer than seq_len, or the dataset is empty)")
    step = 0
    epoch = 0
    while True:
        order = epoch_order(len(examples), seed=seed, epoch=epoch)
        ordered = [examples[i] for i in order]
        rows = pack_rows(ordered, seq_len, pack=pack)
        for start in range(0, len(rows), batch_size):
            if step >= start_step:
                yield make_batch(ordered, rows[start : start + batch_size], batch_size=batch_size,
                                 seq_len=seq_len, pad_id=pad_id)
            step += 1
        epoch += 1
