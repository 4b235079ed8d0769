"""The Rucio adapter: :class:`RucioDatalakeBackend` over :class:`RucioRest`, by resource."""

from vre_datalake.backends.rucio.backend import RucioDatalakeBackend
from vre_datalake.backends.rucio.rest import RucioRest

__all__ = ["RucioDatalakeBackend", "RucioRest"]
