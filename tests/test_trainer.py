"""The Trainer on small synthetic tasks with a known rule, so the tests never depend on the
built-in datasets: it learns (CNN, LSTM, transformer), its checkpoints form a log-spaced
timeline that ends at the final weights, the cosine schedule follows its formula, a NaN loss
ends the run as ``diverged``, and a stopped run resumed from its checkpoint ends exactly where
an uninterrupted one does.

The dataset and spec helpers here are shared by the store, jobs and CLI tests.
"""
from __future__ import annotations

import math

import pytest
import torch

from models import InputSpec, Layer, ModelSpec, RNNConfig, TransformerConfig, build_model, presets
from models.checkpoint import load_checkpoint
from training.data import Dataset
from training.store import RunStore
from training.trainer import (Callback, Hyperparameters, HyperparameterError, Trainer, checkpoint_schedule,
                              default_hyperparameters, learning_rate, pick_device)
from training.worker import RunFile, RunRecorder


# ---- shared fixtures: tasks with a rule a small model learns in a few epochs -----------------
def quadrant_images(n_train=512, n_val=256, side=8, seed=0) -> Dataset:
    """Noise images (1×side×side); the class is the quadrant that was made brighter."""
    def make(n, generator):
        x = torch.rand(n, 1, side, side, generator=generator)
        y = torch.randint(0, 4, (n,), generator=generator)
        half = side // 2
        for quadrant in range(4):
            row, col = divmod(quadrant, 2)
            x[y == quadrant, :, row * half:(row + 1) * half, col * half:(col + 1) * half] += 0.6
        return (x - 0.5) / 0.3, y

    gen = torch.Generator().manual_seed(seed)
    (x_train, y_train), (x_val, y_val) = make(n_train, gen), make(n_val, gen)
    return Dataset(name="quadrants", input_kind="image", x_train=x_train, y_train=y_train, x_val=x_val,
                   y_val=y_val, class_names=["top-left", "top-right", "bottom-left", "bottom-right"],
                   preprocess=lambda raw: raw, normalization={"mean": [0.5], "std": [0.3]})


def keyword_sentences(n_train=512, n_val=256, length=12, vocab=20, seed=0) -> Dataset:
    """Right-padded token ids; positive exactly when the 'good' token (id 2) occurs."""
    def make(n, generator):
        x = torch.randint(3, vocab, (n, length), generator=generator)
        y = torch.randint(0, 2, (n,), generator=generator)
        lengths = torch.randint(4, length + 1, (n,), generator=generator)
        where = (torch.rand(n, generator=generator) * lengths).long()  # a position inside the sentence
        x[y == 1, where[y == 1]] = 2
        x[torch.arange(length) >= lengths.unsqueeze(1)] = 0  # (N, T) padding after the sentence
        return x, y

    gen = torch.Generator().manual_seed(seed)
    (x_train, y_train), (x_val, y_val) = make(n_train, gen), make(n_val, gen)
    words = ["<pad>", "<unk>", "good"] + [f"w{i}" for i in range(3, vocab)]
    return Dataset(name="keyword", input_kind="tokens", x_train=x_train, y_train=y_train, x_val=x_val,
                   y_val=y_val, class_names=["negative", "positive"], preprocess=lambda raw: raw, vocab=words)


def tiny_cnn(dataset: Dataset) -> ModelSpec:
    c, h, w = dataset.input_shape
    return ModelSpec(name="tiny-cnn", kind="cnn", num_classes=dataset.num_classes, class_names=dataset.class_names,
                     input=InputSpec(kind="image", channels=c, height=h, width=w),
                     layers=[Layer("conv", channels=8, kernel=3, padding=1), Layer("act", activation="relu"),
                             Layer("pool", kernel=2, stride=2), Layer("fc", channels=32), Layer("act")])


def tiny_rnn(dataset: Dataset, cell="lstm") -> ModelSpec:
    return ModelSpec(name=f"tiny-{cell}", kind="rnn", num_classes=dataset.num_classes,
                     class_names=dataset.class_names,
                     input=InputSpec(kind="tokens", vocab_size=len(dataset.vocab), max_len=dataset.input_shape[0]),
                     rnn=RNNConfig(cell=cell, embed_dim=16, hidden_size=32))


def tiny_transformer(dataset: Dataset) -> ModelSpec:
    return ModelSpec(name="tiny-transformer", kind="transformer", num_classes=dataset.num_classes,
                     class_names=dataset.class_names,
                     input=InputSpec(kind="tokens", vocab_size=len(dataset.vocab), max_len=dataset.input_shape[0]),
                     transformer=TransformerConfig(d_model=32, num_heads=2, num_layers=1, dropout=0.0))


