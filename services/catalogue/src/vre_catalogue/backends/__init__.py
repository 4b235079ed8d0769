"""Ports to external systems and their adapters."""
