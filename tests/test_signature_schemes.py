"""Every signature scheme, checked end to end against a verifier written from the spec alone.

The verifier below uses only ``hmac``/``hashlib``/``base64`` (and, for ``standard``, the
``standardwebhooks`` package); it deliberately does not import Hookline's signing code, so
that the implementation is checked against the specification and not against itself:

- ``standard``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<b64>`` over
  ``"{id}.{timestamp}.{body}"``, keyed with the base64-decoded part of ``whsec_...``.
- ``stripe``: one header (``x-webhook-signature`` or the endpoint's ``signature_header``)
  ``t=<unix>,v1=<hex>`` over ``"{t}.{body}"``.
- ``sha256-timestamp``: ``x-webhook-timestamp`` and ``x-webhook-signature: sha256=<hex>``
  over ``"{timestamp}.{body}"``.
- ``hmac-hex``: one header (configurable) with the bare hex HMAC of the raw body.

All but ``standard`` key HMAC-SHA256 with the secret string's own UTF-8 bytes. During a
rotation's grace period both the new and the old secret sign (new first).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from standardwebhooks.webhooks import Webhook

from tests.harness import Hookline, ReceivedRequest, Receiver

SCHEMES = ["standard", "stripe", "sha256-timestamp", "hmac-hex"]
OTHER_SCHEMES = ["stripe", "sha256-timestamp", "hmac-hex"]
DEFAULT_SIGNATURE_HEADER = "x-webhook-signature"
CUSTOM_SECRET = "my-stripe-style-secret-123"

PAYLOAD: dict[str, Any] = {
    "note": "café ☕ — naïve 日本語 Ελληνικά",
    "nested": {
        "items": [1, 2.5, None, True, {"deep": {"ü": "ß", "list": ["€", "✓"]}}],
        "empty": {},
        "quote": 'say "hi"\n',
    },
    "amount": 1234,
}


# ---------------------------------------------------------------- independent verifier


def header(headers: dict[str, str], name: str) -> str | None:
    """The value of header ``name`` (case-insensitively), or ``None`` when it is absent."""
    found = [value for key, value in headers.items() if key.lower() == name.lower()]
    assert len(found) <= 1, f"header {name} appears {len(found)} times: {headers}"
    return found[0] if found else None


def hmac_key(scheme: str, secret: str) -> bytes:
    if scheme == "standard":
        assert secret.startswith("whsec_"), "a standard secret is whsec_ + base64"
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    return secret.encode("utf-8")


def signature_header_name(scheme: str, custom: str | None) -> str:
    if scheme == "standard":
        return "webhook-signature"
    if scheme in ("stripe", "hmac-hex"):
        return custom or DEFAULT_SIGNATURE_HEADER
    return DEFAULT_SIGNATURE_HEADER


def parse_signatures(
    scheme: str, headers: dict[str, str], custom_header: str | None = None
) -> tuple[str | None, list[str]]:
    """The signed timestamp (``None`` for hmac-hex) and the signatures, in header order.

    Parses strictly: a value that is not exactly the scheme's format fails the assertion.
    """
    name = signature_header_name(scheme, custom_header)
    value = header(headers, name)
    assert value is not None, f"no {name} header in {headers}"
    if scheme == "standard":
        parts = value.split(" ")
        assert all(p.startswith("v1,") for p in parts), value
        return header(headers, "webhook-timestamp"), [p.removeprefix("v1,") for p in parts]
    if scheme == "stripe":
        items = [p.split("=", 1) for p in value.split(",")]
        assert all(len(i) == 2 for i in items), value
        assert items[0][0] == "t", value
        assert all(k == "v1" for k, _ in items[1:]) and len(items) >= 2, value
        return items[0][1], [v for _, v in items[1:]]
    if scheme == "sha256-timestamp":
        parts = value.split(" ")
        assert all(p.startswith("sha256=") for p in parts), value
        return header(headers, "x-webhook-timestamp"), [p.removeprefix("sha256=") for p in parts]
    assert scheme == "hmac-hex", scheme
    return None, value.split(" ")


def expected_signature(
    scheme: str, secret: str, event_id: str, timestamp: str | None, body: bytes
) -> str:
    """The signature ``secret`` must produce over this request, as the scheme encodes it."""
    key = hmac_key(scheme, secret)
    if scheme == "standard":
        message = f"{event_id}.{timestamp}.".encode() + body
        return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    if scheme in ("stripe", "sha256-timestamp"):
        message = f"{timestamp}.".encode() + body
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verifies(
    scheme: str,
    secret: str,
    headers: dict[str, str],
    body: bytes,
    custom_header: str | None = None,
) -> bool:
    """Whether one of the request's signatures is ``secret``'s signature over ``body``."""
    timestamp, signatures = parse_signatures(scheme, headers, custom_header)
    event_id = header(headers, "webhook-id") or ""
    wanted = expected_signature(scheme, secret, event_id, timestamp, body)
    return any(hmac.compare_digest(wanted, s) for s in signatures)


def assert_signed_only_by(
    scheme: str,
    request: ReceivedRequest,
    secrets: list[str],
    wrong_secrets: list[str],
    custom_header: str | None = None,
) -> None:
    """The request carries exactly ``secrets``' signatures, in that order; each verifies, and
    neither a tampered body nor any of ``wrong_secrets`` does."""
    headers, body = request.headers, request.body
    timestamp, signatures = parse_signatures(scheme, headers, custom_header)
    event_id = header(headers, "webhook-id")
    assert event_id, headers
    assert signatures == [
        expected_signature(scheme, s, event_id, timestamp, body) for s in secrets
    ], (scheme, headers)
    tampered = body.replace(b"1234", b"9999")
    assert tampered != body
    for secret in secrets:
        assert verifies(scheme, secret, headers, body, custom_header)
        assert not verifies(scheme, secret, headers, tampered, custom_header)
        assert not verifies(scheme, secret, headers, body + b" ", custom_header)
    for wrong in wrong_secrets:
        assert not verifies(scheme, wrong, headers, body, custom_header)
    if timestamp is not None:
        other = str(int(timestamp) + 1)
        forged = {
            k: (v.replace(timestamp, other) if k.lower() != "webhook-id" else v)
            for k, v in headers.items()
        }
        for secret in secrets:
            assert not verifies(scheme, secret, forged, body, custom_header), "timestamp unsigned"
    if scheme == "standard":
        for secret in secrets:
            assert Webhook(secret).verify(body, headers) == json.loads(body)
            with pytest.raises(Exception, match="No matching signature"):
                Webhook(secret).verify(tampered, headers)
        for wrong in wrong_secrets:
            with pytest.raises(Exception, match="No matching signature"):
                Webhook(wrong).verify(body, headers)


def assert_fresh_timestamp(scheme: str, request: ReceivedRequest) -> None:
    timestamp, _ = parse_signatures(scheme, request.headers)
    if scheme == "hmac-hex":
        return
    assert timestamp is not None and timestamp.isdigit(), request.headers
    assert abs(int(timestamp) - time.time()) <= 60, (timestamp, time.time())


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def other_secret(scheme: str) -> str:
    """A well-formed secret that is not the endpoint's (to check it does not verify)."""
    return whsec() if scheme == "standard" else "not-the-right-secret-" + os.urandom(4).hex()


