"""Shared test support (fixtures for pytest_plugins)."""
