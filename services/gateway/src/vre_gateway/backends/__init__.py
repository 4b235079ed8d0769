"""Ports of the gateway to other services (scope provisioning, search sources)."""
