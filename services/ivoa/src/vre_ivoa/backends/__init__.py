"""Backends of the ivoa service."""
