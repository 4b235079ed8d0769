"""SIA v2 and registry discovery end to end, through the gateway, on the private DaCHS.

SIA: the images DaCHS serves are the fixture's synthetic FITS images; which of them a
``POS=CIRCLE`` query must return is decided here from their WCS footprints (the corners DaCHS
itself computes its coverage from) with an exact spherical test, so the result is compared
with the test's own geometry, not with what the server said last time. Discovery: DaCHS's TAP
serves a RegTAP ``rr`` schema harvested from its own OAI-PMH interface (see
``support/regtap.py``); a search by keyword, service type and waveband returns the fixture's
own published services.
"""

from __future__ import annotations

import io
import math
from typing import Any

import httpx
import pytest

from services.ivoa.tests.conftest import DEAD_SIA, SCS, SIA, TAP, Vre
from services.ivoa.tests.support.dachs import IMAGES, J_BAND, Image, footprint
from services.ivoa.tests.test_ivoa_e2e import absent, fetch_result, poll, read_table
from vre_ivoa.models import EXTENSIONS

Point = tuple[float, float]
MARGIN = 1e-4  # images this close (in tan(angle)) to a cone's edge make a case ambiguous


def gnomonic(ra0: float, dec0: float, ra: float, dec: float) -> Point:
    """The tangent-plane (gnomonic) projection of (ra, dec) around (ra0, dec0).

    It maps great circles to straight lines and a cone of radius r around the centre to a
    disc of radius tan(r): a spherical polygon meets the cone exactly when its projection
    meets that disc.
    """
    a0, d0, a, d = map(math.radians, (ra0, dec0, ra, dec))
    cos_c = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(a - a0)
    x = math.cos(d) * math.sin(a - a0) / cos_c
    y = (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(a - a0)) / cos_c
    return x, y


