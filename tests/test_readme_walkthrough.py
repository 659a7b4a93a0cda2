"""The README's walkthrough is a test: its ``bash`` blocks run in order, as a user pastes them
into one terminal, against a real ``hookline dev``, and each prints what the README shows.

The walkthrough's blocks, in order:

- a ``bash`` block is run in one bash session (variables carry over from block to block);
- the output block (``json`` or ``text``) right after it is what it prints, stdout and stderr
  (none: it prints nothing);
- a ``bash`` block that ends with ``&`` starts a background job, ``hookline listen``: in a
  terminal its lines come whenever deliveries arrive, here they are collected apart. The
  output blocks after it, and those the prose before them introduces as a listener's ("The
  listener prints:"), are what the background jobs print meanwhile (the test waits for those
  lines, with a deadline).

Outputs are compared with ids, secrets, times and durations replaced by placeholders on both
sides: JSON structurally, text line by line. Each id keeps its placeholder throughout
(``<ep_2>``: the second endpoint id seen), so a walkthrough that reads another delivery than
it shows fails too. The ports the README uses (the API's 8000, the listeners' 9000 and 9001)
become free ones, in commands and outputs alike; ``HOOKLINE_API_PORT`` tells the commands
that take no address (``hookline listen``) where the API is, as 8000 is by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port
from tests.harness import wait_for

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent
SECTION = "## Walkthrough"
OUTPUT_LANGUAGES = ("json", "text")
README_PORTS = (8000, 9000, 9001)
BLOCK_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
_BACKGROUND = re.compile(r"\s&\s*\Z")
_LISTENER = re.compile(r"\blistener\b", re.I)
_ID = re.compile(r"\b(app|ep|dlv|evt|msg|key|rcv)_[a-z2-7]{26}\b")
_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/]+=*")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_DURATION = re.compile(r"\b\d+ ms\b")
_DURATION_KEYS = frozenset({"duration_ms"})


@dataclass
class Step:
    """One ``bash`` block, what it prints, and what the background jobs print after it."""

    number: int
    command: str
    output: str = ""
    background_outputs: list[tuple[str, str]] = field(default_factory=list)
    """(language, text) of each output block the background jobs print, in order."""
    language: str = "text"

    @property
    def background(self) -> bool:
        return bool(_BACKGROUND.search(self.command))


def walkthrough_steps(readme: str) -> list[Step]:
    """The walkthrough section's ``bash`` blocks with the output blocks that follow each."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end != -1 else len(readme)]
    steps: list[Step] = []
    prose_start = 0
    for block in _FENCE.finditer(section):
        language, text = block[1], block[2]
        prose, prose_start = section[prose_start : block.start()], block.end()
        if language == "bash":
            steps.append(Step(len(steps) + 1, text))
            continue
        assert language in OUTPUT_LANGUAGES, f"a ```{language} block in the walkthrough"
        assert steps, "an output block before the walkthrough's first command"
        step = steps[-1]
        if step.background or _LISTENER.search(prose):
            step.background_outputs.append((language, text))
        else:
            assert not step.output, f"two outputs after block {step.number}"
            step.output, step.language = text, language
    return steps


