"""A private GAVO DaCHS (TAP, cone search, SIA v2, RegTAP, VOSI, UWS, uploads) on loopback.

Recipe: /work/shared/recipes/ivoa-tap.md. :class:`DachsServer` runs its own PostgreSQL
cluster (``initdb`` into a temporary folder; as root the PostgreSQL commands run through
``runuser -u postgres``) and ``dachs serve`` configured by ``GAVOSETTINGS``. It imports:

- ``vrecat``: a synthetic catalogue of :data:`ROWS` sources (ids, ICRS positions in a
  10°×10° patch around (150°, +2°), magnitudes) drawn with a fixed seed, queryable by ADQL as
  ``vrecat.main`` and by cone search at ``/vrecat/q/cone/scs.xml``;
- ``vreimg``: :data:`IMAGES`, tiny FITS images (noise with a fixed seed, tangent-projection
  WCS centred at known positions, a filter and its band) in a ``//siap#pgs`` table published
  to ObsCore (``//obscore#publishSIAP``) and served by an SIA v2 service on ObsCore
  (``//siap2#parameters``) at ``/vreimg/q/sia2/siap2.xml``;
- ``rr``: the RegTAP tables, harvested from DaCHS's own OAI-PMH interface after ``dachs pub``
  of the TAP, cone and SIA services (Debian's DaCHS has no ``rr`` resource: see
  :mod:`services.ivoa.tests.support.regtap`).

Building takes ≈ 25 s (measured on a busy 2-core machine); the result (PostgreSQL data +
DaCHS root, ≈ 50 MB) is kept as a template under the temporary directory, keyed by the
resource descriptors, the images, the harvester's code and the DaCHS version, so the next
session copies it and starts in ≈ 2 s after rewriting the two ports (and the harvested URLs,
which carry the port).
``stop()`` and ``start()`` stop and restart both processes on the same ports (a service going
down in the middle of a query, and back).

DaCHS runs on Debian's ``/usr/bin/python3``: it is called as the ``dachs`` command.

pgSphere 1.1.1 (Debian 12) declares two backwards-compatible ``@`` operators for DaCHS with a
COMMUTATOR/NEGATOR that PostgreSQL 15.8 and later refuse ("commutator operator @> is already
the commutator of operator <@"), so ``CREATE EXTENSION pg_sphere`` fails. The server here runs
from a private copy of the ``postgres`` binary whose relative share folder links to the
system's, except for that one script, copied without those four clauses
(:func:`private_postgres`); nothing outside the temporary directory is changed.
"""

from __future__ import annotations

import contextlib
import csv
import grp
import hashlib
import inspect
import math
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.ivoa.tests.support import regtap
from services.ivoa.tests.support.regtap import RR_RD, harvest, rows_json
from vre_common.testing import free_port

SEED = 20261125
ROWS = 2000
CENTER = (150.0, 2.0)
HALF_WIDTH = 5.0
SCHEMA = "vrecat"
TABLE = f"{SCHEMA}.main"
INSTALL_HINT = (
    "apt-get install --no-install-recommends python3-gavo postgresql-15-pgsphere "
    "postgresql-15-q3c (make system-deps does it)"
)

