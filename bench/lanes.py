"""Lane scenarios: ``python -m bench.lanes --scenario throttle|outage|isolation|order|all``.

- **throttle**: events at once to an endpoint with ``rate_limit_per_s``: its busiest second,
  its rate from first to last receipt, and nothing lost.
- **outage**: an endpoint answering 503 for a set time while deliveries to it are accepted,
  then answering again: the attempts made while it was down, the most requests it sees at
  once after, and how long its backlog takes to drain against what its limits allow. Run
  with the circuit breaker as configured and with it off
  (``HOOKLINE_ENDPOINT_BREAKER_FAILURES=0`` for the worker), interleaved.
- **isolation**: a healthy endpoint alone, then beside endpoints whose receivers hang until
  the attempt timeout, each sent the same events per second: the healthy one's p99
  ingest-to-receipt latency in both, interleaved.
- **order**: events on a few ordering keys to a ``fifo`` endpoint whose receiver answers 503
  to a share of requests at random, each key's events submitted one after the other, worked
  by two worker processes, one SIGKILLed (the one holding an attempt open) after a third of
  the receipts: events lost, out of their key's order, or received twice; with the breaker
  off (30% of 503s would trip it), or as configured (``--order-breaker``).

Each run has a fresh in-memory dev server and Hookline's worker and API processes
(``bench.run``'s helpers); one receiver process (``bench.receiver``) serves every endpoint
on 127.0.0.1, its behaviour set path by path. Every load is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import aiohttp
import psutil

from bench.run import (
    HooklineProcs,
    Receiver,
    Sampler,
    bounded,
    free_port,
    machine_line,
    process,
    receiver_up,
    running_hookline,
    wait_until,
)

BREAKER_SETTING = "HOOKLINE_ENDPOINT_BREAKER_FAILURES"
SENDS_IN_FLIGHT = 32
"""Event submissions the benchmark has open at once."""
ENDPOINT_CONCURRENCY_DEFAULT = 10
"""HOOKLINE_ENDPOINT_MAX_CONCURRENT_ATTEMPTS's default: an endpoint's limit per worker."""


@dataclass(frozen=True)
class Request:
    """One request as the receiver logged it."""

    path: str
    webhook_id: str | None
    start: float
    end: float | None
    status: int | None
    peer_port: int | None = None
    """The sender's TCP port (which process holds the connection)."""


class LaneReceiver(Receiver):
    """The receiver, with per-path behaviour and its request log."""

    async def behave(
        self,
        prefix: str,
        mode: str,
        delay_s: float = 0.0,
        fail_ratio: float = 0.0,
        seed: int | None = None,
    ) -> float:
        """Make paths under ``prefix`` answer ``ok`` (after ``delay_s``), ``fail``, ``hang``
        or ``flaky`` (503 to ``fail_ratio`` of requests at random from ``seed``, after
        ``delay_s``).

        Returns:
            The receiver's time when the change took effect.
        """
        body: dict[str, Any] = {"prefix": prefix, "mode": mode, "delay_s": delay_s}
        if mode == "flaky":
            body |= {"fail_ratio": fail_ratio, "seed": seed}
        async with self.http.post(f"{self.base}/behave", json=body) as r:
            r.raise_for_status()
            return float((await r.json())["at"])

    async def requests(self, prefix: str) -> list[Request]:
        """Every request logged under ``prefix``, in arrival order."""
        async with self.http.get(f"{self.base}/log") as r:
            rows = cast(list[list[Any]], await r.json())
        return [Request(*row) for row in rows if str(row[0]).startswith(prefix)]

    async def wait_receipts(self, count: int, prefix: str, timeout: float) -> bool:
        """Wait until ``count`` deliveries were received since the last reset, and every
        request under ``prefix`` has been answered; whether that was before ``timeout``
        seconds passed."""

        async def answered() -> bool:
            return all(r.end is not None for r in await self.requests(prefix))

        deadline = time.monotonic() + timeout
        try:
            await self.wait_count(count, timeout)
            await wait_until(answered, f"answers under {prefix}", deadline - time.monotonic())
        except TimeoutError:
            return False
        return True


@dataclass(frozen=True)
class Figure:
    """One measured figure, as a row of the final table."""

    scenario: str
    run: str
    name: str
    measured: str
    target: str = ""
    met: bool | None = None

    def row(self) -> str:
        met = "-" if self.met is None else ("yes" if self.met else "**no**")
        return (
            f"| {self.scenario} | {self.run} | {self.name} | {self.measured} "
            f"| {self.target or '-'} | {met} |"
        )


def first_receipts(requests: Iterable[Request]) -> dict[str, float]:
    """Each webhook id's first 2xx arrival."""
    firsts: dict[str, float] = {}
    for request in requests:
        if request.webhook_id and request.status is not None and 200 <= request.status < 300:
            firsts.setdefault(request.webhook_id, request.start)
    return firsts


def busiest_window(times: Iterable[float], width: float = 1.0) -> int:
    """The most of ``times`` in any window ``[t, t + width)`` (sliding, from each time)."""
    ordered = sorted(times)
    most, j = 0, 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < start + width:
            j += 1
        most = max(most, j - i)
    return most


def max_concurrent(requests: Iterable[Request], open_until: float) -> int:
    """The most requests open at once (one still open counts until ``open_until``)."""
    edges: list[tuple[float, int]] = []
    for request in requests:
        end = request.end if request.end is not None else open_until
        edges += [(request.start, 1), (end, -1)]
    most = now = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


