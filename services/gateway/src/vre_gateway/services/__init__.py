"""Domain rules of the gateway: projects, memberships, provenance, audit, search."""
