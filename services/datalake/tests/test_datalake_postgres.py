"""Arbitrary metadata keys on a Rucio with PostgreSQL (Rucio's own JSON metadata plugin)."""

from __future__ import annotations

from services.datalake.tests.conftest import settings_params
from services.datalake.tests.datalake_support import make_settings
from vre_common.testing import TestIssuer, app_client
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio


async def test_arbitrary_metadata_on_postgresql(
    rucio_server_pg: LocalRucio, issuer: TestIssuer, uid: str
) -> None:
    settings = make_settings(**settings_params(rucio_server_pg, issuer))
    async with app_client(create_app(settings, validator=issuer.validator())) as http:
        headers = issuer.headers("alice")
        put = await http.put(
            f"/files/user.alice/{uid}/a.fits",
            content=b"a" * 100,
            params={"meta": ['telescope="LST-1"', "zenith_deg=20.5", "run_number=7"]},
            headers=headers,
        )
        assert put.status_code == 201, put.text
        await http.put(f"/files/user.alice/{uid}/b.fits", content=b"b" * 100, headers=headers)
        meta = await http.post(
            f"/dids/user.alice/{uid}/b.fits/metadata",
            json={"metadata": {"telescope": "MAGIC", "zenith_deg": 40}},
            headers=headers,
        )
        assert meta.status_code == 200, meta.text
        assert meta.json()["metadata"]["telescope"] == "MAGIC"

        did = await http.get(f"/dids/user.alice/{uid}/a.fits", headers=headers)
        assert did.json()["metadata"]["telescope"] == "LST-1"
        assert did.json()["metadata"]["zenith_deg"] == 20.5
        assert did.json()["metadata"]["run_number"] == 7

        async def names(*conditions: str) -> list[str]:
            response = await http.get(
                "/dids/user.alice",
                params={"name": f"{uid}/*", "meta": list(conditions)},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            return sorted(d["name"] for d in response.json()["items"])

        assert await names("telescope=LST-1") == [f"{uid}/a.fits"]
        assert await names("zenith_deg>30") == [f"{uid}/b.fits"]
        assert await names("telescope!=nothing") == [f"{uid}/a.fits", f"{uid}/b.fits"]
