"""The client and the `vre` command against the real embedded VRE (real Rucio, the workflow
executor, the Zenodo stand-in): files by DID as file objects and tables, uploads and
downloads checked by checksum, a run on Data Lake inputs to its outputs, a DOI, provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from astropy.table import Table
from typer.testing import CliRunner

import vre
from tests.client.conftest import LiveVre
from vre import cli

pytestmark = pytest.mark.rucio
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dilepton"
sys.path.insert(0, str(EXAMPLE))
from make_events import make_events, to_csv  # noqa: E402


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(as_alice: Path) -> Iterator[vre.Client]:
    """alice's client: VRE_URL and BEARER_TOKEN_FILE from the environment."""
    with vre.Client() as made:
        yield made


def test_files_by_did(client: vre.Client, tmp_path: Path) -> None:
    assert client.me()["username"] == "alice"
    scope = client.datalake.my_scope()
    assert scope == "user.alice"
    folder = unique("client")
    events = to_csv(make_events(500))
    up = client.datalake.upload(
        events, f"{scope}:{folder}/events.csv", metadata={"datatype": "dilepton", "run": 42}
    )
    assert (up.did, up.bytes, up.created) == (f"{scope}:{folder}/events.csv", len(events), True)

    # FITS and Parquet copies of the same table, written with astropy
    table = Table.read(events.decode(), format="ascii.csv")
    for fmt, name in (("fits", "events.fits"), ("parquet", "events.parquet")):
        table.write(tmp_path / name, format=fmt)
        client.datalake.upload(tmp_path / name, f"{scope}:{folder}/{name}")

    names = {d.name for d in client.datalake.ls(f"{scope}:{folder}/*")}
    assert names == {f"{folder}/events.csv", f"{folder}/events.fits", f"{folder}/events.parquet"}
    found = client.datalake.find(f"{scope}:{folder}/*", datatype="dilepton")
    assert [d.name for d in found] == [f"{folder}/events.csv"]
    assert client.datalake.metadata(f"{scope}:{folder}/events.csv")["run"] in (42, "42")

    for name in ("events.csv", "events.fits", "events.parquet"):
        read = client.datalake.table(f"{scope}:{folder}/{name}")
        assert len(read) == 500, name
        assert list(read.colnames) == ["pt1", "eta1", "phi1", "pt2", "eta2", "phi2"], name
        assert abs(float(read["pt1"][17]) - float(table["pt1"][17])) < 1e-4, name

    with client.datalake.open(f"{scope}:{folder}/events.csv") as remote:
        assert remote.readline() == b"pt1,eta1,phi1,pt2,eta2,phi2\n"
        remote.seek(-10, os.SEEK_END)
        assert remote.read() == events[-10:]

    with fsspec.open(f"vre://{scope}/{folder}/events.csv", "rb") as handle:
        assert handle.read() == events
    fs = fsspec.filesystem("vre")
    assert f"{scope}/{folder}/events.fits" in fs.ls(f"{scope}/{folder}", detail=False)
    fs.client.close()
    type(fs).clear_instance_cache()

    path = client.datalake.download(f"{scope}:{folder}/events.csv", tmp_path)
    assert path.read_bytes() == events

    with pytest.raises(vre.NotFoundError) as missing:
        client.datalake.stat(f"{scope}:{folder}/nothing.csv")
    assert missing.value.status == 404
    assert missing.value.request_id


def test_an_other_users_scope_is_forbidden(live_vre: LiveVre) -> None:
    with (
        vre.Client(live_vre.url, token=live_vre.issuer.token("bob")) as bob,
        pytest.raises((vre.ForbiddenError, vre.NotFoundError)),
    ):
        bob.datalake.upload(b"x", "user.alice:intruder.txt")


