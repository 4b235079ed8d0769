"""The zenodo service's cipher for stored personal Zenodo tokens (vre_common.crypto)."""

from __future__ import annotations

from vre_common.crypto import TokenCipher, UndecryptableTokenError, load_or_create_key
from vre_zenodo.config import ZenodoSettings

KEY_FILE = "credentials.key"

__all__ = ["KEY_FILE", "TokenCipher", "UndecryptableTokenError", "cipher_from_settings"]


def cipher_from_settings(settings: ZenodoSettings) -> TokenCipher:
    """The configured key, or one generated into the data folder (embedded mode)."""
    if settings.credentials_key is not None:
        key = settings.credentials_key.get_secret_value().encode()
    else:
        key = load_or_create_key(settings.data_dir / KEY_FILE)
    previous = [k.get_secret_value().encode() for k in settings.previous_credentials_keys]
    return TokenCipher(key, previous)
