"""Where a run trains: the fastest device there is, its name for people, the CPU threads a
worker takes, and the mixed precision a device supports."""
from __future__ import annotations

import os

import torch

from training.hyperparameters import Hyperparameters


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


def worker_cpu_threads() -> int:
    """Threads a training worker gives torch on the CPU: every core but one.

    The web server and the browser need a core of their own. On a 2-core classroom machine,
    torch's default of one thread per core ran digits-cnn at ~1,200 samples/s while another
    process was busy, against ~20,000 with one thread: its threads wait on each other whenever
    one of them loses its core. ``GLASSBOX_WORKER_THREADS`` overrides the choice.
    """
    override = os.environ.get("GLASSBOX_WORKER_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, (os.cpu_count() or 1) - 1)


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then Apple's MPS, then the CPU; a named device that is missing is a DeviceError."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if preference == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if preference == "cuda" and not cuda:
        raise DeviceError("this machine has no CUDA GPU; choose the device 'auto' or 'cpu'")
    if preference == "mps" and not mps:
        raise DeviceError("this machine has no Apple GPU (MPS); choose the device 'auto' or 'cpu'")
    return torch.device(preference)


def device_label(device: torch.device) -> str:
    """'cpu', 'cuda (NVIDIA H100 80GB HBM3)', 'mps': what run.json and the UI show."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def amp_dtype(model: torch.nn.Module, device: torch.device, hp: Hyperparameters) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (every device but CUDA).

    bfloat16 needs no loss scaling (so no per-step sync); recurrent nets use float16, cuDNN's
    long-established path for fused RNNs, with a GradScaler.
    """
    if not hp.amp or device.type != "cuda":
        return None
    is_rnn = getattr(getattr(model, "spec", None), "kind", None) == "rnn"
    return torch.bfloat16 if torch.cuda.is_bf16_supported() and not is_rnn else torch.float16
