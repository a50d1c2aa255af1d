"""A real, local Ray cluster for the tests of the Ray backend: one per test session.

``ray start --head --block`` in a session of its own, with few CPUs, one ``glassbox_slot`` (a
stand-in for a GPU), no dashboard and its own temporary directory (under $GLASSBOX_TEST_RAY_TMP); its ports are free ones (or, with GLASSBOX_TEST_RAY_PORT=P, P+1 to P+8 and
workers from P+10, for a machine where ports are handed out). It is ended by process ids: SIGINT
makes ``ray start --block`` end what it started, and anything left in the session it was started
in is ended after it; never with ``ray stop``, which would end every Ray on the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 120
# One of a resource the head has besides its CPUs: a test that makes every run ask for it
# (GLASSBOX_RAY_RESOURCES) has a cluster with room for one run at a time, as a one-GPU machine.
SLOT = "glassbox_slot"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RayHead:
    def __init__(self, cpus: int = 2):
        base = os.environ.get("GLASSBOX_TEST_RAY_PORT", "").strip()
        if base.isdigit():
            ports = [int(base) + i for i in range(1, 9)]
            workers = (int(base) + 10, int(base) + 69)
        else:
            ports = [free_port() for _ in range(8)]
            workers = None
        self.port = ports[0]
        self.address = f"127.0.0.1:{self.port}"
        # Short (Ray's socket paths are long); GLASSBOX_TEST_RAY_TMP: under a folder of one's own.
        parent = os.environ.get("GLASSBOX_TEST_RAY_TMP", "").strip() or "/tmp"
        os.makedirs(parent, exist_ok=True)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir=parent))
        options = dict(zip(["port", "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
                            "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port",
                            "dashboard-port"], ports))
        if workers:
            options.update({"min-worker-port": workers[0], "max-worker-port": workers[1]})
        command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                   f"--num-cpus={cpus}", "--num-gpus=0", f"--resources={json.dumps({SLOT: 1})}",
                   "--include-dashboard=false", "--disable-usage-stats",
                   "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}"]
        command += [f"--{name}={value}" for name, value in options.items()]
        self.log = open(self.temp_dir / "head.log", "wb")
        # No token authentication (a ~/.ray/auth_token on this machine would turn it on): this
        # process joins without one, and the cluster listens on this machine only.
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env=env)
        deadline = time.time() + START_TIMEOUT_S
        while b"Ray runtime started" not in (self.temp_dir / "head.log").read_bytes():
            if self.process.poll() is not None or time.time() > deadline:
                text = (self.temp_dir / "head.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"the test's Ray head did not start:\n{text}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # `ray start --block` then ends what it started
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever of its session is still there
            left = session_members(self.process.pid)
            for pid in left:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.time() + 5
            while left and time.time() < deadline:
                time.sleep(0.1)
                left = session_members(self.process.pid)
        if self.process.poll() is None:
            self.process.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def session_members(session_id: int) -> list[int]:
    """The live processes of a session (Ray's processes and workers all stay in the session of
    the `ray start` that the head was started as)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 4 and fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(stat.parent.name))
    return members
