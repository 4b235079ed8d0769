"""Adapters to the systems the zenodo service talks to."""