def test_run_wait_outputs_publish_provenance(
    client: vre.Client, live_vre: LiveVre, tmp_path: Path
) -> None:
    folder = unique("dilepton")
    project = client.projects.create("Dilepton resonance", slug=folder)
    assert project["scope"] == f"proj.{folder}"
    events_did = f"{project['scope']}:inputs/events.csv"
    client.datalake.upload(to_csv(make_events(2000)), events_did)

    report = client.workflows.validate(EXAMPLE / "reana.yaml")
    assert report["valid"], report
    run = client.workflows.submit(
        EXAMPLE / "reana.yaml",
        inputs={"events.csv": events_did},
        files=["fit.py"],
        project=folder,
        name=folder,
    )
    assert run.wait(timeout=180).data["status"] == "finished"
    assert set(run.outputs) == {"results/mass.csv", "results/histogram.csv", "results/fit.ecsv"}
    assert all(did.startswith(f"proj.{folder}:") for did in run.outputs.values())
    fit = client.datalake.table(run.outputs["results/fit.ecsv"])
    values = {row["quantity"]: row["value"] for row in fit}
    assert 89 < values["mass"] < 93  # the synthetic resonance is at 91.2 GeV
    assert values["total"] == 2000
    assert "resonance at" in run.logs()
    downloaded = run.download_outputs(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in downloaded} == set(run.outputs)

    client.zenodo.set_token(live_vre.zenodo_token("alice"))
    publication = client.zenodo.publish(
        run,
        {
            "upload_type": "dataset",
            "title": "Dilepton resonance: fit results",
            "description": "Outputs of the client's end-to-end test.",
            "creators": [{"name": "Doe, Alice"}],
            "license": "cc-by-4.0",
        },
    )
    assert publication.doi.startswith("10.")

    deadline_graph = None
    for _ in range(100):  # the services' provenance relays deliver within a few passes
        try:
            graph = client.provenance(publication, depth=6)
        except vre.NotFoundError:
            graph = None
        if graph and f"did:{events_did}" in {n["id"] for n in graph.nodes}:
            deadline_graph = graph
            break
        time.sleep(0.3)
    assert deadline_graph is not None, "the DOI's provenance never reached the input"
    edges = {(e["source"], e["target"], e["relation"]) for e in deadline_graph.edges}
    assert (f"run:{run.id}", f"did:{events_did}", "used") in edges
    prov = client.provenance(publication, depth=6, prov_json=True)
    assert "entity" in prov
    assert "activity" in prov


def test_a_failed_run_raises_with_the_log_tail(client: vre.Client) -> None:
    spec = {
        "version": "0.9.4",
        "workflow": {
            "type": "serial",
            "specification": {
                "steps": [
                    {
                        "name": "boom",
                        "environment": "docker.io/library/debian:bookworm-slim",
                        "commands": ["echo about to fail; echo the-reason >&2; exit 3"],
                    }
                ]
            },
        },
    }
    run = client.workflows.submit(spec, name=unique("fails"))
    with pytest.raises(vre.RunFailedError) as failed:
        run.wait(timeout=120)
    assert failed.value.run["status"] == "failed"
    assert "the-reason" in failed.value.log_tail
    assert "boom" in str(failed.value)


