"""Presets trained briefly on their built-in data, for tests that need a model that has learned
something (the out-of-distribution note): a few epochs, a fixed seed, made once per test session.

Each comes back through a checkpoint, as a run's model does, so ``model.meta`` says what it was
trained on and how its inputs are prepared.
"""
from __future__ import annotations

import functools

import torch

from models import build_model, presets
from models.checkpoint import checkpoint_bytes, load_checkpoint
from training.data import fit_spec_to_dataset
from training.datasets import load_dataset
from training.hyperparameters import default_hyperparameters
from training.trainer import Trainer

EPOCHS = {"digits-cnn": 3, "sentiment-lstm": 2, "sentiment-transformer": 2}  # enough to learn, quick on 2 cores
DATA = {"digits-cnn": "digits", "sentiment-lstm": "sentiment", "sentiment-transformer": "sentiment"}


@functools.cache
def dataset_of(preset: str):
    return load_dataset(DATA[preset])


@functools.cache
def trained(preset: str):
    """``preset`` trained for EPOCHS[preset] epochs with seed 0 on its data, loaded from its checkpoint."""
    dataset = dataset_of(preset)
    spec = fit_spec_to_dataset(presets.get(preset), dataset)
    hp = default_hyperparameters(spec)
    hp.epochs, hp.seed = EPOCHS[preset], 0
    model = build_model(spec, seed=hp.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker does on a small machine; the result does not depend on it
    try:
        trainer = Trainer(model, dataset, hp, [], checkpoints=2)
        trainer.fit()
    finally:
        torch.set_num_threads(threads)
    meta = {**dataset.meta(), "step": trainer.total_steps, "epoch": hp.epochs}  # as a run's last checkpoint says
    return load_checkpoint((checkpoint_bytes(model, meta=meta), f"{preset}.zip"))