class Collect(Callback):
    """Keeps every record and a copy of the weights at every checkpoint; can stop after a step."""

    def __init__(self, stop_after_step: int | None = None):
        self.records, self.checkpoints, self.stop_after_step = [], {}, stop_after_step
        self.optimizer_states = {}

    def on_metrics(self, record):
        self.records.append(record)

    def on_checkpoint(self, step, epoch, model, optimizer_state):
        self.checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.optimizer_states[step] = optimizer_state

    def should_stop(self):
        trained = [r["step"] for r in self.records if r["type"] == "train"]
        return self.stop_after_step is not None and bool(trained) and trained[-1] >= self.stop_after_step

    def of(self, kind):
        return [r for r in self.records if r["type"] == kind]


def train(spec, dataset, hp, callback=None, **kwargs):
    callback = callback or Collect()
    trainer = Trainer(build_model(spec, seed=hp.seed), dataset, hp, [callback], **kwargs)
    return trainer, trainer.fit(), callback


# ---- hyperparameters -----------------------------------------------------------------------
def test_hyperparameters_round_trip_through_json_and_explain_bad_values():
    hp = Hyperparameters(optimizer="sgd", lr=0.05, batch_size=32, epochs=3, schedule="cosine", seed=7)
    assert Hyperparameters.from_dict(hp.to_dict()) == hp
    assert hp.validate() == []
    bad = Hyperparameters(optimizer="rmsprop", lr=0.0, batch_size=0, epochs=1001, schedule="step", device="tpu")
    problems = " | ".join(bad.validate())
    for words in ("unknown optimizer 'rmsprop'", "learning rate must be a number above 0", "batch size",
                  "epochs must be a whole number from 1 to 1000", "unknown schedule", "unknown device 'tpu'"):
        assert words in problems
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        Hyperparameters.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_has_valid_defaults(name):
    hp = default_hyperparameters(presets.get(name))
    assert hp.validate() == []


def test_auto_device_on_this_machine_follows_cuda_then_mps_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