def _segment_distance(p: Point, q: Point) -> float:
    """Distance from the origin to the segment pq."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    t = max(0.0, min(1.0, -(p[0] * dx + p[1] * dy) / (dx * dx + dy * dy)))
    return math.hypot(p[0] + t * dx, p[1] + t * dy)


def _contains_origin(polygon: list[Point]) -> bool:
    signs = {
        math.copysign(1.0, p[0] * q[1] - p[1] * q[0])
        for p, q in zip(polygon, polygon[1:] + polygon[:1], strict=True)
    }
    return len(signs) == 1  # a convex polygon: the origin is on the same side of every edge


def cone_meets(image: Image, ra: float, dec: float, radius: float) -> tuple[bool, float]:
    """(does the image's footprint meet the cone, how far from the edge the decision is)."""
    corners = [gnomonic(ra, dec, a, d) for a, d in footprint(image)]
    edges = zip(corners, corners[1:] + corners[:1], strict=True)
    distance = 0.0 if _contains_origin(corners) else min(_segment_distance(p, q) for p, q in edges)
    limit = math.tan(math.radians(radius))
    return distance < limit, abs(distance - limit)


def centre_inside(image: Image, ra: float, dec: float, radius: float) -> bool:
    x, y = gnomonic(ra, dec, image.ra, image.dec)
    return math.hypot(x, y) < math.tan(math.radians(radius))


def expected_images(
    ra: float, dec: float, radius: float, band: tuple[float, float] | None
) -> set[str]:
    """The images a POS=CIRCLE (and BAND) query must return, by the test's own geometry."""
    names = set()
    for image in IMAGES:
        meets, margin = cone_meets(image, ra, dec, radius)
        assert margin > MARGIN, f"{image.name} is too close to the cone's edge for a clear case"
        in_band = band is None or (image.band[0] <= band[1] and band[0] <= image.band[1])
        if meets and in_band:
            names.add(image.name)
    return names


# ---------------------------------------------------------------------- SIA v2

SIA_CASES = {
    # a cone that takes an image whose centre lies outside it (its footprint reaches in)
    "footprint-reaches-in": ((150.1, 2.05, 0.3), None, "votable", {"img1", "img2", "img3"}),
    # a cone inside one image: no corner inside it, its centre inside the footprint
    "cone-inside-an-image": ((149.3, 1.2, 0.02), None, "fits", {"img4"}),
    # a wide cone with a BAND (J) that keeps the infrared images only
    "band": ((149.9, 1.6, 1.2), J_BAND, "parquet", {"img4"}),
    "nothing-there": ((10.0, -60.0, 1.0), None, "votable", set()),
}


@pytest.mark.parametrize("case", SIA_CASES)
async def test_sia_by_position_returns_the_images_of_its_geometry(
    http: httpx.AsyncClient, vre: Vre, uid: str, case: str
) -> None:
    (ra, dec, radius), band, fmt, sanity = SIA_CASES[case]
    expected = expected_images(ra, dec, radius, band)
    assert expected == sanity  # the geometry makes the case the comment says it is
    if case == "footprint-reaches-in":
        assert any(not centre_inside(i, ra, dec, radius) for i in IMAGES if i.name in expected)
    if case == "band":
        assert expected_images(ra, dec, radius, None) > expected  # the band removed some
    alice = vre.headers("alice")
    sia: dict[str, Any] = {"ra": ra, "dec": dec, "radius": radius}
    if band is not None:
        sia["band"] = list(band)
    name = f"ivoa/{uid}/images.{EXTENSIONS[fmt]}"
    mode = "async" if case == "band" else "sync"  # an async SIA query runs in the background
    body = {"service": SIA, "sia": sia, "mode": mode,
            "destination": {"scope": "user.alice", "name": name, "format": fmt}}  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == (202 if mode == "async" else 201), answer.text
    job = answer.json()
    if mode == "async":
        job = await poll(
            http, answer.headers["location"], alice,
            lambda b: b["phase"] not in ("QUEUED", "EXECUTING"),
        )  # fmt: skip
    assert job["phase"] == "COMPLETED", job["error"]
    assert job["service_type"] == "sia2"
    assert job["parameters"]["radius"] == radius
    result = job["result"]
    assert result["did"] == f"user.alice:{name}"
    assert result["rows"] == len(expected)
    assert {"access_url", "s_region", "obs_publisher_did"} <= set(result["columns"])

    table = read_table(await fetch_result(http, result["did"], alice), fmt)
    assert len(table) == len(expected)
    assert {str(t) for t in table["target_name"]} == expected
    assert {str(c) for c in table["obs_collection"]} <= {"vreimg"}

    did = await http.get(f"/datalake/dids/user.alice/{name}", headers=alice)
    assert did.status_code == 200, did.text
    meta = did.json()["metadata"]
    assert meta["ivoa_service"] == SIA
    assert meta["ivoa_service_url"] == vre.dachs.sia_url
    assert meta["ivoa_query"] == job["query"]
    assert meta["ivoa_query"].startswith(f"SIA POS=CIRCLE {ra} {dec} {radius}")
    assert meta["ivoa_rows"] == len(expected)
    assert meta["ivoa_format"] == fmt
    assert meta["ivoa_query_id"] == job["id"]


async def test_sia_result_points_at_the_images(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    """The access_url of a found image serves that image (its WCS centre is the image's)."""
    from astropy.io import fits

    alice = vre.headers("alice")
    name = f"ivoa/{uid}/one.vot"
    body = {"service": SIA, "sia": {"ra": 151.5, "dec": 3.0, "radius": 0.01}, "mode": "sync",
            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 201, answer.text
    table = read_table(await fetch_result(http, f"user.alice:{name}", alice), "votable")
    assert [str(t) for t in table["target_name"]] == ["img5"]
    image = next(i for i in IMAGES if i.name == "img5")
    async with httpx.AsyncClient(timeout=30) as direct:
        fetched = await direct.get(str(table["access_url"][0]))
    assert fetched.status_code == 200
    header = fits.getheader(io.BytesIO(fetched.content))
    assert (header["CRVAL1"], header["CRVAL2"], header["OBJECT"]) == (image.ra, image.dec, "img5")


GOOD_SIA = {"ra": 150.0, "dec": 2.0, "radius": 0.1}


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"sia": dict(GOOD_SIA, dec=95)}, ["body", "sia", "dec"]),
        ({"sia": dict(GOOD_SIA, ra=-1)}, ["body", "sia", "ra"]),
        ({"sia": dict(GOOD_SIA, radius=0)}, ["body", "sia", "radius"]),
        ({"sia": dict(GOOD_SIA, band=[2e-6, 1e-6])}, ["body", "sia"]),
        ({"sia": dict(GOOD_SIA, band=[0, 1e-6])}, ["body", "sia"]),
        ({"sia": dict(GOOD_SIA, calib_level=[7])}, ["body", "sia"]),
        ({"sia": dict(GOOD_SIA, collection="x" * 300)}, ["body", "sia", "collection"]),
        ({"sia": dict(GOOD_SIA, size=1)}, ["body", "sia", "size"]),
        ({"sia": None, "cone": GOOD_SIA}, ["body", "sia"]),
        ({"adql": "SELECT 1"}, ["body", "adql"]),
        ({"upload": {"did": "user.alice:t.csv"}}, ["body", "upload"]),
        ({"maxrec": 10_000_000}, ["body", "maxrec"]),
    ],
)
async def test_bad_sia_parameters_refused_before_the_service(
    http: httpx.AsyncClient, vre: Vre, uid: str, change: dict[str, Any], loc: list[str]
) -> None:
    """Sent to an SIA service nothing listens at: a 422 (not a 503) shows the parameters were
    judged before any call; and no job is recorded."""
    alice = vre.headers("alice")
    name = f"ivoa/{uid}/refused.vot"
    body: dict[str, Any] = {"service": DEAD_SIA, "sia": GOOD_SIA, "mode": "sync",
                            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    body.update(change)
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    locs = [e["loc"][: len(loc)] for e in answer.json()["errors"]]
    assert loc in locs, answer.json()
    jobs = (await http.get("/ivoa/queries", headers=alice)).json()["items"]
    assert all(j["destination"] != f"user.alice:{name}" for j in jobs)


async def test_sia_service_down_is_503_and_writes_nothing(
    http: httpx.AsyncClient, vre: Vre, uid: str
) -> None:
    """The same well-formed request as above does reach for the service (and finds nobody)."""
    alice = vre.headers("alice")
    name = f"ivoa/{uid}/down.vot"
    body = {"service": DEAD_SIA, "sia": GOOD_SIA, "mode": "sync",
            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 503, answer.text
    assert DEAD_SIA in answer.json()["detail"]
    assert await absent(http, f"user.alice:{name}", alice)


# ---------------------------------------------------------------------- registry

CONE_ID = "ivo://dachs.test/vrecat/q/cone"
SIA_ID = "ivo://dachs.test/vreimg/q/sia2"
TAP_ID = "ivo://dachs.test/tap"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "synthetic"}, {CONE_ID, SIA_ID}),
        ({"q": "synthetic images"}, {SIA_ID}),
        ({"q": "magnitudes"}, {CONE_ID}),
        ({"service_type": "tap"}, {TAP_ID}),
        ({"service_type": "scs"}, {CONE_ID}),
        ({"service_type": "sia2"}, {SIA_ID}),
        ({"waveband": "infrared"}, {SIA_ID}),
        ({"waveband": "optical"}, {CONE_ID}),
        ({"q": "synthetic", "service_type": "sia2", "waveband": "optical"}, set()),
        ({"q": "quasars"}, set()),
        ({}, {CONE_ID, SIA_ID, TAP_ID}),
    ],
)
async def test_registry_finds_the_published_services(
    http: httpx.AsyncClient, vre: Vre, params: dict[str, str], expected: set[str]
) -> None:
    answer = await http.get("/ivoa/registry", params=params, headers=vre.headers("alice"))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert {i["ivoid"] for i in items} == expected
    urls = {"tap": vre.dachs.tap_url, "scs": vre.dachs.scs_url, "sia2": vre.dachs.sia_url}
    titles = {CONE_ID: "VRE synthetic catalogue cone search", SIA_ID: "VRE synthetic images SIA v2"}
    for item in items:
        assert item["service_type"] in urls
        assert item["access_url"].rstrip("?") == urls[item["service_type"]]
        if item["ivoid"] in titles:
            assert item["title"] == titles[item["ivoid"]]
    wavebands = {i["ivoid"]: i["waveband"] for i in items}
    if SIA_ID in wavebands:
        assert wavebands[SIA_ID] == ["infrared"]
    if CONE_ID in wavebands:
        assert wavebands[CONE_ID] == ["optical"]