RD = """<resource schema="vrecat" resdir=".">
  <meta name="title">VRE synthetic catalogue</meta>
  <meta name="description">Synthetic sources with positions and magnitudes (tests).</meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="creator.name">VRE tests</meta>
  <meta name="subject">catalogs</meta>
  <meta name="referenceURL">http://127.0.0.1/</meta>
  <meta name="contentLevel">Research</meta>
  <meta name="type">Catalog</meta>
  <meta name="coverage.waveband">Optical</meta>
  <table id="main" onDisk="True" mixin="//scs#q3cindex" adql="True">
    <meta name="description">Synthetic sources: id, ICRS position, g magnitude.</meta>
    <primary>id</primary>
    <stc>Position ICRS "ra" "dec"</stc>
    <column name="id" type="integer" ucd="meta.id;meta.main" tablehead="Id" required="True"
      description="Source identifier." verbLevel="1"/>
    <column name="ra" type="double precision" unit="deg" ucd="pos.eq.ra;meta.main"
      tablehead="RA" description="ICRS right ascension." verbLevel="1"/>
    <column name="dec" type="double precision" unit="deg" ucd="pos.eq.dec;meta.main"
      tablehead="Dec" description="ICRS declination." verbLevel="1"/>
    <column name="mag" type="real" unit="mag" ucd="phot.mag;em.opt.V"
      tablehead="mag" description="Apparent magnitude." verbLevel="1"/>
  </table>
  <data id="import">
    <sources pattern="data/sources.csv"/>
    <csvGrammar names="id,ra,dec,mag"/>
    <make table="main">
      <rowmaker>
        <map dest="id">int(@id)</map>
        <map dest="ra">float(@ra)</map>
        <map dest="dec">float(@dec)</map>
        <map dest="mag">float(@mag)</map>
      </rowmaker>
    </make>
  </data>
  <service id="cone" allowed="form,scs.xml">
    <meta name="title">VRE synthetic catalogue cone search</meta>
    <meta name="shortName">vrecat cone</meta>
    <meta name="testQuery.ra">150.0</meta>
    <meta name="testQuery.dec">2.0</meta>
    <meta name="testQuery.sr">0.5</meta>
    <publish render="scs.xml" sets="ivo_managed"/>
    <scsCore queriedTable="main">
      <FEED source="//scs#coreDescs"/>
    </scsCore>
  </service>
</resource>
"""


REGISTRY_URL_FILE = "rr-url"  # the server URL the harvested rows carry
IMAGE_SCHEMA = "vreimg"
PIXELS = 24  # images are PIXELS × PIXELS
PIXEL_SCALE = 0.005  # degrees per pixel: an image spans 0.12°
IMAGE_RD = r"""<resource schema="vreimg" resdir=".">
  <meta name="title">VRE synthetic images</meta>
  <meta name="description">Synthetic FITS images at known positions, served by SIA v2
    (tests).</meta>
  <meta name="creationDate">2026-11-25T00:00:00Z</meta>
  <meta name="creator.name">VRE tests</meta>
  <meta name="subject">images</meta>
  <meta name="referenceURL">http://127.0.0.1/</meta>
  <meta name="contentLevel">Research</meta>
  <meta name="type">Archive</meta>
  <meta name="coverage.waveband">Infrared</meta>
  <meta name="instrument">VRE synthetic camera</meta>
  <meta name="facility">VRE test telescope</meta>
  <table id="main" onDisk="True" mixin="//siap#pgs" adql="True">
    <meta name="description">Synthetic images (SIAP table, published to ObsCore).</meta>
    <mixin calibLevel="2" collectionName="'vreimg'" targetName="object"
      >//obscore#publishSIAP</mixin>
    <column name="object" type="text" ucd="meta.id;src" tablehead="Object"
      description="The image's name." verbLevel="1"/>
  </table>
  <data id="import">
    <sources pattern="data/*.fits"/>
    <fitsProdGrammar>
      <rowfilter procDef="//products#define">
        <bind key="table">"\schema.main"</bind>
      </rowfilter>
    </fitsProdGrammar>
    <make table="main">
      <rowmaker>
        <apply procDef="//siap#setMeta">
          <bind key="dateObs">float(@MJD_OBS)</bind>
          <bind key="bandpassId">@FILTER</bind>
          <bind key="bandpassLo">float(@WAVELO)</bind>
          <bind key="bandpassHi">float(@WAVEHI)</bind>
          <bind key="bandpassRefval">(float(@WAVELO) + float(@WAVEHI)) / 2</bind>
          <bind key="pixflags">"C"</bind>
          <bind key="title">"VRE {} {}".format(@OBJECT, @FILTER)</bind>
        </apply>
        <apply procDef="//siap#computePGS"/>
        <map dest="object">@OBJECT</map>
      </rowmaker>
    </make>
  </data>
  <service id="sia2" allowed="siap2.xml,form">
    <meta name="title">VRE synthetic images SIA v2</meta>
    <meta name="shortName">vreimg sia2</meta>
    <meta name="sia.type">Pointed</meta>
    <meta name="testQuery.pos.ra">150.0</meta>
    <meta name="testQuery.pos.dec">2.0</meta>
    <meta name="testQuery.size.ra">0.1</meta>
    <meta name="testQuery.size.dec">0.1</meta>
    <publish render="siap2.xml" sets="ivo_managed"/>
    <dbCore queriedTable="//obscore#ObsCore">
      <FEED source="//siap2#parameters"/>
    </dbCore>
  </service>
</resource>
"""


