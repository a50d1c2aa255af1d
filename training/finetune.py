"""Fine-tuning a pretrained text encoder on a text dataset, through the same jobs as every run.

    data = finetune_dataset(model.tokenizer, *sentiment_texts())      # read with the model's own tokenizer
    recipe = Recipe(base="all-MiniLM-L6-v2")                          # train all blocks, the head at its own lr
    plan = plan_for(model, data, hp, recipe)                          # memory, disk, time: said before training
    run_id = submit(model, data, hp, recipe, owner=person)            # refused in words if it would not fit

A fine-tune run is an ordinary run (``training.jobs``): its run.json holds the recipe under
``finetune``, its dataset is the token ids of the model's own tokenizer (saved in the run folder,
so a worker anywhere, a Ray actor too, reads exactly what was tokenized here), and the worker
asks ``start_run_model`` and ``trainer_options`` for the model and the Trainer's settings. Its
checkpoints are Hugging Face folders (``models.pretrained.finetuned``).

Dropout is switched off in the fine-tuned model (``models.pretrained.finetuned.start_model``),
so a stopped and resumed run lands on exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from training.data import Dataset, DatasetError
from training.hyperparameters import Hyperparameters, steps_per_epoch

FINETUNE_CHECKPOINTS = 6  # a checkpoint is the whole model (MiniLM: 87 MB); 6 keep the replay and the disk sane
SAFETY_CHECKPOINT_S = 300.0  # a killed worker loses at most this; more often would cost 87 MB each time
MAX_TOKENS = 128  # longest sentence kept, in the tokenizer's pieces (the class's sentences are far shorter)
PROCESS_OVERHEAD_BYTES = 600 * 2**20  # python, torch and transformers in the worker, before any tensor
TRAIN_LABELS = {"head": "the head only (fast; the encoder stays as it was)",
                "top": "the head and the top blocks", "all": "everything (all blocks and the head)"}


class FinetuneError(DatasetError):
    """A fine-tune that cannot start (it would not fit, a bad recipe); the message is for the user."""


@dataclass
class Recipe:
    base: str  # the pretrained model: the built-in name or a local folder
    train: str = "all"  # head | top | all: what training changes (models.pretrained.finetuned.freeze)
    top_blocks: int = 2  # with train="top": how many of the last blocks train with the head
    head_lr: float = 1e-3  # the new head's learning rate (the encoder's is the run's lr)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def problems(self, blocks: int) -> list[str]:
        said = []
        if self.train not in TRAIN_LABELS:
            said.append(f"choose what to train: {', '.join(TRAIN_LABELS)}, not {self.train!r}")
        if self.train == "top" and not 1 <= int(self.top_blocks) <= blocks:
            said.append(f"the number of top blocks to train must be from 1 to {blocks}, not {self.top_blocks}")
        if not (isinstance(self.head_lr, (int, float)) and 0 < self.head_lr < 1):
            said.append(f"the head's learning rate must be above 0 and below 1, not {self.head_lr}")
        return said


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

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.memory_bytes <= self.available_bytes

    def words(self) -> str:
        mb = 2**20
        free = f" of the {self.available_bytes / mb:,.0f} MB free now" if self.available_bytes is not None else ""
        return (f"Trains {self.trained:,} of {self.parameters:,} numbers over {self.steps:,} steps; needs about "
                f"{self.memory_bytes / mb:,.0f} MB of memory{free}, and about "
                f"{self.checkpoint_bytes * self.checkpoints / mb:,.0f} MB of disk for {self.checkpoints} checkpoints "
                f"of {self.checkpoint_bytes / mb:,.0f} MB.")


def trained_count(model, recipe: Recipe) -> int:
    """How many numbers ``recipe`` trains in ``model``, counted without changing the model."""
    from models.pretrained.finetuned import block_parameters, head_parameters

    if recipe.train == "all":
        return sum(p.numel() for p in model.hf.parameters())
    count = sum(p.numel() for p in head_parameters(model).values())
    if recipe.train == "top":
        blocks = model.spec.transformer.num_layers
        for block in range(max(0, blocks - int(recipe.top_blocks)), blocks):
            count += sum(p.numel() for p in block_parameters(model, block).values())
    return count


def plan_for(model, dataset: Dataset, hp: Hyperparameters, recipe: Recipe) -> Plan:
    """The memory a fine-tune of ``model`` needs (weights; gradients and AdamW's two moments for
    what trains; the activations a step keeps for backward), the disk its checkpoints take."""
    tf = model.spec.transformer
    parameters = sum(p.numel() for p in model.hf.parameters())
    trained = trained_count(model, recipe)
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
                checkpoints=min(steps + 1, FINETUNE_CHECKPOINTS), steps=steps)


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
    recipe is wrong or the run would not fit in memory."""
    from training import jobs

    problems = recipe.problems(model.spec.transformer.num_layers)
    if problems:
        raise FinetuneError("; ".join(problems))
    plan = plan_for(model, dataset, hp, recipe)
    if not plan.fits:
        raise FinetuneError(f"fine-tuning {model.spec.name} this way needs about {plan.memory_bytes / 2**20:,.0f} MB "
                            f"of memory and only {plan.available_bytes / 2**20:,.0f} MB is free; train the head "
                            "only or fewer blocks, or use a smaller batch size")
    return jobs.submit(finetune_spec(model, dataset), dataset, hp, owner=owner, finetune=recipe.to_dict())


# ---- the worker's side ------------------------------------------------------------------------
def start_run_model(finetune: dict, class_names: list[str], seed: int, name: str):
    """A new run's model: the base encoder with a fresh head drawn from ``seed``."""
    from models.pretrained.finetuned import start_model

    return start_model(Recipe.from_dict(finetune).base, class_names, seed, name=name)


def trainer_options(model, finetune: dict, hp: Hyperparameters) -> dict:
    """Freeze what does not train, and the Trainer's settings: the head's own learning rate, fewer checkpoints."""
    from models.pretrained.finetuned import freeze, parameter_groups

    recipe = Recipe.from_dict(finetune)
    freeze(model, recipe.train, recipe.top_blocks)
    return {"param_groups": parameter_groups(model, hp.lr, recipe.head_lr), "checkpoints": FINETUNE_CHECKPOINTS,
            "safety_checkpoint_s": SAFETY_CHECKPOINT_S}
