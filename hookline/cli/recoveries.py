"""``hookline endpoints recover`` and ``hookline recoveries``: bulk recovery from a terminal,
followed with a progress bar until it ends; Ctrl-C cancels it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hookline.cli.api_client import ApiCallError, ApiClient
from hookline.cli.parsing import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Subcommands,
    add_command,
)

POLL_INTERVAL_S = 0.5
AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
TIME_HELP = "an RFC 3339 time with an offset, or an age such as 90m, 6h or 2d"


def add_commands(
    endpoints: Subcommands, recoveries: Subcommands, common: argparse.ArgumentParser
) -> None:
    """Add ``endpoints recover`` and ``recoveries show|cancel`` to the people commands."""
    recover = add_command(
        endpoints,
        "recover",
        "retry an endpoint's failed deliveries from a time window, with a progress bar",
        common,
    )
    recover.add_argument("app", help="the app's id or uid")
    recover.add_argument("endpoint", help="the endpoint's id (ep_...)")
    recover.add_argument(
        "--since", required=True, help=f"retry deliveries created from then on: {TIME_HELP}"
    )
    recover.add_argument("--until", help=f"and before then: {TIME_HELP}; default: now")
    recover.add_argument(
        "--no-wait", action="store_true", help="print the started recovery and return"
    )
    for action, summary in (
        ("show", "show a bulk recovery: its status and counters"),
        ("cancel", "cancel a running bulk recovery; it stops after the batch in flight"),
    ):
        one = add_command(recoveries, action, summary, common)
        one.add_argument("app", help="the app's id or uid")
        one.add_argument("recovery", help="the recovery's id (rcv_...)")


def request(args: argparse.Namespace) -> tuple[str, str, Any, str]:
    """The API call of a recovery command: method, path, body and ``"recovery"``."""
    app = f"/v1/apps/{quote(args.app, safe='')}"
    if args.command == "endpoints":
        body = {"since": api_time(args.since)}
        if args.until:
            body["until"] = api_time(args.until)
        path = f"{app}/endpoints/{quote(args.endpoint, safe='')}/recover"
        return "POST", path, body, "recovery"
    path = f"{app}/recoveries/{quote(args.recovery, safe='')}"
    if args.recoveries_command == "cancel":
        return "POST", f"{path}/cancel", None, "recovery"
    return "GET", path, None, "recovery"


def follows(args: argparse.Namespace) -> bool:
    """Whether the command waits for the recovery it started."""
    return args.command == "endpoints" and args.endpoints_command == "recover" and not args.no_wait


async def follow(
    api: ApiClient, args: argparse.Namespace, started: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Poll a started recovery until it ends, with a progress bar on stderr (none with
    ``--json``). The first Ctrl-C cancels the recovery and waits for it to stop; a second one
    stops waiting.

    Returns:
        The exit code (0 if it completed, 130 after Ctrl-C, 1 otherwise) and the recovery as
        last seen.

    Raises:
        ApiCallError: the API refused a poll or the cancel.
    """
    path = f"/v1/apps/{quote(args.app, safe='')}/recoveries/{started['id']}"
    ctrl_c = _CtrlC()
    loop = asyncio.get_running_loop()
    with _display(not args.json) as display:
        loop.add_signal_handler(signal.SIGINT, ctrl_c.press)
        try:
            display.show(started)
            display.note(f"recovery {started['id']} started: Ctrl-C cancels it")
            await _poll_until_done(api, path, ctrl_c, display)
        except asyncio.CancelledError:
            if ctrl_c.presses < 2:
                raise
            ctrl_c.uncancel()
            display.note(f"stopped waiting: hookline recoveries show {args.app} {started['id']}")
        finally:
            loop.remove_signal_handler(signal.SIGINT)
    if display.view["status"] == "completed":
        return EXIT_OK, display.view
    return (EXIT_INTERRUPTED if ctrl_c.presses else EXIT_ERROR), display.view


async def _poll_until_done(api: ApiClient, path: str, ctrl_c: _CtrlC, display: _Display) -> None:
    cancel_sent = False
    while display.view["status"] == "running":
        await ctrl_c.sleep(POLL_INTERVAL_S)
        if ctrl_c.presses and not cancel_sent:
            cancel_sent = True
            display.note(
                "cancelling: the recovery stops after the batch in flight"
                " (Ctrl-C again stops waiting)"
            )
            try:
                await api.call("POST", f"{path}/cancel")
            except ApiCallError as err:
                if err.code != "already_finished":  # it ended meanwhile: the poll shows how
                    raise
        display.show(await api.call("GET", path))


class _CtrlC:
    """Ctrl-C while following a recovery: counted, waking the poll loop, and from the second
    on cancelling the command's task (so that it stops waiting even mid-request)."""

    def __init__(self) -> None:
        self.presses = 0
        self._pressed = asyncio.Event()
        self._task = asyncio.current_task()

    def press(self) -> None:
        self.presses += 1
        if self.presses == 1:
            self._pressed.set()
        elif self._task is not None:
            # Not together with the event: Python 3.11's wait_for can lose a cancel that
            # arrives as the awaited event is set.
            self._task.cancel()

    def uncancel(self) -> None:
        if self._task is not None:
            self._task.uncancel()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if Ctrl-C comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._pressed.wait(), seconds)
        self._pressed.clear()


class _Display:
    """How following a recovery shows itself: a bar with counters, or nothing but notes."""

    def __init__(self, progress: Progress | None) -> None:
        self.view: dict[str, Any] = {}
        """The recovery as last shown."""
        self.console = progress.console if progress else Console(stderr=True)
        self._progress = progress
        self._task = progress.add_task("running", total=None, **_counts({})) if progress else None

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def show(self, view: dict[str, Any]) -> None:
        self.view = view
        if self._progress is None or self._task is None:
            return
        done = view["retried"] + view["skipped"] + view["errors"]
        # Pages are listed as it goes: until the first one, how many there are is not known.
        total = view["found"] if view["found"] or view["status"] != "running" else None
        self._progress.update(
            self._task, description=view["status"], completed=done, total=total, **_counts(view)
        )


@contextlib.contextmanager
def _display(bar: bool) -> Iterator[_Display]:
    if not bar:
        yield _Display(None)
        return
    # Off a terminal (a pipe, a file) rich draws the bar once, as it stands at the end.
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "retried {task.fields[retried]}, skipped {task.fields[skipped]}, "
            "errors {task.fields[errors]}"
        ),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with progress:
        yield _Display(progress)


def _counts(view: dict[str, Any]) -> dict[str, Any]:
    """The counters a recovery's bar shows, as rich's task fields (``Any``: they are passed as
    keyword arguments beside rich's own)."""
    return {name: view.get(name, 0) for name in ("retried", "skipped", "errors")}


def api_time(value: str) -> str:
    """``value`` for the API: an age such as ``6h`` becomes the time that long ago; anything
    else goes as it is (the API says what is wrong with it)."""
    age = AGE.fullmatch(value)
    if age is None:
        return value
    ago = timedelta(**{AGE_UNITS[age[2]]: float(age[1])})
    return (datetime.now(UTC) - ago).isoformat()
