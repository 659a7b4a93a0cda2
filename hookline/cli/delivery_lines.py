"""What ``hookline listen`` prints for each delivery: one line, with the event's type read
through the API, printed in the order the deliveries were answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from hookline.cli.api_client import ApiCallError, ApiClient, ApiUnreachableError

EVENT_ID_HEADER = "webhook-id"
"""Every signature scheme sends the event's id in this header (see ``signature_headers``)."""
EVENT_TYPE_HEADERS = ("webhook-event-type", "x-event-type")
"""Where a delivery may name its event type: Hookline sends no such header itself, but an
endpoint's custom headers may."""
LOOKUP_FOR_S = 2.0
"""How long a line waits for its event to be readable: Hookline records an event just after
starting its deliveries, so a first attempt can arrive before the event can be read."""
FIRST_RETRY_S = 0.05
"""The wait before reading the event again after a 404; each wait doubles."""
KEPT_IN_BODIES = frozenset("\n\t")
"""The control characters a printed body keeps as they are; the others are escaped."""


@dataclass(frozen=True)
class EventTypes:
    """The types of an app's events, read through the API."""

    api: ApiClient
    app: str

    async def type_of(self, event_id: str) -> str | None:
        """The event's type, or ``None`` if the API cannot tell it within ``LOOKUP_FOR_S``
        (an event unknown to it, another error, or no answer)."""
        path = f"/v1/apps/{quote(self.app, safe='')}/events/{quote(event_id, safe='')}"
        wait = FIRST_RETRY_S
        try:
            async with asyncio.timeout(LOOKUP_FOR_S):
                while True:
                    try:
                        event = await self.api.call("GET", path)
                    except ApiCallError as err:
                        if err.status != 404:
                            return None
                        await asyncio.sleep(wait)
                        wait *= 2
                        continue
                    found = event.get("type") if isinstance(event, dict) else None
                    return found if isinstance(found, str) and found else None
        except (TimeoutError, ApiUnreachableError):
            return None


@dataclass(frozen=True)
class DeliveryLine:
    """What the line of one delivery tells, and no more of the request: the body only if it
    is printed."""

    received: datetime
    event_id: str | None
    """The ``webhook-id`` header's."""
    sent_type: str
    """The body's ``type``, else an event-type header's, else ``-``."""
    verdict: str
    """``verified``, or ``NOT VERIFIED (why)``."""
    answer: str
    """The status answered, with a note (``-> 502 (forward failed: ...)``)."""
    body: bytes | None = None
    """The body, when it is printed (``--body``)."""

    @classmethod
    def of(
        cls,
        received: datetime,
        headers: Mapping[str, str],
        body: bytes | None,
        verdict: str,
        answer: str,
        with_body: bool,
    ) -> DeliveryLine:
        """The line of a request with these headers and ``body`` (``None``: not read), which
        keeps the body only ``with_body``."""
        return cls(
            received,
            headers.get(EVENT_ID_HEADER) or None,
            _sent_event_type(headers, body or b""),
            verdict,
            answer,
            body if with_body else None,
        )

    def text(self, event_type: str | None) -> str:
        """The line: time, event id, event type (``event_type``, else ``sent_type``), verdict
        and answer; then the body if it is kept, its control characters escaped."""
        line = "  ".join(
            [
                self.received.strftime("%Y-%m-%d %H:%M:%S"),
                _printable(self.event_id or "-"),
                _printable(event_type or self.sent_type),
                self.verdict,
                self.answer,
            ]
        )
        if self.body is not None:
            line += "\n" + _printable_body(self.body.decode("utf-8", errors="replace"))
        return line


class DeliveryPrinter:
    """Prints deliveries' lines in the order they were added (the order the deliveries were
    answered), each once its event's type is read.

    Each line's lookup starts when it is added, beside the others; one task prints, so a slow
    lookup holds back the lines after it, never an answer.
    """

    def __init__(self, event_types: EventTypes) -> None:
        self._event_types = event_types
        self._lines: asyncio.Queue[asyncio.Future[str] | None] = asyncio.Queue()

    def add(self, line: DeliveryLine, look_up: bool) -> None:
        """Queue a delivery's line; its event's type is read only if ``look_up``: the delivery
        verified under a scheme whose signature covers its id (anyone can send a request, with
        any id, that does not verify)."""
        self._lines.put_nowait(asyncio.ensure_future(self._text(line, look_up)))

    async def run(self) -> None:
        """Print the lines as they are ready, in order, until ``close``."""
        while (line := await self._lines.get()) is not None:
            print(await line, flush=True)

    def close(self) -> None:
        """Let ``run`` end once it has printed the lines added so far."""
        self._lines.put_nowait(None)

    async def _text(self, line: DeliveryLine, look_up: bool) -> str:
        event_type = None
        if look_up and line.event_id:
            event_type = await self._event_types.type_of(line.event_id)
        return line.text(event_type)


def _sent_event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The body's ``type`` if it is a JSON object with one, else an event-type header's, else
    ``-``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        data = None
    if isinstance(data, dict) and isinstance(data.get("type"), str) and data["type"]:
        return str(data["type"])
    return next((headers[h] for h in EVENT_TYPE_HEADERS if headers.get(h)), "-")


def _printable(text: str) -> str:
    """``text`` as is, or quoted with escapes if it holds control characters (a terminal's
    escape sequences never come through from a request)."""
    return text if text.isprintable() else repr(text)


def _printable_body(text: str) -> str:
    """``text`` with its control characters escaped (``\\x1b``, ``\\r``, ...) but for newlines
    and tabs, so a body's lines stay lines and no escape sequence reaches the terminal."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in KEPT_IN_BODIES else c.encode("unicode_escape").decode()
        for c in text
    )
