"""Train -> first metric: a fresh worker process against a warm one, in the same run.

    python bench/warm_start.py [--repeats 5] [--model digits-cnn] [--dataset digits]
    python bench/warm_start.py --backend ray [--ray-address HOST:PORT]   # through a Ray cluster

What the Train button does, without the page: ``training.jobs.submit`` of a preset on a built-in
dataset (what a student trains), then the time until the run's first metrics record (step 1's
loss) is in metrics.jsonl, read by polling the file every 5 ms as a page would.

- cold: the old path, a fresh ``python -m training.worker`` that imports torch first;
- warm: the local backend's spare worker (``LocalProcessBackend.warm_up``), which has imported
  torch, made the built-in datasets and waits; before each warm submit the bench waits until the
  spare says it is ready, as it is on a server where no run was started in the last seconds.

With ``--backend ray`` (a cluster at ``--ray-address``, default $RAY_ADDRESS): cold is a new
actor for the run (Ray places it and starts its process, which imports torch), warm is the spare
actor of ``training.backends.ray_turns`` (``RayBackend.warm_up``), ready on a warm cluster; the
first metric counts once the server has pulled it into the run folder.

The two are run alternately, ``--repeats`` times each, on a store in a temporary folder, with no
other run queued. The last line is ``warm start: cold X.XX s, warm Y.YY s, ratio Z.Z``
(medians; ratio = cold / warm).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import presets  # noqa: E402
from training.backends import local  # noqa: E402
from training.backends.local import LocalProcessBackend  # noqa: E402
from training.data import fit_spec_to_dataset  # noqa: E402
from training.datasets import load_dataset  # noqa: E402
from training.hyperparameters import default_hyperparameters  # noqa: E402
from training.jobs import Jobs  # noqa: E402
from training.store import RunStore  # noqa: E402


def first_metric_s(jobs: Jobs, spec, dataset, hp) -> float:
    started = time.perf_counter()
    run_id = jobs.submit(spec, dataset, hp)
    while not any(r.get("type") == "train" for r in jobs.read_metrics(run_id)[0]):
        if not jobs.status(run_id).active:
            raise SystemExit(f"the run ended before its first metric: {jobs.status(run_id).message}")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    jobs.stop(run_id, wait_s=10)
    jobs.wait(run_id, timeout_s=60)
    return elapsed


class Spares:
    """The backend's spare: the local backend's warm worker, or the Ray backend's spare actor."""

    def __init__(self, backend_name: str, ray_address: str | None):
        if backend_name == "local":
            self.backend, self.pool = LocalProcessBackend(), local.spares
        else:
            from training.backends.ray import RayBackend, turns

            self.backend, self.pool = RayBackend(ray_address), turns

    def shut(self) -> None:
        self.pool.shut()

    def warm_up(self) -> None:
        self.backend.warm_up()
        if not self.pool.wait_ready(120):
            raise SystemExit("the warm worker did not get ready in 2 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="digits-cnn")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--ray-address", help="the Ray cluster for --backend ray (default: $RAY_ADDRESS)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["GLASSBOX_HOME"] = home
        spares = Spares(args.backend, args.ray_address)
        jobs = Jobs(RunStore(home), backend=spares.backend)
        dataset = load_dataset(args.dataset)
        spec = fit_spec_to_dataset(presets.get(args.model), dataset)
        hp = default_hyperparameters(spec)
        cold, warm = [], []
        try:
            for _ in range(args.repeats):
                spares.shut()
                cold.append(first_metric_s(jobs, spec, dataset, hp))
                spares.warm_up()
                warm.append(first_metric_s(jobs, spec, dataset, hp))
                print(f"cold {cold[-1]:.2f} s   warm {warm[-1]:.2f} s", flush=True)
        finally:
            spares.shut()
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"{args.model} on {args.dataset} ({args.backend}), {args.repeats} each, Train -> first metric record")
        print(f"warm start: cold {c:.2f} s, warm {w:.2f} s, ratio {c / w:.1f}")


if __name__ == "__main__":
    main()
