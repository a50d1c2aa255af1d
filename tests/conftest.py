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


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory):
    """The address of one real local Ray cluster for the whole test session (tests.ray_cluster),
    joined by this process. Its workers have a GLASSBOX_HOME of their own, so a worker that wrote
    the server's run folder, instead of sending its records back, would be caught."""
    from training.backends.ray import connect, stop_following  # first: it sets how Ray is to be imported

    pytest.importorskip("ray", reason="ray is not installed, so the Ray backend cannot be tested")
    import ray

    from tests.ray_cluster import RayHead

    head = RayHead(cpus=2)
    try:
        connect(head.address, env_vars={"GLASSBOX_HOME": str(tmp_path_factory.mktemp("ray-worker-home")),
                                        "OMP_NUM_THREADS": "1"})
        yield head.address
    finally:
        stop_following()
        ray.shutdown()
        head.stop()


@pytest.fixture(params=["local", "ray"])
def backend_name(request, monkeypatch):
    """Each backend in turn, as $GLASSBOX_BACKEND (which ``Jobs()`` and the module-level API read)."""
    if request.param == "ray":
        request.getfixturevalue("ray_address")
    monkeypatch.setenv("GLASSBOX_BACKEND", request.param)
    return request.param
