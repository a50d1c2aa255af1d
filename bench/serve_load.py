"""Thirty sessions at once: the server's cost per page run, driven through Streamlit's own protocol.

    python bench/serve_load.py [--sessions 30] [--runs 2000] [--single-cycles 3] [--window 15]
                               [--streamlit-option runner.postScriptGC=true]

Starts the app (``streamlit run app.py``, so ``.streamlit/config.toml`` applies) on a free port
with an empty GLASSBOX_HOME, and keeps two training runs going there (``training.jobs`` from this
process: one trains, one waits in the device queue; a finished one is replaced). Then it drives
sessions as a browser would, without one: a websocket to ``/_stcore/stream`` carrying the
protobuf ``BackMsg`` messages the browser sends (``rerun_script`` with a page, the widget
states and the hashes of the messages it already holds) and reading the ``ForwardMsg`` replies
until ``script_finished``. Each session opens Feature maps, reruns it three times, then opens
Attention and Attributions (a cycle of six page runs), over and over; with ``--cycle lessons``
it follows lessons 1, 2, 4 and 5 instead (steps opened by their links, ``?lesson=...&step=...``);
with ``--cycle views`` it opens Attributions, Take apart and What it learned, each run twice.

- N = 1: one session, ``--single-cycles`` cycles.
- N = ``--sessions``: that many sessions at once until ``--runs`` page runs are done; the
  server's memory (resident set of its process) is read before and after.
- Live views while training: the training samples/s of the runs, alternating windows with no
  session open and with ``--sessions`` sessions watching the Train page (its live part reruns
  itself every second, the browser's ``auto_rerun``), in the same runs; the ratio watching/none.

A page run is timed from sending ``rerun_script`` to receiving ``script_finished``. Everything
(server, training worker, these clients) shares the machine's cores, as a class's server would
not share them with its clients: the figures are an upper bound on the server's own cost.
The last line: ``serve: 30 sessions p95 X.XX s, Y.Y runs/s``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

RERUN = ""  # a cycle's step that reruns the page already open (as a widget change does)
CYCLES = {  # --cycle: what each session does, over and over (a page's url path, "?" its query string)
    "inspect": ("inspect_cnn", RERUN, RERUN, RERUN, "inspect_attention", "attributions"),
    # A class following the teacher through the lessons: a step opened by its link, a slider moved
    # (a rerun), the next steps; the attention step on the trained transformer, the RNN's paths.
    "lessons": ("lessons?lesson=01-convolution&step=1", RERUN, "lessons?lesson=01-convolution&step=3",
                "lessons?lesson=02-pooling&step=1", "lessons?lesson=04-recurrent&step=2",
                "lessons?lesson=05-attention&step=1"),
    # The views that take the model apart: attributions with their faithfulness table and sanity
    # check, switching parts off, what a filter wants and the data map.
    "views": ("attributions", RERUN, "take_apart", RERUN, "learned", RERUN),
}
CYCLE = CYCLES["inspect"]  # the one in use (main sets it from --cycle)
WATCHED_PAGE = "train"
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
            ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
CACHED_HASHES_KEPT = 2000  # message hashes a session says it holds (the browser's cache)
PAGE_RUN_TIMEOUT_S = 300
SERVER_START_TIMEOUT_S = 120
TRAINING = ("digits-cnn", "digits")  # what the two background runs train
TRAINING_RUNS = 2


# ---- the protocol client -----------------------------------------------------------------------
class Session:
    """One browser tab, as the server sees it: a websocket speaking Streamlit's protobuf messages."""

    def __init__(self, base_url: str):
        self.url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.ws = None
        self.page_hashes: dict[str, str] = {}  # url path -> page script hash (from the navigation message)
        self.page_hash = ""  # the page open now
        self.cached: deque[str] = deque(maxlen=CACHED_HASHES_KEPT)
        self.exceptions: list[str] = []  # tracebacks the pages showed (there should be none)
        self.auto_rerun: dict[str, float] = {}  # fragment id -> seconds between its reruns
        self.fragment_runs = 0
        self.elements: dict[str, int] = {}  # what the last page run drew: element type -> count
        self.references = 0  # messages of the last page run sent as a hash of one this session holds
        self._finished: asyncio.Future | None = None
        self._reader: asyncio.Task | None = None
        self._timers: list[asyncio.Task] = []

    async def open(self) -> None:
        self.ws = await connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60,
                                ping_interval=None)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()

    async def run_page(self, page: str = RERUN) -> float:
        """Open ``page`` (its url path; RERUN: rerun the page open now); seconds until it finished."""
        self._finished = asyncio.get_running_loop().create_future()
        self.elements, self.references = {}, 0
        started = time.perf_counter()
        await self._send_rerun(page)
        message = await asyncio.wait_for(self._finished, PAGE_RUN_TIMEOUT_S)
        if message is not None:
            raise RuntimeError(message)
        return time.perf_counter() - started

    async def _send_rerun(self, page: str = RERUN, fragment_id: str = "") -> None:
        back = BackMsg()
        state = back.rerun_script
        page, _, query = page.partition("?")
        state.query_string = query
        state.widget_states.SetInParent()
        state.cached_message_hashes.extend(self.cached)
        if page:
            state.page_name = page
            state.page_script_hash = self.page_hashes.get(page, "")
        else:
            state.page_script_hash = self.page_hash
        if fragment_id:
            state.fragment_id, state.is_auto_rerun = fragment_id, True
        await self.ws.send(back.SerializeToString())

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                self._handle(data)
        except Exception as error:  # the connection broke: whoever waits is told
            self._resolve(f"connection lost: {error!r}")
            return
        self._resolve("the server closed the connection")

    def _resolve(self, failure: str | None) -> None:
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(failure)

    def _handle(self, data: bytes) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self.cached.append(msg.hash)
        if kind == "ref_hash":
            self.references += 1
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element.WhichOneof("type")
            self.elements[element] = self.elements.get(element, 0) + 1
            if element == "exception":
                self.exceptions.append(msg.delta.new_element.exception.message)
        if kind == "navigation":
            self.page_hashes = {page.url_pathname: page.page_script_hash for page in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash or self.page_hash
            if not msg.metadata.run.fragment_ids:  # a full run: the browser drops its timers
                self._stop_timers()
        elif kind == "auto_rerun":
            fragment, every = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if self.auto_rerun.get(fragment) != every:
                self.auto_rerun[fragment] = every
                self._timers.append(asyncio.get_running_loop().create_task(self._rerun_every(fragment, every)))
        elif kind == "script_finished":
            if msg.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                self.fragment_runs += 1
            if msg.script_finished in FINISHED:
                self._resolve(None)

    def _stop_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.auto_rerun.clear()

    async def _rerun_every(self, fragment_id: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self._send_rerun(fragment_id=fragment_id)


# ---- the server ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, log_path: Path, options: list[str]) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on a free port with GLASSBOX_HOME=home; returns it and its URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.fileWatcherType", "none", "--server.port", str(port)]
    for option in options:
        name, _, value = option.partition("=")
        command += [f"--{name}", value]
    env = {**os.environ, "GLASSBOX_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise SystemExit(f"the server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    return server, url


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def stop_server(server: subprocess.Popen) -> None:
    for sig, grace_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=grace_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# ---- background training ------------------------------------------------------------------------
class Training:
    """Keeps TRAINING_RUNS runs queued or running in the server's run store, and measures them."""

    def __init__(self, home: Path):
        from training.datasets import load_dataset
        from training.jobs import Jobs
        from training.store import RunStore

        from models import presets
        from training.hyperparameters import default_hyperparameters

        self.jobs = Jobs(RunStore(home))
        preset, data = TRAINING
        self.spec, self.dataset = presets.get(preset), load_dataset(data)
        self.hp = default_hyperparameters(self.spec)
        self.hp.epochs = 1000  # the most allowed: a run lasts minutes and is replaced when it ends
        self.run_ids: list[str] = []

    def keep_going(self) -> None:
        active = [run for run in self.run_ids if self.jobs.status(run).active]
        for _ in range(TRAINING_RUNS - len(active)):
            self.run_ids.append(self.jobs.submit(self.spec, self.dataset, self.hp))
        self.jobs.reconcile()

    def stop_all(self) -> None:
        for run in self.run_ids:
            if self.jobs.status(run).active:
                self.jobs.stop(run, wait_s=5)

    def samples_per_s(self, start: float, end: float) -> float:
        """Training samples per second of training between ``start`` and ``end`` (wall clock),
        over every run: each run's samples between its first and last record in the window over
        the time between them (a run's start-up, and the queue's hand-over, are not training)."""
        samples = seconds = 0.0
        for run in self.run_ids:
            records = [r for r in self.jobs.metrics(run) if r["type"] == "train" and start <= r["time"] <= end]
            if len(records) >= 2:
                samples += (records[-1]["step"] - records[0]["step"]) * self.hp.batch_size
                seconds += records[-1]["time"] - records[0]["time"]
        return samples / seconds if seconds else float("nan")


async def keep_training(training: Training, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(training.keep_going)
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


# ---- the phases ------------------------------------------------------------------------------------
class Counter:
    def __init__(self, target: int):
        self.target, self.started = target, 0

    def take(self) -> bool:
        if self.started >= self.target:
            return False
        self.started += 1
        return True


async def session_cycles(url: str, counter: Counter, times: list[tuple[str, float]], errors: list[str]) -> None:
    session = Session(url)
    await session.open()
    try:
        while True:
            for page in CYCLE:
                if not counter.take():
                    return
                times.append((page or "rerun", await session.run_page(page)))
    except (RuntimeError, TimeoutError) as error:
        errors.append(f"{type(error).__name__}: {error}")
    finally:
        errors.extend(session.exceptions)
        await session.close()


async def page_runs(url: str, sessions: int, runs: int) -> dict:
    """``sessions`` sessions at once, ``runs`` page runs in all; the times and the wall time."""
    counter, times, errors = Counter(runs), [], []
    started = time.perf_counter()
    await asyncio.gather(*(session_cycles(url, counter, times, errors) for _ in range(sessions)))
    return {"times": times, "wall": time.perf_counter() - started, "errors": errors}


def summary(result: dict) -> str:
    seconds = sorted(t for _, t in result["times"])
    if not seconds:
        return "no page run finished"
    p95 = seconds[min(len(seconds) - 1, int(round(0.95 * (len(seconds) - 1))))]
    return (f"{len(seconds)} page runs: p50 {statistics.median(seconds):.2f} s, p95 {p95:.2f} s, "
            f"max {seconds[-1]:.2f} s, {len(seconds) / result['wall']:.1f} runs/s")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def watching(url: str, sessions: int, training: Training, window: float) -> tuple[list, list, int]:
    """Alternate windows with no session and with ``sessions`` watching the Train page."""
    quiet, watched, fragment_runs = [], [], 0
    for _ in range(2):
        await asyncio.sleep(2)  # let the last window's work drain
        start = time.time()
        await asyncio.sleep(window)
        quiet.append(training.samples_per_s(start, time.time()))
        open_sessions = [Session(url) for _ in range(sessions)]
        await asyncio.gather(*(s.open() for s in open_sessions))
        await asyncio.gather(*(s.run_page(WATCHED_PAGE) for s in open_sessions))
        start = time.time()
        await asyncio.sleep(window)
        watched.append(training.samples_per_s(start, time.time()))
        fragment_runs += sum(s.fragment_runs for s in open_sessions)
        await asyncio.gather(*(s.close() for s in open_sessions))
    return quiet, watched, fragment_runs


async def main_async(args) -> None:
    with tempfile.TemporaryDirectory(prefix="glassbox-serve-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        log_path = Path(tmp) / "server.log"
        server, url = start_server(home, log_path, args.streamlit_option)
        training = Training(home)
        stop = asyncio.Event()
        keeper = asyncio.get_running_loop().create_task(keep_training(training, stop))
        try:
            print(f"server {url} (pid {server.pid}) | {os.cpu_count()} cores | load average "
                  f"{os.getloadavg()[0]:.1f} | options {' '.join(args.streamlit_option) or '(config.toml)'}",
                  flush=True)
            warm = await page_runs(url, 1, len(CYCLE))  # first imports, datasets, caches
            print(f"warm-up (first session): {summary(warm)}", flush=True)
            single = await page_runs(url, 1, args.single_cycles * len(CYCLE))
            print(f"N = 1: {summary(single)}", flush=True)
            for page in dict.fromkeys(p for p, _ in single["times"]):
                print(f"    {page:<18} median {statistics.median(t for p, t in single['times'] if p == page):.3f} s")
            before = rss_mb(server.pid)
            many = await page_runs(url, args.sessions, args.runs)
            after = rss_mb(server.pid)
            print(f"N = {args.sessions}: {summary(many)}", flush=True)
            print(f"server memory: {before:.0f} MB before, {after:.0f} MB after {len(many['times'])} page runs "
                  f"({after - before:+.0f} MB)", flush=True)
            errors = warm["errors"] + single["errors"] + many["errors"]
            if errors:
                print(f"{len(errors)} errors, the first: {errors[0][:500]}")
            if args.window > 0:
                quiet, watched, fragments = await watching(url, args.sessions, training, args.window)
                ratio = statistics.mean(watched) / statistics.mean(quiet)
                print(f"training while {args.sessions} sessions watch the Train page: "
                      f"{' / '.join(f'{q:,.0f}' for q in quiet)} samples/s with none, "
                      f"{' / '.join(f'{w:,.0f}' for w in watched)} watching ({fragments} live-view reruns): "
                      f"ratio {ratio:.2f}", flush=True)
            seconds = [t for _, t in many["times"]]
            print(f"serve: {args.sessions} sessions p95 {percentile(seconds, 0.95):.2f} s, "
                  f"{len(seconds) / many['wall']:.1f} runs/s")
        finally:
            stop.set()
            await keeper
            training.stop_all()
            stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--runs", type=int, default=2000, help="page runs by the sessions together")
    parser.add_argument("--single-cycles", type=int, default=3, help="cycles of six page runs with one session")
    parser.add_argument("--window", type=float, default=15.0,
                        help="seconds of each training window, none vs watching (0: skip)")
    parser.add_argument("--cycle", choices=sorted(CYCLES), default="inspect",
                        help="inspect: Feature maps, Attention, Attributions; lessons: steps of lessons 1, 2, 4, 5; "
                             "views: Attributions, Take apart, What it learned")
    parser.add_argument("--streamlit-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a server option over config.toml, e.g. runner.postScriptGC=true (repeatable)")
    args = parser.parse_args()
    global CYCLE
    CYCLE = CYCLES[args.cycle]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
