"""The development server's WSGI application: Rucio's own, with two request costs taken out.

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
"""

from __future__ import annotations

import threading
from typing import Any

import rucio.common.schema as rucio_schema
from jsonschema import exceptions, validators
from rucio.common.plugins import PolicyPackageAlgorithms

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

from rucio.web.rest.flaskapi.v1.main import application  # noqa: E402 - after the change

__all__ = ["application"]
