"""Domain rules of the zenodo service."""
