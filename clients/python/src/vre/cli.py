"""The ``vre`` command: the VRE from the shell, with progress bars and ``--json`` for scripts.

Exit codes (documented in docs/client.md):

====  ==========================================================
0     success
1     any other error
2     usage error (bad option or argument)
3     no token, or the token was refused (401)
4     forbidden or not found (403, 404)
5     invalid input or conflict (400, 409, 422, other 4xx)
6     the VRE or a backend failed, or could not be reached (5xx)
7     a workflow run failed
8     a wait timed out
9     checksum mismatch
====  ==========================================================

Where the server is installed too, its commands (``vre up``, ``vre token``, ``vre openapi``)
join through the ``vre.cli_plugins`` entry point group: each entry point is a function
called with this typer app.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from vre import errors
from vre.client import Client
from vre.config import token_file_path, write_token_file

app = typer.Typer(
    help="VRE — Virtual Research Environment: Data Lake, workflows, publishing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(
    help="Workflow runs: validate, submit, logs, wait, outputs.", no_args_is_help=True
)
app.add_typer(run_app, name="run")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_ERROR, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_INVALID, EXIT_SERVER = 1, 3, 4, 5, 6
EXIT_RUN_FAILED, EXIT_TIMEOUT, EXIT_CHECKSUM = 7, 8, 9

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
UrlOpt = Annotated[
    str | None, typer.Option("--url", envvar="VRE_URL", help="The VRE (default VRE_URL).")
]


_EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    ((errors.NoTokenError, errors.UnauthorizedError), EXIT_AUTH),
    ((errors.ForbiddenError, errors.NotFoundError), EXIT_NOT_FOUND),
    ((errors.ServerError, errors.TransportError), EXIT_SERVER),
    (errors.ApiError, EXIT_INVALID),
    (errors.RunFailedError, EXIT_RUN_FAILED),
    (errors.WaitTimeoutError, EXIT_TIMEOUT),
    (errors.ChecksumMismatchError, EXIT_CHECKSUM),
)


def exit_code(exc: BaseException) -> int:
    """The documented exit code of an error."""
    return next((code for kind, code in _EXIT_CODES if isinstance(exc, kind)), EXIT_ERROR)


@contextlib.contextmanager
def _client(url: str | None) -> Iterator[Client]:
    try:
        with Client(url) as client:
            yield client
    except (errors.VreError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        if isinstance(exc, errors.UnprocessableError) and exc.errors:
            for item in exc.errors:
                err.print(f"  {item}", markup=False)
        raise typer.Exit(exit_code(exc)) from exc


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=False,
    )


def _bar(bars: Progress, label: str) -> Callable[[int, int | None], None]:
    task = bars.add_task(label, total=None)

    def update(done: int, total: int | None) -> None:
        bars.update(task, completed=done, total=total)

    return update


@app.command()
def whoami(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Who your token says you are."""
    with _client(url) as client:
        me = client.me()
    if as_json:
        _print_json(me)
        return
    out.print(f"{me['username']} ({me['subject']} at {me['issuer']})", highlight=False)
    out.print(f"groups: {', '.join(me.get('groups') or []) or '-'}", highlight=False)
    out.print(f"token expires in {me['expires_in']} s", highlight=False)


@app.command()
def login(  # noqa: PLR0917 - typer: one parameter per option
    token: Annotated[
        str | None, typer.Option(help="The access token (default: device login, or stdin).")
    ] = None,
    path: Annotated[
        Path | None, typer.Option(help="Where to write it (default: the discovery location).")
    ] = None,
    issuer: Annotated[
        str | None,
        typer.Option(envvar="VRE_ISSUER", help="Your IAM: device login where it offers it."),
    ] = None,
    client_id: Annotated[
        str, typer.Option(envvar="VRE_CLIENT_ID", help="The OAuth client for device login.")
    ] = "vre-cli",
    scope: Annotated[
        str, typer.Option(help="Scopes asked at device login.")
    ] = "openid profile offline_access wlcg.groups storage.read:/ storage.modify:/ compute.create",
    url: UrlOpt = None,
) -> None:
    """Store an access token where every WLCG-aware tool finds it (mode 0600, atomically).

    With --issuer (or VRE_ISSUER, or `issuer` in the config file) and an issuer that offers
    the device authorization grant, open the URL shown and approve; otherwise paste a token
    (from your IAM, `oidc-token`, or `vre token alice` in development) or pipe it in. The
    token is checked against the VRE before it is written.
    """
    from vre.config import read_config
    from vre.device import DeviceFlowUnavailableError, device_code_token

    value = token
    issuer = issuer or str(read_config().get("issuer") or "") or None
    if value is None and issuer:
        try:
            value = device_code_token(
                issuer,
                client_id,
                scope=scope,
                notify=lambda where, code: err.print(
                    f"Open {where} and enter the code [bold]{code}[/]", highlight=False
                ),
            )
        except DeviceFlowUnavailableError as exc:
            err.print(f"{exc}: paste a token instead", highlight=False)
        except errors.VreError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(EXIT_AUTH) from exc
    if value is None:
        if sys.stdin.isatty():
            value = typer.prompt("Access token", hide_input=True)
        else:
            value = sys.stdin.read()
    value = (value or "").strip()
    if not value:
        err.print("[red]error:[/] empty token")
        raise typer.Exit(EXIT_AUTH)
    try:
        with Client(url, token=value) as client:
            me = client.me()
    except errors.VreError as exc:
        err.print(f"[red]error:[/] the VRE refused the token: {exc}", highlight=False)
        raise typer.Exit(exit_code(exc)) from exc
    target = write_token_file(value, path or token_file_path())
    err.print(f"token for {me['username']} written to {target}", highlight=False)


