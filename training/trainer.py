"""The Trainer: one model, one dataset, one set of hyperparameters, trained on the fastest device.

The whole dataset is moved to the device once and batched by slicing a seeded permutation, so
the hot loop does no per-sample Python work and no host-to-device copies. Losses and accuracy
are summed on the device and read back only when a metrics record is written (every
``log_every_s`` seconds), because a ``.item()`` per step would make a GPU wait for the CPU.

Everything a run leaves behind goes through ``Callback``s: a metrics record (a plain dict), a
checkpoint (the model and optimizer at a step), and the question "should I stop?". The worker
process turns those into the run folder; a test can collect them in memory.

Steps count optimizer updates: step 0 is the untrained model, step ``total_steps`` the final
one. Checkpoints are taken at log-spaced steps (``checkpoint_schedule``), densely at first,
because that is when a model changes most, so the UI can replay how it formed.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_EPOCHS = 1000
CHECKPOINTS = 16  # aimed-for checkpoints per run (at least 12; every step when a run is shorter)
LOG_EVERY_S = 0.25  # a metrics record this often: smooth curves, negligible cost
STOP_CHECK_EVERY_S = 0.1  # how often the hot loop asks whether to stop (a stop must land within 1 s)
SAFETY_CHECKPOINT_S = 120.0  # late log-spaced checkpoints are far apart; a killed worker loses at most this


class HyperparameterError(ValueError):
    """Hyperparameters that cannot be trained with; ``messages`` lists every problem."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


class DeviceError(RuntimeError):
    """The requested device is not available on this machine."""


