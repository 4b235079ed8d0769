"""The JupyterHub token refresher: keeps the bearer token file of a single-user server current.

JupyterHub (with OAuthenticator and ``enable_auth_state``) holds each user's IAM tokens and
refreshes them itself (``refresh_user``) when they are older than ``auth_refresh_age``. This
refresher runs inside the user's server, asks the Hub for the user's auth state
(``GET $JUPYTERHUB_API_URL/users/$JUPYTERHUB_USER`` with ``JUPYTERHUB_API_TOKEN``: the
server's token needs the scope ``admin:auth_state!user``, which the user must hold too;
``/user`` leaves the auth state out) and writes the access token to the WLCG discovery file
(``BEARER_TOKEN_FILE``, else ``$XDG_RUNTIME_DIR/bt_u$UID``, else ``/tmp/bt_u$UID``):
atomically, mode 0600. The token is never put in an environment variable, so kernels and
terminals started at any time read the current one (``vre.Client`` re-reads it before every
request; Rucio, XRootD, Davix, HTCondor read the same file).

Run it as the single-user server's command wrapper, so exactly one refresher runs per server
(IAM refresh tokens can be single-use: one party must refresh, and that is the Hub)::

    c.Spawner.cmd = ["vre-token-refresher", "--", "jupyterhub-singleuser"]

It writes the first token before it starts the server, then refreshes every ``--interval``
seconds until the server exits, and exits with the server's status.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import httpx

from vre.config import token_file_path, write_token_file
from vre.errors import VreError

log = logging.getLogger("vre.hub")


class HubTokenError(VreError):
    """The Hub gave no access token (no auth state, or the server may not read it)."""


def fetch_access_token(
    environ: Mapping[str, str] | None = None,
    *,
    key: str = "access_token",
    transport: httpx.BaseTransport | None = None,
) -> str:
    """The current access token from the Hub's auth state of this server's user."""
    env = os.environ if environ is None else environ
    try:
        api_url, api_token = env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_API_TOKEN"]
        user = env["JUPYTERHUB_USER"]
    except KeyError as missing:
        raise HubTokenError(f"{missing.args[0]} is not set: not in a JupyterHub server") from None
    with httpx.Client(transport=transport, timeout=30) as http:
        answer = http.get(
            f"{api_url.rstrip('/')}/users/{quote(user)}",
            headers={"Authorization": f"token {api_token}"},
        )
    if answer.status_code != 200:
        raise HubTokenError(f"the Hub answered {answer.status_code}: {answer.text[:200]}")
    state = answer.json().get("auth_state")
    if not state:
        raise HubTokenError(
            "the Hub sent no auth_state: enable_auth_state must be on, and the user and the "
            "server's token must have the scope admin:auth_state!user"
        )
    token = str(state.get(key) or "").strip()
    if not token:
        raise HubTokenError(f"the auth state has no {key!r}")
    return token


def refresh_once(path: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Write the Hub's current token to ``path`` if it changed; True when it did."""
    token = fetch_access_token(environ)
    try:
        if path.read_text(encoding="utf-8").strip() == token:
            return False
    except FileNotFoundError:
        pass
    write_token_file(token, path)
    log.info("wrote a new access token to %s", path)
    return True


def run(command: Sequence[str], *, interval: float, path: Path, first_wait: float = 60) -> int:
    """Write the token, start ``command`` (if any), refresh until it exits; its status."""
    deadline = time.monotonic() + first_wait
    while True:  # the Hub may still be finishing the spawn: retry the first fetch briefly
        try:
            refresh_once(path)
            break
        except (VreError, httpx.HTTPError) as exc:
            if time.monotonic() > deadline:
                log.error("no token from the Hub: %s", exc)
                break  # start the server anyway: the user sees the error, not a dead spawn
            time.sleep(1)
    if not command:
        while True:
            time.sleep(interval)
            _refresh_logged(path)
    child = subprocess.Popen(list(command))  # noqa: S603 - the configured server command

    def forward(signum: int, _: FrameType | None) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            return child.wait(timeout=interval)
        except subprocess.TimeoutExpired:
            _refresh_logged(path)


def _refresh_logged(path: Path) -> None:
    try:
        refresh_once(path)
    except (VreError, httpx.HTTPError, OSError) as exc:  # keep the old token; try again
        log.warning("token refresh failed: %s", exc)


def main(argv: Sequence[str] | None = None) -> None:
    """``vre-token-refresher [--interval S] [--path FILE] [-- COMMAND...]``."""
    parser = argparse.ArgumentParser(
        prog="vre-token-refresher",
        description="Keep the bearer token file current from JupyterHub's auth state.",
    )
    parser.add_argument("--interval", type=float, default=60.0, help="Seconds between checks.")
    parser.add_argument("--path", type=Path, default=None, help="Token file (default: WLCG).")
    parser.add_argument("--once", action="store_true", help="Write the token once and exit.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the server command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[vre-token-refresher] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per check is noise
    path = args.path or token_file_path()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.once:
        refresh_once(path)
        return
    sys.exit(run(command, interval=args.interval, path=path))


if __name__ == "__main__":
    main()
