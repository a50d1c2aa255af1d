"""Pretrained Hugging Face text models behind Glassbox's hook names (models/pretrained/).

References: the same weights run by ``transformers`` directly (attentions, hidden states,
logits), projections and pooling recomputed by hand from the HF modules, and the tokenizer's
own output. Everything is offline: the packaged all-MiniLM-L6-v2, and tiny random BERT,
DistilBERT, RoBERTa and GPT-2 models saved to a temporary folder with tokenizers written here.
"""
from __future__ import annotations

import json
import math
import socket

import pytest
import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForSequenceClassification, BertTokenizer, DistilBertConfig, DistilBertModel,
                          DistilBertTokenizer, GPT2Config, GPT2ForSequenceClassification, GPT2Tokenizer,
                          RobertaConfig, RobertaForSequenceClassification, RobertaTokenizer)

from explain.attention import inspect_attention
from explain.attributions import attribute, available_methods
from explain.tokens import attention_labels
from models.hooks import count_hooks
from models.meta import ModelMeta
from models.pretrained import (BUILTIN_TEXT, PretrainedError, builtin_text_folder, check_folder, load_pretrained,
                               tokenize)

SENTENCE = "the film was not bad, and the acting was good"
WORDPIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "movie", "was", "not", "bad", "good",
              "and", "acting", ",", "run", "##s", "##ing", "a"]
SMALL = dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=64,
             max_position_embeddings=64)