@dataclass
class Hyperparameters:
    optimizer: str = "adam"  # sgd (with momentum) | adam | adamw
    lr: float = 1e-3  # learning rate: the size of each update step
    batch_size: int = 64  # examples per update
    epochs: int = 5  # passes over the training data
    weight_decay: float = 0.0  # pulls weights towards zero (L2 for sgd/adam, decoupled for adamw)
    momentum: float = 0.9  # sgd only: how much of the previous update carries over
    schedule: str = "constant"  # constant | cosine (lr falls smoothly to 0 by the last step)
    grad_clip: float = 0.0  # largest gradient norm allowed; 0 = no clipping (RNNs like 1.0)
    seed: int = 0  # weights, batch order and dropout: the same seed gives the same run
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | mps
    amp: bool = True  # mixed precision; used on CUDA only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Hyperparameters":
        if not isinstance(data, dict):
            raise HyperparameterError(["hyperparameters must be a JSON object"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HyperparameterError([f"unknown hyperparameter(s): {', '.join(unknown)}"])
        return cls(**data)

    def validate(self) -> list[str]:
        """Every problem in plain words; [] when training can start."""
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}")
        if not _is_number(self.lr) or not self.lr > 0 or not math.isfinite(self.lr):
            problems.append(f"the learning rate must be a number above 0, not {self.lr}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            problems.append(f"the batch size must be a whole number of at least 1, not {self.batch_size}")
        if not _is_int(self.epochs) or not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, not {self.epochs}")
        if not _is_number(self.weight_decay) or not 0 <= self.weight_decay < 1:
            problems.append(f"weight decay must be between 0 and 1, not {self.weight_decay}")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            problems.append(f"momentum must be between 0 and 1 (1 excluded), not {self.momentum}")
        if self.schedule not in SCHEDULES:
            problems.append(f"unknown schedule '{self.schedule}': choose constant or cosine")
        if not _is_number(self.grad_clip) or self.grad_clip < 0:
            problems.append(f"gradient clipping must be 0 (off) or a positive number, not {self.grad_clip}")
        if not _is_int(self.seed) or self.seed < 0:
            problems.append(f"the seed must be a whole number of at least 0, not {self.seed}")
        if self.device not in DEVICES:
            problems.append(f"unknown device '{self.device}': choose one of {', '.join(DEVICES)}")
        if not isinstance(self.amp, bool):
            problems.append("amp must be true or false")
        return problems

    def check(self) -> "Hyperparameters":
        problems = self.validate()
        if problems:
            raise HyperparameterError(problems)
        return self


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_hyperparameters(spec) -> Hyperparameters:
    """Settings with which a first click on Train works on the built-in data within a few epochs."""
    if spec.kind == "cnn":
        return Hyperparameters(optimizer="adam", lr=1e-3, batch_size=64, epochs=5)
    if spec.kind == "rnn":  # recurrent nets learn faster at a higher lr, and need clipping to stay stable
        return Hyperparameters(optimizer="adam", lr=3e-3, batch_size=64, epochs=8, grad_clip=1.0)
    # Transformers: decoupled weight decay and a cosine decay are the usual, forgiving recipe;
    # smaller batches (more updates) let the small ones learn word order in ~10 epochs on a CPU.
    return Hyperparameters(optimizer="adamw", lr=2e-3, batch_size=32, epochs=10, weight_decay=0.01,
                           schedule="cosine", grad_clip=1.0)


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


def checkpoint_schedule(total_steps: int, count: int = CHECKPOINTS) -> list[int]:
    """Steps 0 and ``total_steps`` and log-spaced steps between: at least ``count``, or every step."""
    if total_steps + 1 <= count:
        return list(range(total_steps + 1))
    points = count - 1
    while True:  # rounding merges the earliest points; add more until there are enough distinct ones
        steps = sorted({0, total_steps, *np.rint(np.geomspace(1, total_steps, points)).astype(int).tolist()})
        if len(steps) >= count:
            return steps
        points += 1


def learning_rate(hp: Hyperparameters, step: int, total_steps: int) -> float:
    """The lr used for the update that takes the model from ``step`` to ``step + 1``.

    Cosine: lr · ½(1 + cos(π · step / total_steps)), from the full lr down towards 0.
    """
    if hp.schedule == "cosine":
        return hp.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    return hp.lr


def make_optimizer(model: torch.nn.Module, hp: Hyperparameters) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)


def amp_dtype(model: torch.nn.Module, device: torch.device, hp: Hyperparameters) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (every device but CUDA).

    bfloat16 needs no loss scaling (so no per-step sync); recurrent nets use float16, cuDNN's
    long-established path for fused RNNs, with a GradScaler.
    """
    if not hp.amp or device.type != "cuda":
        return None
    is_rnn = getattr(getattr(model, "spec", None), "kind", None) == "rnn"
    return torch.bfloat16 if torch.cuda.is_bf16_supported() and not is_rnn else torch.float16


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches only (a last batch of 1 would break batch norm); one batch if the data is smaller."""
    return max(1, num_train // batch_size)


def divergence_message(step: int, hp: Hyperparameters) -> str:
    return (f"The loss became NaN/infinite at step {step}; try a lower learning rate "
            f"(e.g. {plain_number(hp.lr / 10)} instead of {plain_number(hp.lr)}).")


def plain_number(value: float) -> str:
    """0.0001 and 100,000 rather than 1e-04 and 1e+05: read aloud in class."""
    if value >= 1:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
    return np.format_float_positional(value, precision=3, unique=True, fractional=False, trim="-")


class Callback:
    """What a Trainer tells the outside world; every method is optional."""

    def on_start(self, info: dict) -> None:
        """Before the first step: device, steps, checkpoint schedule."""

    def on_metrics(self, record: dict) -> None:
        """A metrics record: {"type": "train"|"val", "step", "epoch", ...}."""

    def on_checkpoint(self, step: int, epoch: float, model: torch.nn.Module, optimizer_state: dict) -> None:
        """Save the model as it is after ``step`` updates, and the optimizer state to resume from."""

    def should_stop(self) -> bool:
        return False


@dataclass
class TrainResult:
    status: str  # finished | stopped | diverged
    step: int  # updates done when the run ended
    total_steps: int
    message: str = ""
    best_val_acc: float | None = None
    final_val_acc: float | None = None


class _Window:
    """Loss and accuracy since the last train record, summed on the device (no sync per step)."""

    def __init__(self, device: torch.device, batch_size: int):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.batch_size = batch_size
        self.steps, self.started = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += loss.detach()
        self.correct += (logits.argmax(dim=1) == targets).sum()
        self.steps += 1

    def mean_loss(self) -> float:
        return self.loss_sum.item() / max(self.steps, 1)  # the read-back: waits for the device

    def summary(self, now: float) -> dict:
        samples = self.steps * self.batch_size
        return {"loss": self.mean_loss(), "acc": self.correct.item() / max(samples, 1),
                "samples_per_s": samples / max(now - self.started, 1e-9)}

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()
        self.steps, self.started = 0, time.perf_counter()


class Trainer:
    """Trains ``model`` on ``dataset`` with ``hp``; see the module docstring. ``fit()`` runs it."""

    def __init__(self, model: torch.nn.Module, dataset, hp: Hyperparameters, callbacks=(), *,
                 log_every_s: float = LOG_EVERY_S, checkpoints: int = CHECKPOINTS,
                 safety_checkpoint_s: float = SAFETY_CHECKPOINT_S):
        self.hp = hp.check()
        self.device = pick_device(hp.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.callbacks = list(callbacks)
        self.log_every_s = log_every_s
        self.safety_checkpoint_s = safety_checkpoint_s
        # Moved once; every batch is then a slice of device memory.
        self.x_train, self.y_train = dataset.x_train.to(self.device), dataset.y_train.to(self.device)
        self.x_val, self.y_val = dataset.x_val.to(self.device), dataset.y_val.to(self.device)
        self.batch_size = min(hp.batch_size, len(self.x_train))
        self.steps_per_epoch = steps_per_epoch(len(self.x_train), hp.batch_size)
        self.total_steps = self.steps_per_epoch * hp.epochs
        self.checkpoint_steps = checkpoint_schedule(self.total_steps, checkpoints)
        self._checkpoint_set = set(self.checkpoint_steps)
        self.optimizer = make_optimizer(self.model, hp)
        self.amp_dtype = amp_dtype(self.model, self.device, hp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        # On the CPU reading the loss costs nothing, so divergence is caught before the bad
        # update; elsewhere it is checked when a record is written, to keep the device busy.
        self.check_every_step = self.device.type == "cpu"
        self.best_val_acc: float | None = None
        self.final_val_acc: float | None = None
        self.message = ""  # why a run diverged
        self._saved_steps: set[int] = set()  # steps already checkpointed in this fit()
        self._last_checkpoint_at = time.perf_counter()  # for the time-based safety checkpoints

    # ---- the run ---------------------------------------------------------------------
    def fit(self, start_step: int = 0, optimizer_state: dict | None = None) -> TrainResult:
        """Train from ``start_step`` (0, or a checkpoint's step when resuming) to the planned end."""
        if optimizer_state:
            self.load_optimizer_state(optimizer_state)
        self._emit("on_start", {"device": str(self.device), "total_steps": self.total_steps,
                                "steps_per_epoch": self.steps_per_epoch, "start_step": start_step,
                                "checkpoint_steps": self.checkpoint_steps, "amp": str(self.amp_dtype or "off")})
        torch.manual_seed(self.hp.seed * 1_000_003 + start_step)  # dropout: reproducible, also after a resume
        if start_step == 0:
            self._checkpoint(0)
        step = start_step
        while step < self.total_steps:
            epoch = step // self.steps_per_epoch
            outcome, step = self._train_epoch(epoch, first_step=step)
            if outcome != "ok":
                return self._end(outcome, step)
            if self._validate(step, epoch + 1) == "stopped":
                return self._end("stopped", step)
        return self._end("finished", step)

    def _train_epoch(self, epoch: int, first_step: int) -> tuple[str, int]:
        """Steps to the end of ``epoch``; ('ok' | 'stopped' | 'diverged', the step reached).

        The hot loop: nothing here touches the host per sample, and nothing waits for the
        device except the one read-back when a record or a checkpoint is due.
        """
        model, hp = self.model, self.hp
        model.train()
        order = self._epoch_order(epoch)
        bs, epoch_start = self.batch_size, epoch * self.steps_per_epoch
        epoch_end = epoch_start + self.steps_per_epoch
        window = _Window(self.device, bs)
        last_log = last_stop_check = window.started
        step = first_step
        while step < epoch_end:
            i = step - epoch_start
            idx = order[i * bs:(i + 1) * bs]
            xb, yb = self.x_train[idx], self.y_train[idx]  # (B, ...) gathered on the device
            if hp.schedule == "cosine":
                self._set_lr(learning_rate(hp, step, self.total_steps))
            with self._autocast():
                logits = model(xb)  # (B, classes)
                loss = F.cross_entropy(logits, yb)
            if self.check_every_step and not math.isfinite(loss.item()):
                return self._diverged(step + 1), step  # caught before the bad update is applied
            self._update(loss)
            step += 1
            window.add(loss, logits, yb)

            now = time.perf_counter()
            due_log = now - last_log >= self.log_every_s or step == 1 or step == epoch_end
            due_checkpoint = (step in self._checkpoint_set
                              or now - self._last_checkpoint_at >= self.safety_checkpoint_s)
            if (due_log or due_checkpoint) and not math.isfinite(window.mean_loss()):
                return self._diverged(step), step  # (CUDA/MPS: noticed here, within a record's time)
            if due_log:
                self._emit("on_metrics", {"type": "train", "step": step,
                                          "epoch": round(step / self.steps_per_epoch, 4),
                                          **window.summary(now), "lr": self.optimizer.param_groups[0]["lr"],
                                          "time": time.time()})
                last_log = now
            if due_checkpoint:
                self._checkpoint(step)
            if now - last_stop_check >= STOP_CHECK_EVERY_S:
                last_stop_check = now
                if self._stop_requested():
                    return self._stopped(step), step
            if due_log:
                window.reset()  # after the writing above, so samples/s counts training only
        return "ok", step

    def _update(self, loss: torch.Tensor) -> None:
        """One optimizer step (through the loss scaler, a no-op unless float16 AMP is on)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.hp.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.hp.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The same shuffled order for an epoch whenever it is (re)started: resuming mid-epoch works."""
        gen = torch.Generator().manual_seed(self.hp.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x_train), generator=gen).to(self.device)

    @torch.no_grad()
    def _validate(self, step: int, epoch: int) -> str:
        if len(self.x_val) == 0:
            return "ok"
        started = time.perf_counter()
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        batch = self.batch_size * 4  # no activations are kept for backward, so bigger batches fit
        for start in range(0, len(self.x_val), batch):
            xb, yb = self.x_val[start:start + batch], self.y_val[start:start + batch]
            with self._autocast():
                logits = self.model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(dim=1) == yb).sum()
            if self._stop_requested():
                self.model.train()
                return self._stopped(step)
        self.model.train()
        n = len(self.x_val)
        val_loss, val_acc = loss_sum.item() / n, correct.item() / n
        self.final_val_acc = val_acc
        if math.isfinite(val_loss):
            self.best_val_acc = val_acc if self.best_val_acc is None else max(self.best_val_acc, val_acc)
        self._emit("on_metrics", {"type": "val", "step": step, "epoch": epoch,
                                  "val_loss": val_loss if math.isfinite(val_loss) else None, "val_acc": val_acc,
                                  "val_time_s": time.perf_counter() - started, "time": time.time()})
        return "ok"

    # ---- ends ------------------------------------------------------------------------
    def _diverged(self, step: int) -> str:
        self.message = divergence_message(step, self.hp)
        self._emit("on_metrics", {"type": "diverged", "step": step, "message": self.message, "time": time.time()})
        return "diverged"

    def _stopped(self, step: int) -> str:
        """Keep the state where the run stopped, so a resume continues from exactly there."""
        if step not in self._saved_steps:
            self._checkpoint(step)
        return "stopped"

    def _end(self, status: str, step: int) -> TrainResult:
        if status == "finished" and self.total_steps not in self._saved_steps:
            self._checkpoint(self.total_steps)
        messages = {"finished": f"Finished {step} steps.", "stopped": f"Stopped at step {step} of {self.total_steps}.",
                    "diverged": self.message}
        message = messages[status]
        return TrainResult(status, step, self.total_steps, message, self.best_val_acc, self.final_val_acc)

    # ---- checkpoints and the optimizer state ----------------------------------------
    def _checkpoint(self, step: int) -> None:
        self._saved_steps.add(step)
        self._last_checkpoint_at = time.perf_counter()
        self._emit("on_checkpoint", step, round(step / self.steps_per_epoch, 4), self.model,
                   self.optimizer_state())

    def optimizer_state(self) -> dict:
        """The optimizer's and loss scaler's state_dicts: what a resume needs beside the weights."""
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_optimizer_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])

    def _autocast(self):
        """Mixed precision on CUDA; elsewhere a no-op that costs less than a disabled autocast."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---- callbacks -------------------------------------------------------------------
    def _emit(self, name: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, name)(*args)

    def _stop_requested(self) -> bool:
        return any(callback.should_stop() for callback in self.callbacks)
