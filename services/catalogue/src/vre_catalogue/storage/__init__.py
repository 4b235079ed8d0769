"""SQL storage of the catalogue: ORM schema, stores, search indexes, migrations."""
