"""Retrain the shipped demo models (``models.demos``) from scratch, reproducibly:

    python -m training.demos                      # all of them (make demo-models), a few minutes on a CPU
    python -m training.demos --only digits-cnn    # one of them

Each demo is trained by the project's own command line (``python -m training.train``) in a
temporary GLASSBOX_HOME, on the CPU with one thread and a fixed seed, so that running this twice
on the same machine gives byte-identical weights (another CPU or torch version may differ in the
last bits). Its run folder is then copied into ``models/demo_runs/<run_id>/`` without the
worker's files and the optimizer state (nobody resumes a demo), keeping a few of its log-spaced
checkpoints so that the shipped files stay small; ``demos.json`` records what each one reached,
measured on its final checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models.demos import DEMO_ROOT, INDEX_FILE
from training.record import RunRecord, RunState
from training.store import CHECKPOINTS_DIR, METRICS_FILE, RUN_FILE

SEED = 0
DEMO_RUN_PREFIX = "00000000-000000-demo-"  # a valid run id that sorts below every real run
DEMO_OWNER_NAME = "Glassbox"  # shown as the run's owner; it has none, so only the teacher may delete it


@dataclass(frozen=True)
class Demo:
    name: str
    preset: str
    dataset: str
    description: str
    keep: int  # checkpoints shipped (log-spaced, always the first and the last)
    settings: dict = field(default_factory=dict)  # training.train options beyond the preset's recipe
    options: dict = field(default_factory=dict)  # dataset options
    state: RunState = RunState.FINISHED  # how the run is meant to end
    lesson_only: bool = False

    @property
    def run_id(self) -> str:
        return DEMO_RUN_PREFIX + self.name


DEMOS = [
    Demo("digits-cnn", "digits-cnn", "digits", keep=8,
         description="The digits-cnn preset trained on the built-in handwritten digits with its own recipe."),
    Demo("sentiment-lstm", "sentiment-lstm", "sentiment", keep=6,
         description="The sentiment-lstm preset trained on the built-in film reviews: it reads a sentence "
                     "word by word and keeps track of 'not' and 'but'."),
    Demo("sentiment-transformer", "sentiment-transformer", "sentiment", keep=5,
         description="The sentiment-transformer preset trained on the built-in film reviews: its attention "
                     "heads show which words each word looks at."),
    # Without the weight decay the ReLUs die after the first overshoots and the loss stalls near 2.5
    # instead of breaking: a too-high rate that never says so. Paced (it changes nothing learned) for a
    # metric point at every step: the lesson's curve shows the loss climbing, not two dots.
    Demo("digits-cnn-too-fast", "digits-cnn", "digits", keep=8, state=RunState.DIVERGED, lesson_only=True,
         settings={"optimizer": "sgd", "lr": 3.0, "weight_decay": 0.01, "schedule": "constant", "epochs": 3,
                   "pace": 6},
         description="digits-cnn trained with SGD at a learning rate of 3 (weight decay 0.01), far too high: "
                     "every update overshoots, the loss grows until it is no longer a number, and the run "
                     "stops (for the lesson on learning rates)."),
    Demo("digits-cnn-tiny-data", "digits-cnn", "digits", keep=8, lesson_only=True,
         settings={"epochs": 60}, options={"train_size": 100},
         description="digits-cnn trained on only 100 handwritten digits: it learns them all by heart but "
                     "does worse on digits it has not seen (for the lesson on over-fitting)."),
]
BY_NAME = {demo.name: demo for demo in DEMOS}
WORKER_FILES = ("pid", "heartbeat", "stop", "worker.log")  # also never shipped: the optimizer state


# ---- training one demo --------------------------------------------------------------------
def train_command(demo: Demo, home: Path) -> list[str]:
    command = [sys.executable, "-m", "training.train", "--preset", demo.preset, "--dataset", demo.dataset,
               "--home", str(home), "--device", "cpu", "--seed", str(SEED)]
    for key, value in demo.settings.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in demo.options.items():
        command += ["--option", f"{key}={value}"]
    return command


def train(demo: Demo, home: Path, quiet: bool = False) -> Path:
    """Train ``demo`` into the run store at ``home``; returns its run folder."""
    # One thread: the same sums in the same order on every run, hence the same weights.
    env = {**os.environ, "GLASSBOX_WORKER_THREADS": "1", "GLASSBOX_HOME": str(home)}
    done = subprocess.run(train_command(demo, home), env=env, cwd=Path(__file__).resolve().parents[1],
                          stdout=subprocess.DEVNULL if quiet else None)
    runs = sorted((home / "runs").glob("*/" + RUN_FILE))
    if len(runs) != 1:
        raise RuntimeError(f"training {demo.name} made {len(runs)} runs in {home} (exit code {done.returncode})")
    folder = runs[0].parent
    state = RunRecord.from_dict(json.loads(runs[0].read_bytes())).status
    if state is not demo.state:
        raise RuntimeError(f"the {demo.name} run ended {state}, not {demo.state} (see {folder})")
    return folder


# ---- shipping it --------------------------------------------------------------------------
def shipped_steps(steps: list[int], keep: int) -> list[int]:
    """``keep`` of the run's checkpoint steps, evenly spread over the list (the steps themselves
    are log-spaced, so these are too), always with the first and the last."""
    if len(steps) <= keep:
        return list(steps)
    picks = np.unique(np.rint(np.linspace(0, len(steps) - 1, keep)).astype(int))
    return [steps[i] for i in picks]


def ship(demo: Demo, run_folder: Path, out: Path) -> Path:
    """Copy the run into ``out/<demo run id>/`` as a run of the store: run.json under the demo's
    id, shared with the class and owned by nobody (shown as Glassbox's); metrics; the kept checkpoints. Replaces any
    older copy in one rename."""
    out.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=out, prefix=f".{demo.run_id}."))
    try:
        record = RunRecord.from_dict(json.loads((run_folder / RUN_FILE).read_bytes()))
        all_steps = sorted(int(p.name.split("_")[1]) for p in (run_folder / CHECKPOINTS_DIR).glob("step_*"))
        kept = shipped_steps(all_steps, demo.keep)
        (temporary / CHECKPOINTS_DIR).mkdir()
        for step in kept:
            source, target = run_folder / CHECKPOINTS_DIR / f"step_{step}", temporary / CHECKPOINTS_DIR / f"step_{step}"
            target.mkdir()
            for name in ("model.safetensors", "spec.json"):
                shutil.copyfile(source / name, target / name)
            meta = json.loads((source / "meta.json").read_bytes())
            meta["run_id"] = demo.run_id
            (target / "meta.json").write_bytes(json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8"))
        shutil.copyfile(run_folder / METRICS_FILE, temporary / METRICS_FILE)
        record = replace(record, run_id=demo.run_id, owner=None, owner_name=DEMO_OWNER_NAME, shared=True, pid=None,
                         progress=replace(record.progress, checkpoint_steps=kept))
        (temporary / RUN_FILE).write_bytes(json.dumps(record.to_dict(), indent=1).encode("utf-8"))
        final = out / demo.run_id
        if final.exists():
            old = out / f".{demo.run_id}.old-{secrets.token_hex(3)}"
            os.replace(final, old)
            shutil.rmtree(old)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return final


def accuracy(model, x, y) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + 512]).argmax(-1) for i in range(0, len(x), 512)])
    return int((predicted == y).sum()) / len(y) if len(y) else 0.0


def measure(demo: Demo, folder: Path) -> dict:
    """The index entry of a shipped demo: what its final checkpoint gets right, on the data it
    was trained on (rebuilt from its recipe, as the app does)."""
    from models.checkpoint import load_checkpoint
    from training.datasets import load_dataset

    record = RunRecord.from_dict(json.loads((folder / RUN_FILE).read_bytes()))
    final_step = max(record.progress.checkpoint_steps)
    model = load_checkpoint(folder / CHECKPOINTS_DIR / f"step_{final_step}")
    source = record.dataset["source"]
    dataset = load_dataset(source["builtin"], **source["options"])
    return {"description": demo.description, "preset": demo.preset, "dataset": demo.dataset,
            "run_id": demo.run_id, "state": record.status.value,
            "val_acc": accuracy(model, dataset.x_val, dataset.y_val),
            "train_acc": accuracy(model, dataset.x_train, dataset.y_train),
            "final_step": final_step, "lesson_only": demo.lesson_only}


def write_index(out: Path, entries: dict[str, dict]) -> None:
    """demos.json, in DEMOS' order, keeping the entries of demos not retrained this time."""
    path = out / INDEX_FILE
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    merged = {**old, **entries}
    ordered = {demo.name: merged[demo.name] for demo in DEMOS if demo.name in merged}
    path.write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")


def build(names: list[str], out: Path, quiet: bool = False) -> dict[str, dict]:
    import torch

    torch.set_num_threads(1)
    entries = {}
    for name in names:
        demo = BY_NAME[name]
        print(f"== {name}", flush=True)
        with tempfile.TemporaryDirectory(prefix="glassbox-demo-") as home:
            folder = ship(demo, train(demo, Path(home), quiet), out)
        entries[name] = measure(demo, folder)
        print(f"== {name}: {entries[name]['state']}, validation accuracy {entries[name]['val_acc']:.1%}, "
              f"training accuracy {entries[name]['train_acc']:.1%}", flush=True)
    write_index(out, entries)
    return entries


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.demos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=list(BY_NAME), help="retrain only this demo (repeatable)")
    parser.add_argument("--out", default=str(DEMO_ROOT), help="where the demo runs go (default: models/demo_runs)")
    parser.add_argument("--quiet", action="store_true", help="do not print the training progress")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        build(args.only or list(BY_NAME), out, args.quiet)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for demo in DEMOS:
        if (out / demo.run_id).is_dir():
            print(f"{demo.run_id}: {folder_size(out / demo.run_id) / 1024:,.0f} KB")
    print(f"all demos: {folder_size(out) / 1024:,.0f} KB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
