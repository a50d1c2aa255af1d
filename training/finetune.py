"""Fine-tuning a pretrained text encoder on a text dataset, through the same jobs as every run.

    data = finetune_dataset(model.tokenizer, *sentiment_texts())      # read with the model's own tokenizer
    recipe = Recipe(base="all-MiniLM-L6-v2")                          # train all blocks, the head at its own lr
    plan = plan_for(model, data, hp, recipe)                          # memory, disk, time: said before training
    run_id = submit(model, data, hp, recipe, owner=person)            # refused in words if it would not fit

A fine-tune run is an ordinary run (``training.jobs``): its run.json holds the recipe under
``finetune``, its dataset is the token ids of the model's own tokenizer (saved in the run folder,
so a worker anywhere, a Ray actor too, reads exactly what was tokenized here), and the worker
asks ``training.finetune_run`` for the model and the Trainer's settings. Its
checkpoints are Hugging Face folders (``models.pretrained.finetuned``).

Dropout is switched off in the fine-tuned model (``models.pretrained.finetuned.start_model``),
so a stopped and resumed run lands on exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch

from training.data import Dataset, DatasetError
from training.finetune_run import FINETUNE_CHECKPOINTS, TRAIN_LABELS, Recipe  # noqa: F401 - TRAIN_LABELS: for the page
from training.hyperparameters import Hyperparameters, steps_per_epoch

MAX_TOKENS = 128  # longest sentence kept, in the tokenizer's pieces (the class's sentences are far shorter)
PROCESS_OVERHEAD_BYTES = 600 * 2**20  # python, torch and transformers in the worker, before any tensor


class FinetuneError(DatasetError):
    """A fine-tune that cannot start (it would not fit, a bad recipe); the message is for the user."""


def default_hyperparameters() -> Hyperparameters:
    """What reaches ≥ 90 % on ``sentiment`` in about two minutes on a 2-core CPU (bench/README.md)."""
    return Hyperparameters(optimizer="adamw", lr=5e-5, batch_size=32, epochs=1, weight_decay=0.01,
                           schedule="constant", grad_clip=1.0)


# ---- the data, read with the model's own tokenizer ------------------------------------------
def sentiment_texts(n: int | None = None, seed: int = 0) -> tuple:
    """(name, texts, labels, class names, description, notes) of the built-in ``sentiment`` sentences, the
    same ones (and the same split, by ``seed``) that ``training.datasets.load_dataset`` makes."""
    from training.datasets import builtin_options, describe, sentiment

    n = int(n or builtin_options("sentiment")["n"])
    texts, labels = sentiment.generate(n, seed)
    return "sentiment", texts, labels, list(sentiment.CLASS_NAMES), describe("sentiment"), []


def csv_texts(data: bytes, filename: str) -> tuple:
    """(name, texts, labels, class names, description, notes) of an uploaded .csv of text,label rows."""
    from training.datasets.uploads import read_text_csv

    texts, labels, names, notes = read_text_csv(data, filename)
    return filename, texts, labels, names, f"{len(texts)} sentences in {len(names)} classes from {filename}", notes


class TokenizerPreprocess:
    """A sentence -> (max_len,) token ids, by the model's own tokenizer (special tokens, padding)."""

    def __init__(self, tokenizer, max_len: int):
        self.tokenizer, self.max_len = tokenizer, int(max_len)

    def __call__(self, raw) -> torch.Tensor:
        if not isinstance(raw, str):
            raise DatasetError(f"expected a sentence (text), got {type(raw).__name__}")
        ids = self.tokenizer(raw, truncation=True, max_length=self.max_len, padding="max_length")["input_ids"]
        return torch.tensor(ids, dtype=torch.int64)


def finetune_dataset(tokenizer, name: str, texts: list[str], labels, class_names: list[str], description: str = "",
                     notes=(), seed: int = 0, model_max_len: int = 512) -> Dataset:
    """A Dataset of the model tokenizer's ids, padded to the longest training sentence, split as
    every text dataset is (``stratified_split``). Its tensors travel in the run folder (source None)."""
    from training.datasets.common import stratified_split

    labels = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(labels) or len(texts) < 2:
        raise DatasetError(f"'{name}' needs at least two sentences with a label each")
    train_idx, val_idx = stratified_split(labels, seed)
    limit = max(2, min(MAX_TOKENS, int(model_max_len)))
    lengths = [len(ids) for ids in tokenizer([texts[i] for i in train_idx], truncation=True, max_length=limit)["input_ids"]]
    max_len = max(lengths)
    encode = TokenizerPreprocess(tokenizer, max_len)

    def ids_of(index) -> torch.Tensor:
        batch = tokenizer([texts[i] for i in index], truncation=True, max_length=max_len, padding="max_length")
        return torch.tensor(batch["input_ids"], dtype=torch.int64).reshape(len(index), max_len)  # (N, T)

    y = torch.as_tensor(labels)
    return Dataset(name=name, input_kind="tokens", x_train=ids_of(train_idx), y_train=y[train_idx],
                   x_val=ids_of(val_idx), y_val=y[val_idx], class_names=[str(c) for c in class_names],
                   preprocess=encode, source=None, description=description, warnings=list(notes))


