"""Test support of the zenodo service: the Zenodo stand-in, served apps, fakes."""
