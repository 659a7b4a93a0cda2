"""Hookline's search attributes: how operators find deliveries in the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

APP_ID = SearchAttributeKey.for_keyword("HooklineAppId")
ENDPOINT_ID = SearchAttributeKey.for_keyword("HooklineEndpointId")
EVENT_TYPE = SearchAttributeKey.for_keyword("HooklineEventType")
EVENT_ID = SearchAttributeKey.for_keyword("HooklineEventId")
DELIVERY_ID = SearchAttributeKey.for_keyword("HooklineDeliveryId")
STATUS = SearchAttributeKey.for_keyword("HooklineStatus")
"""``pending`` until an attempt fails, ``retrying`` while the next is awaited, then
``succeeded`` or ``failed``."""

ALL = (APP_ID, ENDPOINT_ID, EVENT_TYPE, EVENT_ID, DELIVERY_ID, STATUS)
