"""VRE zenodo service."""
