"""Shared library of the VRE services: settings, auth, problems, logging, metrics, HTTP, DB."""
