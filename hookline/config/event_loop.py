"""The event loop Hookline's processes run on: uvloop where it is installed, else asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

EventLoopName = Literal["auto", "uvloop", "asyncio"]


class EventLoopUnavailableError(Exception):
    """``HOOKLINE_EVENT_LOOP=uvloop`` on a platform without uvloop (Windows)."""


def loop_factory(name: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop called ``name``; ``auto`` is uvloop when it can be imported.

    Raises:
        EventLoopUnavailableError: uvloop was asked for and is not installed.
    """
    if name != "asyncio":
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise EventLoopUnavailableError(
                    "HOOKLINE_EVENT_LOOP=uvloop but uvloop is not installed (it does not run on "
                    "Windows): set HOOKLINE_EVENT_LOOP=asyncio"
                ) from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: what a log line says the process runs on."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
