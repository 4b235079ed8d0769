"""SQL storage of the gateway: store classes returning pydantic records, ORM schema, migrations."""