def percentile(values: list[float], p: float) -> float:
    """The ``p`` quantile (0-1) of ``values``, nearest rank; NaN if there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


async def create_app(procs: HooklineProcs, name: str) -> str:
    return str((await procs.call("POST", "/v1/apps", {"name": name}))["id"])


async def create_endpoint(procs: HooklineProcs, app_id: str, fields: dict[str, Any]) -> str:
    return str((await procs.call("POST", f"/v1/apps/{app_id}/endpoints", fields))["id"])


async def send_event(procs: HooklineProcs, app_id: str, event_id: str, event_type: str) -> None:
    body = {"id": event_id, "type": event_type, "payload": {"id": event_id}}
    await procs.call("POST", f"/v1/apps/{app_id}/events", body)


async def lane_health(procs: HooklineProcs, app_id: str, endpoint_id: str) -> dict[str, Any]:
    return await procs.call("GET", f"/v1/apps/{app_id}/endpoints/{endpoint_id}/health", None)


async def paced(
    count: int,
    per_s: float,
    deadline: float,
    job: Callable[[int], Awaitable[None]],
    concurrency: int = SENDS_IN_FLIGHT,
) -> int:
    """Run ``job(i)`` for ``i < count``, the i-th at ``i / per_s`` seconds from now, skipping
    those due after ``deadline`` (a time); how many ran."""
    start = time.time()
    ran = 0

    async def one(i: int) -> None:
        nonlocal ran
        due = start + i / per_s
        if due > deadline:
            return
        await asyncio.sleep(max(0.0, due - time.time()))
        await job(i)
        ran += 1

    await bounded(count, concurrency, one)
    return ran


async def throttle(receiver: LaneReceiver, tmp: Path, args: argparse.Namespace) -> list[Figure]:
    """Submit ``--throttle-events`` events at once to an endpoint limited to
    ``--throttle-rate`` attempts a second, and see when they arrive."""
    n, rate = args.throttle_events, args.throttle_rate
    run = f"{n} events at once, rate_limit_per_s={rate:g}"
    async with running_hookline(None, tmp / "throttle", receiver) as (procs, _):
        await receiver.reset()
        app = await create_app(procs, "throttle")
        fields = {"url": f"{receiver.base}/throttle", "rate_limit_per_s": rate}
        await create_endpoint(procs, app, fields)
        start = time.time()
        await bounded(n, SENDS_IN_FLIGHT, lambda i: send_event(procs, app, f"thr_{i}", "t.x"))
        accepted_in = time.time() - start
        await receiver.wait_receipts(n, "/throttle", timeout=n / rate + args.grace_s)
        requests = await receiver.requests("/throttle")
    times = sorted(first_receipts(requests).values())
    burst = max(1, math.floor(rate))
    busiest = busiest_window(times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    overall = (len(times) - 1) / span if span else 0.0
    gap = max((b - a for a, b in pairwise(times)), default=0.0)
    lost = n - len(times)
    print(
        f"throttle: accepted {n} in {accepted_in:.1f} s; receipts per second from the first: "
        + " ".join(str(c) for c in _per_second(times)),
        flush=True,
    )
    return [
        Figure(
            "throttle",
            run,
            "busiest 1 s window (sliding)",
            f"{busiest}",
            f"≤ {burst + 1}",
            busiest <= burst + 1,
        ),
        Figure(
            "throttle",
            run,
            "rate, first → last receipt",
            f"{overall:.2f}/s ({len(times) - 1} intervals in {span:.1f} s)",
            f"{0.9 * rate:g}-{rate:g}/s",
            0.9 * rate <= overall <= rate,
        ),
        Figure("throttle", run, "longest pause between receipts", f"{gap:.1f} s"),
        Figure("throttle", run, "lost", f"{lost}", "0", lost == 0),
        Figure("throttle", run, "requests beyond one per event", f"{len(requests) - len(times)}"),
    ]


def _per_second(times: list[float]) -> list[int]:
    if not times:
        return []
    counts = [0] * (int(times[-1] - times[0]) + 1)
    for t in times:
        counts[int(t - times[0])] += 1
    return counts


@dataclass
class OutageRun:
    """What one outage run measured."""

    name: str
    accepted_in: float
    down_s: float
    attempts_down: int
    state_at_end: str
    max_concurrent: int
    drain_s: float
    first_ok_s: float
    """From when it came back to its first 2xx."""
    drain_rate: float
    """Deliveries a second from the first 2xx to the last."""
    allowed_s: float
    lost: int
    extra: int


async def outage_run(
    receiver: LaneReceiver, tmp: Path, args: argparse.Namespace, breaker_off: bool
) -> OutageRun:
    """One outage: ``--outage-deliveries`` deliveries accepted, evenly over the first 80% of
    ``--outage-s`` seconds of 503s, then the endpoint answers again after
    ``--outage-latency-ms`` each time, until every delivery arrived."""
    n, down_s = args.outage_deliveries, args.outage_s
    rate, in_flight, latency_s = (
        args.outage_rate,
        args.outage_in_flight,
        args.outage_latency_ms / 1e3,
    )
    env = {BREAKER_SETTING: "0"} if breaker_off else None
    name = "breaker off" if breaker_off else "breaker as configured"
    allowed_s = n / min(rate, in_flight / latency_s) if latency_s else n / rate
    async with running_hookline(None, tmp / f"outage-{time.time_ns()}", receiver, env) as (
        procs,
        _,
    ):
        await receiver.reset()
        down_at = await receiver.behave("/outage", "fail")
        app = await create_app(procs, "outage")
        endpoint = await create_endpoint(
            procs,
            app,
            {
                "url": f"{receiver.base}/outage",
                "rate_limit_per_s": rate,
                "max_in_flight": in_flight,
                "retry": {
                    "initial_interval_s": 1,
                    "backoff_coefficient": 2,
                    "max_interval_s": args.outage_backoff_s,
                    # Far past the outage and the drain: no delivery may run out of its window.
                    "window_s": down_s * 3 + allowed_s * 3 + 900,
                },
            },
        )

        async def send_all() -> float:
            await paced(
                n,
                n / (0.8 * down_s),
                down_at + down_s * 2 + 120,
                lambda i: send_event(procs, app, f"out_{i}", "o.x"),
            )
            return time.time() - down_at

        sending = asyncio.ensure_future(send_all())
        # The outage lasts its set time (the scenario's length, not a wait for anything), and
        # until every delivery has been accepted.
        await asyncio.sleep(max(0.0, down_at + down_s - time.time()))
        accepted_in = await asyncio.wait_for(sending, timeout=down_s * 2 + 180)
        health = await lane_health(procs, app, endpoint)
        up_at = await receiver.behave("/outage", "ok", latency_s)
        await receiver.wait_receipts(
            n, "/outage", timeout=allowed_s * 2 + args.outage_backoff_s + args.grace_s
        )
        requests = await receiver.requests("/outage")
    after = [r for r in requests if r.start >= up_at]
    firsts = first_receipts(requests)
    times = sorted(firsts.values())
    drain = times[-1] - up_at if times else math.nan
    drain_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else math.nan
    result = OutageRun(
        name=name,
        accepted_in=accepted_in,
        down_s=up_at - down_at,
        attempts_down=sum(1 for r in requests if r.start < up_at),
        state_at_end=f"{health['state']}, {health['waiting']} waiting, "
        f"{health['in_flight']} in flight",
        max_concurrent=max_concurrent(after, open_until=time.time()),
        drain_s=drain,
        first_ok_s=times[0] - up_at if times else math.nan,
        drain_rate=drain_rate,
        allowed_s=allowed_s,
        lost=n - len(firsts),
        extra=sum(1 for r in after if r.status == 204) - len(firsts),
    )
    print(
        f"outage, {name}: {result.attempts_down} attempts while down; drained in "
        f"{drain:.1f} s (first 2xx after {result.first_ok_s:.1f} s, then {drain_rate:.1f}/s), "
        f"{result.lost} lost",
        flush=True,
    )
    return result


def outage_figures(runs: list[OutageRun], args: argparse.Namespace) -> list[Figure]:
    n, in_flight = args.outage_deliveries, args.outage_in_flight
    figures: list[Figure] = []
    for i, run in enumerate(runs):
        label = f"{run.name}" + (f", round {i // 2 + 1}" if len(runs) > 2 else "")
        ratio = run.drain_s / run.allowed_s
        figures += [
            Figure(
                "outage",
                label,
                f"{n} accepted while down",
                f"in {run.accepted_in:.0f} s; down {run.down_s:.0f} s",
            ),
            Figure(
                "outage",
                label,
                "attempts while down",
                f"{run.attempts_down} ({run.attempts_down / run.down_s:.1f}/s)",
            ),
            Figure("outage", label, "lane at the end of the outage", run.state_at_end),
            Figure(
                "outage",
                label,
                "most requests at once after",
                f"{run.max_concurrent}",
                f"≤ {in_flight} (max_in_flight)",
                run.max_concurrent <= in_flight,
            ),
            Figure(
                "outage",
                label,
                "drain after it came back",
                f"{run.drain_s:.1f} s vs {run.allowed_s:.1f} s allowed ({ratio:.2f}x): first "
                f"2xx after {run.first_ok_s:.1f} s, then {run.drain_rate:.1f}/s",
                "≤ 1.2x",
                ratio <= 1.2,
            ),
            Figure("outage", label, "lost", f"{run.lost}", "0", run.lost == 0),
            Figure("outage", label, "2xx answers beyond one per event", f"{run.extra}"),
        ]
    return figures


async def outage(receiver: LaneReceiver, tmp: Path, args: argparse.Namespace) -> list[Figure]:
    """``--rounds`` rounds of the outage, with the breaker as configured and then off (or
    only one of them: ``--outage-breaker``)."""
    runs: list[OutageRun] = []
    modes = {"on": [False], "off": [True], "both": [False, True]}[args.outage_breaker]
    for _ in range(args.rounds):
        for breaker_off in modes:
            runs.append(await outage_run(receiver, tmp, args, breaker_off))
    return outage_figures(runs, args)


SLOWEST_SHOWN = 5
"""The slowest healthy deliveries an isolation run prints, with when each was sent."""


@dataclass
class IsolationRun:
    """What one isolation run measured."""

    name: str
    sent: int
    latencies: list[float]
    lost: int
    hanging_attempts: int
    hanging_most_at_once: int
    send_s: float
    """How long sending took (planned: ``--isolation-s``)."""
    cores: dict[str, float]
    """The server's, worker's and API's CPU over the run, in cores (1.0: one core busy)."""
    slowest: list[tuple[float, float]]
    """The slowest healthy deliveries: (seconds into the run when sent, latency), slowest
    first: whether the tail gathers at the breakers' trip or spreads over the run."""


