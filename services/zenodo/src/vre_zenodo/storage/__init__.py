"""SQL storage of the zenodo service: schema, stores, migrations."""