# ---- what it needs, said before it starts --------------------------------------------------
@dataclass
class Plan:
    parameters: int  # in the whole model
    trained: int  # that training changes
    memory_bytes: int  # the worker's peak, roughly
    available_bytes: int | None  # what the machine (or GPU) has free now; None: unknown
    checkpoint_bytes: int  # one checkpoint on disk
    checkpoints: int  # about how many the run keeps
    steps: int
    disk_free_bytes: int | None = None  # free on the run store's disk now; None: unknown

    @property
    def disk_bytes(self) -> int:
        """The checkpoints, and the optimizer state a resume needs (AdamW: two numbers per trained one)."""
        return self.checkpoint_bytes * self.checkpoints + 8 * self.trained

    @property
    def fits(self) -> bool:
        return self.refusal("it") is None

    def refusal(self, name: str) -> str | None:
        """Why fine-tuning ``name`` this way cannot start, in words; None when it fits."""
        mb = 2**20
        if self.available_bytes is not None and self.memory_bytes > self.available_bytes:
            return (f"fine-tuning {name} this way needs about {self.memory_bytes / mb:,.0f} MB of memory and only "
                    f"{self.available_bytes / mb:,.0f} MB is free; train the head only or fewer blocks, or use a "
                    "smaller batch size")
        if self.disk_free_bytes is not None and self.disk_bytes > self.disk_free_bytes:
            return (f"fine-tuning {name} keeps about {self.disk_bytes / mb:,.0f} MB of checkpoints and only "
                    f"{self.disk_free_bytes / mb:,.0f} MB of disk is free on the server; delete old runs first")
        return None

    def words(self) -> str:
        mb = 2**20
        free = f" of the {self.available_bytes / mb:,.0f} MB free now" if self.available_bytes is not None else ""
        return (f"Trains {self.trained:,} of {self.parameters:,} numbers over {self.steps:,} steps; needs about "
                f"{self.memory_bytes / mb:,.0f} MB of memory{free}, and about "
                f"{self.disk_bytes / mb:,.0f} MB of disk for {self.checkpoints} checkpoints of "
                f"{self.checkpoint_bytes / mb:,.0f} MB and the optimizer's state.")


def parameter_counts(model, num_classes: int, recipe: Recipe) -> tuple[int, int]:
    """(numbers in the fine-tuned model, numbers ``recipe`` trains): ``model`` with a new head for
    ``num_classes`` classes, counted on a copy built on the meta device (no memory, no weights)."""
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(model.hf.config)
    config.num_labels = int(num_classes)
    with torch.device("meta"):
        hf = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    base = hf.base_model
    inside = {id(p) for p in base.parameters()}
    pooler = {id(p) for p in base.pooler.parameters()} if getattr(base, "pooler", None) is not None else set()
    trained = {id(p) for p in hf.parameters() if id(p) not in inside or id(p) in pooler}
    if recipe.train == "all":
        trained = {id(p) for p in hf.parameters()}
    elif recipe.train == "top":
        layers = base.get_submodule(model.family.layers)
        for layer in list(layers)[max(0, len(layers) - int(recipe.top_blocks)):]:
            trained |= {id(p) for p in layer.parameters()}
    every = list(hf.parameters())
    return sum(p.numel() for p in every), sum(p.numel() for p in every if id(p) in trained)


def plan_for(model, dataset: Dataset, hp: Hyperparameters, recipe: Recipe) -> Plan:
    """The memory a fine-tune of ``model`` needs (weights; gradients and AdamW's two moments for
    what trains; the activations a step keeps for backward), the disk its checkpoints take."""
    tf = model.spec.transformer
    parameters, trained = parameter_counts(model, dataset.num_classes, recipe)
    batch, tokens = min(hp.batch_size, len(dataset.x_train)), dataset.input_shape[0]
    blocks_kept = tf.num_layers if recipe.train == "all" else int(recipe.top_blocks) if recipe.train == "top" else 0
    # Per block and token: q, k, v, outputs, two norms and the MLP's widened middle (×2 for the
    # activation), plus the attention scores and weights of every head; float32.
    per_block = batch * tokens * (8 * tf.d_model + 2 * tf.mlp_ratio * tf.d_model) + 2 * batch * tf.num_heads * tokens ** 2
    activations = 4 * (per_block * max(blocks_kept, 1) + batch * tokens * tf.d_model * 2)
    memory = PROCESS_OVERHEAD_BYTES + 4 * parameters + 12 * trained + 2 * activations
    steps = steps_per_epoch(len(dataset.x_train), hp.batch_size) * hp.epochs
    return Plan(parameters=parameters, trained=trained, memory_bytes=int(memory),
                available_bytes=available_memory(hp.device), checkpoint_bytes=4 * parameters + 2**20,
                checkpoints=min(steps + 1, FINETUNE_CHECKPOINTS), steps=steps, disk_free_bytes=free_disk())


def free_disk() -> int | None:
    """Free bytes on the disk that holds the run store."""
    import shutil

    from training.store import default_root

    folder = default_root()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def available_memory(device: str = "auto") -> int | None:
    """Free memory for training now: the GPU's when training would use one, else the machine's."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def finetune_spec(model, dataset: Dataset):
    """The run's spec: the model's own (descriptive), with the data's classes and sentence length."""
    spec = copy.deepcopy(model.spec)
    spec.num_classes, spec.class_names = dataset.num_classes, list(dataset.class_names)
    spec.input.max_len = dataset.input_shape[0]
    return spec


def submit(model, dataset: Dataset, hp: Hyperparameters, recipe: Recipe, owner=None) -> str:
    """Start the fine-tune as a run (``training.jobs.submit``); FinetuneError in words when the
    recipe is wrong or the run would not fit in memory or on the disk."""
    from training import jobs

    problems = recipe.problems(model.spec.transformer.num_layers)
    if problems:
        raise FinetuneError("; ".join(problems))
    refusal = plan_for(model, dataset, hp, recipe).refusal(model.spec.name)
    if refusal:
        raise FinetuneError(refusal)
    return jobs.submit(finetune_spec(model, dataset), dataset, hp, owner=owner, finetune=recipe.to_dict())
