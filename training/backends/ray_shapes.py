"""What a Ray run asks the cluster for (its resource shape), and the files it is handed.

    GLASSBOX_RAY_CPUS        CPUs of a run that trains on CPUs (default 1)
    GLASSBOX_RAY_RESOURCES   Ray resources every run asks for besides, as JSON ('{"classroom": 1}')

A run on device ``cuda``, or ``auto`` on a cluster with GPUs, asks for one GPU and one CPU.
Runs of one shape wait in one line (``line_key``; ``training.backends.ray_turns``).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from training.store import CHECKPOINTS_DIR, DATA_FILE, DATASET_FILE, OPTIMIZER_FILE, RUN_FILE, RunStore

LINE_PREFIX = "ray-"  # the Ray lines in $GLASSBOX_HOME/queue (local devices have other names)


def custom_resources() -> dict[str, float]:
    """GLASSBOX_RAY_RESOURCES: Ray resources every run asks for besides CPUs and GPUs, as JSON
    (e.g. '{"classroom": 1}' with ``ray start --resources='{"classroom": 2}'`` on the machines the
    class may use). OSError, in words, when it is not such a mapping."""
    raw = os.environ.get("GLASSBOX_RAY_RESOURCES", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) and v > 0
                                              for k, v in value.items()):
        raise OSError(f"GLASSBOX_RAY_RESOURCES is {raw!r}; it must be JSON like '{{\"classroom\": 1}}'")
    return {k: float(v) for k, v in value.items()}


def shape_for(device: str, cluster_gpus: int) -> dict[str, float]:
    """The Ray resources a run on ``device`` asks for: one GPU for cuda, or auto on a cluster with
    GPUs; else GLASSBOX_RAY_CPUS CPUs (default 1); and GLASSBOX_RAY_RESOURCES."""
    if device == "cuda" or (device == "auto" and cluster_gpus > 0):
        return {"CPU": 1.0, "GPU": 1.0, **custom_resources()}
    return {"CPU": float(max(1, int(os.environ.get("GLASSBOX_RAY_CPUS", "1")))), **custom_resources()}


def line_key(shape: dict[str, float]) -> str:
    """The line (a folder name) of a shape: ``ray-cpu1``, ``ray-cpu1-gpu1``, ..."""
    parts = [f"{re.sub(r'[^a-z0-9_]', '_', name.lower())}{amount:g}" for name, amount in sorted(shape.items())]
    return LINE_PREFIX + "-".join(parts)


def actor_options(shape: dict[str, float]) -> dict:
    custom = {k: v for k, v in shape.items() if k not in ("CPU", "GPU")}
    return {"num_cpus": shape.get("CPU", 0), "num_gpus": shape.get("GPU", 0), **({"resources": custom} if custom else {})}


def fits(shape: dict[str, float], free: dict[str, float]) -> list[str]:
    """The resources of ``shape`` that ``free`` lacks (none: it fits)."""
    return [name for name, amount in shape.items() if free.get(name, 0.0) < amount]


def run_files(run_dir: Path, resume: bool) -> tuple[dict[str, bytes], list[int]]:
    """The files of the run that training reads (run.json, an uploaded dataset, and for a resume
    the checkpoint and optimizer state it continues from) as bytes, and the checkpoint steps sent."""
    from training.worker import resume_point

    store, run_id = RunStore(run_dir.parent.parent), run_dir.name
    files = {name: (run_dir / name).read_bytes() for name in (RUN_FILE, DATA_FILE, DATASET_FILE)
             if (run_dir / name).is_file()}
    steps = []
    if resume:
        step, _ = resume_point(store, run_id)
        if step in store.checkpoint_steps(run_id):  # step 0 too: the first checkpoint is before any training
            folder = store.checkpoint_path(run_id, step)
            files.update({f"{CHECKPOINTS_DIR}/{folder.name}/{p.name}": p.read_bytes() for p in folder.iterdir()})
            steps.append(step)
        optimizer = run_dir / CHECKPOINTS_DIR / OPTIMIZER_FILE
        if optimizer.is_file():
            files[f"{CHECKPOINTS_DIR}/{OPTIMIZER_FILE}"] = optimizer.read_bytes()
    return files, steps