async def test_registry_limit_and_bad_parameters(http: httpx.AsyncClient, vre: Vre) -> None:
    alice = vre.headers("alice")
    one = await http.get("/ivoa/registry", params={"limit": 1}, headers=alice)
    assert one.status_code == 200, one.text
    assert len(one.json()["items"]) == 1
    bad: list[tuple[dict[str, Any], str]] = [
        ({"service_type": "ssa"}, "service_type"),
        ({"waveband": "Optical!"}, "waveband"),
        ({"limit": 0}, "limit"),
    ]
    for params, field in bad:
        answer = await http.get("/ivoa/registry", params=params, headers=alice)
        assert answer.status_code == 422, answer.text
        assert field in {e["loc"][-1] for e in answer.json()["errors"]}
    assert (await http.get("/ivoa/registry")).status_code == 401


async def test_discovered_services_are_the_configured_ones(
    http: httpx.AsyncClient, vre: Vre
) -> None:
    """What discovery finds is what this deployment offers: the found SIA service is the
    configured one (same IVOA id and URL)."""
    alice = vre.headers("alice")
    found = await http.get("/ivoa/registry", params={"service_type": "sia2"}, headers=alice)
    (item,) = found.json()["items"]
    listed = await http.get("/ivoa/services", headers=alice)
    services = {s["name"]: s for s in listed.json()["items"]}
    assert services[SIA]["ivoid"] == item["ivoid"]
    assert services[SIA]["url"] == item["access_url"].rstrip("?")
    assert services[TAP]["url"] == vre.dachs.tap_url
    assert services[SCS]["url"] == vre.dachs.scs_url