# ---------------------------------------------------------------- API helpers


async def deliver(
    hookline: Hookline, receiver: Receiver, app_id: str, event_id: str, payload: Any = PAYLOAD
) -> ReceivedRequest:
    """Send an event to the app's single endpoint; the request the receiver got for it."""
    event = await hookline.send_event(app_id, "order.paid", payload, id=event_id)
    [delivery] = event["deliveries"]
    await hookline.wait_status(app_id, delivery["id"], "succeeded")
    [request] = [r for r in receiver.requests if header(r.headers, "webhook-id") == event_id]
    assert json.loads(request.body) == payload
    return request


async def rotate(hookline: Hookline, app_id: str, endpoint_id: str, **body: Any) -> dict[str, Any]:
    rotated = await hookline.ok(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint_id}/secret/rotate", body
    )
    return cast(dict[str, Any], rotated)


def error_of(status: int, body: Any, expected_status: int = 422) -> dict[str, Any]:
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    return cast(dict[str, Any], body["error"])


def keys_anywhere(value: Any) -> set[str]:
    """Every dict key in a JSON value, at any depth."""
    if isinstance(value, dict):
        return set(value).union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(v) for v in value))
    return set()


# ---------------------------------------------------------------- 1. each scheme


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_each_scheme_signs_per_spec(
    hookline: Hookline, receiver: Receiver, scheme: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, signature_scheme=scheme)
    assert endpoint["signature_scheme"] == scheme
    assert endpoint["secret"].startswith("whsec_")

    request = await deliver(hookline, receiver, app_id, f"evt_{scheme}_1")

    assert header(request.headers, "webhook-id") == f"evt_{scheme}_1"
    assert "☕".encode() in request.body, "the body carries UTF-8, not \\u escapes"
    assert_fresh_timestamp(scheme, request)
    assert_signed_only_by(scheme, request, [endpoint["secret"]], [other_secret(scheme)])
    if scheme != "standard":
        # One signature header only, keyed with the whsec_ string as-is (checked above).
        assert header(request.headers, "webhook-signature") is None


