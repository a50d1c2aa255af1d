"""Fine-tuning throughput: ``bench/train_throughput.py --pretrained all-MiniLM-L6-v2``.

Both sides fine-tune the same model (the pretrained encoder with a head drawn from seed 0, its
default recipe: everything trains, the head at its own learning rate), on the same data (the
Train page's default: 1,500 ``sentiment`` sentences read with the model's own tokenizer), with
the same settings (``training.finetune.default_hyperparameters``) for the same steps:

- bare: ``zero_grad / forward / backward / clip / step`` over the token-id tensors, in a fresh
  process, as the engine's worker is.
- engine: ``Jobs.submit(..., finetune=recipe)`` -> a worker -> ``Trainer``, with live metrics,
  its (87 MB) checkpoints and stop checks on, exactly as the app runs it.

Samples/s as ``train_throughput.py`` measures them (steps 2..N, validation excluded). Then the
time to 90 % validation accuracy with the defaults: each of the run's checkpoints is evaluated
on the validation sentences afterwards, and the time is that of the first checkpoint at or above
90 %, from Train being pressed (submit) — so it includes the worker's start and model load.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from training.finetune import Recipe, default_hyperparameters, finetune_dataset, finetune_spec, sentiment_texts
from training.finetune_run import start_run_model, trainer_options
from training.jobs import Jobs
from training.store import RunStore
from training.trainer import make_optimizer, pick_device, steps_per_epoch, worker_cpu_threads

SENTENCES = 1500  # the Train page's default (app_pages.train_finetune.SENTIMENT_N)
TARGET = 0.90


def data_and_setup(base: str, device: str):
    from models.pretrained import load_pretrained

    model = load_pretrained(base)
    dataset = finetune_dataset(model.tokenizer, *sentiment_texts(SENTENCES), model_max_len=model.spec.input.max_len)
    hp = default_hyperparameters()
    hp.device, hp.seed = device, 0
    return model, dataset, hp, Recipe(base=base)


def bare_child(base: str, device_name: str) -> None:
    """One bare loop (run by ``main`` in a fresh process); prints its samples/s."""
    torch.set_num_threads(worker_cpu_threads())
    _, dataset, hp, recipe = data_and_setup(base, device_name)
    device = pick_device(device_name)
    model = start_run_model(recipe.to_dict(), dataset.class_names, hp.seed, "bare").to(device).train()
    optimizer = make_optimizer(model, hp, trainer_options(model, recipe.to_dict(), hp)["param_groups"])
    x, y = dataset.x_train.to(device), dataset.y_train.to(device)
    bs, per_epoch = hp.batch_size, steps_per_epoch(len(x), hp.batch_size)
    steps = per_epoch * hp.epochs
    started = None
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(x), device=device)
        if step == 1:
            started = time.perf_counter()
        idx = order[(step % per_epoch) * bs:(step % per_epoch + 1) * bs]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    print((steps - 1) * bs / (time.perf_counter() - started))


def main(base: str, device: str, script: str) -> None:
    torch.set_num_threads(worker_cpu_threads())
    model, dataset, hp, recipe = data_and_setup(base, device)
    steps = steps_per_epoch(len(dataset.x_train), hp.batch_size) * hp.epochs
    print(f"{base}: {len(dataset.x_train):,} sentiment sentences to train on, {len(dataset.x_val):,} to check on, "
          f"{dataset.input_shape[0]} tokens; recipe {json.dumps(recipe.to_dict())}; {hp.optimizer} lr {hp.lr:g}, "
          f"batch {hp.batch_size}, {hp.epochs} epoch(s) = {steps} steps; torch threads {torch.get_num_threads()}")
    command = [sys.executable, script, "--pretrained", base, "--bare-pretrained", "--device", device]
    bare = float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory(prefix="glassbox-bench-") as home:
        jobs = Jobs(RunStore(home))
        submitted = time.time()
        run_id = jobs.submit(finetune_spec(model, dataset), dataset, hp, finetune=recipe.to_dict())
        final = jobs.wait(run_id, timeout_s=3600, poll_s=0.5)
        if final.status != "finished":
            raise SystemExit(f"the engine's run ended {final.status}: {final.message}")
        records = jobs.metrics(run_id)
        train = [r for r in records if r["type"] == "train"]
        first, last = train[0], train[-1]
        validation = sum(r["val_time_s"] for r in records if r["type"] == "val" and first["time"] <= r["time"] <= last["time"])
        engine = (last["step"] - first["step"]) * hp.batch_size / (last["time"] - first["time"] - validation)
        step_time = {r["step"]: r["time"] for r in train}
        reached = None
        for step in jobs.store.checkpoint_steps(run_id):
            accuracy = val_accuracy(jobs.store.load_model(run_id, step), dataset)
            print(f"  checkpoint step {step:>4}: val acc {accuracy:6.1%}" + (
                f", {step_time[step] - submitted:6.1f} s after submit" if step in step_time else ""), flush=True)
            if reached is None and accuracy >= TARGET and step in step_time:
                reached = step_time[step] - submitted
        whole = records[-1]["time"] - submitted
    print(f"bare {bare:,.1f} samples/s | engine {engine:,.1f} samples/s | ratio engine/bare: {engine / bare:.2f}")
    print(f"time to {TARGET:.0%} validation accuracy with the defaults: "
          + (f"{reached:.0f} s after submit" if reached is not None else "not reached")
          + f"; whole run incl. start and validation {whole:.0f} s; final val acc {final.last_val_acc:.1%}")


@torch.no_grad()
def val_accuracy(model, dataset) -> float:
    model.eval()
    predictions = torch.cat([model(dataset.x_val[i:i + 128]).argmax(1) for i in range(0, len(dataset.x_val), 128)])
    return float((predictions == dataset.y_val).float().mean())