def byte_level_vocab(specials_first: list[str], specials_last: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """A tiny byte-level BPE: the 256 byte symbols, four merges ("the", " the") and special tokens."""
    vocab = {token: i for i, token in enumerate(specials_first)}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    merges = [("Ġ", "t"), ("h", "e"), ("t", "he"), ("Ġt", "he")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    for token in specials_last:
        vocab[token] = len(vocab)
    return vocab, merges


def save(folder, model, tokenizer):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Folders of tiny random models saved through save_pretrained, by family."""
    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    wordpiece = {w: i for i, w in enumerate(WORDPIECES)}
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    bert = BertForSequenceClassification(BertConfig(vocab_size=len(WORDPIECES), num_labels=3, id2label=labels,
                                                    label2id={v: k for k, v in labels.items()}, **SMALL))
    distil = DistilBertModel(DistilBertConfig(vocab_size=len(WORDPIECES), n_layers=2, n_heads=2, dim=32,
                                              hidden_dim=64, max_position_embeddings=64))
    gpt_vocab, gpt_merges = byte_level_vocab([], ["<|endoftext|>"])
    gpt_config = GPT2Config(vocab_size=len(gpt_vocab), n_layer=2, n_head=2, n_embd=32, n_positions=64, num_labels=2,
                            bos_token_id=len(gpt_vocab) - 1, eos_token_id=len(gpt_vocab) - 1)
    gpt = GPT2ForSequenceClassification(gpt_config)
    roberta_vocab, roberta_merges = byte_level_vocab(["<s>", "<pad>", "</s>", "<unk>"], ["<mask>"])
    roberta = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=len(roberta_vocab), pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=2,
        **{**SMALL, "max_position_embeddings": 66}))
    return {
        "bert": save(root / "tiny-bert", bert, BertTokenizer(vocab=wordpiece)),
        "distilbert": save(root / "tiny-distilbert", distil, DistilBertTokenizer(vocab=wordpiece)),
        "gpt2": save(root / "tiny-gpt2", gpt, GPT2Tokenizer(vocab=gpt_vocab, merges=gpt_merges)),
        "roberta": save(root / "tiny-roberta", roberta, RobertaTokenizer(vocab=roberta_vocab, merges=roberta_merges)),
    }


@pytest.fixture(scope="module")
def minilm():
    return load_pretrained(BUILTIN_TEXT)


@pytest.fixture(scope="module")
def minilm_reference():
    folder = builtin_text_folder()
    return AutoModel.from_pretrained(folder, attn_implementation="eager").eval(), AutoTokenizer.from_pretrained(folder)


def reference_of(folder, classifier: bool):
    loader = AutoModelForSequenceClassification if classifier else AutoModel
    return loader.from_pretrained(folder, attn_implementation="eager").eval(), AutoTokenizer.from_pretrained(folder)


def heads(projected: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, T, D = projected.shape
    return projected.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, T, D) -> (B, h, T, dh)


# ---- the packaged all-MiniLM-L6-v2 ------------------------------------------------------------

def test_minilm_matches_transformers_layer_by_layer(minilm, minilm_reference):
    reference, tokenizer = minilm_reference
    encoded = tokenizer(SENTENCE, return_tensors="pt")
    ids, tokens, cut = tokenize(minilm, SENTENCE)
    assert torch.equal(ids, encoded["input_ids"][0]) and cut == 0
    with torch.no_grad():
        expected = reference(**encoded, output_attentions=True, output_hidden_states=True)
        logits, cache = minilm.run_with_cache(ids.unsqueeze(0))
    T = len(ids)
    assert logits.shape == (1, 0)
    torch.testing.assert_close(cache["embed.out"], expected.hidden_states[0])
    for i in range(6):
        pattern = cache[f"blocks.{i}.attn.pattern"]
        assert pattern.shape == (1, 12, T, T)
        torch.testing.assert_close(pattern, expected.attentions[i])
        torch.testing.assert_close(cache[f"blocks.{i}.out"], expected.hidden_states[i + 1])
        attention = reference.encoder.layer[i].attention.self
        with torch.no_grad():  # the projections recomputed from the block's input
            q = heads(attention.query(expected.hidden_states[i]), 12)
            k = heads(attention.key(expected.hidden_states[i]), 12)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.q"], q)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.k"], k)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.scores"], q @ k.transpose(-2, -1) / math.sqrt(32))
    torch.testing.assert_close(cache["pooled"][0], expected.last_hidden_state[0].mean(0))  # no padding: plain mean


def test_minilm_padded_batch_scores_masked_give_the_pattern(minilm, minilm_reference):
    _, tokenizer = minilm_reference
    batch = tokenizer(["a short one", SENTENCE], padding=True, return_tensors="pt")
    with torch.no_grad():
        _, cache = minilm.run_with_cache(batch["input_ids"])
    real = batch["attention_mask"].bool()[:, None, None, :]  # (B, 1, 1, Tk)
    for i in range(6):
        scores = cache[f"blocks.{i}.attn.scores"]
        expected = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=-1)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.pattern"], expected)
    hidden = cache["blocks.5.out"]  # (B, T, D); pooled is the mean over the real tokens only
    weights = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(cache["pooled"], (hidden * weights).sum(1) / weights.sum(1))


def test_minilm_spec_names_and_tokens(minilm, minilm_reference):
    _, tokenizer = minilm_reference
    spec = minilm.spec
    assert (spec.name, spec.kind, spec.num_classes, spec.class_names) == (BUILTIN_TEXT, "transformer", 0, [])
    assert (spec.transformer.num_layers, spec.transformer.num_heads, spec.transformer.d_model) == (6, 12, 384)
    assert (spec.input.kind, spec.input.vocab_size, spec.input.max_len) == ("tokens", 30522, 512)
    assert minilm.meta == ModelMeta(pretrained=BUILTIN_TEXT, family="bert", classifier=False)
    assert not minilm.training and not minilm.hf.training  # loaded for inspection: dropout off
    assert (minilm.pad_id, minilm.causal) == (0, False)
    ids, tokens, cut = tokenize(minilm, "the zorblax")
    assert tokens == tokenizer.convert_ids_to_tokens(tokenizer("the zorblax")["input_ids"])
    assert tokens[:4] == ["[CLS]", "the", "z", "##or"] and tokens[-1] == "[SEP]"
    assert attention_labels(spec, tokens, len(tokens)) == tokens  # no extra [CLS]: the tokenizer's is real


def test_minilm_cuts_a_long_sentence_and_reports_how_much(minilm, minilm_reference):
    _, tokenizer = minilm_reference
    text = " ".join(["word"] * 600)
    whole = len(tokenizer(text, verbose=False)["input_ids"])  # 602: [CLS] + 600 + [SEP]
    ids, tokens, cut = tokenize(minilm, text)
    assert (len(ids), cut) == (512, whole - 512) and tokens[-1] == "[SEP]"
    with pytest.raises(ValueError, match="maximum of 512"):
        minilm(torch.full((1, 513), 1000))
    with pytest.raises(ValueError, match="nothing to read"):
        tokenize(minilm, "   ")


def test_attention_page_computation_works_on_minilm(minilm):
    ids, tokens, _ = tokenize(minilm, "the zorblax is running")
    inspection = inspect_attention(minilm, ids, vocab=None)
    with torch.no_grad():
        _, cache = minilm.run_with_cache(ids.unsqueeze(0))
    assert inspection.labels == tokens == inspection.tokens
    assert inspection.patterns.shape == (6, 12, len(ids), len(ids)) and not inspection.has_cls
    for i in range(6):
        torch.testing.assert_close(torch.from_numpy(inspection.patterns[i]), cache[f"blocks.{i}.attn.pattern"][0])
    assert inspection.prefix_probabilities.shape == (len(ids), 0) and inspection.head_dim == 32


def test_attributions_are_refused_plainly_without_a_classifier(minilm):
    ids, _, _ = tokenize(minilm, "good")
    assert available_methods(minilm) == {}
    with pytest.raises(ValueError, match="no classifier"):
        attribute(minilm, ids, None, "integrated_gradients")


def test_no_hook_is_left_behind_even_when_the_forward_raises(minilm, monkeypatch):
    projections = [m for layer in minilm.hf.encoder.layer
                   for m in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value)]
    before = count_hooks(minilm)
    ids, _, _ = tokenize(minilm, "good")
    minilm.run_with_cache(ids.unsqueeze(0))
    assert count_hooks(minilm) == before and all(not m._forward_hooks for m in projections)

    def broken(*args, **kwargs):
        raise RuntimeError("layer 3 failed")

    monkeypatch.setattr(minilm.hf.encoder.layer[3].output, "forward", broken)
    with pytest.raises(RuntimeError, match="layer 3 failed"):
        minilm.run_with_cache(ids.unsqueeze(0))
    assert count_hooks(minilm) == before and all(not m._forward_hooks for m in projections)
    assert not minilm._caching


# ---- tiny random models of each family, loaded from a folder ---------------------------------------

def test_tiny_bert_classifier_gives_the_logits_and_labels_of_transformers(tiny):
    model = load_pretrained(str(tiny["bert"]))
    reference, tokenizer = reference_of(tiny["bert"], classifier=True)
    ids, tokens, _ = tokenize(model, "the films was not bad")
    assert tokens == ["[CLS]", "the", "film", "##s", "was", "not", "bad", "[SEP]"]
    with torch.no_grad():
        expected = reference(input_ids=ids.unsqueeze(0), output_attentions=True, output_hidden_states=True)
        logits, cache = model.run_with_cache(ids.unsqueeze(0))
    torch.testing.assert_close(logits, expected.logits)
    assert logits.shape == (1, 3) and model.spec.class_names == ["negative", "neutral", "positive"]
    assert model.meta == ModelMeta(pretrained=str(tiny["bert"]), family="bert", classifier=True)
    assert model.spec.name == "tiny-bert" and model.spec.transformer.num_heads == 2
    for i in range(2):
        torch.testing.assert_close(cache[f"blocks.{i}.attn.pattern"], expected.attentions[i])
    pooler = reference.bert.pooler.dense  # BERT's classifier reads tanh(W·h[CLS] + b)
    with torch.no_grad():
        torch.testing.assert_close(cache["pooled"], torch.tanh(pooler(expected.hidden_states[-1][:, 0])))


def test_integrated_gradients_on_the_tiny_bert_classifier(tiny):
    model = load_pretrained(str(tiny["bert"]))
    hooks = count_hooks(model)
    ids, _, _ = tokenize(model, "the film was good")
    result = attribute(model, ids, 2, "integrated_gradients")
    explicit = attribute(model, ids, 2, "integrated_gradients", baselines=torch.full_like(ids, model.pad_id))
    assert result.values.shape == (len(ids),)
    torch.testing.assert_close(torch.from_numpy(result.values), torch.from_numpy(explicit.values))
    assert abs(result.total - result.expected_total) < 0.05 * max(1e-3, abs(result.expected_total)) + 1e-4
    # The call's sweep of new hooks left transformers' own (installed at load): attentions still come back.
    assert count_hooks(model) == hooks
    with torch.no_grad():
        _, cache = model.run_with_cache(ids.unsqueeze(0))
    torch.testing.assert_close(cache["blocks.1.attn.pattern"], torch.softmax(cache["blocks.1.attn.scores"], dim=-1))


def test_tiny_distilbert_encoder_matches_transformers(tiny):
    model = load_pretrained(str(tiny["distilbert"]))
    reference, _ = reference_of(tiny["distilbert"], classifier=False)
    ids, _, _ = tokenize(model, "a movie and a film")
    with torch.no_grad():
        expected = reference(input_ids=ids.unsqueeze(0), output_attentions=True, output_hidden_states=True)
        logits, cache = model.run_with_cache(ids.unsqueeze(0))
        for i in range(2):
            torch.testing.assert_close(cache[f"blocks.{i}.attn.pattern"], expected.attentions[i])
            torch.testing.assert_close(cache[f"blocks.{i}.out"], expected.hidden_states[i + 1])
            v = heads(reference.transformer.layer[i].attention.v_lin(expected.hidden_states[i]), 2)
            torch.testing.assert_close(cache[f"blocks.{i}.attn.v"], v)
    assert logits.shape == (1, 0) and model.meta.family == "distilbert" and model.spec.num_classes == 0


def test_tiny_roberta_classifier_matches_transformers(tiny):
    model = load_pretrained(str(tiny["roberta"]))
    reference, _ = reference_of(tiny["roberta"], classifier=True)
    ids, tokens, _ = tokenize(model, "the the")
    assert tokens == ["<s>", "the", "Ġthe", "</s>"] and model.pad_id == 1
    assert model.spec.input.max_len == 64  # 66 positions, numbered from pad_token_id + 1
    with torch.no_grad():
        expected = reference(input_ids=ids.unsqueeze(0), output_attentions=True)
        logits, cache = model.run_with_cache(ids.unsqueeze(0))
    torch.testing.assert_close(logits, expected.logits)
    for i in range(2):
        torch.testing.assert_close(cache[f"blocks.{i}.attn.pattern"], expected.attentions[i])


def test_tiny_gpt2_attention_is_causal_and_matches_transformers(tiny):
    model = load_pretrained(str(tiny["gpt2"]))
    reference, _ = reference_of(tiny["gpt2"], classifier=True)
    ids, tokens, _ = tokenize(model, "the cat the end!")
    assert tokens[:2] == ["the", "Ġ"] and tokens[-1] == "!" and int(ids[-1]) == 0  # "!" is id 0, a real token here
    assert model.causal and model.pad_id == len(model.tokenizer) - 1  # no pad token: end-of-text pads
    T = len(ids)
    with torch.no_grad():
        expected = reference(input_ids=ids.unsqueeze(0), output_attentions=True, output_hidden_states=True)
        logits, cache = model.run_with_cache(ids.unsqueeze(0))
    torch.testing.assert_close(logits, expected.logits)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # key after the query
    for i in range(2):
        pattern = cache[f"blocks.{i}.attn.pattern"]
        torch.testing.assert_close(pattern, expected.attentions[i])
        assert bool((pattern[0][:, future] == 0).all())
        scores = cache[f"blocks.{i}.attn.scores"]
        torch.testing.assert_close(pattern, torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1))
        with torch.no_grad():  # GPT-2 projects q, k, v in one (B, T, 3D) matrix
            q, k, v = reference.transformer.h[i].attn.c_attn(reference.transformer.h[i].ln_1(
                expected.hidden_states[i])).split(32, dim=-1)
        torch.testing.assert_close(cache[f"blocks.{i}.attn.q"], heads(q, 2))
    inspection = inspect_attention(model, ids)  # the trailing "!" (id 0) is kept: only end-of-text is padding
    assert inspection.labels == tokens


def test_gpt2_padding_is_its_end_of_text_token(tiny):
    model = load_pretrained(str(tiny["gpt2"]))
    ids, _, _ = tokenize(model, "the cat")
    padded = torch.cat([ids, torch.full((3,), model.pad_id)])
    with torch.no_grad():
        torch.testing.assert_close(model(padded.unsqueeze(0)), model(ids.unsqueeze(0)))
    result = attribute(model, ids, 1, "integrated_gradients")
    explicit = attribute(model, ids, 1, "integrated_gradients", baselines=torch.full_like(ids, model.pad_id))
    zeros = attribute(model, ids, 1, "integrated_gradients", baselines=torch.zeros_like(ids))
    torch.testing.assert_close(torch.from_numpy(result.values), torch.from_numpy(explicit.values))
    assert not torch.allclose(torch.from_numpy(result.values), torch.from_numpy(zeros.values))


# ---- refusals --------------------------------------------------------------------------------------

def test_a_folder_with_its_own_code_is_refused(tiny, tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    for item in tiny["bert"].iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    (folder / "modeling_custom.py").write_text("raise SystemExit('this must never run')\n")
    with pytest.raises(PretrainedError, match=r"'my-model' ships its own Python code \(modeling_custom.py\)"):
        load_pretrained(str(folder))
    (folder / "modeling_custom.py").unlink()
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling_custom.Custom"}}))
    with pytest.raises(PretrainedError, match="auto_map"):
        check_folder(folder)
    with pytest.raises(PretrainedError, match="never runs code"):
        load_pretrained(str(folder))


def test_folders_without_config_or_safetensors_or_of_another_family_are_refused(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PretrainedError, match="no config.json"):
        load_pretrained(str(empty))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny["bert"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not unpickled, ever")
    with pytest.raises(PretrainedError, match="only pytorch_model.bin.*only safetensors"):
        load_pretrained(str(pickled))
    other = tmp_path / "t5"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(PretrainedError, match="BERT, DistilBERT, RoBERTa, GPT-2"):
        load_pretrained(str(other))
    with pytest.raises(PretrainedError, match="no folder"):
        load_pretrained(str(tmp_path / "missing" / "deeper" / "model"))


def test_an_unknown_hub_id_offline_names_the_builtin_model(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedError, match="offline.*all-MiniLM-L6-v2"):
        load_pretrained("someone/no-such-model")


def test_an_unreachable_hub_is_told_without_retrying(monkeypatch):
    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        raise OSError("Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(PretrainedError, match="could not be downloaded.*offline"):
        load_pretrained("someone/no-such-model")
    assert len(calls) == 1  # one quick probe, then only the local cache


def test_bad_inputs_get_plain_errors(minilm, monkeypatch):
    with pytest.raises(ValueError, match="batch of token id rows"):
        minilm(torch.tensor([101, 102]))
    with pytest.raises(ValueError, match="between 0 and 30521"):
        minilm(torch.tensor([[101, 40000, 102]]))
    with pytest.raises(PretrainedError, match="model id"):
        load_pretrained("  ")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(PretrainedError, match="not installed"):
        builtin_text_folder()
