"""The port every storage protocol implements, and the router that picks one by URL scheme."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from vre_datalake.errors import StorageError


class ObjectStore(Protocol):
    """Streams bytes to and from the PFNs of one family of storage protocols.

    ``token`` is a bearer credential for stores that take one (WebDAV); others ignore it.
    """

    schemes: tuple[str, ...]

    async def write(
        self, url: str, chunks: AsyncIterator[bytes], *, token: str | None = None
    ) -> None:
        """Write ``chunks`` to ``url`` (creating folders); fail if it exists."""
        ...

    async def move(self, source: str, destination: str, *, token: str | None = None) -> None:
        """Rename ``source`` to ``destination`` (replacing it) on the same storage."""
        ...

    async def delete(self, url: str, *, token: str | None = None) -> None:
        """Remove ``url``; a missing file is not an error."""
        ...

    async def size(self, url: str, *, token: str | None = None) -> int | None:
        """The size of ``url`` in bytes, or None if it does not exist."""
        ...

    def read(
        self,
        url: str,
        *,
        offset: int = 0,
        length: int | None = None,
        token: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all if None) of ``url`` from ``offset``."""
        ...


class StorageRouter:
    """Chooses the store for a PFN by its scheme."""

    def __init__(self, stores: Sequence[ObjectStore]) -> None:
        self._by_scheme = {scheme: store for store in stores for scheme in store.schemes}

    @property
    def schemes(self) -> list[str]:
        """Every scheme some store handles."""
        return list(self._by_scheme)

    def supports(self, url: str) -> bool:
        """True if a store handles ``url``."""
        return urlsplit(url).scheme in self._by_scheme

    def supports_scheme(self, scheme: str) -> bool:
        """True if a store handles URLs of ``scheme``."""
        return scheme in self._by_scheme

    def for_url(self, url: str) -> ObjectStore:
        """The store for ``url``; StorageError if none handles its scheme."""
        scheme = urlsplit(url).scheme
        store = self._by_scheme.get(scheme)
        if store is None:
            raise StorageError(f"no storage protocol for {scheme}:// URLs in this service")
        return store
