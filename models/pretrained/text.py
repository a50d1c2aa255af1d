"""Pretrained Hugging Face text models behind Glassbox's hook names.

A real BERT-family encoder (BERT, DistilBERT, RoBERTa, with or without a sequence-classification
head) or a GPT-2 decoder is wrapped as a ``PretrainedTransformer`` (models.pretrained.base) whose
activations carry the same names as the project's own transformer (``embed.out``,
``blocks.{i}.attn.pattern``, ``blocks.{i}.out``, ``pooled``), so the attention and attribution
pages work on it unchanged. ``tokenize`` prepares a sentence with the model's own tokenizer.

``transformers`` takes seconds to import, so it is imported inside the function that needs it.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..hooks import HookPoint
from ..meta import ModelMeta
from ..spec import InputSpec, ModelSpec, TransformerConfig
from .base import Family, PretrainedTransformer, class_names

FAMILIES = {
    "bert": Family("BERT", False, "encoder.layer", "attention.self", ("query", "key", "value"), True,
                   "attention.output.dense"),
    "distilbert": Family("DistilBERT", False, "transformer.layer", "attention", ("q_lin", "k_lin", "v_lin"), True,
                         "attention.out_lin"),
    "roberta": Family("RoBERTa", False, "encoder.layer", "attention.self", ("query", "key", "value"), True,
                      "attention.output.dense"),
    "gpt2": Family("GPT-2", True, "h", "attn", ("c_attn",), False, "attn.c_proj"),
}


class Embed(nn.Module):
    def __init__(self, tokens: nn.Embedding):
        super().__init__()
        self.tokens = tokens  # the HF word embedding itself (shared): Layer IG attributes to its output
        self.out = HookPoint()  # (B, T, D): hidden_states[0], the vectors block 0 reads


class PretrainedText(PretrainedTransformer):
    """A Hugging Face text model with Glassbox's hook points; ``forward(ids)`` gives (B, K) logits."""

    def __init__(self, hf: nn.Module, tokenizer, name: str, source: str):
        config = hf.config
        family = FAMILIES[config.model_type]
        classifier = hf is not hf.base_model  # AutoModelForSequenceClassification wraps the base model
        super().__init__(_spec_of(hf, tokenizer, name, family, classifier), hf, family,
                         Embed(hf.get_input_embeddings()))
        self.tokenizer = tokenizer
        pad = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
        self.pad_id = int(pad)  # GPT-2 has no pad token and pads with its end-of-text token
        if classifier and config.pad_token_id is None:  # GPT-2's head finds each row's last real token by it
            config.pad_token_id = self.pad_id
        self.causal = self.family.causal
        self.meta = ModelMeta(pretrained=source, family=config.model_type, classifier=classifier)
        # transformers hooks its layers for good the first time attentions are asked for; asking once here
        # makes the hook count final at load, so no caller's sweep of new hooks (explain.model_guard) takes them
        with torch.no_grad():
            self.hf(input_ids=torch.tensor([[self.pad_id]]), output_attentions=True, output_hidden_states=True)
        self.eval()  # inspected, never trained: dropout stays off, also after a caller restores "as found"

    @functools.cached_property
    def vocab(self) -> list[str]:
        """id -> the tokenizer's piece, for every id; built once (tens of thousands of lookups)."""
        return self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))

    def tokens_of(self, ids) -> list[str]:
        """The tokenizer's own pieces for ``ids``: "##ing", "Ġthe", "[CLS]"."""
        return self.tokenizer.convert_ids_to_tokens([int(i) for i in torch.as_tensor(ids).flatten()])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = self._checked(ids)
        mask = self._attention_mask(ids)  # (B, T) 1 = a real token
        if not self._caching:
            return self._logits(self.hf(input_ids=ids, attention_mask=mask), ids)
        outputs = self._run_read_out(input_ids=ids, attention_mask=mask)
        self.pooled(self._pool(outputs, ids, mask))
        return self._logits(outputs, ids)

    def classify_stream(self, stream: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """An encoder's classifier on (B, T, D) as it reads hidden_states[-1]; None for a decoder
        (its blocks before the last have not passed the final norm) or a model without one."""
        if not self.meta.classifier or self.causal:
            return None
        hf, family = self.hf, self.meta.family
        if family == "bert":
            return hf.classifier(hf.dropout(hf.base_model.pooler(stream)))  # tanh(W·h[CLS] + b), then the head
        if family == "roberta":
            return hf.classifier(stream)  # its head reads <s> itself
        pooled = torch.relu(hf.pre_classifier(stream[:, 0]))  # DistilBERT: [CLS], a dense layer, ReLU
        return hf.classifier(hf.dropout(pooled))

    def next_token_logits(self, stream: torch.Tensor, final: bool) -> torch.Tensor | None:
        if not self.causal:
            return None
        normed = stream if final else self.hf.base_model.ln_f(stream)  # GPT-2's last hidden state is normed already
        return normed @ self.hf.get_input_embeddings().weight.T  # (B, T, vocab): GPT-2 ties its unembedding

    # ---- pieces of the forward pass ---------------------------------------------------------
    def _checked(self, ids) -> torch.Tensor:
        ids = torch.as_tensor(ids)
        if ids.dim() != 2 or ids.shape[1] == 0 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise ValueError(f"the model needs a batch of token id rows with at least one token, "
                             f"not an array of shape {tuple(ids.shape)}")
        if ids.shape[1] > self.spec.input.max_len:
            raise ValueError(f"a sequence of {ids.shape[1]} tokens is longer than this model's maximum of "
                             f"{self.spec.input.max_len}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.spec.input.vocab_size:
            raise ValueError(f"token ids must be between 0 and {self.spec.input.vocab_size - 1} for this tokenizer")
        return ids.long()

    def _attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        real = ids != self.pad_id  # (B, T)
        if self.causal:  # GPT-2's pad is its end-of-text token: only the padding after the last real token is hidden
            positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
            last = (positions * real).argmax(dim=1, keepdim=True)  # (B, 1)
            real = positions <= last  # (B, T)
        return real.long()

    def _pool(self, outputs, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        last = outputs.hidden_states[-1]  # (B, T, D)
        if not self.meta.classifier:
            weights = mask.unsqueeze(-1).to(last.dtype)  # (B, T, 1)
            return (last * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D), as sentence-transformers pool
        pooler = getattr(self.hf.base_model, "pooler", None)
        if pooler is not None:
            return pooler(last)  # BERT: tanh(W·h[CLS] + b), what its classifier reads
        if self.family.cls_pooled:
            return last[:, 0]  # (B, D)
        rows = torch.arange(ids.shape[0], device=ids.device)
        return last[rows, mask.sum(1) - 1]  # (B, D): GPT-2 reads the last real token


def _spec_of(hf: nn.Module, tokenizer, name: str, family: Family, classifier: bool) -> ModelSpec:
    """A descriptive spec (never validated or built) the pages read: sizes, classes, max length."""
    config = hf.config
    width = config.hidden_size
    positions = config.max_position_embeddings
    if config.model_type == "roberta":  # positions are numbered from pad_token_id + 1
        positions -= (config.pad_token_id or 0) + 1
    tokenizer_limit = getattr(tokenizer, "model_max_length", None) or positions  # often 1e30 when unset
    num_classes, names = class_names(config, classifier)
    mlp = (getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim", None)
           or getattr(config, "n_inner", None) or 4 * width)
    return ModelSpec(
        name=name, kind="transformer",
        input=InputSpec(kind="tokens", vocab_size=min(len(tokenizer), hf.get_input_embeddings().num_embeddings),
                        max_len=int(min(positions, tokenizer_limit))),
        num_classes=num_classes, class_names=names,
        # pooling "mean", so explain.probe.attention_labels adds no [CLS] of its own: the tokenizer's is a real token
        transformer=TransformerConfig(d_model=width, num_heads=config.num_attention_heads,
                                      num_layers=config.num_hidden_layers, mlp_ratio=max(1, mlp // width),
                                      dropout=0.0, positional="learned", norm="pre" if family.causal else "post",
                                      pooling="mean"))


def tokenize(model: PretrainedText, text: str) -> tuple[torch.Tensor, list[str], int]:
    """(ids (T,) with the tokenizer's special tokens, the tokens as the tokenizer writes them,
    how many tokens were cut to fit the model's maximum length: 0 if none)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("type a sentence first: there is nothing to read")
    limit = model.spec.input.max_len
    ids = model.tokenizer(text, verbose=False)["input_ids"]  # everything, to count what does not fit
    cut = 0
    if len(ids) > limit:
        whole = len(ids)
        ids = model.tokenizer(text, truncation=True, max_length=limit)["input_ids"]  # special tokens kept at the ends
        cut = whole - len(ids)
    if not ids:
        raise ValueError("the tokenizer found nothing to read in this sentence")
    return torch.tensor(ids, dtype=torch.int64), model.tokens_of(ids), cut


def build_text(location: str, config, name: str, source: str, offline: bool) -> PretrainedText:
    """The text model at ``location`` (a checked folder or a hub id), wrapped with hook points."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    classifier = any(arch.endswith("ForSequenceClassification") for arch in (config.architectures or []))
    loader = AutoModelForSequenceClassification if classifier else AutoModel
    hf = loader.from_pretrained(location, attn_implementation="eager", use_safetensors=True, trust_remote_code=False,
                                local_files_only=offline, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    return PretrainedText(hf, tokenizer, name, source)
