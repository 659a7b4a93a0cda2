"""Listing deliveries: bad filters, limits and cursors are 422s."""

from __future__ import annotations

import base64

import pytest

from tests.api_calls import expect
from tests.harness import Hookline

pytestmark = pytest.mark.shared_stack
"""These tests only check what the API answers: they share one running Hookline."""


# Listing deliveries


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "status=",
        "status=SUCCEEDED",
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%201",
        "cursor=a",
        "cursor=not-base64-at-all",
        "endpoint_id=a%20b",
        'endpoint_id=a"b',
        'event_type=x"%20OR%20HooklineAppId%20!=%20"',
    ],
)
async def test_bad_delivery_listing_parameters_are_422(hookline: Hookline, query: str) -> None:
    app_id = await hookline.create_app()
    await expect(hookline, "GET", f"/v1/apps/{app_id}/deliveries?{query}", 422, "validation_error")


async def test_cursor_outside_the_base64_alphabet_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    await expect(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor=!!!!", 422, "validation_error"
    )


async def test_well_formed_but_forged_cursor_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    forged = base64.urlsafe_b64encode(b"garbage").decode()
    await expect(
        hookline, "GET", f"/v1/apps/{app_id}/deliveries?cursor={forged}", 422, "validation_error"
    )


async def test_limit_with_unicode_digit_is_422(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    await expect(hookline, "GET", f"/v1/apps/{app_id}/deliveries?limit=²", 422, "validation_error")
