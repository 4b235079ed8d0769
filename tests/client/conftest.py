"""The real embedded VRE for the client's tests: gateway + services on a real port, the
session's real Rucio, the Zenodo stand-in; tokens of a test issuer handed to the client by
WLCG discovery (``BEARER_TOKEN_FILE``), as a user's shell or notebook would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from services.zenodo.tests.support.standin import ZenodoStandIn
    from vre_common.testing import TestIssuer

ZENODO_TOKENS = {"zenodo-alice-client-0123456789": "alice"}


@dataclass
class LiveVre:
    """A running VRE: its URL, the issuer its tokens come from, the Zenodo stand-in, and its
    data folder (where `vre token USER --data DATA` finds its development issuer)."""

    url: str
    issuer: TestIssuer
    zenodo: ZenodoStandIn
    data: Path

    def zenodo_token(self, user: str) -> str:
        """The user's personal token at the Zenodo stand-in."""
        return next(t for t, u in ZENODO_TOKENS.items() if u == user)


@pytest.fixture(scope="session")
def live_vre(rucio_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveVre]:
    """The gateway with the datalake, workflows, catalogue and Zenodo services mounted as the
    embedded mode mounts them, served over real HTTP (as tests/test_e2e_chain.py builds it)."""
    # Imported here: the client's unit and contract tests need none of the server.
    from joserfc.jwk import RSAKey

    from services.zenodo.tests.support.standin import served_standin
    from tests.support.embedded import embedded_settings
    from vre_catalogue.config import CatalogueSettings
    from vre_catalogue.main import create_app as create_catalogue
    from vre_common.auth import StaticKeySource, TokenValidator
    from vre_common.testing import ServerThread, TestIssuer
    from vre_datalake.main import create_app as create_datalake
    from vre_gateway import embedded
    from vre_gateway.dev_issuer import DevIssuer
    from vre_gateway.factory import Factory
    from vre_gateway.main import create_app as create_gateway
    from vre_workflows.main import create_app as create_workflows
    from vre_zenodo.config import ZenodoApiSettings
    from vre_zenodo.main import create_app as create_zenodo

    issuer = TestIssuer()
    folder = tmp_path_factory.mktemp("vre-client")
    settings = embedded_settings(folder, issuer)
    # The development issuer of `vre up` too: `vre token USER --data <folder>` signs with its
    # key (found through runtime.json, as for a running `vre up`).
    dev = DevIssuer(folder, settings.dev_issuer_url, settings.dev_issuer)
    (folder / "runtime.json").write_text(
        json.dumps({"url": settings.base_url, "issuer": dev.issuer})
    )
    public = [
        (issuer.issuer, RSAKey.import_key(issuer.key.as_dict(private=False))),
        (dev.issuer, RSAKey.import_key(dev.key.as_dict(private=False))),
    ]
    validator = TokenValidator(
        issuer.auth_settings().model_copy(update={"issuers": [i for i, _ in public]}),
        StaticKeySource({i: [k] for i, k in public}),
    )
    factory = Factory(settings, validator=validator)  # first: the services get its link
    backends = embedded.Backends(rucio=rucio_server)
    datalake = embedded._datalake_settings(settings, backends)
    workflows = embedded._workflows_settings(settings)
    zenodo = embedded._zenodo_settings(settings)

    def fast(service_settings: object) -> dict[str, object]:
        provenance = service_settings.provenance  # type: ignore[attr-defined]
        return {"provenance": provenance.model_copy(update={"relay_interval_seconds": 0.3})}

    with served_standin(tmp_path_factory.mktemp("zenodo"), ZENODO_TOKENS) as standin:
        apps = {
            "datalake": create_datalake(
                datalake.model_copy(update=fast(datalake)), link=factory.link
            ),
            "workflows": create_workflows(
                workflows.model_copy(update=fast(workflows)), link=factory.link
            ),
            "catalogue": create_catalogue(
                CatalogueSettings(database=embedded._sqlite(settings, "catalogue")),
                link=factory.link,
            ),
            "zenodo": create_zenodo(
                zenodo.model_copy(
                    update={
                        "zenodo": ZenodoApiSettings(url=standin.base_url),
                        **fast(zenodo),
                    }
                ),
                link=factory.link,
            ),
        }
        gateway = create_gateway(settings, factory=factory, service_apps=apps)
        with ServerThread(gateway, port=settings.port) as server:
            yield LiveVre(url=server.url, issuer=issuer, zenodo=standin, data=folder)


@pytest.fixture
def as_alice(live_vre: LiveVre, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice's environment: ``VRE_URL`` and a token file found by discovery
    (``BEARER_TOKEN_FILE``); returns the token file."""
    token_file = tmp_path / "bt_alice"
    token_file.write_text(live_vre.issuer.token("alice") + "\n")
    token_file.chmod(0o600)
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("VRE_URL", live_vre.url)
    return token_file
