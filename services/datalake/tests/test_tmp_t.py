import time, httpx
from services.datalake.tests.test_datalake_streaming import _raw_put, MiB

async def test_x(served, issuer, uid):
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        t=time.monotonic(); r = await http.get(f"/scopes/mine", headers=issuer.headers()); print("warm", r.status_code, round(time.monotonic()-t,3))
        _raw_put(served.url, f"user.alice/{uid}/cut.bin", issuer.headers(), 32 * MiB, 8 * MiB)
        for i in range(3):
            t=time.monotonic(); r = await http.get(f"/dids/user.alice/{uid}/x{i}", headers=issuer.headers()); print("get", r.status_code, round(time.monotonic()-t,3))
            t=time.monotonic(); r = await http.put(f"/files/user.alice/{uid}/x{i}", content=b"abc", headers=issuer.headers()); print("put", r.status_code, round(time.monotonic()-t,3))
