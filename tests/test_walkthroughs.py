"""Every shell walkthrough of README.md and docs/*.md, run as written (issue 19).

The test starts the VRE the way the README does — ``vre up`` (what ``make run`` runs: the
embedded PostgreSQL, a real Rucio with its daemons, every service, the development issuer) in
a fresh data folder on a free port, with the Zenodo stand-in started by the README's own
command line — and then runs the fenced ``sh`` blocks in order, in one shell session whose
variables carry over from block to block, as a reader pasting them would:

- the documented URL ``http://127.0.0.1:8000`` becomes the test's port; a reader's own files
  (``events.dat``, ``limits.csv``) are written first; ``open`` (a browser) does nothing;
- placeholders the text says to fill from an earlier answer (``<id>`` of the run,
  ``<deposition>``, ``<doi>``) are filled from those answers (``PLACEHOLDERS``);
- a command whose comment says it answers once something happened (``… once uploaded``) is
  repeated until its answer shows it;
- every ``curl`` must answer 2xx, except where its comment names the status it answers
  (``# 404: …``), which it must then answer.

Blocks that cannot run here are listed in ``NOT_RUN`` with the reason; the environment-variable
blocks of docs/operations.md are checked against the settings classes instead (every variable
exists, every value without a ``<placeholder>`` is accepted).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from vre_common.testing import free_port

pytestmark = pytest.mark.slow  # vre up: PostgreSQL, Rucio and its daemons, a workflow run

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:8000"
READER_FILES = {
    "events.dat": b"event,energy\n1,1.5\n2,3.0\n",
    "limits.csv": b"mass,limit\n10,0.52\n20,0.31\n30,0.44\n",
}


@dataclass(frozen=True)
class Block:
    """One fenced sh block."""

    doc: str
    line: int
    text: str

    @property
    def key(self) -> str:
        """``README.md`` plus the block's first command, to name it in the tables below."""
        first = next(line for line in self.text.splitlines() if line.strip())
        return f"{self.doc}: {first.strip()[:40].rstrip()}"


def sh_blocks() -> list[Block]:
    """The fenced ```sh blocks of README.md and docs/*.md, in document order."""
    blocks = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        start = None
        for number, line in enumerate(lines, 1):
            if start is None and line.strip() == "```sh":
                start = number
            elif start is not None and line.strip() == "```":
                text = "\n".join(lines[start : number - 1]) + "\n"
                blocks.append(Block(doc.relative_to(ROOT).as_posix(), start, text))
                start = None
    return blocks


# Block (by the start of its first command) → why it is not run here.
NOT_RUN: dict[str, str] = {
    "README.md: make run    # installs what it needs int": (
        "starting the VRE and the whole test suite: this test starts the VRE as `make run` "
        "does (`vre up`); running `make test` from a test would recurse"
    ),
    "README.md: .venv/bin/python services/zenodo/tests/s": (
        "the test runs these two commands itself, before the VRE starts (the stand-in from "
        "this very line with the port changed, then `vre up` with VRE_ZENODO_ZENODO__URL)"
    ),
    'README.md: export VRE_IVOA_SERVICES=\'[{"name": "gav': (
        "queries public VO services on the internet (GAVO's TAP service and registry); the "
        "same calls are tested against a private DaCHS in services/ivoa/tests"
    ),
    "README.md: export VRE_URL=http://127.0.0.1:8000": (
        "works on the reader's own events.csv and reana.yaml; the same CLI commands (login, "
        "upload, ls --json, run submit --wait) run against the embedded VRE in "
        "tests/client/test_client_live.py"
    ),
    "docs/client.md: pip install ./clients/python": (
        "installs the client into the reader's environment; tests/client checks that "
        "importing vre loads nothing of the server or of the extras"
    ),
    "docs/operations.md: docker build -f deploy/jupyterhub/single": (
        "builds an image and installs a Helm chart into a Kubernetes cluster; "
        "tests/client/test_jupyterhub_deploy.py checks the values and the image's Dockerfile"
    ),
    "docs/operations.md: docker build -f deploy/docker/gateway.Do": (
        "builds container images (docker); tests/deploy builds and checks the images"
    ),
    "docs/operations.md: cd requirements && ../.venv/bin/uv pip c": (
        "recompiles a lock file from the package index (`make lock` does the same)"
    ),
    "docs/operations.md: cp deploy/compose.env.example deploy/com": (
        "runs the distributed mode with docker compose; tests/test_distributed.py runs the "
        "same services as separate processes"
    ),
    "docs/operations.md: kubectl apply -f k8s/sites/<site>/flux/": (
        "needs a Kubernetes cluster with Flux; tests/deploy renders and checks the manifests"
    ),
    "docs/operations.md: rucio-admin account add --type SERVICE v": (
        "administers a production Rucio with its own admin client and credentials"
    ),
    "docs/operations.md: for db in gateway workflows catalogue ze": (
        "backs up the PostgreSQL of a docker compose deployment"
    ),
}

