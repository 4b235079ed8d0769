"""Modules the embedded Rucio *server* imports (its venv, not this package's).

``LocalRucio.server_env()`` puts this folder on the server processes' ``PYTHONPATH``, so each
module here is imported by its bare name (e.g. ``vre_sqlite_meta``) and must need nothing but
Rucio and the standard library.
"""