@dataclass(frozen=True)
class Image:
    """One synthetic image: its name, centre (ICRS degrees), filter and band (metres)."""

    name: str
    ra: float
    dec: float
    filter: str
    band: tuple[float, float]
    mjd: float


V_BAND = (5.0e-7, 6.0e-7)
B_BAND = (3.9e-7, 4.9e-7)
J_BAND = (1.1e-6, 1.4e-6)
IMAGES = (
    Image("img1", 150.00, 2.00, "V", V_BAND, 61000.1),
    Image("img2", 150.20, 2.10, "V", V_BAND, 61000.2),
    Image("img3", 150.44, 2.05, "B", B_BAND, 61001.1),
    Image("img4", 149.30, 1.20, "J", J_BAND, 61002.1),
    Image("img5", 151.50, 3.00, "V", V_BAND, 61003.1),
    Image("img6", 148.60, 0.40, "J", J_BAND, 61004.1),
)


def image_header(image: Image) -> dict[str, object]:
    """The FITS header cards of an image (a tangent projection centred on it)."""
    centre = (PIXELS + 1) / 2
    return {
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CUNIT1": "deg", "CUNIT2": "deg",
        "CRVAL1": image.ra, "CRVAL2": image.dec, "CRPIX1": centre, "CRPIX2": centre,
        "CDELT1": -PIXEL_SCALE, "CDELT2": PIXEL_SCALE, "RADESYS": "ICRS", "EQUINOX": 2000.0,
        "OBJECT": image.name, "FILTER": image.filter, "WAVELO": image.band[0],
        "WAVEHI": image.band[1], "MJD-OBS": image.mjd,
    }  # fmt: skip


def write_image(image: Image, path: Path, seed: int = SEED) -> None:
    """A tiny FITS image of noise (fixed seed) with the WCS of :func:`image_header`."""
    import numpy
    from astropy.io import fits

    rng = numpy.random.default_rng([seed, IMAGES.index(image)])
    data = rng.normal(100.0, 5.0, (PIXELS, PIXELS)).astype(numpy.float32)
    header = fits.Header()
    for key, value in image_header(image).items():
        header[key] = value
    fits.PrimaryHDU(data=data, header=header).writeto(path)


WCS_KEYS = ("CTYPE", "CUNIT", "CRVAL", "CRPIX", "CDELT", "RADESYS", "EQUINOX")


def footprint(image: Image) -> list[tuple[float, float]]:
    """The image's corners as DaCHS computes its coverage (astropy's ``calc_footprint``)."""
    from astropy.wcs import WCS

    header: dict[str, object] = {"NAXIS": 2, "NAXIS1": PIXELS, "NAXIS2": PIXELS}
    header.update((k, v) for k, v in image_header(image).items() if k.startswith(WCS_KEYS))
    return [(float(ra), float(dec)) for ra, dec in WCS(header).calc_footprint()]


@dataclass(frozen=True)
class Source:
    """One row of the synthetic catalogue."""

    id: int
    ra: float
    dec: float
    mag: float


def catalogue(seed: int = SEED, rows: int = ROWS) -> list[Source]:
    """The synthetic catalogue (the same for a seed): uniform in the patch, magnitudes 12–22."""
    rng = random.Random(seed)
    ra0, dec0 = CENTER
    return [
        Source(
            id=i + 1,
            ra=round(rng.uniform(ra0 - HALF_WIDTH, ra0 + HALF_WIDTH), 7),
            dec=round(rng.uniform(dec0 - HALF_WIDTH, dec0 + HALF_WIDTH), 7),
            mag=round(rng.uniform(12.0, 22.0), 3),
        )
        for i in range(rows)
    ]


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine, stable at small separations)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def dachs_available() -> str | None:
    """None when DaCHS and PostgreSQL's tools are installed, else what is missing."""
    missing = [c for c in ("dachs", "initdb", "pg_ctl", "createdb") if not _which(c)]
    return f"{', '.join(missing)} not installed; {INSTALL_HINT}" if missing else None


