"""Training throughput: a full Glassbox job against a bare PyTorch loop, same model and data.

    python bench/train_throughput.py [--steps 1200] [--batch-size 64] [--repeats 5] [--device auto]
    python bench/train_throughput.py --backend ray [--ray-address HOST:PORT]   # the engine through Ray
    python bench/train_throughput.py --pretrained all-MiniLM-L6-v2              # fine-tuning (bench/finetune_throughput.py)

For each model (digits-cnn on digits, sentiment-lstm on sentiment) both sides run the same
model (same seed), data, batch size, optimizer, number of steps and device:

- bare: ``zero_grad / forward / backward / step`` over device tensors, a batch being a slice of
  a per-epoch random permutation (what any shuffling loop does), AMP on CUDA as the engine;
  run in a fresh process, as the engine's worker is.
- engine: ``training.jobs.submit`` -> a worker process -> ``Trainer``, with live metrics
  (metrics.jsonl and run.json updated every 0.25 s), checkpoints (~16, log-spaced) and stop
  checks all on, exactly as the app runs it.

The engine's samples/s is measured from its own records: the training samples between its
first record (after step 1) and its last (the final step), over the wall time between them
minus the validation passes in between (each epoch still validates; that time is reported
separately in "job incl. val"). The bare loop is timed over the same steps 2..N. Process start,
imports and data loading are not throughput: they appear as "submit -> first metric".
Each side is run ``--repeats`` times, alternating, and the best is kept, since noise only ever
slows a run ("ratio" = best engine / best bare; "paired" = the median of the ratios of runs made
back to back, for comparison). The last line is ``ratio engine/bare: X.XX``, the lowest "ratio"
across the models.

``--backend ray``: the engine's runs go through ``training.backends.ray`` to the Ray cluster at
``--ray-address`` (default $RAY_ADDRESS), each a Ray actor with as many CPUs (GLASSBOX_RAY_CPUS)
as the bare loop's threads; the bare loop still runs on this machine, so run the benchmark on a
machine of the cluster that the actors land on (e.g. a one-machine cluster) to compare like with
like. "submit -> first metric" then includes Ray placing the actor and its process starting.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models import build_model, presets  # noqa: E402
from training.data import Dataset, fit_spec_to_dataset  # noqa: E402
from training.jobs import Jobs  # noqa: E402
from training.store import RunStore  # noqa: E402
from training.trainer import (amp_dtype, worker_cpu_threads, default_hyperparameters, make_optimizer, pick_device,  # noqa: E402
                              steps_per_epoch)

CASES = [("digits-cnn", "digits"), ("sentiment-lstm", "sentiment")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1200, help="at least this many steps (whole epochs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="where the engine's runs train")
    parser.add_argument("--ray-address", help="the Ray cluster for --backend ray (default: $RAY_ADDRESS)")
    parser.add_argument("--bare-child", nargs=2, metavar=("PRESET", "DATA"), help=argparse.SUPPRESS)
    parser.add_argument("--pretrained", metavar="MODEL", help="fine-tune this pretrained encoder on sentiment instead "
                                                              "(bench/finetune_throughput.py)")
    parser.add_argument("--bare-pretrained", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pretrained:
        import finetune_throughput

        if args.bare_pretrained:
            finetune_throughput.bare_child(args.pretrained, args.device)
        else:
            finetune_throughput.main(args.pretrained, args.device, __file__)
        return
    # Both sides use the threads a training worker uses (every core but one), so the ratio
    # compares like with like.
    torch.set_num_threads(worker_cpu_threads())
    if args.bare_child:  # one bare loop, in a fresh process like the engine's worker
        preset, data_name = args.bare_child
        dataset, _ = load_data(data_name)
        spec, hp, steps = setup(preset, dataset, args)
        print(bare_loop(spec, dataset, hp, steps, pick_device(args.device)))
        return
    device = pick_device(args.device)
    print(f"device: {describe_device(device)} | torch {torch.__version__} | batch {args.batch_size} | "
          f"best of {args.repeats} | backend {args.backend}")
    header = (f"{'model':<16}{'data':<11}{'steps':>6}{'bare/s':>9}{'engine/s':>10}{'ratio':>7}{'paired':>8}"
              f"{'job incl. val/s':>17}{'submit->1st metric':>20}")
    print(header)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="glassbox-bench-") as home:
        jobs = Jobs(RunStore(home), backend=make_backend(args))
        for preset, data_name in CASES:
            dataset, real = load_data(data_name)
            spec, hp, steps = setup(preset, dataset, args)
            bare, engine, whole, latency = [], [], [], []
            for _ in range(args.repeats):  # alternating, so that both sides meet the same noise
                bare.append(bare_in_fresh_process(preset, data_name, args))
                result = engine_job(jobs, spec, dataset, hp)
                engine.append(result["samples_per_s"])
                whole.append(result["job_samples_per_s"])
                latency.append(result["first_metric_s"])
            ratio = max(engine) / max(bare)
            paired = statistics.median(e / b for e, b in zip(engine, bare))  # each pair ran back to back
            ratios.append(ratio)
            label = data_name if real else f"{data_name}*"
            print(f"{preset:<16}{label:<11}{steps:>6}{max(bare):>9,.0f}{max(engine):>10,.0f}{ratio:>7.2f}"
                  f"{paired:>8.2f}{max(whole):>17,.0f}{min(latency):>18.2f} s", flush=True)
    if any(not load_data(name)[1] for _, name in CASES):
        print("* synthetic data of the same shape (training.datasets not available)")
    print(f"ratio engine/bare: {min(ratios):.2f}")


def make_backend(args):
    if args.backend == "local":
        from training.backends.local import LocalProcessBackend

        return LocalProcessBackend()
    from training.backends.ray import RayBackend

    os.environ.setdefault("GLASSBOX_RAY_CPUS", str(worker_cpu_threads()))  # the bare loop's threads
    return RayBackend(args.ray_address)


def setup(preset: str, dataset: Dataset, args) -> tuple:
    """The spec, hyperparameters (the model's defaults, at the bench's batch size) and steps."""
    spec = fit_spec_to_dataset(presets.get(preset), dataset)
    hp = default_hyperparameters(spec)
    hp.batch_size, hp.device, hp.seed = args.batch_size, args.device, 0
    per_epoch = steps_per_epoch(len(dataset.x_train), hp.batch_size)
    hp.epochs = math.ceil(args.steps / per_epoch)  # the engine runs whole epochs
    return spec, hp, per_epoch * hp.epochs


def bare_in_fresh_process(preset: str, data_name: str, args) -> float:
    """The bare loop in a new interpreter, as the engine's worker is: neither side inherits the
    other's threads, allocations or imports."""
    command = [sys.executable, __file__, "--bare-child", preset, data_name, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--device", args.device]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


def load_data(name: str) -> tuple[Dataset, bool]:
    """The built-in dataset, or random data of its shape if the datasets module is missing."""
    try:
        from training.datasets import load_dataset
    except ImportError:
        return synthetic(name), False
    return load_dataset(name), True


def synthetic(name: str) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    if name == "digits":
        x = torch.randn(1797, 1, 16, 16, generator=gen)
        y = torch.randint(0, 10, (1797,), generator=gen)
        classes, vocab, kind = [str(d) for d in range(10)], None, "image"
    else:
        x = torch.randint(2, 200, (4000, 16), generator=gen)
        y = torch.randint(0, 2, (4000,), generator=gen)
        classes, vocab, kind = ["negative", "positive"], ["<pad>", "<unk>"] + [f"w{i}" for i in range(198)], "tokens"
    split = int(len(x) * 0.8)
    return Dataset(name=name, input_kind=kind, x_train=x[:split], y_train=y[:split], x_val=x[split:],
                   y_val=y[split:], class_names=classes, preprocess=lambda raw: raw, vocab=vocab)


def bare_loop(spec, dataset: Dataset, hp, steps: int, device: torch.device) -> float:
    """Samples per second of the plainest loop over the same steps (step 1 excluded, as warm-up)."""
    model = build_model(spec, seed=hp.seed).to(device).train()
    optimizer = make_optimizer(model, hp)
    dtype = amp_dtype(model, device, hp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    x, y = dataset.x_train.to(device), dataset.y_train.to(device)
    bs = hp.batch_size
    per_epoch = steps_per_epoch(len(x), bs)
    started = None
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(x), device=device)
        if step == 1:
            _sync(device)
            started = time.perf_counter()
        idx = order[(step % per_epoch) * bs:(step % per_epoch + 1) * bs]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if hp.grad_clip > 0:  # the same update as the engine's (the LSTM's defaults clip)
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        scaler.step(optimizer)
        scaler.update()
    _sync(device)
    return (steps - 1) * bs / (time.perf_counter() - started)


def engine_job(jobs: Jobs, spec, dataset: Dataset, hp) -> dict:
    submitted = time.time()
    run_id = jobs.submit(spec, dataset, hp)
    final = jobs.wait(run_id, timeout_s=1800, poll_s=0.5)  # polling lightly: the two cores are busy
    if final.status != "finished":
        raise SystemExit(f"the engine's run ended {final.status}: {final.message}")
    records = jobs.metrics(run_id)
    train = [r for r in records if r["type"] == "train"]
    first, last = train[0], train[-1]
    validation_between = sum(r["val_time_s"] for r in records
                             if r["type"] == "val" and first["time"] <= r["time"] <= last["time"])
    samples = (last["step"] - first["step"]) * hp.batch_size
    all_validation = sum(r["val_time_s"] for r in records if r["type"] == "val")
    whole_time = records[-1]["time"] - first["time"] + 0.0  # steps 2..N plus every validation
    return {
        "samples_per_s": samples / (last["time"] - first["time"] - validation_between),
        "job_samples_per_s": samples / max(whole_time, all_validation, 1e-9),
        "first_metric_s": first["time"] - submitted,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
