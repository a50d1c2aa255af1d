"""The word-level tokenizer: splitting, ids, padding, unknown words and the stored vocabulary."""
import pytest
import torch

from training.tokenizer import PAD, UNK, Tokenizer, split_words

TEXTS = ["The film is good.", "the film is NOT good", "Not bad, really!", "i didn't like it"]


def test_split_lowercases_and_separates_punctuation():
    assert split_words("Not bad, really!") == ["not", "bad", ",", "really", "!"]
    assert split_words("I didn’t  like it") == ["i", "didn't", "like", "it"]  # curly apostrophe kept in the word
    assert split_words("(()]") == ["(", "(", ")", "]"]
    assert split_words("  ") == []


def test_vocab_starts_with_pad_and_unk_then_by_frequency():
    tok = Tokenizer.build(TEXTS)
    assert tok.vocab[:2] == [PAD, UNK]
    assert tok.vocab[2:5] == ["film", "good", "is"]  # 2 each, ties alphabetical; then "not", "the" ...
    assert len(set(tok.vocab)) == len(tok.vocab)
    assert "The" not in tok and "the" in tok


def test_encode_pads_and_truncates():
    tok = Tokenizer.build(TEXTS)
    ids = tok.encode("the film is good", 6)
    assert len(ids) == 6 and ids[4:] == [0, 0]
    assert tok.decode(ids) == ["the", "film", "is", "good"]
    assert tok.encode("the film is not good at all", 3) == tok.encode("the film is", 3)
    assert tok.encode("", 4) == [0, 0, 0, 0]


def test_unknown_words_become_unk():
    tok = Tokenizer.build(TEXTS)
    assert tok.tokens("the film is marvellous") == ["the", "film", "is", UNK]
    assert tok.encode("marvellous", 2) == [1, 0]
    assert tok.id_of("marvellous") == 1


def test_round_trip_through_a_stored_vocab():
    tok = Tokenizer.build(TEXTS)
    again = Tokenizer(list(tok.vocab))
    assert again == tok
    for text in TEXTS:
        assert again.encode(text, 8) == tok.encode(text, 8)
        assert " ".join(again.decode(tok.encode(text, 8))) == " ".join(split_words(text))


def test_min_count_and_max_size():
    tok = Tokenizer.build(TEXTS, min_count=2)
    assert set(tok.vocab[2:]) == {"film", "good", "is", "not", "the"}
    assert len(Tokenizer.build(TEXTS, max_size=4)) == 4
    with pytest.raises(ValueError):
        Tokenizer.build(TEXTS, max_size=2)


def test_bad_stored_vocab_is_refused():
    with pytest.raises(ValueError, match="<pad>"):
        Tokenizer(["good", "bad"])
    with pytest.raises(ValueError, match="twice"):
        Tokenizer([PAD, UNK, "a", "a"])


def test_encode_batch_shape_and_dtype():
    tok = Tokenizer.build(TEXTS)
    batch = tok.encode_batch(TEXTS, 5)
    assert batch.shape == (4, 5) and batch.dtype == torch.int64
    assert batch[0].tolist() == tok.encode(TEXTS[0], 5)
    assert tok.encode_batch([], 5).shape == (0, 5)
