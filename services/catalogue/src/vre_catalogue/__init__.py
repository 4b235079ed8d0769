"""VRE catalogue service."""
