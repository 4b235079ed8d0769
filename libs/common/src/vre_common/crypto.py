"""TokenCipher: Fernet encryption of stored secrets (personal tokens, browser sessions).

Fernet is AES-128-CBC + HMAC-SHA256, authenticated; MultiFernet decrypts with the current key
or any previous one, so keys can be rotated without losing what was stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class UndecryptableTokenError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def load_or_create_key(path: Path) -> bytes:
    """The key kept in ``path``, created (mode 0600) on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


class TokenCipher:
    """Encrypts with the current key; decrypts with it or any previous one.

    Given a key, or a function returning one: the key is then fetched on first use, so that
    building an app (e.g. for its OpenAPI document) writes nothing to disk.
    """

    def __init__(self, key: bytes | Callable[[], bytes], previous: Sequence[bytes] = ()) -> None:
        self._key = key
        self._previous = list(previous)
        self._fernet: MultiFernet | None = None

    def _cipher(self) -> MultiFernet:
        if self._fernet is None:
            key = self._key() if callable(self._key) else self._key
            self._fernet = MultiFernet([Fernet(k) for k in (key, *self._previous)])
        return self._fernet

    def encrypt(self, secret: str) -> str:
        """Ciphertext (urlsafe base64 text)."""
        return self._cipher().encrypt(secret.encode()).decode("ascii")

    def decrypt(self, ciphertext: str, *, ttl: int | None = None) -> str:
        """The secret; raises UndecryptableTokenError if no key opens it (or it is older
        than ``ttl`` seconds)."""
        try:
            return self._cipher().decrypt(ciphertext.encode("ascii"), ttl=ttl).decode()
        except (InvalidToken, ValueError) as exc:
            raise UndecryptableTokenError from exc

    def decrypt_or_none(self, ciphertext: str) -> str | None:
        """The secret, or None if it was encrypted with another key."""
        try:
            return self.decrypt(ciphertext)
        except UndecryptableTokenError:
            return None
