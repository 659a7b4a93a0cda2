"""Run the benchmark: ``python -m bench.run [--deliveries N] [--waiting N] [--servers ...]``.

Everything runs on 127.0.0.1: a receiver process, a Temporal dev server per mode (in-memory
and SQLite file), the floor's worker, and Hookline's worker and API as separate processes so
their CPU and memory can be told apart. Every load is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import psutil
from temporalio.client import Client

from bench.floor import FloorInput, FloorWorkflow, connect
from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret, sign
from hookline.temporal.dev_server import dev_server_command, stop_dev_server

API_KEY = "bench-key"
PHASE_DEADLINE_S = 600.0
ROOT = Path(__file__).resolve().parent.parent
# As many polls as Hookline's worker has (the environment's HOOKLINE_WORKER_POLLERS or its
# default): the tuned floor's worker gets the same.
POLLERS = int(
    os.environ.get("HOOKLINE_WORKER_POLLERS", Settings.model_fields["worker_pollers"].default)
)
BODY = json.dumps({"type": "batch.completed", "batch": {"id": "b_123", "rows": 1000}})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    name: str
    deliveries: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    note: str = ""
    timeline: str = ""
    """Submissions and receipts per second (``--timeline``)."""

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0

    def row(self, ratio: float | None) -> str:
        """The run's table row; ``ratio``: its deliveries/s to the naive floor's."""
        lat = sorted(self.latencies)

        def pct(p: float) -> str:
            if not lat:
                return "-"
            return f"{lat[min(len(lat) - 1, int(p * len(lat)))] * 1000:.0f}"

        cpu = " ".join(f"{k}={v / self.deliveries * 1000:.1f}ms" for k, v in self.cpu.items())
        rss = " ".join(f"{k}={v:.0f}MB" for k, v in self.peak_rss_mb.items())
        vs_floor = f"{ratio:.2f}x" if ratio else "-"
        return (
            f"| {self.name} | {self.deliveries} | {self.rate:.1f} | {pct(0.5)} / {pct(0.95)} / "
            f"{pct(0.99)} | {cpu or '-'} | {rss or '-'} | {vs_floor} |"
        )


class Sampler:
    """Samples CPU time and peak RSS of named processes (and their children)."""

    def __init__(self, processes: dict[str, int]) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._start = {name: self._cpu(p) for name, p in self._procs.items()}
        self.peak = {name: 0.0 for name in self._procs}
        self._task = asyncio.ensure_future(self._sample())

    @staticmethod
    def _tree(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _cpu(self, proc: psutil.Process) -> float:
        total = 0.0
        for p in self._tree(proc):
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    async def _sample(self) -> None:
        while True:
            for name, proc in self._procs.items():
                rss = 0
                for p in self._tree(proc):
                    try:
                        rss += p.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
                self.peak[name] = max(self.peak[name], rss / 2**20)
            await asyncio.sleep(0.25)

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        self._task.cancel()
        cpu = {name: self._cpu(p) - self._start[name] for name, p in self._procs.items()}
        return cpu, dict(self.peak)


@contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_dev_server(proc)


async def wait_until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark gave up waiting for {what}")
        await asyncio.sleep(0.05)


class Receiver:
    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}"

    async def stats(self, full: bool = False) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/stats", params={"full": "1" if full else "0"}) as r:
            return cast(dict[str, Any], await r.json())

    async def reset(self) -> None:
        async with self.http.post(f"{self.base}/reset"):
            pass

    async def wait_count(self, count: int, timeout: float = PHASE_DEADLINE_S) -> dict[str, float]:
        async def reached() -> bool:
            return int((await self.stats())["count"]) >= count

        await wait_until(reached, f"{count} deliveries", timeout)
        return cast(dict[str, float], (await self.stats(full=True))["received"])


async def bounded(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    queue = iter(range(n))

    async def lane() -> None:
        for i in queue:
            await job(i)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def raw_limit(receiver: Receiver, n: int) -> Result:
    """Signed POSTs from a plain aiohttp client: no durability at all."""
    await receiver.reset()
    secret = generate_secret()
    sent: dict[str, float] = {}
    body = BODY.encode()

    async with aiohttp.ClientSession() as http:

        async def post(i: int) -> None:
            event_id = f"raw_{i}"
            ts = int(time.time())
            sent[f"{event_id} /raw"] = time.time()
            headers = {
                "content-type": "application/json",
                "webhook-id": event_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(secret, event_id, ts, body),
            }
            async with http.post(f"{receiver.base}/raw", data=body, headers=headers) as r:
                await r.read()

        start = time.time()
        await bounded(n, 64, post)
        received = await receiver.wait_count(n)
    return _result("raw aiohttp POST (no durability)", sent, received, start)


def _result(name: str, sent: dict[str, float], received: dict[str, float], start: float) -> Result:
    latencies = [received[k] - t for k, t in sent.items() if k in received]
    end = max(received.values())
    timeline = (
        f"  {name}, per second from the first submission:\n"
        f"    deliveries submitted {_per_second(sent.values(), start, end)}\n"
        f"    deliveries received  {_per_second(received.values(), start, end)}"
    )
    return Result(name, len(latencies), end - start, latencies, timeline=timeline)


def _per_second(times: Iterable[float], start: float, end: float) -> str:
    counts = Counter(int(t - start) for t in times)
    return " ".join(f"{counts[second]:3d}" for second in range(int(end - start) + 1))


async def floor(
    address: str, receiver: Receiver, n: int, server_pid: int, pollers: int | None = None
) -> Result:
    """The floor's run: its worker with the SDK's defaults, or polling as Hookline's does."""
    await receiver.reset()
    queue = f"floor-{uuid.uuid4()}"
    tuning = [] if pollers is None else [str(pollers)]
    with process([sys.executable, "-m", "bench.floor", address, queue, *tuning]) as worker:
        # Tuned, the benchmark starts workflows as Hookline's API does: no gRPC compression.
        client = await connect(address, tuned=pollers is not None)
        secret = generate_secret()
        # Warm up: the clock starts once the worker process is up and polling.
        await client.execute_workflow(
            FloorWorkflow.run,
            FloorInput(f"{receiver.base}/warmup", "warmup", BODY, secret),
            id=f"floor-{queue}-warmup",
            task_queue=queue,
        )
        await receiver.reset()
        sampler = Sampler({"server": server_pid, "worker": worker.pid})
        sent: dict[str, float] = {}

        async def start_one(i: int) -> None:
            event_id = f"floor_{i}"
            sent[f"{event_id} /floor"] = time.time()
            await client.start_workflow(
                FloorWorkflow.run,
                FloorInput(f"{receiver.base}/floor", event_id, BODY, secret),
                id=f"floor-{queue}-{i}",
                task_queue=queue,
            )

        start = time.time()
        await bounded(n, 32, start_one)
        received = await receiver.wait_count(n)
        name = "Temporal floor (1 workflow + 1 activity)"
        if pollers is not None:
            name = f"Temporal floor, tuned as Hookline's worker ({pollers} pollers)"
        result = _result(name, sent, received, start)
        result.cpu, result.peak_rss_mb = sampler.stop()
    return result


