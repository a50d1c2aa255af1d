"""Where runs can train, for the Train page's device picker: this machine's devices, or, when
runs go to a Ray cluster (GLASSBOX_BACKEND=ray), the cluster's, with a short account of its
machines and how many of their GPUs and CPUs are free now."""
from __future__ import annotations

import streamlit as st
import torch

from app_pages import common
from training import jobs
from training.backends.ray import RayBackend, cluster_devices

CLUSTER_LOOK_S = 5  # the cluster's devices are asked for at most this often, for every session together


def on_ray() -> bool:
    return isinstance(jobs.default_jobs().backend, RayBackend)


@st.cache_data(ttl=CLUSTER_LOOK_S, max_entries=1, show_spinner=False)
def _cluster() -> dict | None:
    """The Ray cluster's machines and free devices; None when it cannot be reached."""
    try:
        return cluster_devices()
    except OSError:
        return None


def device_choices() -> list[str]:
    """The devices a run may ask for ("auto" and "cpu" always)."""
    devices = ["auto", "cpu"]
    if on_ray():
        cluster = _cluster()
        if cluster is not None and any(machine["gpus"] for machine in cluster["machines"]):
            devices.append("cuda")
        return devices
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def cluster_caption() -> None:
    """Under the picker, with Ray only: the cluster's machines and what is free now."""
    if not on_ray():
        return
    cluster = _cluster()
    if cluster is None:
        st.warning("The Ray cluster cannot be reached now; runs started meanwhile will fail to start.",
                   icon=":material/cloud_off:")
        return
    machines = cluster["machines"]
    gpus, cpus = sum(m["gpus"] for m in machines), sum(m["cpus"] for m in machines)
    each = "; ".join(f"{common.as_markdown_text(str(m['node']))}: {m['gpus']} GPU{'s' if m['gpus'] != 1 else ''}, "
                     f"{m['cpus']} CPU{'s' if m['cpus'] != 1 else ''}" for m in machines)
    st.caption(f"Runs train on a Ray cluster of {len(machines)} machine{'s' if len(machines) != 1 else ''} "
               f"({each}). Free now: {cluster['free_gpus']} of {gpus} GPUs, {cluster['free_cpus']} of {cpus} CPUs.")
