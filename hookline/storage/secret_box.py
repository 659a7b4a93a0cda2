"""Encryption of signing secrets at rest: AES-256-GCM, with the key id stored for rotation."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hookline.config.settings import Settings
from hookline.storage.private_files import private_dir

PREFIX = "enc:v1:"
NONCE_BYTES = 12


class SecretBoxError(ValueError):
    """A key or a stored secret that cannot be used (the message never holds either)."""


def generate_key() -> str:
    """A new encryption key as ``HOOKLINE_SECRETS_KEYS`` takes it: ``<id>:<base64 of 32 bytes>``."""
    key_id = "k" + base64.b32encode(os.urandom(5)).decode().lower()
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def parse_keys(keys: list[str]) -> dict[str, bytes]:
    """``<id>:<base64 of 32 bytes>`` entries as ``{id: key}``, in their order (current first).

    Raises:
        SecretBoxError: no key, or a malformed one (the message names only the key id).
    """
    if not keys:
        raise SecretBoxError("at least one key is required")
    parsed: dict[str, bytes] = {}
    for entry in keys:
        key_id, _, encoded = entry.partition(":")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecretBoxError(f"key {key_id!r} is not base64") from None
        if not key_id or not key_id.isalnum() or len(raw) != 32:
            raise SecretBoxError(f"key {key_id!r} must be '<alphanumeric id>:<base64 of 32 bytes>'")
        parsed[key_id] = raw
    return parsed


class SecretBox:
    """Encrypts with the first key; decrypts with whichever key a stored value names."""

    def __init__(self, keys: list[str]) -> None:
        """
        Args:
            keys: ``<id>:<base64 32-byte key>`` entries, the current key first.

        Raises:
            SecretBoxError: no key, or a malformed one.
        """
        self._keys = {key_id: AESGCM(raw) for key_id, raw in parse_keys(keys).items()}
        self._current = next(iter(self._keys))

    def seal(self, plaintext: str) -> str:
        """The stored form of a secret: ``enc:v1:<key id>:<base64 nonce+ciphertext>``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), None)
        return f"{PREFIX}{self._current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str) -> str:
        """The secret in a stored value; a value stored before encryption passes through.

        Raises:
            SecretBoxError: the key it names is not configured, or it does not decrypt.
        """
        if not stored.startswith(PREFIX):
            return stored
        key_id, _, encoded = stored[len(PREFIX) :].partition(":")
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretBoxError(f"secret was sealed with key {key_id!r}, which is not configured")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretBoxError(f"secret sealed with key {key_id!r} does not decrypt") from None


def secret_box_for(settings: Settings) -> SecretBox:
    """The box for ``settings``: its configured keys or, in development only, a key made once
    and kept in ``{data_dir}/secrets-key``.

    Raises:
        SecretBoxError: production mode without ``HOOKLINE_SECRETS_KEYS``, or a bad key.
    """
    if settings.secrets_keys:
        return SecretBox(settings.secrets_keys)
    if settings.mode == "production":
        raise SecretBoxError(
            "HOOKLINE_SECRETS_KEYS is required in production mode "
            "(make one with: hookline secrets-key)"
        )
    path = private_dir(settings.data_dir) / "secrets-key"
    if not path.exists():
        _create_once(path, generate_key() + "\n")
    return SecretBox([path.read_text().strip()])


def _create_once(path: Path, content: str) -> None:
    """Write ``path`` (owner-only) unless it exists, atomically: processes starting together on
    a fresh data directory (API and worker) all end up reading the same, whole key."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.touch(mode=0o600)
    staging.write_text(content)
    try:
        os.link(staging, path)  # fails if another process made it first
    except FileExistsError:
        pass
    finally:
        staging.unlink()
