"""VRE benchmarks: each one compares against a baseline measured in the same run."""