class Placeholders:
    """Replaces what varies from run to run with placeholders; each distinct id gets its own,
    numbered by prefix in the order first seen (``<dlv_1>``, ``<dlv_2>``)."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def text(self, text: str) -> str:
        text = _ID.sub(self._id, text)
        text = _SECRET.sub("<secret>", text)
        text = _TIME.sub("<time>", text)
        return _DURATION.sub("<n> ms", text)

    def value(self, value: Any, key: str = "") -> Any:
        """A decoded JSON value with its strings (and durations) replaced."""
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if key in _DURATION_KEYS and isinstance(value, int | float):
            return "<ms>"
        if isinstance(value, str):
            return self.text(value)
        return value

    def _id(self, match: re.Match[str]) -> str:
        found, prefix = match[0], match[1]
        if found not in self._ids:
            count = sum(1 for seen in self._ids if seen.startswith(f"{prefix}_"))
            self._ids[found] = f"<{prefix}_{count + 1}>"
        return self._ids[found]


def comparable(text: str, language: str, placeholders: Placeholders) -> list[Any]:
    """An output as compared: JSON lines decoded (text lines where they are not JSON), text
    lines as they are; placeholders for what varies."""
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    if language != "json":
        return [placeholders.text(line.rstrip()) for line in lines]
    decoded: list[Any] = []
    for line in lines:
        try:
            decoded.append(placeholders.value(json.loads(line)))
        except ValueError:
            decoded.append(placeholders.text(line))
    return decoded


def with_test_ports(text: str, ports: dict[int, int]) -> str:
    """``text`` with the README's ports replaced by the test's."""
    pattern = "|".join(str(port) for port in ports)
    return re.sub(rf"(?<![\d.])({pattern})(?!\d)", lambda m: str(ports[int(m[1])]), text)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two compared outputs differ, as ``path: README value != printed value``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [
            difference
            for key in [*expected, *(k for k in actual if k not in expected)]
            for difference in differences(
                expected.get(key, "<absent>"), actual.get(key, "<absent>"), f"{path}.{key}"
            )
        ]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            difference
            for index, (one, other) in enumerate(zip(expected, actual, strict=True))
            for difference in differences(one, other, f"{path}[{index}]")
        ]
    return [] if expected == actual else [f"{path or 'the output'}: {expected!r} != {actual!r}"]


@dataclass
class Mismatch:
    step: Step
    what: str
    expected: str
    actual: str
    differences: list[str]

    def __str__(self) -> str:
        return (
            f"block {self.step.number} ({self.what}) of the README walkthrough:\n"
            f"$ {self.step.command.strip()}\n"
            f"--- the README shows:\n{self.expected.rstrip()}\n"
            f"--- it printed:\n{self.actual.rstrip()}\n"
            "--- differences (README != printed):\n" + "\n".join(self.differences)
        )


class Terminal:
    """One bash session fed block after block, as a user pastes them into a terminal; the
    background jobs' output goes to ``background_log`` instead of among the blocks'."""

    def __init__(self, process: asyncio.subprocess.Process, cwd: Path) -> None:
        self.process = process
        self.cwd = cwd
        self.background_log = cwd / "background.log"
        self.background_log.touch()
        self._background_seen = 0
        self._marker = f"--- block done {uuid.uuid4().hex} ---"

    async def run(self, step: Step, command: str) -> str:
        """Run one block and return what it printed (stdout and stderr)."""
        if step.background:
            command = _BACKGROUND.sub(f' >>"{self.background_log}" 2>&1 &\n', command)
        script = self.cwd / f"block-{step.number}.sh"
        script.write_text(command)
        assert self.process.stdin is not None and self.process.stdout is not None
        # Sourced, so that variables and jobs stay in the session; stdin is not the blocks'.
        self.process.stdin.write(
            f"source ./{script.name} </dev/null; printf '\\n%s\\n' '{self._marker}'\n".encode()
        )
        await self.process.stdin.drain()
        printed: list[str] = []
        deadline = asyncio.get_running_loop().time() + BLOCK_TIMEOUT_S
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    line = (await self.process.stdout.readline()).decode()
            except TimeoutError:
                raise AssertionError(
                    f"block {step.number} did not finish in {BLOCK_TIMEOUT_S} s;"
                    f" it printed: {''.join(printed)!r}"
                ) from None
            if not line:
                raise AssertionError(f"bash exited in block {step.number}: {''.join(printed)!r}")
            if line.rstrip("\n") == self._marker:
                return "".join(printed).removesuffix("\n")  # the newline before the marker
            printed.append(line)

    async def background_lines(self, count: int) -> str:
        """The next ``count`` lines the background jobs print (waiting for them)."""

        def new_lines() -> list[str] | None:
            lines = self.background_log.read_text().splitlines()[self._background_seen :]
            return lines[:count] if len(lines) >= count else None

        try:
            lines = await wait_for(new_lines, timeout=BLOCK_TIMEOUT_S, what=f"{count} lines")
        except AssertionError:
            lines = self.background_log.read_text().splitlines()[self._background_seen :]
            raise AssertionError(
                f"the background jobs printed {len(lines)} lines, not {count}: {lines}"
            ) from None
        self._background_seen += count
        return "\n".join(lines)


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux), so that none outlives a forced stop."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


async def stopped(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Stop ``process``, started in a session of its own, with everything in it: ``sig`` to
    the group, then SIGKILL to it and to the sessions of its children (such as the Temporal
    dev server ``hookline dev`` runs) if it has not exited in ``STOP_TIMEOUT_S``."""
    if process.returncode is None:
        signal_group(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            for child in child_pids(process.pid):
                signal_group(child, signal.SIGKILL)
    signal_group(process.pid, signal.SIGKILL)  # what is left: background jobs outlive bash
    await process.wait()


def user_environment(api_port: int) -> dict[str, str]:
    """The user's environment, without Hookline settings but where the API listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE")}
    return {**env, "HOOKLINE_API_PORT": str(api_port)}


@contextlib.asynccontextmanager
async def hookline_dev(cwd: Path, api_port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """``hookline dev`` as ``./scripts/dev`` runs it, on free ports, its data in
    ``cwd/.hookline`` (its log in ``cwd/hookline-dev.log``); stopped as by Ctrl-C."""
    with (cwd / "hookline-dev.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(VENV / "bin" / "hookline"), "dev",
            "--api-port", str(api_port),
            "--temporal-port", str(free_port()),
            "--ui-port", str(free_port()),
            "--data-dir", str(cwd / ".hookline"),
            cwd=cwd,
            env=user_environment(api_port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield process
        finally:
            await stopped(process, signal.SIGINT)


@contextlib.asynccontextmanager
async def terminal(cwd: Path, api_port: int) -> AsyncIterator[Terminal]:
    """A bash session in ``cwd``; it and its background jobs are stopped at the end."""
    process = await asyncio.create_subprocess_exec(
        "bash", "--noprofile", "--norc",
        cwd=cwd,
        env=user_environment(api_port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield Terminal(process, cwd)
    finally:
        await stopped(process, signal.SIGTERM)


async def api_up(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def test_the_walkthrough_reads_its_steps() -> None:
    steps = walkthrough_steps(README.read_text())
    assert steps[0].command.startswith("export HOOKLINE=http://127.0.0.1:8000\n")
    assert steps[0].output == "" and not steps[0].background_outputs
    listen = [step for step in steps if step.background]
    assert listen and all("hookline listen" in step.command for step in listen)
    assert all(step.background_outputs for step in listen), "listen prints when it is ready"


@pytest.mark.temporal  # `hookline dev` runs a Temporal dev server
async def test_the_readme_walkthrough_runs_as_shown(tmp_path: Path) -> None:
    steps = walkthrough_steps(README.read_text())
    ports = {port: free_port() for port in README_PORTS}
    api_port = ports[8000]
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    expected_side, actual_side = Placeholders(), Placeholders()
    mismatches: list[Mismatch] = []

    def compare(step: Step, what: str, language: str, expected: str, actual: str) -> None:
        expected = with_test_ports(expected, ports)
        found = differences(
            comparable(expected, language, expected_side),
            comparable(actual, language, actual_side),
        )
        if found:
            mismatches.append(Mismatch(step, what, expected, actual, found))

    async with hookline_dev(tmp_path, api_port) as dev:
        await wait_for(
            lambda: dev.returncode is not None or api_up(f"http://127.0.0.1:{api_port}"),
            timeout=60,
            what="hookline dev's API",
        )
        assert dev.returncode is None, (tmp_path / "hookline-dev.log").read_text()
        async with terminal(tmp_path, api_port) as shell:
            for step in steps:
                try:
                    printed = await shell.run(step, with_test_ports(step.command, ports))
                    compare(step, "its output", step.language, step.output, printed)
                    for language, expected in step.background_outputs:
                        count = len(expected.rstrip("\n").split("\n"))
                        printed = await shell.background_lines(count)
                        compare(step, "the background jobs' output", language, expected, printed)
                except AssertionError as err:  # a block that never ends: earlier ones too
                    stuck = f"{err}\n$ {step.command.strip()}"
                    raise AssertionError("\n\n".join([*map(str, mismatches), stuck])) from None

    assert not mismatches, "\n\n".join(str(mismatch) for mismatch in mismatches)