# Blocks of environment variables (VAR=value lines): checked against the settings classes.
SETTINGS_BLOCKS = (
    'docs/operations.md: VRE_WORKFLOWS_REANA__SERVERS=\'{"cern": {',
    "docs/operations.md: VRE_WORKFLOWS_SLURM__ENABLED=true",
    "docs/operations.md: VRE_ZENODO_ZENODO__URL=https://zenodo.or",
)

# The README's walkthroughs, run in this order in one shell session.
RUN_IN_ORDER = (
    "README.md: TOKEN=$(.venv/bin/vre token alice)",
    "README.md: VRE=http://127.0.0.1:8000",
    'README.md: C="Authorization: Bearer $(.venv/bin/vre',
    'README.md: curl -H "$A" -H "$J" -X PUT -d \'{"token"',
)

# placeholder → (a request the answer of which holds it, the JSON field)
PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "<id>": ("/workflows/runs", "id"),
    "<deposition>": ("/zenodo/depositions", "id"),
    "<doi>": ("/publish", "doi"),
}


def test_every_block_is_run_or_says_why_not() -> None:
    """A new walkthrough must be run by this test or be listed with its reason."""
    keys = [b.key for b in sh_blocks()]
    known = {*NOT_RUN, *SETTINGS_BLOCKS, *RUN_IN_ORDER}
    assert [k for k in keys if k not in known] == []
    assert [k for k in known if k not in keys] == []  # no stale entries