# ---------------------------------------------------------------- 2. custom header name


@pytest.mark.parametrize("scheme", ["stripe", "hmac-hex"])
async def test_custom_signature_header(hookline: Hookline, receiver: Receiver, scheme: str) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, signature_scheme=scheme, signature_header="X-Acme-Signature"
    )
    assert endpoint["signature_header"].lower() == "x-acme-signature"

    request = await deliver(hookline, receiver, app_id, f"evt_hdr_{scheme}")

    assert header(request.headers, "X-Acme-Signature") is not None
    assert header(request.headers, DEFAULT_SIGNATURE_HEADER) is None
    assert header(request.headers, "webhook-signature") is None
    assert_signed_only_by(
        scheme,
        request,
        [endpoint["secret"]],
        [other_secret(scheme)],
        custom_header="X-Acme-Signature",
    )


# ---------------------------------------------------------------- 3. custom secrets


@pytest.mark.parametrize("scheme", OTHER_SCHEMES)
async def test_custom_secret_signs_non_standard_schemes(
    hookline: Hookline, receiver: Receiver, scheme: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, signature_scheme=scheme, secret=CUSTOM_SECRET
    )
    assert endpoint["secret"] == CUSTOM_SECRET

    request = await deliver(hookline, receiver, app_id, f"evt_custom_{scheme}")

    assert_fresh_timestamp(scheme, request)
    assert_signed_only_by(
        scheme, request, [CUSTOM_SECRET], [CUSTOM_SECRET + "x", CUSTOM_SECRET[:-1]]
    )


