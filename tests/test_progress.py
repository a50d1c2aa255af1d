"""training.progress: the progress line and the status sentence, from made-up runs and records."""
import pytest

from training.jobs import RunStatus
from training.progress import (describe_progress, describe_status, format_duration, run_ahead, status_words,
                               training_rate)


def make_run(status="running", step=0, total_steps=300, epochs=5, device="cpu", started_at=1000.0,
             finished_at=None, message="") -> RunStatus:
    return RunStatus(run_id="20260101-000000-m-0000", status=status, message=message, model="m", family="CNN",
                     dataset="digits", device=device, step=step, total_steps=total_steps, epochs=epochs,
                     best_val_acc=None, last_val_acc=None, submitted_at=999.0, started_at=started_at,
                     finished_at=finished_at, folder="")


def train(step, time, samples_per_s=1000.0):
    return {"type": "train", "step": step, "time": time, "samples_per_s": samples_per_s, "loss": 1.0, "acc": 0.5}


def test_the_running_line_reads_like_the_issue():
    records = [train(30, 1000.0, 1850.0), train(60, 1002.0, 1700.0), train(90, 1004.0, 1900.0),
               train(120, 1006.0, 1850.0)]
    progress = describe_progress(make_run(step=100), records, now=1006.5)
    assert progress.text == "epoch 2/5 · step 120/300 · 1,850 samples/s · about 12 s left · cpu"
    assert progress.fraction == pytest.approx(0.4)
    assert progress.seconds_left == pytest.approx(12.0)


def test_the_rate_uses_only_recent_records_and_none_from_before_a_resume():
    records = [train(10, 0.0), train(20, 100.0), train(50, 105.0)]  # a long pause, then 6 steps/s
    assert training_rate(records, window_s=10)[1] == pytest.approx(6.0)
    resumed = records + [{"type": "resume", "step": 40, "time": 200.0}, train(41, 201.0)]
    assert training_rate(resumed) == (1000.0, None)  # one record since the resume: no speed yet
    slow_window = [train(10, 0.0, 2000.0), train(20, 1.0, 100.0), train(30, 2.0, 2100.0)]
    assert training_rate(slow_window)[0] == 2000.0  # the median: one slow window is not the speed
    assert training_rate([]) == (None, None)


def test_queued_finished_and_stopped_lines():
    assert describe_progress(make_run("queued"), []).text == "epoch 1/5 · step 0/300 · waiting to start · cpu"
    done = describe_progress(make_run("finished", step=290, finished_at=1034.0), [train(300, 1033.0)])
    assert done.fraction == 1.0 and done.text == "epoch 5/5 · step 300/300 · took 34 s · cpu"
    stopped = describe_progress(make_run("stopped", step=75, finished_at=1125.0, device=None), [])
    assert stopped.text == "epoch 2/5 · step 75/300 · took 2 min 5 s"


def test_records_newer_than_the_run_file_count_but_never_past_the_end():
    assert describe_progress(make_run(step=10), [train(61, 5.0)]).text.startswith("epoch 2/5 · step 61/300")
    assert describe_progress(make_run(step=10), [train(999, 5.0)]).text.startswith("epoch 1/5 · step 10/300")


def test_a_run_without_a_plan_yet():
    progress = describe_progress(make_run("queued", total_steps=0, epochs=0, device=None), [])
    assert progress.fraction == 0.0 and progress.text == "step 0 · waiting to start"


@pytest.mark.parametrize("seconds, words", [(0, "0 s"), (0.2, "1 s"), (59, "59 s"), (60, "1 min"),
                                            (125, "2 min 5 s"), (3600, "1 h"), (3900, "1 h 5 min")])
def test_format_duration(seconds, words):
    assert format_duration(seconds) == words


def test_status_words_carry_the_advice_and_the_reason():
    advice = "The loss became NaN/infinite at step 6; try a lower learning rate (e.g. 0.1 instead of 1)."
    assert status_words("diverged", advice) == ("error", f"Diverged. {advice}")
    assert status_words("diverged")[1].endswith("Try a lower learning rate.")
    assert status_words("failed", "The GPU ran out of memory.") == ("error", "Failed. The GPU ran out of memory.")
    assert status_words("failed") == ("error", "Failed, without a recorded reason.")
    assert status_words("stopped", "Stopped at step 4 of 10.") == (
        "warning", "Stopped at step 4 of 10. Resume to continue from there.")
    assert status_words("finished", "Finished 10 steps.") == ("success", "Finished.")
    assert status_words("queued")[0] == "info" and status_words("something-new") == ("info", "Something-new.")


def test_the_table_label_and_the_panel_sentence_come_from_one_read():
    """The runs table's word and the live panel's sentence say the same state, and the table's
    percentage is the progress bar's (records included, not run.json's older step)."""
    records = [train(30, 1000.0), train(120, 1006.0)]
    running = describe_status(make_run(step=100), records, now=1006.5)
    assert (running.tone, running.label, running.sentence) == ("info", "running 40%", "Running on cpu.")
    assert running.label == f"running {int(describe_progress(make_run(step=100), records).fraction * 100)}%"
    starting = describe_status(make_run("queued"))
    assert (starting.label, starting.sentence) == ("starting", "Starting: loading the model and the data…")
    queued = describe_status(make_run("queued"), waiting_for="10:15:02 digits-cnn on digits")
    assert queued.label == "queued" and queued.sentence.startswith("Queued: waiting for the run 10:15:02")
    for state in ("stopped", "finished", "diverged", "failed", "stopping"):
        said = describe_status(make_run(state, finished_at=1010.0))
        assert said.sentence.lower().startswith(said.label), (said.label, said.sentence)


def test_a_queued_run_waits_for_the_run_training_now():
    queued, other = make_run("queued"), make_run("running")
    other.run_id = "20260101-000001-m-0001"
    assert run_ahead(queued, [queued, other]) is other
    assert run_ahead(queued, [queued]) is None and run_ahead(other, [queued, other]) is None
