"""SAM3's text tokenizer, built offline.

SAM3 uses CLIP's byte-level BPE (vocabulary 49408, context 32 tokens). ``open_clip_torch`` ships
CLIP's merges file (``bpe_simple_vocab_16e6.txt.gz``) and builds CLIP's exact vocabulary from it;
we hand that vocabulary and merge list to transformers' ``CLIPTokenizer`` so the result gives CLIP's
token ids and saves in the hub's layout.
"""

from __future__ import annotations

import json
from pathlib import Path

CONTEXT_LENGTH = 32
VOCAB_SIZE = 49408
# open_clip names the two special tokens differently from CLIP's (and SAM3's) published vocabulary.
_SPECIAL_RENAMES = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}


def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocabulary (token -> id) and BPE merges in rank order, from open_clip's merges file."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    simple = SimpleTokenizer(default_bpe())
    vocab = {_SPECIAL_RENAMES.get(token, token): index for token, index in simple.encoder.items()}
    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda item: item[1])]
    if len(vocab) != VOCAB_SIZE:
        raise RuntimeError(f"open_clip's vocabulary has {len(vocab)} tokens, expected {VOCAB_SIZE}")
    return vocab, merges


def build_tokenizer():
    """A ``CLIPTokenizer`` with CLIP's vocabulary and SAM3's 32-token context."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CONTEXT_LENGTH)


def write_vocab_files(vocab: dict[str, int], merges: list[tuple[str, str]], folder: Path) -> None:
    """Write ``vocab.json`` and ``merges.txt`` as the hub repo has them (beside ``tokenizer.json``)."""
    folder = Path(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n")
