"""A pretrained text encoder with a new classification head, to fine-tune, and its checkpoints.

    model = start_model(base, ["negative", "positive"], seed=0)   # the base encoder + a fresh head
    freeze(model, "top", top_blocks=1)                           # what training may change
    save_finetuned(model, folder, meta)                          # config + safetensors + tokenizer + meta.json
    model = load_finetuned(folder)                               # offline, no code, no pickle

A fine-tuned checkpoint is a Hugging Face model folder (``config.json``, ``model.safetensors``,
the tokenizer's own files) plus Glassbox's ``meta.json`` (data, run, step, the base it started
from). It loads through ``models.pretrained.load`` like any model folder, so the same rules hold:
safetensors only, no remote code, nothing from the network. ``is_finetuned_folder`` tells it
apart from a Glassbox checkpoint (which has ``spec.json``).

The head is what a classifier reads beyond the encoder's blocks: the pooler (BERT's tanh layer
over [CLS], pretrained but never for this task) and the new classifier layer, both sized and
seeded here; ``head_parameters`` names them, ``block_parameters`` the blocks'.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch

from ..meta import ModelMeta
from .base import PretrainedError
from .text import PretrainedText

META_FILE = "meta.json"  # Glassbox's: what the model was trained on, which run and step, its base
TRAIN_CHOICES = ("head", "top", "all")  # what fine-tuning changes: the head only, the top N blocks too, everything
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# The config's dropout rates (BERT and RoBERTa's names, then DistilBERT's), all set to 0 for fine-tuning.
DROPOUT_SETTINGS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout",
                    "attention_dropout", "seq_classif_dropout")


def base_folder(base: str) -> Path:
    """The local folder of a base model: the built-in one's packaged folder, or a folder given by path."""
    from .load import BUILTIN_TEXT, builtin_text_folder, check_folder

    folder = builtin_text_folder() if base == BUILTIN_TEXT else Path(base).expanduser()
    if not folder.is_dir():
        raise PretrainedError(f"the base model folder '{base}' is not on this machine; fine-tune the built-in "
                              f"{BUILTIN_TEXT} or a model folder that is")
    check_folder(folder)
    return folder


def start_model(base: str, class_names: list[str], seed: int, name: str | None = None) -> PretrainedText:
    """The base encoder with a new classification head for ``class_names``, its head drawn from ``seed``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from .text import FAMILIES

    folder = base_folder(base)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    if config.model_type not in FAMILIES or FAMILIES[config.model_type].causal:
        raise PretrainedError(f"'{Path(base).name}' is not a BERT-family text encoder; Glassbox fine-tunes "
                              "BERT, DistilBERT and RoBERTa models")
    labels = {i: str(n) for i, n in enumerate(class_names)}
    config.num_labels, config.id2label, config.label2id = len(class_names), labels, {v: k for k, v in labels.items()}
    config.problem_type = "single_label_classification"
    for rate in DROPOUT_SETTINGS:  # off: a resumed run then lands exactly where an uninterrupted one does
        if rate in config.to_dict():
            setattr(config, rate, 0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # the new head's weights: the same seed gives the same head
        hf = AutoModelForSequenceClassification.from_pretrained(
            folder, config=config,
            ignore_mismatched_sizes=True,  # a base that had a head of another size gets a new one
            attn_implementation="eager", use_safetensors=True, trust_remote_code=False, local_files_only=True,
            dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    model = PretrainedText(hf, tokenizer, name or Path(folder).name, base)
    model.meta = ModelMeta(pretrained=base, family=config.model_type, classifier=True, input_kind="tokens",
                           class_names=list(map(str, class_names)))
    return model


# ---- which weights train ------------------------------------------------------------------
def head_parameters(model: PretrainedText) -> dict[str, torch.nn.Parameter]:
    """The head's parameters by name: everything outside the base model, and BERT's pooler."""
    base = model.hf.base_model
    inside = {id(p) for p in base.parameters()}
    pooler = {id(p) for p in base.pooler.parameters()} if getattr(base, "pooler", None) is not None else set()
    return {name: p for name, p in model.hf.named_parameters() if id(p) not in inside or id(p) in pooler}


def block_parameters(model: PretrainedText, block: int) -> dict[str, torch.nn.Parameter]:
    """Block ``block``'s (0-based) parameters by their name in the Hugging Face model."""
    layer = model.hf.base_model.get_submodule(model.family.layers)[block]
    mine = {id(p) for p in layer.parameters()}
    return {name: p for name, p in model.hf.named_parameters() if id(p) in mine}


