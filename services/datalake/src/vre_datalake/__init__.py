"""VRE Data Lake service (Rucio)."""