@dataclass
class HooklineProcs:
    api: str
    http: aiohttp.ClientSession
    pids: dict[str, int]

    async def call(self, method: str, path: str, body: object) -> dict[str, Any]:
        async with self.http.request(method, self.api + path, json=body) as r:
            data = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return cast(dict[str, Any], data)


@contextmanager
def hookline(
    address: str, data_dir: Path, worker_env: Mapping[str, str] | None = None, workers: int = 1
) -> Iterator[tuple[str, dict[str, int]]]:
    """Hookline's worker and API processes: the API's URL, and their pids (``worker``, then
    ``worker2``... for more than one worker process, all on the same task queue).

    Args:
        worker_env: More environment for the worker processes only (their settings).
    """
    port = free_port()
    env = {
        "HOOKLINE_TEMPORAL_ADDRESS": address,
        "HOOKLINE_TASK_QUEUE": f"bench-{uuid.uuid4()}",
        "HOOKLINE_DATA_DIR": str(data_dir),
        "HOOKLINE_API_KEYS": API_KEY,
        "HOOKLINE_API_PORT": str(port),
        # The benchmark measures throughput: the per-key request rate limit stays out of it.
        "HOOKLINE_API_RATE_LIMIT_PER_S": "none",
    }
    hookline_cli = str(Path(sys.executable).parent / "hookline")
    with ExitStack() as stack:
        pids = {
            f"worker{n + 1 if n else ''}": stack.enter_context(
                process([hookline_cli, "worker"], {**env, **(worker_env or {})})
            ).pid
            for n in range(workers)
        }
        api = stack.enter_context(process([hookline_cli, "api"], env))
        yield f"http://127.0.0.1:{port}", {**pids, "api": api.pid}


