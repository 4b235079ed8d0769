"""Where the VRE is and which token to send: WLCG Bearer Token Discovery and the config file.

Token discovery follows the WLCG Bearer Token Discovery specification, in its order:

1. ``BEARER_TOKEN``: the token itself;
2. ``BEARER_TOKEN_FILE``: the path of a file holding it;
3. ``$XDG_RUNTIME_DIR/bt_u$UID``;
4. ``/tmp/bt_u$UID``.

Whitespace around the token is stripped, and an empty value means "go on to the next
source". The client runs discovery again before every request, so a file that a refresher
(``vre.hub``, ``oidc-agent``) keeps current is always read fresh.

The VRE's URL comes from ``VRE_URL``, else from the ``url`` key of the config file
(``$VRE_CONFIG``, default ``$XDG_CONFIG_HOME/vre/config.toml``, i.e.
``~/.config/vre/config.toml``), else ``http://127.0.0.1:8000`` (what ``vre up`` serves).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path

from vre.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"


def _uid() -> int:
    return os.geteuid()


def discover_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token found by WLCG discovery, or None when no source has one.

    >>> discover_token({"BEARER_TOKEN": "  eyJ...  \\n"})
    'eyJ...'
    """
    env = os.environ if environ is None else environ
    value = env.get("BEARER_TOKEN", "").strip()
    if value:
        return value
    for path in _token_files(env):
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
            continue
        if value:
            return value
    return None


def _token_files(env: Mapping[str, str]) -> list[Path]:
    files = []
    if env.get("BEARER_TOKEN_FILE", "").strip():
        files.append(Path(env["BEARER_TOKEN_FILE"].strip()))
    if env.get("XDG_RUNTIME_DIR", "").strip():
        files.append(Path(env["XDG_RUNTIME_DIR"].strip()) / f"bt_u{_uid()}")
    files.append(Path(f"/tmp/bt_u{_uid()}"))  # noqa: S108 - the specification's own location
    return files


def token_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``vre login`` and the JupyterHub refresher write the token: the first file
    location of the discovery order (``BEARER_TOKEN_FILE``, else the runtime folder's
    ``bt_u$UID``, else ``/tmp/bt_u$UID``)."""
    return _token_files(os.environ if environ is None else environ)[0]


def write_token_file(token: str, path: Path | None = None) -> Path:
    """Write ``token`` to ``path`` (default :func:`token_file_path`) atomically with mode 0600.

    The token goes to a temporary file created 0600 in the same folder, which then replaces
    the old file in one step: a reader never sees a half-written token, and the file is never
    readable by others (XRootD refuses token files that are).
    """
    target = path or token_file_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp creates it 0600
            out.write(token.strip() + "\n")
        os.chmod(scratch, 0o600)
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return target


def config_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$VRE_CONFIG``, else ``$XDG_CONFIG_HOME/vre/config.toml`` (``~/.config/...``)."""
    env = os.environ if environ is None else environ
    if env.get("VRE_CONFIG"):
        return Path(env["VRE_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vre" / "config.toml"


def read_config(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The config file's keys (``url``), or ``{}`` when there is none."""
    path = config_file_path(environ)
    try:
        with path.open("rb") as source:
            return tomllib.load(source)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def vre_url(environ: Mapping[str, str] | None = None) -> str:
    """The VRE's base URL: ``VRE_URL``, the config file's ``url``, or the local default."""
    env = os.environ if environ is None else environ
    url = env.get("VRE_URL", "").strip() or str(read_config(env).get("url") or DEFAULT_URL)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the VRE URL must start with http:// or https://, not {url!r}")
    return url.rstrip("/")