def _assignments(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(\S.*?)(?:\s+#.*)?$", line.strip())
        if match:
            name, value = match.groups()
            out.append((name, shlex.split(value)[0] if value else ""))
    return out


@pytest.mark.parametrize("key", SETTINGS_BLOCKS)
def test_documented_settings_exist_and_accept_their_values(key: str) -> None:
    from vre_gateway.config import GatewaySettings
    from vre_workflows.config import WorkflowsSettings
    from vre_zenodo.config import ZenodoSettings

    block = next(b for b in sh_blocks() if b.key == key)
    classes = {
        "VRE_WORKFLOWS_": WorkflowsSettings,
        "VRE_ZENODO_": ZenodoSettings,
        "VRE_CATALOGUE_": None,
    }
    for name, value in _assignments(block.text):
        if "<" in value:  # a placeholder the operator fills in
            continue
        prefix = next((p for p in classes if name.startswith(p)), "VRE_")
        cls = classes.get(prefix) or _settings_class(prefix) or GatewaySettings
        env = {name: value}
        if name == "VRE_WORKFLOWS_REANA__DEFAULT_SERVER":
            env["VRE_WORKFLOWS_REANA__SERVERS"] = '{"cern": {"url": "https://reana.example.org"}}'
        _validate(cls, env)


def _settings_class(prefix: str) -> type | None:
    if prefix == "VRE_CATALOGUE_":
        from vre_catalogue.config import CatalogueSettings

        return CatalogueSettings
    return None


def _validate(cls: type, env: dict[str, str]) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cls()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- running the VRE


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """A reader's working folder (the repository's .venv and services/ linked in, their own
    files), the URL of the VRE started as the README says, and its environment."""
    folder = tmp_path_factory.mktemp("walkthrough")
    for name in (".venv", "services"):
        (folder / name).symlink_to(ROOT / name)
    for name, content in READER_FILES.items():
        (folder / name).write_bytes(content)
    data, port, zenodo_port = folder / "vre-data", free_port(), free_port()
    blocks = {b.key: b for b in sh_blocks()}
    standin_line = blocks["README.md: .venv/bin/python services/zenodo/tests/s"].text.splitlines()[
        0
    ]
    standin_args = shlex.split(standin_line.replace("--port 8099", f"--port {zenodo_port}"))
    env = {**os.environ, "VRE_DATA": str(data), "VRE_PORT": str(port)}
    env.pop("VRE_ZENODO_ZENODO__URL", None)
    logs = folder / "logs"
    logs.mkdir()
    with (logs / "standin.log").open("wb") as standin_log, (logs / "vre.log").open("wb") as log:
        standin = subprocess.Popen(
            standin_args, cwd=folder, stdout=standin_log, stderr=subprocess.STDOUT
        )
        vre = subprocess.Popen(
            [str(ROOT / ".venv/bin/vre"), "up"],
            cwd=folder,
            env={**env, "VRE_ZENODO_ZENODO__URL": f"http://127.0.0.1:{zenodo_port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(f"http://127.0.0.1:{zenodo_port}/api/deposit/depositions", standin, 60)
            _wait_for(f"http://127.0.0.1:{port}/healthz", vre, 240)
            yield folder, f"http://127.0.0.1:{port}", env
        finally:
            _stop(vre)
            _stop(standin)
    artifacts = ROOT / "artifacts" / "walkthroughs"
    artifacts.mkdir(parents=True, exist_ok=True)
    for name in ("standin.log", "vre.log"):
        (artifacts / name).write_bytes((logs / name).read_bytes()[-200_000:])


# -------------------------------------------------------------------------- running the blocks

PREAMBLE = """\
open() { :; }   # a browser: nothing to do here
curl() { command curl -sS -w '\\n@@status=%{http_code}\\n' "$@"; }
"""


def commands(text: str) -> list[str]:
    """A block's commands: continuation lines joined, here-documents kept whole, comments
    that stand alone dropped."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            if out and line.lstrip().startswith("#") and line.startswith(" "):
                out[-1] += "\n" + line  # an aligned comment continuing the command above
            continue
        command = line
        heredoc = re.search(r"<<\s*'?(\w+)'?", line)
        while (command.rstrip().endswith("\\") or _open_quote(command)) and i < len(lines):
            command += "\n" + lines[i]
            i += 1
        if heredoc:
            end = heredoc.group(1)
            while i < len(lines):
                command += "\n" + lines[i]
                i += 1
                if lines[i - 1].strip() == end:
                    break
        out.append(command)
    return out


def _open_quote(command: str) -> bool:
    """Whether a quotation is still open at the end of ``command`` (it goes on below)."""
    try:
        shlex.split(command.split("<<", maxsplit=1)[0], comments=True)
    except ValueError:
        return True
    return False


def _expected_status(command: str) -> int | None:
    """The status a command's comment says it answers (``# 404: …``), if any."""
    comments = " ".join(re.findall(r"#([^\n]*)", command.split("<<", maxsplit=1)[0]))
    match = re.search(r"\b([45]\d\d)\b", comments)
    return int(match.group(1)) if match else None


def _until(command: str) -> str | None:
    """``"state": "ready" once …`` in the comment: the JSON member to wait for."""
    match = re.search(r'#\s*("[^"]+":\s*"[^"]+")\s+once\b', command)
    return match.group(1).replace(" ", "") if match else None


class Session:
    """One shell session over many commands: variables carry over, answers are kept."""

    def __init__(self, folder: Path, url: str, env: dict[str, str]) -> None:
        self.folder = folder
        self.url = url
        self.env = env
        self.state = folder / "session.sh"
        self.state.write_text(PREAMBLE)
        self.values: dict[str, str] = {}
        self.transcript: list[str] = []

    def run(self, command: str) -> str:
        """Run one command as written (URL and filled placeholders aside); returns its output."""
        text = command.replace(DOCUMENTED_URL, self.url)
        for placeholder, value in self.values.items():
            text = text.replace(placeholder, value)
        missing = [p for p in PLACEHOLDERS if p in text]
        assert not missing, f"{missing} not known yet for: {command}"
        script = (
            f"source {shlex.quote(str(self.state))}\n{text}\nstatus=$?\n"
            f"declare -p | grep -E '^declare (--|-x) [A-Z][A-Z0-9_]*=' > {self.state}.vars\n"
            "exit $status\n"
        )
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.transcript.append(f"$ {text}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, self.transcript[-1]
        variables = Path(f"{self.state}.vars").read_text()
        self.state.write_text(PREAMBLE + variables)
        self._check_statuses(command, done.stdout)
        self._learn(text, done.stdout)
        return done.stdout

    def _check_statuses(self, command: str, output: str) -> None:
        statuses = [int(s) for s in re.findall(r"@@status=(\d{3})", output)]
        expected = _expected_status(command)
        for status in statuses:
            if expected is not None:
                assert status == expected, self.transcript[-1]
            else:
                assert 200 <= status < 400, self.transcript[-1]

    def _learn(self, command: str, output: str) -> None:
        body = output.split("\n@@status=", maxsplit=1)[0].strip()
        try:
            answer = json.loads(body)
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        for placeholder, (request, field) in PLACEHOLDERS.items():
            if placeholder in self.values or request not in command.rsplit("\n", maxsplit=1)[-1]:
                continue
            if isinstance(answer.get(field), str | int):
                self.values[placeholder] = str(answer[field])


def test_readme_walkthroughs_run_as_written(reader: tuple[Path, str, dict[str, str]]) -> None:
    folder, url, env = reader
    session = Session(folder, url, env)
    blocks = {b.key: b for b in sh_blocks()}
    try:
        for key in RUN_IN_ORDER:
            for command in commands(blocks[key].text):
                wanted = _until(command)
                deadline = time.monotonic() + 120
                while True:
                    output = session.run(command)
                    if wanted is None or wanted in output.replace(" ", ""):
                        break
                    assert time.monotonic() < deadline, session.transcript[-1]
                    time.sleep(1)
    finally:
        artifacts = ROOT / "artifacts" / "walkthroughs"
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "transcript.txt").write_text("\n".join(session.transcript))
    # What the walkthroughs promise, seen in their answers.
    assert (folder / "back.dat").read_bytes() == READER_FILES["events.dat"]
    assert {"<id>", "<deposition>", "<doi>"} <= set(session.values)
    last = session.transcript[-1]
    assert "limits.csv" in last, last  # provenance from the DOI back to the input


if __name__ == "__main__":  # list the blocks and their keys
    for block in sh_blocks():
        print(f"{block.doc}:{block.line}  {block.key}", file=sys.stdout)