def _vre(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `vre` command in-process (typer's runner) with exactly ``env`` as environment."""
    overrides: dict[str, str | None] = {k: v for k, v in env.items() if os.environ.get(k) != v}
    overrides.update({k: None for k in os.environ if k not in env})
    result = CliRunner().invoke(cli.app, list(args), env=overrides, input=stdin)
    # The VRE serving this test runs in this process: its one-line JSON logs land in the
    # captured stdout too. The command's --json output is indented, never such a line.
    stdout = "".join(
        line for line in result.stdout.splitlines(keepends=True) if not line.startswith('{"')
    )
    return subprocess.CompletedProcess(list(args), result.exit_code, stdout, result.stderr)


def test_the_vre_command(as_alice: Path, live_vre: LiveVre, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    (tmp_path / "run").mkdir()
    whoami = _vre("whoami", "--json", env=env)
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["username"] == "alice"

    folder = unique("cli")
    files = []
    for i in range(2):
        path = tmp_path / f"part{i}.dat"
        path.write_bytes(os.urandom(50_000 + i))
        files.append(path)
    up = _vre(
        "upload", *map(str, files), "--prefix", f"{folder}/", "-m", "kind=cli", "--json", env=env
    )
    assert up.returncode == 0, up.stderr
    assert [u["bytes"] for u in json.loads(up.stdout)] == [50_000, 50_001]

    listed = _vre("ls", f"user.alice:{folder}/*", "--meta", "kind=cli", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(d["name"] for d in json.loads(listed.stdout)) == [
        f"{folder}/part0.dat",
        f"{folder}/part1.dat",
    ]

    meta = _vre("meta", f"user.alice:{folder}/part0.dat", "--set", "run=7", "--json", env=env)
    assert meta.returncode == 0, meta.stderr
    assert json.loads(meta.stdout)["run"] in (7, "7")

    dest = tmp_path / "back"
    down = _vre(
        "download",
        f"user.alice:{folder}/part0.dat",
        f"user.alice:{folder}/part1.dat",
        "-d",
        str(dest),
        env=env,
    )
    assert down.returncode == 0, down.stderr
    assert [(dest / f.name).read_bytes() == f.read_bytes() for f in files] == [True, True]

    missing = _vre("meta", f"user.alice:{folder}/none", env=env)
    assert missing.returncode == 4, missing.stderr
    assert "404" in missing.stderr

    # login: the token is checked, then written at the discovery location with mode 0600
    login_env = {k: v for k, v in env.items() if k != "BEARER_TOKEN_FILE"}
    bad = _vre("login", env=login_env, stdin="not-a-token\n")
    assert bad.returncode == 3, bad.stderr
    token = live_vre.issuer.token("alice")
    good = _vre("login", env=login_env, stdin=token + "\n")
    assert good.returncode == 0, good.stderr
    written = tmp_path / "run" / f"bt_u{os.geteuid()}"
    assert written.read_text().strip() == token
    assert written.stat().st_mode & 0o777 == 0o600
    after = _vre("whoami", "--json", env=login_env)  # found by discovery, no variable
    assert after.returncode == 0, after.stderr

    invalid = tmp_path / "bad.yaml"
    invalid.write_text("version: 0.9.4\nworkflow:\n  type: serial\n  specification: {steps: 3}\n")
    checked = _vre("run", "validate", str(invalid), "--json", env=env)
    assert checked.returncode == 5, checked.stdout + checked.stderr
    assert "steps" in checked.stdout + checked.stderr  # where the mistake is


def test_import_a_zenodo_record_and_register_software(
    client: vre.Client, live_vre: LiveVre
) -> None:
    slug = unique("imp")
    client.projects.create("Imported inputs", slug=slug)
    events = to_csv(make_events(100))
    record = live_vre.zenodo.add_record({"events.csv": events}, title="Dilepton events")
    client.zenodo.set_token(live_vre.zenodo_token("alice"))
    imported = client.zenodo.import_record(record, project=slug)
    assert imported["state"] == "completed"
    [entry] = imported["files"]
    assert entry["did"].startswith(f"proj.{slug}:")
    assert len(client.datalake.table(entry["did"])) == 100  # an input by DID, like any other

    codemeta = json.loads(
        (ROOT / "services/catalogue/tests/data/gammapy_codemeta3.json").read_text()
    )
    registered = client.catalogue.register(codemeta)
    found = client.catalogue.search(registered["software"]["name"])
    assert registered["software"]["id"] in {hit["id"] for hit in found["items"]}
    with pytest.raises(vre.ApiError) as invalid:
        client.catalogue.register({"@context": "https://w3id.org/codemeta/3.0", "name": 7})
    assert invalid.value.status == 422
    assert invalid.value.errors


def test_the_vre_command_runs_publishes_and_searches(
    as_alice: Path, live_vre: LiveVre, tmp_path: Path
) -> None:
    env = dict(os.environ)
    slug = unique("clirun")
    with vre.Client() as client:
        client.projects.create("CLI run", slug=slug)
        client.datalake.upload(to_csv(make_events(300)), f"proj.{slug}:events.csv")
        client.zenodo.set_token(live_vre.zenodo_token("alice"))
    spec = str(EXAMPLE / "reana.yaml")
    submitted = _vre(
        "run", "submit", spec, "-i", f"events.csv=proj.{slug}:events.csv", "-f", "fit.py",
        "--project", slug, "--wait", "--json", env=env,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run = json.loads(submitted.stdout)
    assert run["status"] == "finished"
    outputs = _vre(
        "run", "outputs", run["id"], "--download", str(tmp_path / "out"), "--json", env=env
    )
    assert outputs.returncode == 0, outputs.stderr
    assert set(json.loads(outputs.stdout)) == {
        "results/mass.csv",
        "results/histogram.csv",
        "results/fit.ecsv",
    }
    assert "mass" in (tmp_path / "out" / "results" / "fit.ecsv").read_text()
    logs = _vre("run", "logs", run["id"], "--follow", env=env)  # a finished run: all, then end
    assert logs.returncode == 0, logs.stderr
    assert "300 events, resonance at" in logs.stdout
    waited = _vre("run", "wait", run["id"], "--json", env=env)
    assert waited.returncode == 0, waited.stderr

    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({
        "upload_type": "dataset", "title": "CLI publication", "description": "From vre publish.",
        "creators": [{"name": "Doe, Alice"}], "license": "cc-by-4.0",
    }))  # fmt: skip
    published = _vre("publish", run["id"], "--metadata", str(meta), env=env)
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip().startswith("10.")

    found = _vre("search", slug, "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert any(hit["id"] == slug for hit in json.loads(found.stdout)["items"])
