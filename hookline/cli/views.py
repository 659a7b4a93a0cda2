"""What the people commands print for the API's answers: tables of rows, one item's fields,
and a plain sentence for an empty list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

TABLES: dict[str, list[str]] = {
    "app": ["id", "uid", "name", "created_at"],
    "endpoint": ["id", "url", "event_types", "disabled", "signature_scheme"],
    "event": ["id", "type", "created_at"],
    "event_sent": ["id", "type", "created_at", "duplicate"],
    "event_delivery": ["id", "endpoint_id", "status"],
    "delivery": ["id", "status", "attempts", "event_type", "endpoint_id", "created_at"],
    "recovery": ["id", "endpoint_id", "status", "found", "retried", "skipped", "errors"],
}
ROWS = {"endpoints": "endpoint", "events": "event", "deliveries": "delivery"}
"""What each list holds, as the name of its table."""


def table(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    """Rows as left-aligned columns under a header."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def listing(page: dict[str, Any], things: str) -> str:
    """A list of ``things`` (``{"data": [...]}``) as a table, or ``no {things}`` when it is
    empty (``on this page`` when a ``next_cursor`` says there are more)."""
    if not page["data"]:
        return f"no {things}" + (" on this page" if page.get("next_cursor") else "")
    return table(page["data"], TABLES[ROWS[things]])


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """One item as ``name  value`` lines, the values aligned."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {_cell(value)}".rstrip() for name, value in pairs)


def delivery(view: dict[str, Any]) -> str:
    """A delivery's fields, with its last attempt (when, what was answered, how long it took)
    and that attempt's error, and when the next one is due."""
    last = view.get("last_attempt")
    last_attempt = last_error = None
    if last is not None:
        code, took = last["status_code"], last["duration_ms"]
        answer = f"no answer after {took} ms" if code is None else f"answered {code} in {took} ms"
        last_attempt = f"{last['at']}: {answer}"
        last_error = last["error"]
    return fields(
        [
            ("id", view.get("id")),
            ("status", view.get("status")),
            ("event_id", view.get("event_id")),
            ("event_type", view.get("event_type")),
            ("endpoint_id", view.get("endpoint_id")),
            ("url", view.get("url")),
            ("attempts", view.get("attempts")),
            ("last_attempt", last_attempt),
            ("last_error", last_error),
            ("next_attempt_at", _ahead(view.get("next_attempt_at"))),
            ("created_at", view.get("created_at")),
            ("finished_at", view.get("finished_at")),
        ]
    )


def event(view: dict[str, Any]) -> str:
    """An event's fields and payload, then its deliveries' statuses."""
    about = fields(
        [
            ("id", view["id"]),
            ("type", view["type"]),
            ("created_at", view["created_at"]),
            ("payload", json.dumps(view["payload"])),
        ]
    )
    return f"{about}\n\n{event_deliveries(view)}"


def event_deliveries(view: dict[str, Any]) -> str:
    """The deliveries of an event (as sent or read), or ``no deliveries``."""
    if not view["deliveries"]:
        return "no deliveries"
    return table(view["deliveries"], TABLES["event_delivery"])


def secret(view: dict[str, Any]) -> str:
    """A secret and which secrets sign: during a rotation's grace period, the previous one too."""
    expires = view["previous_secret_expires_at"]
    signing = (
        "with this secret only"
        if expires is None
        else f"with this secret and the previous one, until {_ahead(expires)}"
    )
    return fields([("secret", view["secret"]), ("signing", signing)])


def _ahead(value: str | None) -> str | None:
    """A time the API gave, with how far ahead it is (``in 29 s``), for a person to read."""
    if value is None:
        return None
    try:
        seconds = (datetime.fromisoformat(value) - datetime.now(UTC)).total_seconds()
    except (ValueError, TypeError):  # unparsable, or without an offset: shown as it came
        return value
    if seconds <= 0:
        return f"{value} (now)"
    for unit, size, up_to in (("s", 1, 90), ("min", 60, 90 * 60), ("h", 3600, 36 * 3600)):
        if seconds < up_to:
            return f"{value} (in {max(1, round(seconds / size))} {unit})"
    return f"{value} (in {round(seconds / 86_400)} d)"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
