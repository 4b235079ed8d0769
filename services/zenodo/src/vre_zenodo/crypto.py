"""TokenCipher: Fernet encryption of stored personal tokens, with key rotation."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from vre_zenodo.config import ZenodoSettings

KEY_FILE = "credentials.key"


class UndecryptableTokenError(Exception):
    """A stored token cannot be decrypted with any configured key."""


def load_or_create_key(data_dir: Path) -> bytes:
    """The key kept in ``data_dir/credentials.key``, created (mode 0600) on first use."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


class TokenCipher:
    """Encrypts with the current key; decrypts with it or any previous one."""

    def __init__(self, key: bytes, previous: list[bytes] | None = None) -> None:
        self._fernet = MultiFernet([Fernet(key), *(Fernet(k) for k in previous or [])])

    @classmethod
    def from_settings(cls, settings: ZenodoSettings) -> TokenCipher:
        """The configured key, or one generated into the data folder (embedded mode)."""
        if settings.credentials_key is not None:
            key = settings.credentials_key.get_secret_value().encode()
        else:
            key = load_or_create_key(settings.data_dir)
        previous = [k.get_secret_value().encode() for k in settings.previous_credentials_keys]
        return cls(key, previous)

    def encrypt(self, token: str) -> str:
        """Ciphertext (urlsafe base64 text)."""
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The token; raises UndecryptableTokenError if no key opens it."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise UndecryptableTokenError from exc
