"""Encryption of Temporal payloads (event bodies, URLs, memos, summaries): AES-256-GCM, the
key id in each payload's metadata so keys can rotate. Search attributes stay in clear."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from hookline.storage.secret_box import parse_keys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A payload sealed with a key that is not configured, or that does not decrypt."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever key a payload names. Payloads
    written before encryption was turned on pass through as they are."""

    def __init__(self, keys: list[str]) -> None:
        """
        Args:
            keys: ``<id>:<base64 32-byte key>`` entries, the current key first.

        Raises:
            SecretBoxError: no key, or a malformed one.
        """
        self._keys = {key_id: AESGCM(raw) for key_id, raw in parse_keys(keys).items()}
        self._current = next(iter(self._keys))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        aead = self._keys.get(key_id)
        if aead is None:
            raise PayloadKeyError(f"payload sealed with key {key_id!r}, which is not configured")
        try:
            plain = aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], None)
        except InvalidTag:
            raise PayloadKeyError(f"payload sealed with key {key_id!r} does not decrypt") from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded
