"""Errors raised while preparing, running or driving the embedded Rucio server.

All derive from :class:`LocalRucioError`, so callers that only want to know "the embedded
Rucio did not come up" catch one class:

- :class:`RucioVenvError` — the server's virtual environment is missing and cannot be built.
- :class:`RucioBootstrapError` — the database schema or root account could not be created.
- :class:`RucioStartError` — gunicorn exited early or ``/ping`` did not answer in time.
- :class:`RucioSetupError` — a REST call that provisions RSEs, distances or limits failed.
- :class:`DaemonPassError` — one pass of the background daemons failed.

Each message carries the tail of the relevant log file when there is one.
"""

from __future__ import annotations


class LocalRucioError(Exception):
    """Base class of every error raised by :mod:`vre_rucio_local`."""


class RucioVenvError(LocalRucioError):
    """The Rucio server virtual environment is missing and could not be created."""


class RucioBootstrapError(LocalRucioError):
    """Creating the schema or the root account failed."""


class RucioStartError(LocalRucioError):
    """The Rucio server process exited or did not answer ``/ping`` in time."""


class RucioSetupError(LocalRucioError):
    """A provisioning call to the Rucio REST API failed."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class DaemonPassError(LocalRucioError):
    """One pass of the Rucio daemons (judge, conveyor, abacus, reaper) failed."""
