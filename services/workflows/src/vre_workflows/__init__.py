"""VRE workflows service."""
