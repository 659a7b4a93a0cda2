"""What ``hookline listen`` prints for each delivery: one line, with the event's type read
through the API, printed in the order the deliveries arrived."""

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
    """What the line of one delivery tells."""

    received: datetime
    headers: Mapping[str, str]
    body: bytes
    verdict: str
    """``verified``, or ``NOT VERIFIED (why)``."""
    answer: str
    """The status answered, with a note (``-> 502 (forward failed: ...)``)."""

    def text(self, event_type: str | None, with_body: bool) -> str:
        """The line: time, event id, event type (``event_type``, else the body's ``type``, else
        an event-type header's, else ``-``), verdict and answer; then the body if asked."""
        line = "  ".join(
            [
                self.received.strftime("%Y-%m-%d %H:%M:%S"),
                _printable(self.headers.get(EVENT_ID_HEADER) or "-"),
                _printable(event_type or _sent_event_type(self.headers, self.body)),
                self.verdict,
                self.answer,
            ]
        )
        if with_body:
            line += "\n" + self.body.decode("utf-8", errors="replace")
        return line


class DeliveryPrinter:
    """Prints deliveries' lines in the order they arrived, each once its event's type is read.

    Each line's lookup starts when it is added, beside the others; one task prints, so a slow
    lookup holds back the lines after it, never an answer.
    """

    def __init__(self, event_types: EventTypes, with_body: bool) -> None:
        self._event_types = event_types
        self._with_body = with_body
        self._lines: asyncio.Queue[asyncio.Future[str] | None] = asyncio.Queue()

    def add(self, line: DeliveryLine, verified: bool) -> None:
        """Queue a delivery's line; its event's type is read only if ``verified`` (anyone can
        send a request, with any id, that does not verify)."""
        self._lines.put_nowait(asyncio.ensure_future(self._text(line, verified)))

    async def run(self) -> None:
        """Print the lines as they are ready, in order, until ``close``."""
        while (line := await self._lines.get()) is not None:
            print(await line, flush=True)

    def close(self) -> None:
        """Let ``run`` end once it has printed the lines added so far."""
        self._lines.put_nowait(None)

    async def _text(self, line: DeliveryLine, verified: bool) -> str:
        event_id = line.headers.get(EVENT_ID_HEADER)
        event_type = None
        if verified and event_id:
            event_type = await self._event_types.type_of(event_id)
        return line.text(event_type, self._with_body)


def _sent_event_type(headers: Mapping[str, str], body: bytes) -> str:
    """The body's ``type`` if it is a JSON object with one, else an event-type header's, else
    ``-``."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("type"), str) and data["type"]:
        return str(data["type"])
    return next((headers[h] for h in EVENT_TYPE_HEADERS if headers.get(h)), "-")


def _printable(text: str) -> str:
    """``text`` as is, or quoted with escapes if it holds control characters (a terminal's
    escape sequences never come through from a request)."""
    return text if text.isprintable() else repr(text)
