"""Waiting for something a worker process does, without asserting on how long it takes."""
import time


def until(condition, timeout_s: float, poll_s: float = 0.05):
    """The first truthy value of ``condition()``; fails only when ``timeout_s`` (generous) runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError("condition not met in time")
