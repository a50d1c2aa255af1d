"""Fixtures for every test."""
import pytest

from training.jobs import Jobs
from training.store import RunStore


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test has its own empty Glassbox home (runs, downloaded datasets): nothing a test
    writes reaches another test or the user's real ~/.glassbox."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def make_jobs(tmp_path):
    """Jobs on a store in tmp_path; any worker still running at the end of the test is killed."""
    made = []

    def make(**kwargs):
        made.append(Jobs(RunStore(tmp_path), **kwargs))
        return made[-1]

    yield make
    for jobs in made:
        for run in jobs.list_runs():
            if run.active:
                jobs.backend.kill(jobs.store.path(run.run_id))
