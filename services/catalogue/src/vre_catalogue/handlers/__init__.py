"""HTTP routers of the catalogue: thin doorways to the services."""
