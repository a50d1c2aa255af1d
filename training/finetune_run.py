"""What a fine-tune run is (its ``Recipe``, kept in run.json) and how a worker starts one.

The worker (``training.worker``, also inside a Ray actor) imports only this, never
``training.finetune``, which submits runs through ``training.jobs``: that keeps the import
graph free of circles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from training.hyperparameters import Hyperparameters

FINETUNE_CHECKPOINTS = 6  # a checkpoint is the whole model (MiniLM: 87 MB); 6 keep the replay and the disk sane
SAFETY_CHECKPOINT_S = 300.0  # a killed worker loses at most this; more often would cost 87 MB each time
TRAIN_LABELS = {"head": "the head only (fast; the encoder stays as it was)",
                "top": "the head and the top blocks", "all": "everything (all blocks and the head)"}


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
