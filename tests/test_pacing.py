"""Slow motion (``Hyperparameters.pace_s``, ``training.pacing``): the arithmetic of the waits on
a pretend clock (nothing sleeps for real there, and nothing asserts on wall-clock time), a
record at every step, Stop answered while waiting, resumed runs paced for the steps left, and
a paced run ending with exactly the weights and checkpoints of the same run unpaced.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from models import build_model
from tests.test_trainer import Collect, quadrant_images, tiny_cnn, train
from training import train as train_cli
from training.hyperparameters import MAX_PACE_S, HyperparameterError, Hyperparameters
from training.pacing import SLICE_S, Pacer
from training.trainer import Trainer
from training.record import RunRecord


class PretendClock:
    """A clock that only moves when something sleeps: the pacing arithmetic without waiting."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# ---- the setting -----------------------------------------------------------------------------
def test_the_pace_is_checked_in_plain_words_and_old_settings_load_unpaced():
    for good in (0, 30, 60.0, 120, MAX_PACE_S):
        assert Hyperparameters(pace_s=good).validate() == []
    for bad in (-1, MAX_PACE_S + 1, float("nan"), "30", True):
        (problem,) = Hyperparameters(pace_s=bad).validate()
        assert problem.startswith(f"the pace must be 0 (as fast as it goes) or up to {MAX_PACE_S} seconds")
    with pytest.raises(HyperparameterError, match="the pace must be"):
        Hyperparameters(pace_s=-5).check()
    # A run.json written before pacing existed has no pace_s: it loads, and trains unpaced.
    old = {k: v for k, v in Hyperparameters(epochs=2).to_dict().items() if k != "pace_s"}
    record = RunRecord.from_dict({"run_id": "r1", "status": "finished", "hyperparameters": old})
    assert Hyperparameters.from_dict(record.hyperparameters).pace_s == 0
    assert Hyperparameters.from_dict(Hyperparameters(pace_s=30).to_dict()).pace_s == 30


# ---- the arithmetic, on a pretend clock -------------------------------------------------------
def test_each_step_ends_no_earlier_than_its_share_of_the_pace():
    clock = PretendClock()
    pacer = Pacer(10.0, total_steps=40, clock=clock, sleep=clock.sleep)
    assert pacer.active and pacer.seconds_per_step == 10.0 / 40
    for step in range(1, 41):
        clock.now += 0.01  # the step's own work
        assert pacer.wait(step) is False
        assert clock.now == pytest.approx(step * 0.25)
    assert clock.now == pytest.approx(10.0)  # the whole run: about pace_s
    assert max(clock.sleeps) <= SLICE_S  # in slices, so a Stop is heard


def test_a_step_slower_than_its_share_is_not_made_to_wait_and_later_ones_catch_up():
    clock = PretendClock()
    pacer = Pacer(4.0, total_steps=4, clock=clock, sleep=clock.sleep)
    clock.now = 2.5  # step 1 took 2.5 s, longer than its 1 s
    pacer.wait(1)
    assert clock.sleeps == []
    clock.now += 0.1  # step 2 ends at 2.6 s, past its 2 s: no wait either
    pacer.wait(2)
    assert clock.sleeps == []
    pacer.wait(3)  # step 3 may end at 3 s
    assert clock.now == pytest.approx(3.0)


def test_an_unpaced_run_never_waits():
    clock = PretendClock()
    for pacer in (Pacer(0, 100, clock=clock, sleep=clock.sleep), Pacer(30, 0, clock=clock, sleep=clock.sleep)):
        assert not pacer.active and pacer.wait(50) is False
    assert clock.sleeps == []


def test_a_stop_asked_for_while_waiting_is_heard_within_one_slice():
    clock = PretendClock()
    pacer = Pacer(60.0, total_steps=2, clock=clock, sleep=clock.sleep)  # 30 s per step
    asked_at = 1.234
    assert pacer.wait(1, should_stop=lambda: clock.now >= asked_at) is True
    assert asked_at <= clock.now <= asked_at + SLICE_S


def test_a_resumed_run_paces_the_steps_it_has_left_at_the_same_rate():
    clock = PretendClock()
    clock.now = 100.0
    pacer = Pacer(30.0, total_steps=300, first_step=200, clock=clock, sleep=clock.sleep)
    assert pacer.deadline(200) == pytest.approx(100.0)
    assert pacer.deadline(300) == pytest.approx(110.0)  # 100 steps left at 0.1 s each
    pacer.wait(300)
    assert clock.now == pytest.approx(110.0)