def _which(command: str) -> str | None:
    found = shutil.which(command)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / command).exists():
            return str(base / command)
    return None


def _dachs_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "python3-gavo"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _pg_bindir() -> Path:
    pg_ctl = _which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError(f"pg_ctl not installed; {INSTALL_HINT}")
    return Path(pg_ctl).resolve().parent


def patched_pgsphere_script(text: str) -> str:
    """pgSphere's install script without the COMMUTATOR/NEGATOR clauses of the
    backwards-compatible ``@`` operators (the block after "backwards-compatible operators")."""
    out: list[str] = []
    in_block = False
    for line in text.splitlines(keepends=True):
        if "backwards-compatible operators" in line:
            in_block = True
        elif in_block and line.startswith("-- debugging"):
            in_block = False
        if in_block and line.strip().startswith(("COMMUTATOR", "NEGATOR")):
            continue
        out.append(line)
    return "".join(out)


def private_postgres(cache_dir: Path) -> Path:
    """The path of a ``postgres`` binary whose share folder has the patched pgSphere script.

    PostgreSQL finds its share and lib folders relative to its own executable
    (``<prefix>/lib/postgresql/<v>/bin`` → ``<prefix>/share/postgresql/<v>``), so a copy of
    the binary under a private prefix reads a private share folder (links to the system's).
    """
    bindir = _pg_bindir()
    version = bindir.parent.name
    system_share = Path("/usr/share/postgresql") / version
    prefix = cache_dir / f"pgprefix-{version}"
    binary = prefix / "lib" / "postgresql" / version / "bin" / "postgres"
    if binary.exists():
        return binary
    scratch = Path(tempfile.mkdtemp(prefix="pgprefix-", dir=cache_dir))
    scratch.chmod(0o755)
    pkg = scratch / "lib" / "postgresql" / version
    (pkg / "bin").mkdir(parents=True)
    shutil.copy2(bindir / "postgres", pkg / "bin" / "postgres")
    (pkg / "lib").symlink_to(bindir.parent / "lib")
    share = scratch / "share" / "postgresql" / version
    (share / "extension").mkdir(parents=True)
    for entry in system_share.iterdir():
        if entry.name != "extension":
            (share / entry.name).symlink_to(entry)
    for entry in (system_share / "extension").iterdir():
        if entry.name.startswith("pg_sphere--") and entry.suffix == ".sql":
            (share / "extension" / entry.name).write_text(
                patched_pgsphere_script(entry.read_text())
            )
        else:
            (share / "extension" / entry.name).symlink_to(entry)
    for folder in (scratch, *scratch.rglob("*")):
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)
    try:
        scratch.rename(prefix)
    except OSError:  # another session made it first
        shutil.rmtree(scratch, ignore_errors=True)
    return binary


