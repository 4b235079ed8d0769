"""API models of the gateway's own resources (projects, provenance, audit, search)."""
