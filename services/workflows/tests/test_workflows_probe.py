from services.workflows.tests.test_workflows_reana import *  # noqa

async def test_p1(rw: Harness, reana) -> None:
    bad = await rw.client.put("/credentials/reana", json={"token": "not-a-token"}, headers=rw.headers())
    assert bad.status_code == 403

async def test_p2(rw: Harness, reana) -> None:
    good = await rw.client.put("/credentials/reana", json={"token": GOOD}, headers=rw.headers())
    assert good.status_code == 200

async def test_p3(rw: Harness, reana) -> None:
    async with rw.components.db.sessionmaker() as session:
        stored = (await session.execute(select(ReanaCredentialRow))).scalars().all()

async def test_p4(rw: Harness, reana) -> None:
    again = await rw.client.delete("/credentials/reana", headers=rw.headers())
    assert again.status_code == 404

async def test_zz(rw: Harness, reana) -> None:
    import gc; gc.collect()
