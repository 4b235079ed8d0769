"""Ports to external systems (executors, REANA, Data Lake) and their implementations."""