def freeze(model: PretrainedText, train: str, top_blocks: int = 1) -> int:
    """Let training change only what ``train`` says: "head", "top" (the head and the top
    ``top_blocks`` blocks) or "all". Returns how many numbers will train."""
    if train not in TRAIN_CHOICES:
        raise ValueError(f"train must be one of {', '.join(TRAIN_CHOICES)}, not {train!r}")
    blocks = model.spec.transformer.num_layers
    trainable = {id(p) for p in head_parameters(model).values()}
    if train == "all":
        trainable = {id(p) for p in model.hf.parameters()}
    elif train == "top":
        if not 1 <= int(top_blocks) <= blocks:
            raise ValueError(f"the number of top blocks to train must be from 1 to {blocks}, not {top_blocks}")
        for block in range(blocks - int(top_blocks), blocks):
            trainable |= {id(p) for p in block_parameters(model, block).values()}
    count = 0
    for p in model.hf.parameters():
        p.requires_grad_(id(p) in trainable)
        count += p.numel() if id(p) in trainable else 0
    return count


def parameter_groups(model: PretrainedText, lr: float, head_lr: float) -> list[dict]:
    """Optimizer groups: the head at its own learning rate, the trained blocks at ``lr``. Each
    group's ``lr_scale`` keeps the ratio when a schedule changes the learning rate."""
    head = [p for p in head_parameters(model).values() if p.requires_grad]
    head_ids = {id(p) for p in head}
    encoder = [p for p in model.hf.parameters() if p.requires_grad and id(p) not in head_ids]
    head_group = {"params": head, "lr": head_lr, "lr_scale": head_lr / lr}
    # The encoder's first: a metrics record's "lr" is the first group's, which is then the run's lr.
    return [{"params": encoder, "lr": lr, "lr_scale": 1.0}, head_group] if encoder else [head_group]


# ---- checkpoints ----------------------------------------------------------------------------
def is_finetuned_folder(folder) -> bool:
    folder = Path(folder)
    return (folder / "config.json").is_file() and not (folder / "spec.json").exists()


def finetuned_files(model: PretrainedText, meta: dict | None = None) -> dict[str, bytes]:
    """The checkpoint's files by name: the Hugging Face folder (safetensors weights, config,
    tokenizer) and Glassbox's meta.json."""
    import tempfile

    meta = model.meta.to_dict() if meta is None else dict(meta)
    with tempfile.TemporaryDirectory(prefix="glassbox-finetuned-") as temporary:
        folder = Path(temporary)
        model.hf.save_pretrained(folder, safe_serialization=True)
        model.tokenizer.save_pretrained(folder)
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    files[META_FILE] = json.dumps({**meta, "pretrained": model.meta.pretrained, "family": model.meta.family,
                                   "classifier": True, "model_name": model.spec.name},
                                  indent=2, ensure_ascii=False).encode("utf-8")
    return files


def save_finetuned(model: PretrainedText, folder, meta: dict | None = None) -> Path:
    """Write the checkpoint into ``folder`` (made if missing); config.json last, so a folder cut
    short is never taken for a whole one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = finetuned_files(model, meta)
    for name in sorted(files, key=lambda n: n == "config.json"):
        (folder / name).write_bytes(files[name])
    return folder


def finetuned_zip(model: PretrainedText, meta: dict | None = None) -> bytes:
    """The checkpoint as one .zip (what the download button hands out), the same bytes for the same model."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in finetuned_files(model, meta).items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".safetensors") else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


def load_finetuned(folder) -> PretrainedText:
    """A fine-tuned checkpoint folder as a model in eval mode, with the data and run it came from."""
    from .load import load_pretrained

    folder = Path(folder)
    model = load_pretrained(str(folder))
    about = _read_meta(folder)
    model.meta = ModelMeta.from_dict({**about, "pretrained": about.get("pretrained") or str(folder),
                                      "family": model.meta.family, "classifier": True})
    model.spec.name = str(about.get("model_name") or model.spec.name)
    return model


def _read_meta(folder: Path) -> dict:
    path = folder / META_FILE
    if not path.is_file():
        return {}
    try:
        about = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return about if isinstance(about, dict) else {}


def load_finetuned_zip(data: bytes, name: str) -> PretrainedText:
    """An uploaded .zip of a fine-tuned checkpoint: its files (flat, or in one folder) are
    checked like any upload's, unpacked into a temporary folder and loaded from there."""
    import tempfile

    from ..weights import check_archive, open_zip

    archive = open_zip(data, name)
    with archive, tempfile.TemporaryDirectory(prefix="glassbox-upload-") as temporary:
        entries = [info for info in archive.infolist() if not info.is_dir() and not info.filename.startswith("__MACOSX")]
        check_archive(entries, name)
        for info in entries:
            parts = info.filename.split("/")
            if len(parts) > 2 or parts[-1] in ("", ".", ".."):
                continue  # only the model's own files, at the top or in one folder
            (Path(temporary) / parts[-1]).write_bytes(archive.read(info))
        return load_finetuned(temporary)


def is_finetuned_zip(data: bytes) -> bool:
    """Whether an uploaded .zip holds a Hugging Face model folder rather than a Glassbox checkpoint."""
    try:
        names = {n.split("/")[-1] for n in zipfile.ZipFile(io.BytesIO(data)).namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "config.json" in names and "spec.json" not in names