async def isolation_run(
    receiver: LaneReceiver,
    tmp: Path,
    args: argparse.Namespace,
    hanging: int,
    others_hang: bool = True,
) -> IsolationRun:
    """``--isolation-rate`` events a second to each of one healthy endpoint and ``hanging``
    other endpoints, for ``--isolation-s`` seconds: their receivers hang, or (the control,
    ``others_hang`` false) answer at once like the healthy one's."""
    rate, seconds, in_flight = args.isolation_rate, args.isolation_s, args.isolation_in_flight
    kind = "hanging" if others_hang else "healthy (control)"
    name = f"beside {hanging} {kind}" if hanging else "alone"
    async with running_hookline(None, tmp / f"isolation-{time.time_ns()}", receiver) as (
        procs,
        server_pid,
    ):
        await receiver.reset()
        await receiver.behave("/iso/hang", "hang" if others_hang else "ok")
        app = await create_app(procs, "isolation")
        # max_in_flight 0: not set, so that each endpoint takes the usual path until its
        # breaker trips (the per-worker limit then is HOOKLINE_ENDPOINT_MAX_CONCURRENT_ATTEMPTS).
        limit = {"max_in_flight": in_flight} if in_flight else {}
        fields = {"url": f"{receiver.base}/iso/healthy", "event_types": ["iso.healthy"]}
        await create_endpoint(procs, app, {**fields, **limit})
        for i in range(hanging):
            await create_endpoint(
                procs,
                app,
                {
                    "url": f"{receiver.base}/iso/hang{i}",
                    "event_types": [f"iso.hang{i}"],
                    **limit,
                    "timeout_s": args.isolation_timeout_s,
                    "retry": {"initial_interval_s": 1, "max_interval_s": 2, "window_s": 3600},
                },
            )
        types = ["iso.healthy", *(f"iso.hang{i}" for i in range(hanging))]
        per_endpoint = round(rate * seconds)
        sent: dict[str, float] = {}

        async def send(i: int) -> None:
            tick, which = divmod(i, len(types))
            event_id = f"iso_{which}_{tick}"
            if which == 0:
                sent[event_id] = time.time()
            await send_event(procs, app, event_id, types[which])

        sampler = Sampler({"server": server_pid, **procs.pids})
        start = time.time()
        ran = await paced(
            per_endpoint * len(types), rate * len(types), start + seconds * 2 + 60, send, 64
        )
        send_s = time.time() - start

        async def all_healthy_received() -> bool:
            return len(first_receipts(await receiver.requests("/iso/healthy"))) >= len(sent)

        with contextlib.suppress(TimeoutError):  # what has not arrived is counted lost
            await wait_until(all_healthy_received, "the healthy endpoint's", args.grace_s)
        cpu, _ = sampler.stop()
        cores = {name: seconds / (time.time() - start) for name, seconds in cpu.items()}
        requests = await receiver.requests("/iso/")
    received = first_receipts(r for r in requests if r.path == "/iso/healthy")
    by_path: dict[str, list[Request]] = {}
    for r in requests:
        if r.path.startswith("/iso/hang"):
            by_path.setdefault(r.path, []).append(r)
    result = IsolationRun(
        name=name,
        sent=ran,
        latencies=[received[e] - t for e, t in sent.items() if e in received],
        lost=len(sent) - len(received),
        hanging_attempts=sum(len(rs) for rs in by_path.values()),
        hanging_most_at_once=max(
            (max_concurrent(rs, open_until=time.time()) for rs in by_path.values()), default=0
        ),
        send_s=send_s,
        cores=cores,
        slowest=sorted(
            ((t - start, received[e] - t) for e, t in sent.items() if e in received),
            key=lambda sent_and_latency: -sent_and_latency[1],
        )[:SLOWEST_SHOWN],
    )
    lat = result.latencies
    print(
        f"isolation, {name}: sent {ran}, healthy p50 {percentile(lat, 0.5) * 1e3:.0f} ms, "
        f"p99 {percentile(lat, 0.99) * 1e3:.0f} ms, lost {result.lost}, hanging attempts "
        f"{result.hanging_attempts} (at most {result.hanging_most_at_once} at once per endpoint)"
        f"; sending took {send_s:.1f} s; CPU in cores: {_cores(cores)}; slowest (sent at): "
        + ", ".join(f"{late * 1e3:.0f} ms ({at:.1f} s)" for at, late in result.slowest),
        flush=True,
    )
    return result


