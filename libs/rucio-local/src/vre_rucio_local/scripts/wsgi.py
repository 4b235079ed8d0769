"""The development server's WSGI application: Rucio's own, with one request cost taken out.

gunicorn loads this module from the Rucio server environment (``--pythonpath`` this folder,
``wsgi:application``), so it imports only Rucio, its dependencies and the standard library.

Rucio checks each request body with ``jsonschema.validate(body, schema)``, which first checks
the *schema* against its meta-schema (draft 2020-12, ``$dynamicRef`` and all): about a fifth
of the server's CPU time on an upload's two writes (``POST /replicas``, ``POST /rules/``).
Here each schema's validator is built and checked once; every body is still validated, with
the same errors (``jsonschema.validate``'s own steps, in its order).
"""

from __future__ import annotations

import threading
from typing import Any

import rucio.common.schema as rucio_schema
from jsonschema import exceptions, validators

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

from rucio.web.rest.flaskapi.v1.main import application  # noqa: E402 - after the change

__all__ = ["application"]