# ---- learning ------------------------------------------------------------------------------
def test_cnn_learns_the_quadrant_rule():
    data = quadrant_images()
    _, result, seen = train(tiny_cnn(data), data, Hyperparameters(epochs=4, batch_size=32, lr=3e-3))
    assert result.status == "finished" and result.step == result.total_steps == 4 * (512 // 32)
    val = seen.of("val")
    assert [r["epoch"] for r in val] == [1, 2, 3, 4]  # validation after every epoch
    assert val[-1]["val_acc"] > 0.8  # chance is 0.25
    train_records = seen.of("train")
    assert train_records[0]["step"] == 1 and train_records[-1]["step"] == result.total_steps
    assert all(r["samples_per_s"] > 0 and r["lr"] == 3e-3 and 0 <= r["acc"] <= 1 for r in train_records)


@pytest.mark.parametrize("make_spec", [tiny_rnn, tiny_transformer], ids=["lstm", "transformer"])
def test_sequence_models_learn_the_keyword_rule(make_spec):
    data = keyword_sentences()
    spec = make_spec(data)
    hp = default_hyperparameters(spec)
    hp.epochs, hp.batch_size = 6, 32
    _, result, seen = train(spec, data, hp)
    assert result.status == "finished"
    assert seen.of("val")[-1]["val_acc"] > 0.85  # chance is 0.5
    assert result.best_val_acc == max(r["val_acc"] for r in seen.of("val"))


# ---- checkpoints ---------------------------------------------------------------------------
def test_checkpoint_schedule_is_log_spaced_from_zero_to_the_last_step():
    steps = checkpoint_schedule(10_000)
    assert steps[0] == 0 and steps[-1] == 10_000 and len(steps) >= 12
    assert steps == sorted(set(steps))
    assert steps[1:5] == [1, 2, 3, 4] or steps[1] == 1  # dense at the start, where the model changes most
    ratios = [b / a for a, b in zip(steps[3:], steps[4:])]
    assert max(ratios) / min(ratios) < 1.6  # roughly a constant factor apart: log-spaced
    assert checkpoint_schedule(5) == [0, 1, 2, 3, 4, 5]  # short runs: every step
    assert len(checkpoint_schedule(40)) >= 12


def test_checkpoints_in_the_run_folder_are_loadable_and_the_last_is_the_final_model(tmp_path):
    data = quadrant_images(n_train=256, n_val=64)
    spec = tiny_cnn(data)
    store = RunStore(tmp_path)
    run_id = store.create(spec.name, {"status": "running", "times": {}, "progress": {}})
    hp = Hyperparameters(epochs=3, batch_size=16)
    recorder = RunRecorder(RunFile(store, run_id), store, data.meta())
    trainer = Trainer(build_model(spec, seed=0), data, hp, [recorder])
    untrained = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.fit()
    recorder.close()  # checkpoints are written in the background; this waits for them

    steps = store.checkpoint_steps(run_id)
    assert steps == checkpoint_schedule(result.total_steps) and len(steps) >= 12
    assert steps[0] == 0 and steps[-1] == result.total_steps == 48
    for step in steps:
        model = load_checkpoint(store.checkpoint_path(run_id, step))
        assert model.meta.step == step and model.meta.class_names == data.class_names
    first, last = store.load_model(run_id, 0), store.load_model(run_id)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(last.state_dict()[name], tensor.cpu())
        assert torch.equal(first.state_dict()[name], untrained[name])  # step 0 is before any update
    assert store.load_optimizer_state(run_id)[0] == result.total_steps


# ---- schedule ------------------------------------------------------------------------------
def test_cosine_learning_rate_follows_the_formula():
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(optimizer="sgd", lr=0.1, batch_size=16, epochs=3, schedule="cosine")
    _, result, seen = train(tiny_cnn(data), data, hp, log_every_s=0.0)  # a record after every step
    total = result.total_steps
    records = seen.of("train")
    assert [r["step"] for r in records] == list(range(1, total + 1))
    for record in records:
        used_for_update = record["step"] - 1  # the record after step s shows the lr of update s-1 -> s
        expected = 0.1 * 0.5 * (1 + math.cos(math.pi * used_for_update / total))
        assert record["lr"] == pytest.approx(expected, rel=1e-9)
        assert learning_rate(hp, used_for_update, total) == pytest.approx(expected, rel=1e-12)
    assert records[0]["lr"] == pytest.approx(0.1) and records[-1]["lr"] < 0.001


# ---- divergence ----------------------------------------------------------------------------
def test_nan_loss_stops_the_run_at_once_with_advice():
    data = quadrant_images(n_train=256, n_val=64)
    model = build_model(tiny_cnn(data), seed=0)
    calls = {"n": 0}

    def poison(module, inputs, output):  # the 5th forward pass produces NaN logits
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 5 else output

    model.register_forward_hook(poison)
    seen = Collect()
    hp = Hyperparameters(lr=0.01, batch_size=16, epochs=5)
    trainer = Trainer(model, data, hp, [seen])
    result = trainer.fit()
    assert result.status == "diverged" and result.step == 4
    assert "NaN/infinite at step 5" in result.message and "lower learning rate" in result.message
    assert "0.001" in result.message  # a concrete suggestion: a tenth of the lr
    assert seen.of("diverged")[0]["message"] == result.message
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad update never happened
    assert max(seen.checkpoints) <= 4


def test_a_huge_learning_rate_diverges():
    data = quadrant_images(n_train=256, n_val=64)
    hp = Hyperparameters(optimizer="sgd", lr=1e6, momentum=0.0, batch_size=16, epochs=5)
    _, result, _ = train(tiny_cnn(data), data, hp)
    assert result.status == "diverged" and result.step < result.total_steps
    assert "try a lower learning rate" in result.message


# ---- stop and resume -----------------------------------------------------------------------
def test_a_stopped_run_resumed_from_its_checkpoint_ends_where_an_uninterrupted_one_does():
    data = quadrant_images(n_train=256, n_val=64)
    spec = tiny_cnn(data)
    hp = Hyperparameters(optimizer="adam", lr=3e-3, batch_size=16, epochs=3, schedule="cosine")
    whole, whole_result, _ = train(spec, data, hp)

    stopping = Collect(stop_after_step=20)
    first, result, _ = train(spec, data, hp, stopping, log_every_s=0.0)
    import training.trainer as trainer_module
    assert result.status == "stopped" and 20 <= result.step < result.total_steps
    assert trainer_module.STOP_CHECK_EVERY_S <= 0.2
    stopped_at = result.step
    assert stopped_at in stopping.checkpoints  # a checkpoint where it stopped, to resume from

    model = build_model(spec, seed=123)  # other weights: the checkpoint must overwrite them all
    model.load_state_dict(stopping.checkpoints[stopped_at])
    resumed = Trainer(model, data, hp, [Collect()])
    end = resumed.fit(start_step=stopped_at, optimizer_state=stopping.optimizer_states[stopped_at])
    assert end.status == "finished" and end.step == whole_result.total_steps
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_learning_rates_in_advice_read_as_plain_numbers():
    from training.trainer import plain_number
    assert [plain_number(x) for x in (1e6, 0.001, 3e-3, 2.5, 1e-4 / 3)] == ["1,000,000", "0.001", "0.003", "2.5", "0.0000333"]


def test_a_worker_leaves_one_core_for_the_web_server(monkeypatch):
    from training import devices
    monkeypatch.delenv("GLASSBOX_WORKER_THREADS", raising=False)
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 2)
    assert devices.worker_cpu_threads() == 1
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 16)
    assert devices.worker_cpu_threads() == 15
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 1)
    assert devices.worker_cpu_threads() == 1
    monkeypatch.setenv("GLASSBOX_WORKER_THREADS", "3")
    assert devices.worker_cpu_threads() == 3
