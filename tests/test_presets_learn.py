"""Every preset learns its data with its defaults (issue 19): small, fast checks here (a short
run beats chance by a margin, the same seed gives the same run); the full runs and their table
are bench/presets_learn.py's job."""
from __future__ import annotations

import re

import pytest
import torch

from models import build_model, presets
from training.data import fit_spec_to_dataset
from training.datasets import load_dataset
from training.hyperparameters import PRESET_RECIPES, Hyperparameters, default_hyperparameters, suggested_for
from training.trainer import Callback, Trainer


class ValAccuracy(Callback):
    def __init__(self):
        self.val = []

    def on_metrics(self, record):
        if record["type"] == "val":
            self.val.append(record["val_acc"])


def short_run(preset: str, data: str, epochs: int, seed: int = 0, **options):
    """The preset on (a smaller copy of) its data with its defaults, for ``epochs`` epochs only."""
    dataset = load_dataset(data, **options)
    spec = fit_spec_to_dataset(presets.get(preset), dataset)
    hp = default_hyperparameters(spec)
    hp.epochs, hp.seed = epochs, seed
    model = build_model(spec, seed=hp.seed)
    seen = ValAccuracy()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker on a 2-core machine: small models run faster than on 2 contended threads
    try:
        Trainer(model, dataset, hp, [seen], checkpoints=2).fit()
    finally:
        torch.set_num_threads(threads)
    return model, seen.val


def test_each_preset_with_a_recipe_gets_it_and_any_other_model_its_familys():
    for name in presets.names():
        spec = presets.get(name)
        hp = default_hyperparameters(spec)
        assert hp.validate() == []
        if name in PRESET_RECIPES:
            assert hp == Hyperparameters(**PRESET_RECIPES[name]) and suggested_for(spec) == name
    assert set(PRESET_RECIPES) <= set(presets.names())
    renamed = presets.get("shapes-vit")
    renamed.name = "my-vit"
    assert default_hyperparameters(renamed) == Hyperparameters(
        optimizer="adamw", lr=2e-3, batch_size=32, epochs=10, weight_decay=0.01, schedule="cosine", grad_clip=1.0)
    assert suggested_for(renamed) == "a Vision Transformer" and suggested_for(presets.get("sentiment-lstm")) == "an LSTM"


@pytest.mark.parametrize("name", presets.names())
def test_each_description_says_what_the_defaults_reach(name):
    assert re.search(r"reaches \d+(\.\d)? % on ", presets.describe(name)), presets.describe(name)


# Each short run: (preset, data, epochs, data options, chance, accuracy it must beat). The
# margins stay well below what the runs reach here, so another CPU's rounding cannot flip them.
SHORT_RUNS = [
    ("digits-cnn", "digits", 3, {}, 0.10, 0.75),
    ("shapes-vit", "shapes", 2, {}, 0.25, 0.45),  # the stem needs ~150 updates before shapes emerge
    ("sentiment-rnn", "sentiment", 5, {}, 0.50, 0.70),
    ("sentiment-transformer", "sentiment", 4, {}, 0.50, 0.60),
]


@pytest.mark.parametrize("preset, data, epochs, options, chance, beats", SHORT_RUNS, ids=[c[0] for c in SHORT_RUNS])
def test_a_short_run_with_the_defaults_beats_chance_by_a_margin(preset, data, epochs, options, chance, beats):
    _, val = short_run(preset, data, epochs, **options)
    assert len(val) == epochs
    assert beats >= chance + 0.1 and max(val) > beats, val


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    first, first_val = short_run("shapes-vit", "shapes", 1, n=400)
    again, again_val = short_run("shapes-vit", "shapes", 1, n=400)
    other, _ = short_run("shapes-vit", "shapes", 1, seed=1, n=400)
    assert first_val == again_val
    for (name, a), b, c in zip(first.state_dict().items(), again.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values())
               if a.is_floating_point())
