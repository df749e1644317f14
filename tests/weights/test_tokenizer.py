"""The offline tokenizer must give exactly CLIP's token ids (SAM3's text encoder was trained on them)."""

import pytest

from sam3ops.weights import tokenizer


@pytest.fixture(scope="module")
def tok():
    return tokenizer.build_tokenizer()


def test_gives_clips_ids(tok):
    # CLIP's published ids for this sentence: <|startoftext|> a photo of a cat <|endoftext|>
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_lowercases_like_clip(tok):
    assert tok("A PHOTO of a Cat").input_ids == tok("a photo of a cat").input_ids


def test_vocabulary_and_context(tok):
    assert len(tok) == tokenizer.VOCAB_SIZE == 49408
    assert tok.model_max_length == tokenizer.CONTEXT_LENGTH == 32
    assert tok.convert_ids_to_tokens([49406, 49407]) == ["<|startoftext|>", "<|endoftext|>"]


def test_long_prompt_truncates_to_context(tok):
    ids = tok(" ".join(["cat"] * 100), truncation=True, padding="max_length").input_ids
    assert len(ids) == 32 and ids[0] == 49406 and ids[-1] == 49407


def test_vocab_files_round_trip(tmp_path, tok):
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer.clip_vocab_and_merges()
    tokenizer.write_vocab_files(vocab, merges, tmp_path)
    reloaded = CLIPTokenizer(vocab=str(tmp_path / "vocab.json"), merges=str(tmp_path / "merges.txt"))
    assert reloaded("person wearing a red shirt").input_ids == tok("person wearing a red shirt").input_ids