# ---- the Trainer, paced ------------------------------------------------------------------------
def test_a_paced_trainer_records_every_step_at_its_share_of_the_pace():
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(optimizer="adam", lr=3e-3, batch_size=16, epochs=2, pace_s=8.0)  # 16 steps
    clock = PretendClock()

    class WhenRecorded(Collect):
        def on_metrics(self, record):
            super().on_metrics({**record, "pretend_time": clock.now})

    trainer, result, collected = train(tiny_cnn(data), data, hp, WhenRecorded(), pace_clock=clock,
                                       pace_sleep=clock.sleep)
    assert result.status == "finished" and result.total_steps == 16
    train_records = collected.of("train")
    assert [r["step"] for r in train_records] == list(range(1, 17))  # a point at every step
    # Step k's record is written when step k is done, after the wait for step k - 1 ended at
    # (k - 1) · 8 s / 16 on the pretend clock; the last step waits until 8 s.
    for record in train_records:
        assert record["pretend_time"] == pytest.approx((record["step"] - 1) * 0.5)
    assert clock.now == pytest.approx(8.0)
    assert max(clock.sleeps) <= SLICE_S
    assert all(math.isfinite(r["samples_per_s"]) and r["samples_per_s"] > 0 for r in train_records)


def test_stop_lands_while_a_paced_trainer_waits():
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(batch_size=16, epochs=2, pace_s=MAX_PACE_S)  # 37.5 s per step
    clock = PretendClock()

    class StopLater(Collect):
        def should_stop(self):
            return clock.now >= 50.0  # during the wait after step 2

    _, result, collected = train(tiny_cnn(data), data, hp, StopLater(), pace_clock=clock, pace_sleep=clock.sleep)
    assert result.status == "stopped" and result.step == 2
    assert 50.0 <= clock.now <= 50.0 + SLICE_S
    assert 2 in collected.checkpoints  # where it stopped, to resume from


def test_a_resumed_paced_trainer_paces_only_the_steps_it_has_left():
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(batch_size=16, epochs=2, pace_s=8.0)  # 16 steps, 0.5 s each
    first = Collect(stop_after_step=6)
    _, stopped, _ = train(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=2), first, log_every_s=0.0)
    clock = PretendClock()
    model = build_model(tiny_cnn(data), seed=0)
    model.load_state_dict(first.checkpoints[stopped.step])
    resumed = Collect()
    trainer = Trainer(model, data, hp, [resumed], pace_clock=clock, pace_sleep=clock.sleep)
    end = trainer.fit(start_step=stopped.step, optimizer_state=first.optimizer_states[stopped.step])
    assert end.status == "finished"
    assert [r["step"] for r in resumed.of("train")] == list(range(stopped.step + 1, 17))
    assert clock.now == pytest.approx((16 - stopped.step) * 0.5)  # the steps left, at the run's rate


def test_a_paced_run_learns_exactly_what_the_same_run_unpaced_learns():
    """Real sleeping, about 1.5 s: the waits must not touch anything that is learned."""
    data = quadrant_images(n_train=128, n_val=32)
    settings = dict(optimizer="adam", lr=3e-3, batch_size=16, epochs=3, schedule="cosine", seed=3)
    spec = tiny_cnn(data)
    unpaced, unpaced_result, unpaced_run = train(spec, data, Hyperparameters(**settings))
    paced, paced_result, paced_run = train(spec, data, Hyperparameters(**settings, pace_s=1.5))
    assert paced_result.status == unpaced_result.status == "finished"
    assert sorted(paced_run.checkpoints) == sorted(unpaced_run.checkpoints) == paced.checkpoint_steps
    final_paced, final_unpaced = paced.model.state_dict(), unpaced.model.state_dict()
    assert final_paced.keys() == final_unpaced.keys()
    for name, tensor in final_unpaced.items():  # byte for byte
        assert final_paced[name].numpy().tobytes() == tensor.numpy().tobytes(), name
    for step, weights in unpaced_run.checkpoints.items():
        for name, tensor in weights.items():
            assert torch.equal(paced_run.checkpoints[step][name], tensor), (step, name)
    assert [r["step"] for r in paced_run.of("train")] == list(range(1, paced_result.total_steps + 1))
    assert [r["val_acc"] for r in paced_run.of("val")] == [r["val_acc"] for r in unpaced_run.of("val")]


# ---- the command line ------------------------------------------------------------------------------
def test_the_command_line_paces_a_run_and_records_every_step(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(train_cli, "load_dataset", lambda name, options: quadrant_images(n_train=128, n_val=32))
    code = train_cli.main(["--preset", "digits-cnn", "--dataset", "quadrants", "--epochs", "2", "--batch-size", "16",
                           "--pace", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].endswith("= 16 steps, paced to about 1 s")
    folder = Path(out.strip().splitlines()[-1].removeprefix("run folder: "))
    assert json.loads((folder / "run.json").read_text())["hyperparameters"]["pace_s"] == 1
    steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "train"]
    assert steps == list(range(1, 17))
    assert train_cli.main(["--preset", "digits-cnn", "--dataset", "quadrants", "--pace", "-3"]) == 2
    assert "error: the pace must be 0 (as fast as it goes) or up to 600 seconds" in capsys.readouterr().err