def _in_flight_limit(args: argparse.Namespace) -> int:
    """The hanging endpoints' in-flight limit: theirs, or the per-worker default."""
    return int(args.isolation_in_flight or ENDPOINT_CONCURRENCY_DEFAULT)


def _p99_ratio(run: IsolationRun, alone: IsolationRun) -> float:
    return percentile(run.latencies, 0.99) / percentile(alone.latencies, 0.99)


def _cores(cores: dict[str, float]) -> str:
    return " ".join(f"{name} {used:.2f}" for name, used in cores.items())


async def isolation(receiver: LaneReceiver, tmp: Path, args: argparse.Namespace) -> list[Figure]:
    """``--rounds`` rounds of the healthy endpoint alone, then beside the hanging ones."""
    figures: list[Figure] = []
    for n in range(args.rounds):
        alone = await isolation_run(receiver, tmp, args, 0)
        mixed = await isolation_run(receiver, tmp, args, args.isolation_hanging)
        runs = [alone, mixed]
        if args.isolation_control:
            runs.append(await isolation_run(receiver, tmp, args, args.isolation_hanging, False))
        label = f", round {n + 1}" if args.rounds > 1 else ""
        ratio = _p99_ratio(mixed, alone)
        for run in runs:
            lat = run.latencies
            figures.append(
                Figure(
                    "isolation",
                    run.name + label,
                    "healthy endpoint: latency p50 / p99",
                    f"{percentile(lat, 0.5) * 1e3:.0f} / {percentile(lat, 0.99) * 1e3:.0f} ms "
                    f"({len(lat)} deliveries)",
                )
            )
            figures.append(
                Figure(
                    "isolation",
                    run.name + label,
                    "events sent; CPU in cores (1.0: one busy)",
                    f"{run.sent} in {run.send_s:.0f} s; {_cores(run.cores)}",
                )
            )
            figures.append(
                Figure(
                    "isolation",
                    run.name + label,
                    "healthy endpoint: lost",
                    f"{run.lost}",
                    "0",
                    run.lost == 0,
                )
            )
        figures += [
            Figure(
                "isolation",
                mixed.name + label,
                "healthy p99, beside / alone",
                f"{ratio:.2f}x",
                "≤ 1.5x",
                ratio <= 1.5,
            ),
            *(
                Figure(
                    "isolation",
                    control.name + label,
                    "healthy p99, beside the healthy / alone (the load alone)",
                    f"{_p99_ratio(control, alone):.2f}x",
                )
                for control in runs[2:]
            ),
            *(
                Figure(
                    "isolation",
                    mixed.name + label,
                    "healthy p99, beside the hanging / beside the healthy (what hanging adds)",
                    f"{_p99_ratio(mixed, control):.2f}x",
                )
                for control in runs[2:]
            ),
            Figure(
                "isolation",
                mixed.name + label,
                "hanging endpoints: attempts, most at once",
                f"{mixed.hanging_attempts}, {mixed.hanging_most_at_once}",
                f"≤ {_in_flight_limit(args)} at once",
                mixed.hanging_most_at_once <= _in_flight_limit(args),
            ),
        ]
    return figures


