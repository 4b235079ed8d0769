"""Handlers of the ivoa service."""
