"""The development server's WSGI application: Rucio's own, with three request costs taken out.

gunicorn loads this module from the Rucio server environment (``--pythonpath`` this folder,
``wsgi:application``), so it imports only Rucio, its dependencies and the standard library.

Rucio checks each request body with ``jsonschema.validate(body, schema)``, which first checks
the *schema* against its meta-schema (draft 2020-12, ``$dynamicRef`` and all): about a fifth
of the server's CPU time on an upload's two writes (``POST /replicas``, ``POST /rules/``).
Here each schema's validator is built and checked once; every body is still validated, with
the same errors (``jsonschema.validate``'s own steps, in its order).

``PolicyPackageAlgorithms.__init__`` means to load the policy packages' algorithms once, but
it records that on the instance (``self._loaded_policy_modules = True``), so every object of
its subclasses loads them again: a configuration lookup in the database, an import attempt,
on each RSE protocol Rucio builds (every expected PFN of ``POST /replicas``: a tenth of an
upload's server CPU). Here the class records it: the algorithms are registered in the one
dictionary all subclasses share, so they are loaded once per process, as intended.

``POST /replicas`` first asks which of its files are new (``find_files_with_missing_dids``)
by creating a temporary table, filling it and joining it: a new ORM class, DDL and catalogue
writes in PostgreSQL for every call, about a quarter of the server's and the database's CPU
time on a 1 KiB upload (measured: 32 → 24 ms server, 10 → 8 ms database per upload). Here up
to 50 files are asked with one query that names them, as Rucio's own ``__bulk_add_file_dids``
does a moment later in the same request; more go Rucio's way. The answer is the same
(``test_the_servers_lookup_of_new_files_answers_as_rucios_own``).
"""

from __future__ import annotations

import threading
from typing import Any

import rucio.common.schema as rucio_schema
import rucio.gateway.replica as replica_gateway
from jsonschema import exceptions, validators
from rucio.common.plugins import PolicyPackageAlgorithms
from rucio.core.did import find_files_with_missing_dids as find_with_temp_table
from rucio.db.sqla import models
from rucio.db.sqla.constants import DIDType
from sqlalchemy import and_, or_, select

_MAX_SCHEMAS = 256  # Rucio has a few dozen; a bound all the same
_validators: dict[str, Any] = {}
_lock = threading.Lock()


def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """``jsonschema.validate`` with the schema's check and validator kept per schema."""
    key = repr((schema, cls, args, sorted(kwargs.items())))
    validator = _validators.get(key)
    if validator is None:
        chosen = cls if cls is not None else validators.validator_for(schema)
        chosen.check_schema(schema)
        validator = chosen(schema, *args, **kwargs)
        with _lock:
            if len(_validators) >= _MAX_SCHEMAS:
                _validators.clear()
            _validators[key] = validator
    error = exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


rucio_schema.validate = validate  # what rucio.common.schema.validate_schema calls

_load_algorithms = PolicyPackageAlgorithms.__init__


def _load_algorithms_once(self: PolicyPackageAlgorithms) -> None:
    if not PolicyPackageAlgorithms._loaded_policy_modules:
        _load_algorithms(self)
        PolicyPackageAlgorithms._loaded_policy_modules = True


PolicyPackageAlgorithms.__init__ = _load_algorithms_once

_FEW_FILES = 50


def _find_files_with_missing_dids(files: Any, *, session: Any, **kwargs: Any) -> Any:
    """Which of ``files`` have no file DID yet: for a few files, one query with the names in
    it (as Rucio's ``__bulk_add_file_dids`` asks in the same request) instead of a temporary
    table created, filled and dropped for each call."""
    files = list(files)
    if not files or len(files) > _FEW_FILES:
        return find_with_temp_table(files, session=session, **kwargs)
    dids = models.DataIdentifier
    found = {
        (scope, name)
        for scope, name in session.execute(
            select(dids.scope, dids.name).where(
                dids.did_type == DIDType.FILE,
                or_(*(and_(dids.scope == f["scope"], dids.name == f["name"]) for f in files)),
            )
        )
    }
    return [
        {"scope": f["scope"], "name": f["name"], "type": DIDType.FILE}
        for f in files
        if (f["scope"], f["name"]) not in found
    ]


replica_gateway.find_files_with_missing_dids = _find_files_with_missing_dids

from rucio.web.rest.flaskapi.v1.main import application  # noqa: E402 - after the change

__all__ = ["application"]
