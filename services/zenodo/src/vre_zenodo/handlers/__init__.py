"""HTTP routes of the zenodo service."""
