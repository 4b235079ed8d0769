"""HTTP clients of VRE services, for other VRE services (act with the caller's token)."""