async def hookline_run(
    procs: HooklineProcs,
    receiver: Receiver,
    server_pid: int,
    *,
    name: str,
    endpoints: int,
    events: int,
    concurrency: int = 32,
    rate: float | None = None,
) -> Result:
    await receiver.reset()
    app = await procs.call("POST", "/v1/apps", {"name": name})
    for i in range(endpoints):
        await procs.call(
            "POST", f"/v1/apps/{app['id']}/endpoints", {"url": f"{receiver.base}/e{i}"}
        )
    sampler = Sampler({"server": server_pid, **procs.pids})
    sent: dict[str, float] = {}
    accept_times: list[float] = []
    start = time.time()

    async def submit(i: int) -> None:
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.time()))
        event_id = f"evt_{uuid.uuid4().hex}"
        before = time.time()
        for e in range(endpoints):
            sent[f"{event_id} /e{e}"] = before
        await procs.call(
            "POST",
            f"/v1/apps/{app['id']}/events",
            {"id": event_id, "type": "batch.completed", "payload": json.loads(BODY)},
        )
        accept_times.append(time.time() - before)

    await bounded(events, concurrency, submit)
    accepted_in = time.time() - start
    received = await receiver.wait_count(events * endpoints)
    result = _result(name, sent, received, start)
    result.cpu, result.peak_rss_mb = sampler.stop()
    result.note = (
        f"ingest {events / accepted_in:.0f} events/s accepted; "
        f"accept p50 {statistics.median(accept_times) * 1000:.0f} ms"
    )
    return result


async def warm_up(procs: HooklineProcs, receiver: Receiver) -> None:
    """One delivery end to end, so the clock starts with the worker polling."""
    await receiver.reset()
    app = await procs.call("POST", "/v1/apps", {"name": "warm-up"})
    await procs.call("POST", f"/v1/apps/{app['id']}/endpoints", {"url": f"{receiver.base}/w"})
    await procs.call("POST", f"/v1/apps/{app['id']}/events", {"type": "w.up", "payload": {}})
    await receiver.wait_count(1, timeout=60)


async def fan_out(procs: HooklineProcs, receiver: Receiver, endpoints: int) -> str:
    await receiver.reset()
    app = await procs.call("POST", "/v1/apps", {"name": "fan-out"})
    for i in range(endpoints):
        await procs.call(
            "POST", f"/v1/apps/{app['id']}/endpoints", {"url": f"{receiver.base}/f{i}"}
        )
    start = time.time()
    await procs.call(
        "POST", f"/v1/apps/{app['id']}/events", {"type": "batch.completed", "payload": {}}
    )
    accepted = time.time() - start
    await receiver.wait_count(endpoints)
    delivered = time.time() - start
    return (
        f"one event to {endpoints} endpoints: accepted in {accepted:.2f} s, "
        f"all delivered in {delivered:.1f} s"
    )


async def waiting_cost(procs: HooklineProcs, receiver: Receiver, n: int, server_pid: int) -> str:
    await receiver.reset()
    app = await procs.call("POST", "/v1/apps", {"name": "waiting"})
    await procs.call(
        "POST",
        f"/v1/apps/{app['id']}/endpoints",
        {
            "url": f"{receiver.base}/fail",
            "retry": {"initial_interval_s": 3600, "max_interval_s": 3600},
        },
    )

    async def submit(_i: int) -> None:
        await procs.call(
            "POST", f"/v1/apps/{app['id']}/events", {"type": "job.failed", "payload": {}}
        )

    start = time.time()
    await bounded(n, 32, submit)

    async def all_attempted() -> bool:
        return int((await receiver.stats())["requests"]) >= n

    await wait_until(all_attempted, f"{n} first attempts", PHASE_DEADLINE_S)
    loaded = time.time() - start
    await asyncio.sleep(2)  # let the last workflow tasks settle before the quiet window
    sampler = Sampler({"server": server_pid, **procs.pids})
    window = 10.0
    await asyncio.sleep(window)
    cpu, rss = sampler.stop()
    return (
        f"{n} deliveries backing off (503, next attempt in 1 h), loaded in {loaded:.0f} s; "
        f"over {window:.0f} s idle: worker CPU {cpu['worker']:.2f} s "
        f"({cpu['worker'] / window * 100:.1f}% of a core), API CPU {cpu['api']:.2f} s, "
        f"server CPU {cpu['server']:.2f} s; RSS worker {rss['worker']:.0f} MB, "
        f"API {rss['api']:.0f} MB, server {rss['server']:.0f} MB"
    )


