"""Standard Webhooks signing: secrets, and signatures checked by the reference library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import string
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookline.contracts.signing import (
    MAX_SECRET_BYTES,
    MIN_SECRET_BYTES,
    InvalidSecretError,
    decode_secret,
    generate_secret,
    sign,
)

GENERATED_SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
ID_ALPHABET = string.ascii_letters + string.digits + "_.:-"


def _secret_of(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, with non-ASCII text, nesting, numbers, booleans and nulls."""
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.randint(-(2**53), 2**53)
    if kind == 1:
        return rng.choice([None, True, False, 0.5, -1e-9, 1e300])
    if kind in (2, 3):
        alphabet = string.printable + 'éü☕𝄞\u2028"\\'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
    if kind in (4, 5):
        return {f"k{i}": _random_json(rng, depth + 1) for i in range(rng.randrange(5))}
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


@pytest.mark.parametrize("seed", range(25))
def test_signature_verifies_with_standardwebhooks(seed: int) -> None:
    rng = random.Random(seed)
    secret = generate_secret() if seed % 2 else _secret_of(rng.randbytes(rng.randint(24, 64)))
    msg_id = "".join(rng.choice(ID_ALPHABET) for _ in range(rng.randint(1, 128)))
    payload = _random_json(rng)
    separators = rng.choice([(",", ":"), (", ", ": ")])
    body = json.dumps(payload, separators=separators, ensure_ascii=bool(seed % 3)).encode()
    timestamp = int(time.time())

    signature = sign(secret, msg_id, timestamp, body)

    assert signature.startswith("v1,")
    assert Webhook(secret).verify(body, _headers(msg_id, timestamp, signature)) == payload


def test_signature_does_not_verify_for_another_body_id_timestamp_or_secret() -> None:
    secret = generate_secret()
    body = b'{"amount":10}'
    timestamp = int(time.time())
    signature = sign(secret, "evt_1", timestamp, body)
    webhook = Webhook(secret)

    with pytest.raises(WebhookVerificationError):
        webhook.verify(b'{"amount":1000}', _headers("evt_1", timestamp, signature))
    with pytest.raises(WebhookVerificationError):
        webhook.verify(body, _headers("evt_2", timestamp, signature))
    with pytest.raises(WebhookVerificationError):
        webhook.verify(body, _headers("evt_1", timestamp + 1, signature))
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, _headers("evt_1", timestamp, signature))


def test_known_vector_computed_independently() -> None:
    # The Standard Webhooks / Svix published example, recomputed here with hmac directly.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    body = b'{"test": 2432232314}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()

    assert expected == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, msg_id, timestamp, body) == expected


def test_signature_covers_exact_bytes_including_non_ascii() -> None:
    secret = _secret_of(bytes(range(32)))
    body = '{"note":"café ☕"}'.encode()
    digest = hmac.new(bytes(range(32)), b"evt_x.1700000000." + body, hashlib.sha256).digest()

    assert sign(secret, "evt_x", 1700000000, body) == "v1," + base64.b64encode(digest).decode()


def test_generate_secret_format() -> None:
    secret = generate_secret()

    assert GENERATED_SECRET_RE.match(secret), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert len(decode_secret(secret)) == 32


def test_generated_secrets_are_unique() -> None:
    secrets = {generate_secret() for _ in range(1000)}

    assert len(secrets) == 1000


@pytest.mark.parametrize("size", [MIN_SECRET_BYTES, 32, MAX_SECRET_BYTES])
def test_decode_secret_accepts_sizes_in_range(size: int) -> None:
    raw = bytes(range(size))

    assert decode_secret(_secret_of(raw)) == raw


BAD_SECRETS = {
    "no prefix": base64.b64encode(bytes(32)).decode(),
    "upper-case prefix": "WHSEC_" + base64.b64encode(bytes(32)).decode(),
    "other prefix": "whsek_" + base64.b64encode(bytes(32)).decode(),
    "empty after prefix": "whsec_",
    "not base64": "whsec_this-is-not*base64!!secretvalue",
    "url-safe alphabet": "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
    "missing padding": "whsec_" + base64.b64encode(bytes(32)).decode().rstrip("="),
    "embedded whitespace": "whsec_"
    + base64.b64encode(bytes(16)).decode()
    + " AAAAAAAAAAAAAAAAAAAA",
    "trailing newline": "whsec_" + base64.b64encode(bytes(32)).decode() + "\n",
    "too short": _secret_of(b"s3cr3t-value-too-short!"),
    "much too short": _secret_of(b"tiny"),
    "too long": _secret_of(b"L" * (MAX_SECRET_BYTES + 1)),
}


@pytest.mark.parametrize("secret", list(BAD_SECRETS.values()), ids=list(BAD_SECRETS))
def test_decode_secret_rejects_malformed_without_echoing_it(secret: str) -> None:
    with pytest.raises(InvalidSecretError) as caught:
        decode_secret(secret)

    message = str(caught.value)
    assert message
    assert secret not in message
    body = secret.removeprefix("whsec_").strip()
    if body:
        assert body not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("secret", list(BAD_SECRETS.values()), ids=list(BAD_SECRETS))
def test_sign_refuses_malformed_secret(secret: str) -> None:
    with pytest.raises(InvalidSecretError):
        sign(secret, "evt_1", int(time.time()), b"{}")
