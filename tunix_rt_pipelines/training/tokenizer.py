"""A tokenizer trained locally on the traces, saved as a transformers fast tokenizer.

Real checkpoints come with their tokenizer; the smoke path has no download, so it trains
a byte-level BPE (HF ``tokenizers``) on the dataset's own text. Digits are split one by one
before BPE merges: a model that sees ``1234`` as four tokens learns arithmetic far sooner
than one that sees arbitrary multi-digit chunks (Qwen and Llama 3 tokenizers do the same).

Special tokens follow the family so that the same loading code serves a real checkpoint:
Qwen3 has no BOS and ends text with ``<|endoftext|>``; Gemma 3 prepends ``<bos>`` and ends
with ``<eos>``. Padding is always its own token, never EOS, so a padded row cannot look
like a finished answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast


@dataclass(frozen=True)
class SpecialTokens:
    eos: str
    pad: str
    bos: str | None = None  # prepended to every encoded text when set

    @property
    def all(self) -> list[str]:
        return [t for t in (self.pad, self.eos, self.bos) if t]


SPECIAL_TOKENS = {
    "qwen3": SpecialTokens(eos="<|endoftext|>", pad="<|pad|>"),
    "gemma3": SpecialTokens(eos="<eos>", pad="<pad>", bos="<bos>"),
}


def train_tokenizer(texts: Iterable[str], *, vocab_size: int, family: str) -> PreTrainedTokenizerFast:
    """Byte-level BPE with individually split digits; special tokens of ``family``."""
    special = SPECIAL_TOKENS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special.all,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown token
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    if special.bos:
        bos_id = tok.token_to_id(special.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{special.bos} $A", pair=f"{special.bos} $A $B", special_tokens=[(special.bos, bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=special.eos,
        pad_token=special.pad,
        bos_token=special.bos,
        padding_side="left",  # generation pads on the left; training builds its own arrays
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    tokenizer.save_pretrained(str(out_dir))
