"""Units of the ivoa service without a VO server: credentials stay on their host (also across
redirects), the RegTAP query pyvo's constraints build, and settings validation."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from vre_common.settings import HttpClientSettings
from vre_ivoa.backends.registry import build_query
from vre_ivoa.backends.vo import VoServiceClient
from vre_ivoa.config import IvoaSettings, LimitSettings, VoServiceConfig
from vre_ivoa.errors import VoServiceError

VOTABLE = (
    b"<?xml version='1.0'?><VOTABLE version='1.3' xmlns='http://www.ivoa.net/xml/VOTable/v1.3'>"
    b"<RESOURCE type='results'><INFO name='QUERY_STATUS' value='OK'/><TABLE>"
    b"<FIELD name='id' datatype='int'/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA>"
    b"</TABLE></RESOURCE></VOTABLE>"
)


def client_with(handler: httpx.MockTransport, **credentials: str) -> VoServiceClient:
    config = VoServiceConfig.model_validate(
        {"name": "prot", "type": "tap", "url": "https://archive.test/tap",
         "credentials": credentials}
    )  # fmt: skip
    return VoServiceClient(
        config,
        limits=LimitSettings(),
        http=HttpClientSettings(),
        client=httpx.AsyncClient(transport=handler, follow_redirects=False),
    )


async def test_credentials_only_to_the_configured_origin() -> None:
    seen: list[tuple[str, str | None]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "archive.test" and request.url.path == "/tap/sync":
            return httpx.Response(303, headers={"location": "https://elsewhere.test/result"})
        return httpx.Response(200, content=VOTABLE)

    client = client_with(httpx.MockTransport(handle), bearer_token="s3cret")
    document = await client.tap_sync("SELECT 1", maxrec=10, upload=None, seconds=5)
    assert document.rows == 1
    assert seen[0] == ("https://archive.test/tap/sync", "Bearer s3cret")
    assert seen[1] == ("https://elsewhere.test/result", None)  # never across hosts


async def test_same_host_other_port_gets_no_credentials() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.url.port is None:
            return httpx.Response(302, headers={"location": "https://archive.test:8443/x"})
        return httpx.Response(200, content=VOTABLE)

    client = client_with(httpx.MockTransport(handle), username="u", password="p")
    await client.tap_sync("SELECT 1", maxrec=10, upload=None, seconds=5)
    assert seen[0] is not None
    assert seen[0].startswith("Basic ")
    assert seen[1] is None


async def test_garbage_is_a_bad_gateway() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=b"<html>oops</html>"))
    client = client_with(transport)
    with pytest.raises(VoServiceError) as caught:
        await client.tap_sync("SELECT 1", maxrec=10, upload=None, seconds=5)
    assert caught.value.status == 502


def test_registry_query_from_pyvo_constraints() -> None:
    adql = build_query(keywords=["quasar", "o'neil"], service_type="tap", waveband="optical",
                       limit=20)  # fmt: skip
    assert adql.startswith("SELECT DISTINCT TOP 20 ivoid, res_title")
    assert "ivo_hasword(res_title, 'quasar')" in adql
    assert "'o''neil'" in adql  # pyvo's SQL literal escaping
    assert "standard_id IN ('ivo://ivoa.net/std/tap')" in adql
    assert "1 = ivo_hashlist_has(rr.resource.waveband, 'optical')" in adql
    assert "NATURAL LEFT OUTER JOIN rr.res_subject" in adql
    every = build_query(keywords=[], service_type=None, waveband=None, limit=5)
    assert "ivo://ivoa.net/std/conesearch" in every
    assert "ivo://ivoa.net/std/sia#query-2.0" in every


def test_settings_refuse_bad_services() -> None:
    with pytest.raises(ValidationError):
        IvoaSettings.model_validate(
            {"services": [{"name": "a", "type": "tap", "url": "https://x.test/tap"},
                          {"name": "a", "type": "scs", "url": "https://y.test/scs"}]}
        )  # fmt: skip
    with pytest.raises(ValidationError):
        VoServiceConfig.model_validate({"name": "a", "type": "tap", "url": "ftp://x.test/"})
    with pytest.raises(ValidationError):
        VoServiceConfig.model_validate({"name": "A B", "type": "tap", "url": "https://x.test"})
