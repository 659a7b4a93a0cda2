"""Identifiers: random ids for apps, endpoints and events, derived ids for deliveries."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

OPERATOR_APP_ID = "hookline"
"""The app id of Hookline's own operational deliveries (to the operator webhook URL)."""
OPERATOR_ENDPOINT_ID = "operator"
CALLBACK_ENDPOINT_ID = "callback"
"""The endpoint id of a delivery to an event's own ``callback_url``."""

EVENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
"""Event ids (and Idempotency-Key values) are what a workflow id can hold readably."""


def new_id(prefix: str) -> str:
    """A random, URL-safe id such as ``app_5v3k...`` (128 bits of randomness)."""
    return f"{prefix}_{_b32(secrets.token_bytes(16))}"


def id_pattern(prefix: str) -> re.Pattern[str]:
    """What ``new_id(prefix)`` makes (and ``delivery_id``, for ``dlv``), and nothing else."""
    return re.compile(rf"^{prefix}_[a-z2-7]{{26}}$")


def delivery_id(app_id: str, event_id: str, endpoint_id: str) -> str:
    """The id of one event's delivery to one endpoint, the same every time it is computed."""
    digest = hashlib.sha256(f"{app_id}\x00{event_id}\x00{endpoint_id}".encode()).digest()
    return f"dlv_{_b32(digest[:16])}"


def delivery_workflow_id(app_id: str, event_id: str, endpoint_id: str) -> str:
    """The workflow id of a delivery, readable in the UI: ``delivery:{app}:{event}:{endpoint}``."""
    return f"delivery:{app_id}:{event_id}:{endpoint_id}"


def fan_out_workflow_id(app_id: str, event_id: str) -> str:
    """The workflow id of an event's fan-out, readable in the UI: ``fan-out:{app}:{event}``."""
    return f"fan-out:{app_id}:{event_id}"


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()
