"""An embedded, real Rucio server: subprocess, configuration, storage elements and daemons."""

from vre_rucio_local.daemons import DaemonPassReport, RucioDaemons
from vre_rucio_local.errors import (
    DaemonPassError,
    LocalRucioError,
    RucioBootstrapError,
    RucioSetupError,
    RucioStartError,
    RucioVenvError,
)
from vre_rucio_local.server import (
    ADMIN_ACCOUNT,
    DEFAULT_RSES,
    LocalRucio,
    LocalRucioConfig,
    Timings,
    find_repo_root,
)
from vre_rucio_local.setup import (
    PosixRse,
    RucioAdmin,
    add_webdav_rse,
    get_auth_token,
    provision_posix_rses,
)

__all__ = [
    "ADMIN_ACCOUNT",
    "DEFAULT_RSES",
    "DaemonPassError",
    "DaemonPassReport",
    "LocalRucio",
    "LocalRucioConfig",
    "LocalRucioError",
    "PosixRse",
    "RucioAdmin",
    "RucioBootstrapError",
    "RucioDaemons",
    "RucioSetupError",
    "RucioStartError",
    "RucioVenvError",
    "Timings",
    "add_webdav_rse",
    "find_repo_root",
    "get_auth_token",
    "provision_posix_rses",
]