@app.command("ls")
def ls_cmd(
    pattern: Annotated[str, typer.Argument(help="scope or scope:name-pattern (with *).")],
    meta: Annotated[
        list[str] | None, typer.Option("--meta", "-m", help="Condition key=value, key>value.")
    ] = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List DIDs by name pattern and metadata."""
    with _client(url) as client:
        found = client.datalake.ls(pattern, metadata=meta or [])
    if as_json:
        _print_json([d.raw for d in found])
        return
    table = Table("did", "type", "bytes", "adler32")
    for d in found:
        table.add_row(d.did, d.type, "" if d.bytes is None else str(d.bytes), d.adler32 or "")
    out.print(table)


@app.command()
def meta(
    did: Annotated[str, typer.Argument(help="scope:name")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="key=value to add (repeatable).")
    ] = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a DID's metadata, or add keys with --set key=value."""
    with _client(url) as client:
        if set_:
            values: dict[str, Any] = {}
            for item in set_:
                key, sep, value = item.partition("=")
                if not sep:
                    err.print(f"[red]error:[/] --set wants key=value, not {item!r}")
                    raise typer.Exit(2)
                values[key] = _scalar(value)
            client.datalake.set_metadata(did, values)
        data = client.datalake.metadata(did)
    if as_json:
        _print_json(data)
        return
    for key, value in sorted(data.items()):
        out.print(f"{key}: {value}", highlight=False)


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@app.command()
def upload(  # noqa: PLR0917 - typer: one parameter per option
    files: Annotated[list[Path], typer.Argument(help="Local files.", exists=True, dir_okay=False)],
    scope: Annotated[str, typer.Option(help="Data Lake scope (default: yours).")] = "",
    prefix: Annotated[str, typer.Option(help="Name prefix, e.g. 'run42/'.")] = "",
    rse: Annotated[str | None, typer.Option(help="Storage element.")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Attach to this dataset (scope:name).")
    ] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", help="key=value.")] = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload files (a progress bar each; checksums checked against the VRE's answer)."""
    metadata = dict(item.split("=", 1) for item in (meta or []) if "=" in item)
    done = []
    with _client(url) as client:
        target_scope = scope or client.datalake.my_scope()
        with _progress() as bars:
            for path in files:
                did = f"{target_scope}:{prefix}{path.name}"
                result = client.datalake.upload(
                    path, did, rse=rse, metadata=metadata, dataset=dataset,
                    progress=_bar(bars, did),
                )  # fmt: skip
                done.append(result)
    if as_json:
        _print_json([r.__dict__ for r in done])
        return
    for r in done:
        out.print(f"{r.did}  {r.bytes} bytes  adler32 {r.adler32}  on {r.rse}", highlight=False)


@app.command()
def download(
    dids: Annotated[list[str], typer.Argument(help="scope:name of files.")],
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Folder.")] = Path(),
    url: UrlOpt = None,
) -> None:
    """Download files (a progress bar each, resumable, verified against adler32 and md5)."""
    dest.mkdir(parents=True, exist_ok=True)
    with _client(url) as client, _progress() as bars:
        for did in dids:
            path = client.datalake.download(did, dest, progress=_bar(bars, did))
            err.print(f"{did} → {path}", highlight=False)


@run_app.command("validate")
def run_validate(
    spec: Annotated[Path, typer.Argument(help="reana.yaml", exists=True)],
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate a reana.yaml with REANA's own checks (every error with its line)."""
    with _client(url) as client:
        report = client.workflows.validate(spec)
    if as_json:
        _print_json(report)
    else:
        for item in report.get("errors", []):
            out.print(f"{spec}:{item.get('line', '?')}: {item.get('message')}", highlight=False)
        for item in report.get("warnings", []):
            out.print(f"warning: {item.get('message', item)}", highlight=False)
        out.print("valid" if report["valid"] else "invalid")
    if not report["valid"]:
        raise typer.Exit(EXIT_INVALID)


@run_app.command("submit")
def run_submit(  # noqa: PLR0917 - typer: one parameter per option
    spec: Annotated[Path, typer.Argument(help="reana.yaml", exists=True)],
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="workspace/path=scope:name, or scope:name."),
    ] = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", "-f", help="Local workflow file to send.")
    ] = None,
    project: Annotated[str | None, typer.Option(help="Science Project slug.")] = None,
    name: Annotated[str | None, typer.Option(help="Run name.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the run ends.")] = False,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a run on Data Lake inputs; prints its id (with --wait: waits, exits 7 on failure)."""
    inputs: dict[str, str] = {}
    for item in input_ or []:
        path, sep, did = item.partition("=")
        if not sep:
            did, path = item, item.split(":", 1)[-1].rsplit("/", 1)[-1]
        inputs[path] = did
    with _client(url) as client:
        run = client.workflows.submit(
            spec, inputs=inputs, files=file or [], project=project, name=name
        )
        if wait:
            run.wait()
    if as_json:
        _print_json(run.data)
    else:
        out.print(run.id if not wait else f"{run.id} {run.data['status']}", highlight=False)


@run_app.command("logs")
def run_logs(
    run_id: str,
    step: Annotated[str | None, typer.Option(help="One step (name or index).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
    url: UrlOpt = None,
) -> None:
    """A run's logs (--follow: live)."""
    with _client(url) as client:
        run = client.workflows.get(run_id)
        if follow:
            for line in run.logs(step=step, follow=True):
                out.print(line, markup=False, highlight=False)
        else:
            sys.stdout.write(run.logs(step=step))


@run_app.command("wait")
def run_wait(
    run_id: str,
    timeout: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait until a run ends; exit 7 when it failed (with the log tail), 8 on timeout."""
    with _client(url) as client, err.status(f"waiting for run {run_id}…"):
        run = client.workflows.get(run_id).wait(timeout)
    if as_json:
        _print_json(run.data)
    else:
        out.print(f"{run.id} {run.data['status']}", highlight=False)


@run_app.command("outputs")
def run_outputs(
    run_id: str,
    download_to: Annotated[
        Path | None, typer.Option("--download", help="Download them into this folder.")
    ] = None,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A run's outputs as DIDs (--download: fetch them, verified)."""
    with _client(url) as client:
        run = client.workflows.get(run_id)
        if download_to is not None:
            run.download_outputs(download_to)
    if as_json:
        _print_json(run.outputs)
        return
    for path, did in run.outputs.items():
        out.print(f"{path}  {did}", highlight=False)


@app.command()
def publish(
    source: Annotated[list[str], typer.Argument(help="A run id, or DIDs (scope:name).")],
    metadata: Annotated[
        Path, typer.Option(help="Zenodo metadata as JSON (title, upload_type, creators…).")
    ],
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a run's outputs or DIDs on Zenodo; prints the DOI."""
    meta_doc = json.loads(metadata.read_text(encoding="utf-8"))
    with _client(url) as client:
        what: Any = source[0] if len(source) == 1 and ":" not in source[0] else source
        with err.status("publishing…"):
            pub = client.zenodo.publish(what, meta_doc)
    if as_json:
        _print_json(pub.raw)
    else:
        out.print(pub.doi, highlight=False)


@app.command()
def search(
    text: str,
    limit: Annotated[int, typer.Option(help="At most this many hits.")] = 20,
    url: UrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search projects, files, runs, software and VO services."""
    with _client(url) as client:
        found = client.search(text, limit=limit)
    if as_json:
        _print_json(found)
        return
    table = Table("type", "id", "title")
    for hit in found.get("items", found.get("hits", [])):
        table.add_row(str(hit.get("type", "")), str(hit.get("id", "")), str(hit.get("title", "")))
    out.print(table)


def load_plugins(target: typer.Typer) -> None:
    """Let installed packages add commands (the ``vre.cli_plugins`` entry point group)."""
    for point in entry_points(group="vre.cli_plugins"):
        try:
            point.load()(target)
        except Exception as exc:
            err.print(f"[yellow]warning:[/] plugin {point.name} not loaded: {exc}")


def main() -> None:
    """Entry point of the ``vre`` script."""
    load_plugins(app)
    app()