@asynccontextmanager
async def dev_server(db: Path | None) -> AsyncIterator[tuple[str, int]]:
    """A fresh dev server (in memory, or on the SQLite file ``db``): its address and pid.

    Every contender gets its own, so none pays for what the one before left behind (the
    visibility records still being written, a larger database)."""
    port = free_port()
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    with process(dev_server_command(port, None, db)) as server:
        address = f"127.0.0.1:{port}"
        await wait_until(lambda: _reachable(address), "the dev server", 30)
        yield address, server.pid


@asynccontextmanager
async def running_hookline(
    db: Path | None,
    data_dir: Path,
    receiver: Receiver,
    worker_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> AsyncIterator[tuple[HooklineProcs, int]]:
    """Hookline's worker and API on a fresh dev server, warmed up: them, and the server's pid
    (``worker_env``, ``workers``: more environment for the workers, and how many worker
    processes, as ``hookline()`` takes them)."""
    async with dev_server(db) as (address, server_pid):
        with hookline(address, data_dir, worker_env, workers) as (api, pids):
            async with aiohttp.ClientSession(
                headers={"authorization": f"Bearer {API_KEY}"}
            ) as http:
                procs = HooklineProcs(api, http, pids)
                await wait_until(lambda: _api_up(procs), "the Hookline API", 30)
                await warm_up(procs, receiver)
                yield procs, server_pid


@dataclass
class Round:
    """One round of a mode: each contender once, each on its own fresh server."""

    floor: Result
    tuned: Result
    one: Result
    ten: Result

    def ratios(self) -> tuple[float, float, float, float]:
        """Hookline's 1- and 10-endpoint rates to the naive floor's, then to the tuned one's."""
        return (
            self.one.rate / self.floor.rate,
            self.ten.rate / self.floor.rate,
            self.one.rate / self.tuned.rate,
            self.ten.rate / self.tuned.rate,
        )


async def run_mode(
    mode: str, receiver: Receiver, args: argparse.Namespace, lines: list[str]
) -> None:
    """``args.rounds`` rounds of every contender, interleaved so that a machine that slows
    down or speeds up during the benchmark weighs on all of them alike; then the table, of
    each contender's median run, with Hookline's median ratio to the floor of its round."""
    title = "SQLite file (WAL)" if mode == "file" else "in-memory"
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as tmp_dir:
        tmp = Path(tmp_dir)

        def db(name: str) -> Path | None:
            return tmp / name / "temporal.db" if mode == "file" else None

        rounds: list[Round] = []
        half: Result | None = None
        extras: list[str] = []
        for n in range(args.rounds):
            async with dev_server(db(f"floor-{n}")) as (address, server_pid):
                floor_result = await floor(address, receiver, args.deliveries, server_pid)
            async with dev_server(db(f"tuned-{n}")) as (address, server_pid):
                tuned = await floor(address, receiver, args.deliveries, server_pid, POLLERS)
            async with running_hookline(db(f"one-{n}"), tmp / f"one-{n}", receiver) as (
                procs,
                server_pid,
            ):
                one = await hookline_run(
                    procs, receiver, server_pid, name="Hookline, 1 endpoint",
                    endpoints=1, events=args.deliveries,
                )  # fmt: skip
                if half is None:
                    half = await hookline_run(
                        procs, receiver, server_pid, name="Hookline at half saturation",
                        endpoints=1, events=max(20, args.deliveries // 2),
                        rate=one.rate / 2, concurrency=64,
                    )  # fmt: skip
            async with running_hookline(db(f"ten-{n}"), tmp / f"ten-{n}", receiver) as (
                procs,
                server_pid,
            ):
                ten = await hookline_run(
                    procs, receiver, server_pid, name="Hookline, 10 endpoints",
                    endpoints=10, events=max(1, args.deliveries // 10),
                )  # fmt: skip
                if n == args.rounds - 1 and mode == args.servers[0]:
                    extras.append(await fan_out(procs, receiver, args.fan_out))
                    print(f"- {extras[-1]}", flush=True)
                    if args.waiting:
                        extras.append(await waiting_cost(procs, receiver, args.waiting, server_pid))
                        print(f"- {extras[-1]}", flush=True)
            rounds.append(Round(floor_result, tuned, one, ten))
            print(f"{title}, {_round_line(n, rounds[-1])}", flush=True)
        assert half is not None
        lines += _mode_table(title, rounds, half, extras)
        if args.timeline:
            runs = [_median_run([getattr(r, k) for r in rounds]) for k in ("floor", "tuned")]
            runs += [_median_run([getattr(r, k) for r in rounds]) for k in ("one", "ten")]
            lines += ["", "```", *(run.timeline for run in [*runs, half]), "```"]


def _round_line(n: int, r: Round) -> str:
    one, ten, one_tuned, ten_tuned = r.ratios()
    return (
        f"round {n + 1}: floor {r.floor.rate:.1f}/s, tuned floor {r.tuned.rate:.1f}/s, "
        f"Hookline 1 endpoint {r.one.rate:.1f}/s ({one:.2f}x; {one_tuned:.2f}x tuned), "
        f"10 endpoints {r.ten.rate:.1f}/s ({ten:.2f}x; {ten_tuned:.2f}x tuned)"
    )


def _median_run(runs: list[Result]) -> Result:
    """The run with the median deliveries/s (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def _mode_table(title: str, rounds: list[Round], half: Result, extras: list[str]) -> list[str]:
    ratios = list(zip(*(r.ratios() for r in rounds), strict=True))
    one, ten, one_tuned, ten_tuned = (statistics.median_low(column) for column in ratios)
    floor_median = _median_run([r.floor for r in rounds])
    lines = [
        f"\n### Dev server: {title}\n",
        "| run | deliveries | deliveries/s | latency p50 / p95 / p99 ms "
        "| CPU per delivery | peak RSS | vs floor |",
        "|---|---|---|---|---|---|---|",
        floor_median.row(None),
        _median_run([r.tuned for r in rounds]).row(
            statistics.median_low(r.tuned.rate / r.floor.rate for r in rounds)
        ),
        _median_run([r.one for r in rounds]).row(one),
        _median_run([r.ten for r in rounds]).row(ten),
        half.row(half.rate / floor_median.rate),
        "",
        f"Each row but the last is the median of {len(rounds)} runs by deliveries/s, and its "
        '"vs floor" the median of each round\'s ratio to the naive floor of that round (the '
        "lower middle one of an even count). Half saturation is one run, in round 1, paced "
        "at half of that round's 1-endpoint rate; its ratio is to the median floor.",
        "",
    ]
    lines += [f"- {_round_line(n, r)}" for n, r in enumerate(rounds)]
    lines.append(
        f"- against the tuned floor: {one_tuned:.2f}x (1 endpoint), "
        f"{ten_tuned:.2f}x (10 endpoints), medians"
    )
    lines.append(f"- 1 endpoint (median run): {_median_run([r.one for r in rounds]).note}")
    lines.append(f"- 10 endpoints (median run): {_median_run([r.ten for r in rounds]).note}")
    lines += [f"- {extra}" for extra in extras]
    return lines


async def _reachable(address: str) -> bool:
    try:
        await (await Client.connect(address)).count_workflows()
        return True
    except Exception:
        return False


async def _api_up(procs: HooklineProcs) -> bool:
    try:
        async with procs.http.get(procs.api + "/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=1000, help="deliveries per run")
    parser.add_argument("--raw", type=int, default=3000, help="POSTs in the raw-limit run")
    parser.add_argument("--fan-out", type=int, default=1000, help="endpoints in the fan-out run")
    parser.add_argument(
        "--waiting", type=int, default=10000, help="deliveries left backing off (0 to skip)"
    )
    parser.add_argument(
        "--servers", nargs="+", default=["memory", "file"], choices=["memory", "file"]
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every contender, interleaved"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print each run's submissions and receipts per second",
    )
    args = parser.parse_args()

    port = free_port()
    lines = [
        "## Hookline benchmark",
        "",
        machine_line(),
        f"Command: python -m bench.run {' '.join(sys.argv[1:])}".rstrip(),
    ]
    with process([sys.executable, "-m", "bench.receiver", str(port)]):
        async with aiohttp.ClientSession() as http:
            receiver = Receiver(http, port)
            await wait_until(lambda: receiver_up(receiver), "the receiver", 30)
            raw = await raw_limit(receiver, args.raw)
            lines.append(f"\nRaw limit: {raw.rate:.0f} signed POSTs/s (aiohttp, 64 in flight)")
            print(lines[-1], flush=True)
            for mode in args.servers:
                await run_mode(mode, receiver, args, lines)
    print("\n".join(lines))


def machine_line() -> str:
    """The machine the benchmark runs on, as its reports open."""
    return (
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )


async def receiver_up(receiver: Receiver) -> bool:
    """Whether the receiver process answers yet."""
    try:
        await receiver.stats()
        return True
    except aiohttp.ClientError:
        return False


if __name__ == "__main__":
    asyncio.run(main())