async def test_standard_refuses_a_non_whsec_secret(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    status, body = await hookline.call(
        "POST",
        f"/v1/apps/{app_id}/endpoints",
        {"url": receiver.url, "signature_scheme": "standard", "secret": CUSTOM_SECRET},
    )
    assert error_of(status, body)["code"] == "validation_error"
    # Without a scheme, standard is the default, and the same secret is refused.
    status, body = await hookline.call(
        "POST", f"/v1/apps/{app_id}/endpoints", {"url": receiver.url, "secret": CUSTOM_SECRET}
    )
    assert error_of(status, body)["code"] == "validation_error"
    listed = await hookline.ok("GET", f"/v1/apps/{app_id}/endpoints")
    assert listed["data"] == []


async def test_patch_to_standard_needs_a_fitting_secret(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, signature_scheme="hmac-hex", secret=CUSTOM_SECRET
    )
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    status, body = await hookline.call("PATCH", path, {"signature_scheme": "standard"})

    assert error_of(status, body)["code"] == "validation_error"
    assert (await hookline.ok("GET", path))["signature_scheme"] == "hmac-hex"
    request = await deliver(hookline, receiver, app_id, "evt_still_hmac_hex")
    assert_signed_only_by("hmac-hex", request, [CUSTOM_SECRET], [other_secret("hmac-hex")])


async def test_patch_standard_to_stripe_signs_the_stripe_way(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    assert endpoint["signature_scheme"] == "standard"
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    first = await deliver(hookline, receiver, app_id, "evt_before_patch")
    assert_signed_only_by("standard", first, [endpoint["secret"]], [whsec()])

    status, body = await hookline.call("PATCH", path, {"signature_scheme": "stripe"})

    assert status == 200, body
    assert body["signature_scheme"] == "stripe"
    second = await deliver(hookline, receiver, app_id, "evt_after_patch")
    assert header(second.headers, "webhook-signature") is None
    assert header(second.headers, DEFAULT_SIGNATURE_HEADER) is not None
    assert_fresh_timestamp("stripe", second)
    assert_signed_only_by("stripe", second, [endpoint["secret"]], [other_secret("stripe")])


# ---------------------------------------------------------------- 4. rotation


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_rotation_signs_with_both_secrets_during_grace(
    hookline: Hookline, receiver: Receiver, scheme: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, signature_scheme=scheme)
    original = endpoint["secret"]

    rotated = await rotate(hookline, app_id, endpoint["id"], grace_s=3600)

    new = rotated["secret"]
    assert new != original and new.startswith("whsec_")
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert abs((expires - datetime.now(UTC)).total_seconds() - 3600) < 60, expires
    request = await deliver(hookline, receiver, app_id, f"evt_rot1_{scheme}")
    assert_fresh_timestamp(scheme, request)
    assert_signed_only_by(scheme, request, [new, original], [other_secret(scheme)])

    newest = whsec() if scheme == "standard" else "rotated-custom-secret-" + os.urandom(4).hex()
    rotated = await rotate(hookline, app_id, endpoint["id"], secret=newest, grace_s=0)

    assert rotated == {"secret": newest, "previous_secret_expires_at": None}
    request = await deliver(hookline, receiver, app_id, f"evt_rot2_{scheme}")
    assert_signed_only_by(scheme, request, [newest], [new, original, other_secret(scheme)])


# ---------------------------------------------------------------- 5. revealing secrets


async def test_secret_is_revealed_only_by_its_own_route(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url, signature_scheme="stripe")
    base = f"/v1/apps/{app_id}/endpoints"
    path = f"{base}/{endpoint['id']}"

    revealed = await hookline.ok("GET", f"{path}/secret")
    assert revealed == {"secret": endpoint["secret"], "previous_secret_expires_at": None}

    rotated = await rotate(hookline, app_id, endpoint["id"], grace_s=600)
    revealed = await hookline.ok("GET", f"{path}/secret")
    assert revealed["secret"] == rotated["secret"] != endpoint["secret"]
    assert revealed["previous_secret_expires_at"] is not None

    shown = await hookline.ok("GET", path)
    listed = await hookline.ok("GET", base)
    patched = await hookline.ok("PATCH", path, {"description": "rotated"})
    assert shown["id"] == endpoint["id"] and [e["id"] for e in listed["data"]] == [endpoint["id"]]
    for view in (shown, listed, patched):
        assert "secret" not in keys_anywhere(view), view
        text = json.dumps(view)
        assert endpoint["secret"] not in text and rotated["secret"] not in text


# ---------------------------------------------------------------- 6. bad input


async def test_unknown_scheme_is_refused(hookline: Hookline, receiver: Receiver) -> None:
    app_id = await hookline.create_app()
    base = f"/v1/apps/{app_id}/endpoints"
    status, body = await hookline.call(
        "POST", base, {"url": receiver.url, "signature_scheme": "rot13"}
    )
    assert error_of(status, body)["code"] == "validation_error"

    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    status, body = await hookline.call(
        "PATCH", f"{base}/{endpoint['id']}", {"signature_scheme": "rot13"}
    )
    assert error_of(status, body)["code"] == "validation_error"


@pytest.mark.parametrize("name", ["content-type", "Content-Type"])
async def test_reserved_signature_header_is_refused(
    hookline: Hookline, receiver: Receiver, name: str
) -> None:
    app_id = await hookline.create_app()
    base = f"/v1/apps/{app_id}/endpoints"
    status, body = await hookline.call(
        "POST", base, {"url": receiver.url, "signature_scheme": "stripe", "signature_header": name}
    )
    assert error_of(status, body)["code"] == "validation_error"

    endpoint = await hookline.create_endpoint(app_id, receiver.url, signature_scheme="hmac-hex")
    status, body = await hookline.call(
        "PATCH", f"{base}/{endpoint['id']}", {"signature_header": name}
    )
    assert error_of(status, body)["code"] == "validation_error"


@pytest.mark.parametrize(
    "bad_secret",
    [CUSTOM_SECRET, "whsec_%%not-base64%%secret", "whsec_" + base64.b64encode(b"short").decode()],
)
async def test_rotating_to_an_invalid_standard_secret_is_refused_without_echoing_it(
    hookline: Hookline, receiver: Receiver, bad_secret: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, receiver.url)
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    status, body = await hookline.call("POST", f"{path}/secret/rotate", {"secret": bad_secret})

    error = error_of(status, body)
    assert error["code"] == "validation_error"
    assert bad_secret not in error["message"]
    assert bad_secret.removeprefix("whsec_") not in json.dumps(body)
    revealed = await hookline.ok("GET", f"{path}/secret")
    assert revealed == {"secret": endpoint["secret"], "previous_secret_expires_at": None}


@pytest.mark.parametrize(
    "bad_secret", ["short-secret-15", "has a space in the secret", "ünïcödé-secret-1234567"]
)
async def test_rotating_to_an_invalid_custom_secret_is_refused_without_echoing_it(
    hookline: Hookline, receiver: Receiver, bad_secret: str
) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(
        app_id, receiver.url, signature_scheme="hmac-hex", secret=CUSTOM_SECRET
    )
    path = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"

    status, body = await hookline.call("POST", f"{path}/secret/rotate", {"secret": bad_secret})

    error = error_of(status, body)
    assert error["code"] == "validation_error"
    assert bad_secret not in json.dumps(body, ensure_ascii=False)
    assert (await hookline.ok("GET", f"{path}/secret"))["secret"] == CUSTOM_SECRET
