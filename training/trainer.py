"""The Trainer: one model, one dataset, one set of hyperparameters, trained on the fastest device.

The whole dataset is moved to the device once and batched by slicing a seeded permutation, so
the hot loop does no per-sample Python work and no host-to-device copies. Losses and accuracy
are summed on the device and read back only when a metrics record is written (every
``log_every_s`` seconds), because a ``.item()`` per step would make a GPU wait for the CPU.

Everything a run leaves behind goes through ``Callback``s (training.callbacks): a metrics record
(a plain dict), a checkpoint (the model and optimizer at a step), and the question "should I
stop?". The worker process turns those into the run folder; a test can collect them in memory.

Steps count optimizer updates: step 0 is the untrained model, step ``total_steps`` the final
one. Checkpoints are taken at log-spaced steps (``checkpoint_schedule``).

A paced run (``hp.pace_s`` > 0, for a class to watch) writes a record at every step and waits
between steps (``training.pacing``); it learns exactly what the same run unpaced learns.

The settings and the device live in training.hyperparameters and training.devices; their names
are importable from here too, as the trainer's public face.
"""
from __future__ import annotations

import contextlib
import math
import time

import torch
import torch.nn.functional as F

from training.callbacks import CHECKPOINTS, Callback, TrainResult, checkpoint_schedule
from training.devices import DeviceError, amp_dtype, device_label, pick_device, worker_cpu_threads
from training.hyperparameters import (DEVICES, MAX_EPOCHS, OPTIMIZERS, SCHEDULES, HyperparameterError,
                                      Hyperparameters, default_hyperparameters, divergence_message,
                                      learning_rate, plain_number, steps_per_epoch)
from training.pacing import Pacer
from training.record import RunState

__all__ = [
    "Trainer", "make_optimizer", "LOG_EVERY_S", "STOP_CHECK_EVERY_S", "SAFETY_CHECKPOINT_S",
    # re-exported: the trainer's public face
    "CHECKPOINTS", "Callback", "TrainResult", "checkpoint_schedule",
    "DeviceError", "amp_dtype", "device_label", "pick_device", "worker_cpu_threads",
    "DEVICES", "MAX_EPOCHS", "OPTIMIZERS", "SCHEDULES", "HyperparameterError", "Hyperparameters",
    "default_hyperparameters", "divergence_message", "learning_rate", "plain_number", "steps_per_epoch",
]

LOG_EVERY_S = 0.25  # a metrics record this often: smooth curves, negligible cost
STOP_CHECK_EVERY_S = 0.1  # how often the hot loop asks whether to stop (a stop must land within 1 s)
SAFETY_CHECKPOINT_S = 120.0  # late log-spaced checkpoints are far apart; a killed worker loses at most this


def make_optimizer(model: torch.nn.Module, hp: Hyperparameters, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """The optimizer over the weights that train; ``groups`` (each with its ``lr`` and ``lr_scale``)
    give parts of the model learning rates of their own, as fine-tuning's new head has."""
    params = groups or [p for p in model.parameters() if p.requires_grad]
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)


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
                 safety_checkpoint_s: float = SAFETY_CHECKPOINT_S, pace_clock=time.perf_counter,
                 pace_sleep=time.sleep, param_groups: list[dict] | None = None):
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
        self.optimizer = make_optimizer(self.model, hp, param_groups)
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
        self._pace_clock, self._pace_sleep = pace_clock, pace_sleep  # arguments, so tests need not wait
        self.pacer = Pacer(0, self.total_steps)  # replaced by fit(): hp.pace_s from its first step

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
        # A resumed run paces the steps it has left, at the rate of the whole run.
        self.pacer = Pacer(self.hp.pace_s, self.total_steps, start_step, clock=self._pace_clock,
                           sleep=self._pace_sleep)
        step = start_step
        while step < self.total_steps:
            epoch = step // self.steps_per_epoch
            ended, step = self._train_epoch(epoch, first_step=step)
            if ended is None:
                ended = self._validate(step, epoch + 1)
            if ended is not None:
                return self._end(ended, step)
        return self._end(RunState.FINISHED, step)

    def _train_epoch(self, epoch: int, first_step: int) -> tuple[RunState | None, int]:
        """Steps to the end of ``epoch``; (None, or STOPPED or DIVERGED if the run ended there,
        the step reached).

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
            # A paced run has time to spare: a point at every step, so the class sees the curve grow.
            due_log = self.pacer.active or now - last_log >= self.log_every_s or step == 1 or step == epoch_end
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
            if self.pacer.wait(step, self._stop_requested):  # a paced run's wait (none otherwise)
                return self._stopped(step), step
            if due_log:
                window.reset()  # after the writing above, so samples/s counts training only
        return None, step

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
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The same shuffled order for an epoch whenever it is (re)started: resuming mid-epoch works."""
        gen = torch.Generator().manual_seed(self.hp.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.x_train), generator=gen).to(self.device)

    @torch.no_grad()
    def _validate(self, step: int, epoch: int) -> RunState | None:
        """A val record for the whole validation set; STOPPED if a stop arrived meanwhile."""
        if len(self.x_val) == 0:
            return None
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
        return None

    # ---- ends ------------------------------------------------------------------------
    def _diverged(self, step: int) -> RunState:
        self.message = divergence_message(step, self.hp)
        self._emit("on_metrics", {"type": "diverged", "step": step, "message": self.message, "time": time.time()})
        return RunState.DIVERGED

    def _stopped(self, step: int) -> RunState:
        """Keep the state where the run stopped, so a resume continues from exactly there."""
        if step not in self._saved_steps:
            self._checkpoint(step)
        return RunState.STOPPED

    def _end(self, status: RunState, step: int) -> TrainResult:
        if status is RunState.FINISHED and self.total_steps not in self._saved_steps:
            self._checkpoint(self.total_steps)
        messages = {RunState.FINISHED: f"Finished {step} steps.",
                    RunState.STOPPED: f"Stopped at step {step} of {self.total_steps}.", RunState.DIVERGED: self.message}
        return TrainResult(status, step, self.total_steps, messages[status], self.best_val_acc, self.final_val_acc)

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
