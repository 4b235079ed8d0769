"""A Rucio on SQLite that answers "database is locked" is asked again, briefly."""

from __future__ import annotations

import httpx
import pytest

from vre_common.errors import VreError
from vre_datalake.backends.rucio_rest import BUSY_RETRIES, BearerAuth, RucioRest
from vre_datalake.config import RucioSettings

LOCKED = {
    "ExceptionClass": "RucioException",
    "ExceptionMessage": "('(sqlite3.OperationalError) database is locked',)",
}


def _rest(answers: list[httpx.Response], calls: list[httpx.Request]) -> RucioRest:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RucioRest(RucioSettings(url="http://rucio.test"), client)


async def test_locked_database_is_retried_until_it_answers() -> None:
    calls: list[httpx.Request] = []
    answers = [
        httpx.Response(500, json=LOCKED),
        httpx.Response(500, json=LOCKED),
        httpx.Response(201, text="Created"),
    ]
    rest = _rest(answers, calls)
    response = await rest.request(
        "POST",
        "/dids/user.alice/ds",
        auth=BearerAuth("t"),
        operation="add_did",
        json_body={"type": "DATASET"},
    )
    assert response.status_code == 201
    assert len(calls) == 3
    await rest.aclose()


async def test_a_database_that_stays_locked_gives_an_error_after_a_few_tries() -> None:
    calls: list[httpx.Request] = []
    rest = _rest([httpx.Response(500, json=LOCKED)], calls)
    with pytest.raises(VreError) as failure:
        await rest.request(
            "GET", "/dids/user.alice/ds/meta", auth=BearerAuth("t"), operation="get_metadata"
        )
    assert failure.value.status >= 500
    assert len(calls) == BUSY_RETRIES + 1
    await rest.aclose()


async def test_other_server_errors_are_not_retried() -> None:
    calls: list[httpx.Request] = []
    other = {"ExceptionClass": "RucioException", "ExceptionMessage": "something else"}
    rest = _rest([httpx.Response(500, json=other)], calls)
    with pytest.raises(VreError):
        await rest.request("GET", "/ping", auth=None, operation="ping")
    assert len(calls) == 1
    await rest.aclose()