@dataclass
class Kill:
    """The worker process the order scenario SIGKILLed."""

    name: str
    at: float
    receipts_before: int
    """Events received 2xx before it."""
    held_attempt: bool
    """Whether it held an attempt open at the receiver when killed (else none was found)."""
    attempts: dict[str, int]
    """Attempts each worker was seen sending over the run (``Spotter``)."""


@dataclass
class OrderRun:
    """What one order run measured."""

    name: str
    events: int
    keys: int
    accepted_in: float
    wall_s: float
    """From the first submission to the last first 2xx."""
    key_s: list[float]
    """Each key's time from its first submission to its last first 2xx, shortest first."""
    lost: list[str]
    lost_states: dict[str, int]
    """The lost deliveries' statuses, as the API reads them, counted."""
    violations: int
    inversions: int
    early: int
    duplicates: int
    extra_2xx: int
    requests: int
    failures: int
    cut_off: int
    """Attempts whose connection closed before the receiver answered (the kill's)."""
    kill: Kill | None
    cpu_s: dict[str, float]
    lane: str


def socket_owner(local_port: int, remote_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` holds the TCP socket from 127.0.0.1:``local_port`` to ``remote_port``
    (Linux's ``/proc``; None if none does, or elsewhere)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, inode = (line.split()[i] for i in (1, 2, 9))
            if int(local.split(":")[1], 16) == local_port and (
                int(remote.split(":")[1], 16) == remote_port
            ):
                inodes.add(f"socket:[{inode}]")
    for pid in pids:
        with contextlib.suppress(OSError), os.scandir(f"/proc/{pid}/fd") as fds:
            for fd in fds:
                with contextlib.suppress(OSError):  # the descriptor was closed meanwhile
                    if os.readlink(fd.path) in inodes:
                        return pid
    return None


def cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system), 0 once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class Spotter:
    """Which worker process sends which attempt: every 0.1 s, the owners of the connections
    of the requests open at the receiver under ``prefix`` (requests shorter than that may be
    missed)."""

    def __init__(self, receiver: LaneReceiver, prefix: str, workers: dict[str, int]) -> None:
        self.receiver, self.prefix, self.workers = receiver, prefix, workers
        self.port = int(receiver.base.rsplit(":", 1)[1])
        self.seen: dict[tuple[int, float], str] = {}
        """Each attempt spotted, by its peer port and arrival: the worker sending it."""
        self._task = asyncio.ensure_future(self._watch())

    async def spot(self) -> list[str]:
        """The workers holding a request open now (spotting them)."""
        holding = []
        for r in await self.receiver.requests(self.prefix):
            if r.end is None and r.peer_port:
                pid = socket_owner(r.peer_port, self.port, self.workers.values())
                name = next((k for k, v in self.workers.items() if v == pid), None)
                if name is not None:
                    self.seen[r.peer_port, r.start] = name
                    holding.append(name)
        return holding

    async def _watch(self) -> None:
        while True:
            await self.spot()
            await asyncio.sleep(0.1)

    def stop(self) -> dict[str, int]:
        """Attempts spotted, per worker."""
        self._task.cancel()
        counts = dict.fromkeys(self.workers, 0)
        for name in self.seen.values():
            counts[name] += 1
        return counts


async def kill_a_worker(
    receiver: LaneReceiver,
    spotter: Spotter,
    after: int,
    timeout: float,
    cpu: dict[str, float],
) -> Kill | None:
    """Once ``after`` events were received 2xx, SIGKILL a worker process holding an attempt
    open at the receiver (the last one if none is found within 30 s); ``cpu`` gets its CPU
    time up to then. None if ``after`` receipts never came within ``timeout`` seconds."""

    async def enough() -> bool:
        return int((await receiver.stats())["count"]) >= after

    try:
        await wait_until(enough, f"{after} receipts", timeout)
    except TimeoutError:
        return None
    workers = spotter.workers
    victim, held = list(workers)[-1], False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        holding = await spotter.spot()
        if holding:
            victim, held = holding[0], True
            break
        await asyncio.sleep(0.02)
    # No await from the spotting to the kill: the attempt stays open meanwhile.
    cpu[victim] = cpu_s(workers[victim])
    os.kill(workers[victim], signal.SIGKILL)
    receipts = int((await receiver.stats())["count"])
    return Kill(victim, time.time(), receipts, held, dict.fromkeys(workers, 0))


def order_figures_of(
    sent: dict[str, list[str]], requests: list[Request]
) -> tuple[int, int, int, dict[str, list[str]]]:
    """Per key, the events in the order of their first 2xx: the violations (an event first
    received after a later one of its key), the inversions (pairs out of order), the early
    attempts (any attempt of an event that started before the one before it of its key had
    been answered 2xx), and the orders."""
    firsts: dict[str, Request] = {}
    for r in requests:
        if r.webhook_id and r.status is not None and 200 <= r.status < 300:
            firsts.setdefault(r.webhook_id, r)
    position = {event: i for events in sent.values() for i, event in enumerate(events)}
    key_of = {event: key for key, events in sent.items() for event in events}
    orders: dict[str, list[str]] = {key: [] for key in sent}
    for event in sorted(firsts, key=lambda e: firsts[e].start):
        if event in key_of:
            orders[key_of[event]].append(event)
    violations = inversions = 0
    for order in orders.values():
        at = [position[event] for event in order]
        violations += sum(1 for i, p in enumerate(at) if p < max(at[: i + 1]))
        inversions += sum(1 for i, p in enumerate(at) for q in at[i + 1 :] if q < p)
    early = 0
    for r in requests:
        key = key_of.get(r.webhook_id or "")
        if key is None or position[r.webhook_id or ""] == 0:
            continue
        before = firsts.get(sent[key][position[r.webhook_id or ""] - 1])
        if before is not None and before.end is not None and r.start < before.end:
            early += 1  # (one lost before it: counted as lost)
    return violations, inversions, early, orders


async def order_run(
    receiver: LaneReceiver, tmp: Path, args: argparse.Namespace, breaker_off: bool
) -> OrderRun:
    """``--order-events`` events on ``--order-keys`` ordering keys to a ``fifo`` endpoint whose
    receiver answers 503 to ``--order-fail-ratio`` of requests, worked by two worker
    processes, one SIGKILLed after a third of the receipts."""
    n, keys = args.order_events, args.order_keys
    env = {BREAKER_SETTING: "0"} if breaker_off else None
    name = "breaker off" if breaker_off else "breaker as configured"
    prefix = "/order"
    async with running_hookline(
        None, tmp / f"order-{time.time_ns()}", receiver, env, workers=2
    ) as (procs, server_pid):
        await receiver.reset()
        await receiver.behave(
            prefix,
            "flaky",
            args.order_hold_ms / 1e3,
            fail_ratio=args.order_fail_ratio,
            seed=args.order_seed,
        )
        app = await create_app(procs, "order")
        endpoint = await create_endpoint(
            procs,
            app,
            {
                "url": f"{receiver.base}{prefix}",
                "ordering": "fifo",
                "retry": {
                    "initial_interval_s": 1,
                    "max_interval_s": 2,
                    "window_s": args.order_window_s,
                },
            },
        )
        workers = {k: pid for k, pid in procs.pids.items() if k.startswith("worker")}
        pids = {"server": server_pid, **procs.pids}
        cpu_start = {k: cpu_s(pid) for k, pid in pids.items()}
        cpu: dict[str, float] = {}
        sent: dict[str, list[str]] = {f"k{k}": [] for k in range(keys)}
        deliveries: dict[str, str] = {}
        began: dict[str, float] = {}

        async def submit_key(k: int) -> None:
            """The key's events one after the other, each answered 202 before the next."""
            key = f"k{k}"
            began[key] = time.time()
            for i in range(k, n, keys):
                event_id = f"ord_{i}"
                body = {
                    "id": event_id,
                    "type": "o.x",
                    "payload": {"key": key, "n": i},
                    "ordering_key": key,
                }
                answer = await procs.call("POST", f"/v1/apps/{app}/events", body)
                sent[key].append(event_id)
                deliveries[event_id] = str(answer["deliveries"][0]["id"])

        start = time.time()
        sending = asyncio.ensure_future(asyncio.gather(*(submit_key(k) for k in range(keys))))
        spotter = Spotter(receiver, prefix, workers)
        kill = await kill_a_worker(receiver, spotter, max(1, n // 3), args.order_window_s, cpu)
        await asyncio.wait_for(sending, timeout=600)
        accepted_in = time.time() - start
        # Every delivery's window closes within window_s of its acceptance: by then each has
        # arrived or failed, past a laned delivery's 5 minutes before it asks again.
        await receiver.wait_receipts(n, prefix, timeout=args.order_window_s + args.grace_s)
        for k, pid in pids.items():
            cpu.setdefault(k, cpu_s(pid))
        if kill is not None:
            kill.attempts = spotter.stop()
        else:
            spotter.stop()
        await asyncio.sleep(2)  # the last deliveries' ends reach the lane
        health = await lane_health(procs, app, endpoint)
        requests = await receiver.requests(prefix)
        lost = [e for e in deliveries if not any(_ok(r) and r.webhook_id == e for r in requests)]
        states: dict[str, int] = {}
        for event in lost:
            delivery = await procs.call(
                "GET", f"/v1/apps/{app}/deliveries/{deliveries[event]}", None
            )
            states[str(delivery.get("status"))] = states.get(str(delivery.get("status")), 0) + 1
    violations, inversions, early, orders = order_figures_of(sent, requests)
    firsts = first_receipts(requests)
    ok = Counter(r.webhook_id for r in requests if _ok(r))
    result = OrderRun(
        name=name,
        events=n,
        keys=keys,
        accepted_in=accepted_in,
        wall_s=max(firsts.values(), default=start) - start,
        key_s=sorted(firsts[order[-1]] - began[key] for key, order in orders.items() if order),
        lost=lost,
        lost_states=states,
        violations=violations,
        inversions=inversions,
        early=early,
        duplicates=sum(1 for count in ok.values() if count > 1),
        extra_2xx=sum(count - 1 for count in ok.values()),
        requests=len(requests),
        failures=sum(1 for r in requests if r.status == 503),
        cut_off=sum(1 for r in requests if r.end is not None and r.status is None),
        kill=kill,
        cpu_s={k: cpu[k] - cpu_start[k] for k in pids},
        lane=f"{health['state']}, {health['waiting']} waiting, {health['in_flight']} in flight",
    )
    print(
        f"order, {name}: {n} events on {keys} keys in {result.wall_s:.1f} s (each key's in "
        f"{' '.join(f'{t:.0f}' for t in result.key_s)} s); {len(lost)} lost "
        f"{states or ''}, {violations} order violations ({inversions} inversions), "
        f"{early} early attempts, {result.duplicates} duplicates; {result.requests} requests, "
        f"{result.failures} 503s, {result.cut_off} cut off; killed: {_kill_line(kill)}",
        flush=True,
    )
    return result


def _ok(request: Request) -> bool:
    return request.status is not None and 200 <= request.status < 300


def _kill_line(kill: Kill | None) -> str:
    if kill is None:
        return "none (too few receipts)"
    held = "holding an attempt" if kill.held_attempt else "no attempt in flight found"
    attempts = ", ".join(f"{name} {count}" for name, count in kill.attempts.items())
    return (
        f"{kill.name} after {kill.receipts_before} receipts, {held} (attempts seen sent over "
        f"the run: {attempts})"
    )


def order_figures(runs: list[OrderRun], args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    for run in runs:
        label = f"{run.name}, {run.events} events on {run.keys} keys"
        n = run.events
        worker_cpu = sum(s for k, s in run.cpu_s.items() if k.startswith("worker"))
        lost = f"{len(run.lost)}" + (
            " (" + ", ".join(f"{c} {s}" for s, c in run.lost_states.items()) + ")"
            if run.lost
            else ""
        )
        figures += [
            Figure(
                "order",
                label,
                "wall time, first submission → last first 2xx",
                f"{run.wall_s:.1f} s (all accepted in {run.accepted_in:.1f} s; a key's last "
                f"in {run.key_s[0]:.0f}-{run.key_s[-1]:.0f} s)"
                if run.key_s
                else f"{run.wall_s:.1f} s",
            ),
            Figure("order", label, "SIGKILLed worker", _kill_line(run.kill)),
            Figure("order", label, "lost", lost, "0", not run.lost),
            Figure(
                "order",
                label,
                "order violations (first 2xx after a later one of its key)",
                f"{run.violations} ({run.inversions} inversions)",
                "0",
                run.violations == 0,
            ),
            Figure(
                "order",
                label,
                "attempts before the key's previous event was answered 2xx",
                f"{run.early}",
                "0",
                run.early == 0,
            ),
            Figure(
                "order",
                label,
                "events received 2xx more than once",
                f"{run.duplicates} ({run.extra_2xx} extra 2xx)",
            ),
            Figure(
                "order",
                label,
                "requests: in all, 503, cut off by the kill",
                f"{run.requests}, {run.failures} ({run.failures / max(1, run.requests):.0%}), "
                f"{run.cut_off}",
            ),
            Figure(
                "order",
                label,
                "CPU per delivery: workers (both), server, API",
                f"{worker_cpu / n * 1e3:.1f} ms, {run.cpu_s['server'] / n * 1e3:.1f} ms, "
                f"{run.cpu_s['api'] / n * 1e3:.1f} ms",
            ),
            Figure("order", label, "lane at the end", run.lane),
        ]
    return figures


async def order(receiver: LaneReceiver, tmp: Path, args: argparse.Namespace) -> list[Figure]:
    """``--rounds`` rounds of the order run, with the breaker off (``--order-breaker``: or
    as configured, or both)."""
    modes = {"off": [True], "on": [False], "both": [True, False]}[args.order_breaker]
    runs: list[OrderRun] = []
    for _ in range(args.rounds):
        for breaker_off in modes:
            runs.append(await order_run(receiver, tmp, args, breaker_off))
    return order_figures(runs, args)


def code_line() -> str:
    """The code the run measures: the commit, and the files changed since, outside bench/."""
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    paths = [line[3:] for line in status.stdout.splitlines()]
    changed = [path for path in paths if not path.startswith("bench/")]
    changes = f" + uncommitted changes to {len(changed)} files" if changed else ""
    return f"Code: {head.stdout.strip() or 'unknown'}{changes}"


def breaker_setting_exists() -> bool:
    """Whether the code the workers run has the breaker setting (a fresh interpreter: the
    code may change while the benchmark runs)."""
    probe = (
        "from hookline.config.settings import Settings; "
        "print('endpoint_breaker_failures' in Settings.model_fields)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip() == "True"


SCENARIOS = {"throttle": throttle, "outage": outage, "isolation": isolation, "order": order}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lanes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--scenario", choices=[*SCENARIOS, "all"], default="all")
    add(
        "--rounds",
        type=int,
        default=1,
        help="rounds of the outage (breaker on, off) and isolation (alone, beside) pairs",
    )
    add(
        "--grace-s",
        type=float,
        default=360.0,
        help="how much longer than planned a run "
        "waits for its deliveries before counting the rest lost (past a laned delivery's 5 "
        "minutes before it asks its lane again)",
    )
    add("--throttle-events", type=int, default=300, help="events submitted at once")
    add("--throttle-rate", type=float, default=5.0, help="the endpoint's rate_limit_per_s")
    add(
        "--outage-s",
        type=float,
        default=60.0,
        help="how long the endpoint answers 503 (the issue's figure: 300)",
    )
    add(
        "--outage-deliveries",
        type=int,
        default=300,
        help="deliveries accepted while it does (the issue's figure: 2000)",
    )
    add(
        "--outage-breaker",
        choices=["on", "off", "both"],
        default="both",
        help=f"the circuit breaker: as configured, off ({BREAKER_SETTING}=0 for the worker), "
        "or both runs, interleaved",
    )
    add("--outage-rate", type=float, default=10.0, help="the endpoint's rate_limit_per_s")
    add("--outage-in-flight", type=int, default=5, help="the endpoint's max_in_flight")
    add(
        "--outage-latency-ms",
        type=float,
        default=250.0,
        help="how long the receiver takes to answer once it is back",
    )
    add(
        "--outage-backoff-s",
        type=float,
        default=5.0,
        help="the endpoint's max_interval_s (its retries start at 1 s and double)",
    )
    add(
        "--isolation-rate",
        type=float,
        default=5.0,
        help="events a second to each endpoint (the issue's figure: 20)",
    )
    add("--isolation-s", type=float, default=30.0, help="how long events are sent")
    add("--isolation-hanging", type=int, default=5, help="endpoints whose receivers hang")
    add("--isolation-timeout-s", type=float, default=2.0, help="the hanging endpoints' timeout_s")
    add(
        "--isolation-in-flight",
        type=int,
        default=5,
        help="every endpoint's max_in_flight (0: not set, so the usual path until a breaker trips)",
    )
    add(
        "--isolation-control",
        action="store_true",
        help="a third run a round: the other endpoints answer at once instead of hanging "
        "(the same load, nothing hanging)",
    )
    add("--order-events", type=int, default=600, help="events to the fifo endpoint")
    add("--order-keys", type=int, default=6, help="their ordering keys (event i: key i %% K)")
    add(
        "--order-fail-ratio",
        type=float,
        default=0.3,
        help="the share of requests its receiver answers 503, at random",
    )
    add("--order-seed", type=int, default=15, help="the seed of those random answers")
    add(
        "--order-hold-ms",
        type=float,
        default=100.0,
        help="how long the receiver holds each request before it answers (so that the kill "
        "finds one in flight)",
    )
    add(
        "--order-window-s",
        type=float,
        default=600.0,
        help="the endpoint's retry window_s (retries from 1 s, at most 2 s apart); a delivery "
        "still waiting behind its key when it closes fails",
    )
    add(
        "--order-breaker",
        choices=["off", "on", "both"],
        default="off",
        help=f"the circuit breaker: off ({BREAKER_SETTING}=0 for the workers), as configured, "
        "or both runs, interleaved",
    )
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    lines = [
        "## Hookline lane scenarios",
        "",
        machine_line(),
        code_line(),
        f"Command: python -m bench.lanes {' '.join(sys.argv[1:])}".rstrip(),
    ]
    if "outage" in scenarios or "order" in scenarios:
        exists = "exists" if breaker_setting_exists() else "does NOT exist yet (ignored)"
        lines.append(f"{BREAKER_SETTING} (breaker off runs): the setting {exists}")
    figures: list[Figure] = []
    port = free_port()
    with (
        process([sys.executable, "-m", "bench.receiver", str(port)]),
        tempfile.TemporaryDirectory(prefix="hookline-lanes-") as tmp,
    ):
        async with aiohttp.ClientSession() as http:
            receiver = LaneReceiver(http, port)
            await wait_until(lambda: receiver_up(receiver), "the receiver", 30)
            for scenario in scenarios:
                figures += await SCENARIOS[scenario](receiver, Path(tmp), args)
    lines += [
        "",
        "| scenario | run | figure | measured | target | met |",
        "|---|---|---|---|---|---|",
        *(figure.row() for figure in figures),
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