class DachsServer:
    """A private DaCHS with its own PostgreSQL (see the module docstring)."""

    def __init__(self, workdir: Path | None = None, *, cache_dir: Path | None = None) -> None:
        self.root = workdir or Path(tempfile.mkdtemp(prefix="vre-dachs-"))
        self.root.chmod(0o755)  # the postgres user must reach its data folder
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "vre-dachs-templates"
        self.pg_port = free_port()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self._web: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    # ------------------------------------------------------------------ locations

    @property
    def tap_url(self) -> str:
        """The TAP service's base URL."""
        return f"{self.url}/tap"

    @property
    def scs_url(self) -> str:
        """The cone search service's URL."""
        return f"{self.url}/{SCHEMA}/q/cone/scs.xml"

    @property
    def sia_url(self) -> str:
        """The SIA v2 query URL of the image collection."""
        return f"{self.url}/{IMAGE_SCHEMA}/q/sia2/siap2.xml"

    @property
    def _pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def _gavo(self) -> Path:
        return self.root / "gavo"

    @property
    def _rc(self) -> Path:
        return self.root / "gavo.rc"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(GAVOSETTINGS=str(self._rc), GAVOCUSTOM="/nonexistent")
        return env

    # ------------------------------------------------------------------ processes

    def _pg(self, *args: str) -> None:
        command = [_which(args[0]) or args[0], *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")

    def _dachs(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            ["dachs", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dachs {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def _write_config(self) -> None:
        group = grp.getgrgid(os.getegid()).gr_name
        self._rc.write_text(
            "[general]\n"
            f"rootDir: {self._gavo}\n"
            f"group: {group}\n"
            "[web]\n"
            "bindAddress: 127.0.0.1\n"
            f"serverPort: {self.web_port}\n"
            f"serverURL: {self.url}\n"
            "user: None\n"
            "[ivoa]\n"
            "authority: dachs.test\n"
        )
        dsn = self._gavo / "etc" / "dsn"
        if dsn.exists():
            dsn.write_text(f"database = gavo\nhost = 127.0.0.1\nport = {self.pg_port}\n")

    def _start_pg(self) -> None:
        sock = self.root / "sock"
        sock.mkdir(exist_ok=True)
        if self._as_postgres:
            shutil.chown(sock, "postgres")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.chmod(0o755)
        postgres = private_postgres(self.cache_dir)
        self._pg(
            "pg_ctl", "-D", str(self._pgdata), "-l", str(sock / "postgresql.log"), "-w",
            "-p", str(postgres),
            "-o", f"-p {self.pg_port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off",
            "start",
        )  # fmt: skip

    def _stop_pg(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._pg("pg_ctl", "-D", str(self._pgdata), "-m", "fast", "-w", "stop")

    def _start_web(self) -> None:
        log = (self.root / "dachs.log").open("ab")
        self._web = subprocess.Popen(
            ["dachs", "serve", "start", "-f"],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self._web.poll() is not None:
                raise RuntimeError(
                    "dachs serve exited:\n" + (self.root / "dachs.log").read_text()[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.tap_url}/availability", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("dachs serve did not become available")
            time.sleep(0.1)

    def _stop_web(self) -> None:
        web, self._web = self._web, None
        if web is None or web.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(web.pid, signal.SIGKILL)
            web.wait(5)

    # ------------------------------------------------------------------ life cycle

    def _template_key(self) -> str:
        digest = hashlib.sha256()
        sources = [inspect.getsource(f) for f in (image_header, write_image, regtap)]
        params = f"{SEED}:{ROWS}:{PIXELS}:{PIXEL_SCALE}"
        for text in (RD, IMAGE_RD, RR_RD, repr(IMAGES), params, *sources):
            digest.update(text.encode())
        digest.update(_dachs_version().encode())
        return digest.hexdigest()[:16]

    def _build(self) -> None:
        """initdb, createdb, dachs init, import the catalogue (≈ 5 s)."""
        self._pgdata.mkdir(mode=0o700)
        if self._as_postgres:
            shutil.chown(self._pgdata, "postgres", "postgres")
        self._pg(
            "initdb", "-D", str(self._pgdata), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        self._start_pg()
        self._pg(
            "createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
            "-E", "UTF-8", "-T", "template0", "gavo",
        )  # fmt: skip
        self._write_config()
        self._dachs("init", "-d", f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=gavo")
        inputs = self._gavo / "inputs" / SCHEMA
        (inputs / "data").mkdir(parents=True, exist_ok=True)
        (inputs / "q.rd").write_text(RD)
        with (inputs / "data" / "sources.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            for s in catalogue():
                writer.writerow([s.id, repr(s.ra), repr(s.dec), repr(s.mag)])
        self._dachs("imp", f"{SCHEMA}/q")
        self._dachs("imp", "//obscore")
        images = self._gavo / "inputs" / IMAGE_SCHEMA
        (images / "data").mkdir(parents=True, exist_ok=True)
        (images / "q.rd").write_text(IMAGE_RD)
        for image in IMAGES:
            write_image(image, images / "data" / f"{image.name}.fits")
        self._dachs("imp", f"{IMAGE_SCHEMA}/q")
        self._build_registry()

    def _build_registry(self) -> None:
        """Publish the resources, harvest them from DaCHS's OAI-PMH, import them as ``rr``."""
        self._dachs("pub", "//tap", f"{SCHEMA}/q", f"{IMAGE_SCHEMA}/q")
        self._start_web()
        try:
            records = httpx.get(
                f"{self.url}/oai.xml",
                params={"verb": "ListRecords", "metadataPrefix": "ivo_vor"},
                timeout=60,
            )
        finally:
            self._stop_web()
        records.raise_for_status()
        inputs = self._gavo / "inputs" / "rr"
        (inputs / "data").mkdir(parents=True, exist_ok=True)
        (inputs / "q.rd").write_text(RR_RD)
        (inputs / "data" / "rr.json").write_text(rows_json(harvest(records.content)))
        self._dachs("imp", "rr/q")
        (self._gavo / REGISTRY_URL_FILE).write_text(self.url)

    def _rebase_registry(self) -> None:
        """Point the harvested URLs at this instance's port (a copied template's are old)."""
        marker = self._gavo / REGISTRY_URL_FILE
        old = marker.read_text().strip() if marker.exists() else self.url
        if old == self.url:
            return
        script = "".join(
            f"UPDATE rr.{table} SET {column} = replace({column}, :'old', :'new');\n"
            for table, column in (("interface", "access_url"), ("resource", "reference_url"))
        )
        done = subprocess.run(
            [_which("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
             "postgres", "-d", "gavo", "-v", "ON_ERROR_STOP=1", "-v", f"old={old}",
             "-v", f"new={self.url}"],
            input=script, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rewriting the registry's URLs failed:\n{done.stderr}")
        marker.write_text(self.url)

    def start(self) -> DachsServer:
        """Start (building the instance, or copying the cached template, the first time)."""
        if not self._pgdata.exists():
            template = self.cache_dir / self._template_key()
            if (template / "ready").exists():
                subprocess.run(
                    ["cp", "-a", f"{template}/pgdata", f"{template}/gavo", str(self.root)],
                    check=True,
                )
                self._write_config()
            else:
                self._build()
                self._stop_pg()
                self._save_template(template)
        try:
            self._start_pg()
            self._rebase_registry()
            self._start_web()
        except BaseException:
            self.stop()
            raise
        return self

    def _save_template(self, template: Path) -> None:
        """Keep a copy of a cleanly stopped instance (written aside, then renamed)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.chmod(0o755)
        scratch = Path(tempfile.mkdtemp(prefix="building-", dir=self.cache_dir))
        scratch.chmod(0o755)
        subprocess.run(["cp", "-a", str(self._pgdata), str(self._gavo), str(scratch)], check=True)
        for transient in ("postmaster.pid", "postmaster.opts"):
            (scratch / "pgdata" / transient).unlink(missing_ok=True)
        (scratch / "ready").write_text("ok\n")
        try:
            scratch.rename(template)
        except OSError:  # another session saved it first
            shutil.rmtree(scratch, ignore_errors=True)

    def stop(self) -> None:
        """Stop DaCHS and PostgreSQL (running queries die with them); ports are kept."""
        self._stop_web()
        self._stop_pg()

    def cancel_queries(self) -> int:
        """Cancel every query running on the catalogue (after a test of slow queries)."""
        done = subprocess.run(
            [_which("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
             "postgres", "-d", "gavo", "-tA", "-c",
             "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
             "WHERE query ILIKE '%vrecat.main%' AND pid <> pg_backend_pid()"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return int(done.stdout.strip() or 0) if done.returncode == 0 else 0

    def close(self) -> None:
        """Stop and remove the instance's folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """The service is down inside the block and back (same ports) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def __enter__(self) -> DachsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":  # a manual check: python -m services.ivoa.tests.support.dachs
    started = time.monotonic()
    with DachsServer() as server:
        print(f"up in {time.monotonic() - started:.1f} s: {server.tap_url} {server.scs_url}")
        print(server.sia_url)
        print(httpx.get(f"{server.tap_url}/tables", timeout=10).text[:400])
